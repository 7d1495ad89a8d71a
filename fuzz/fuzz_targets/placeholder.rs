//! Fuzz target `placeholder`: feeds each input to [`scarecrow_fuzz::placeholder`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scarecrow_fuzz::on_daemon_stack("placeholder", || scarecrow_fuzz::placeholder(data));
});
