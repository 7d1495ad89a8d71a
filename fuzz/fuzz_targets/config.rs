//! Fuzz target `config`: each input goes to [`scarecrow_fuzz::config`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(init: scarecrow_fuzz::crash::init(), |data: &[u8]| {
    scarecrow_fuzz::fuzz("config", scarecrow_fuzz::config, data);
});
