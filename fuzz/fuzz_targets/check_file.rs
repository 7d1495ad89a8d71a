//! Fuzz target `check_file`: feeds each input to [`scarecrow_fuzz::check_file`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scarecrow_fuzz::on_daemon_stack("check_file", || scarecrow_fuzz::check_file(data));
});
