//! Fuzz target `response`: feeds each input to [`scarecrow_fuzz::response`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scarecrow_fuzz::on_daemon_stack("response", || scarecrow_fuzz::response(data));
});
