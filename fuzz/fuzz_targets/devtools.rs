//! Fuzz target `devtools`: each input goes to [`scarecrow_fuzz::devtools`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(init: scarecrow_fuzz::crash::init(), |data: &[u8]| {
    scarecrow_fuzz::fuzz("devtools", scarecrow_fuzz::devtools, data);
});
