//! Fuzz target `config`: feeds each input to [`scarecrow_fuzz::config`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    scarecrow_fuzz::on_daemon_stack("config", || scarecrow_fuzz::config(data));
});
