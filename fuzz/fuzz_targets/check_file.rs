//! Fuzz target `check_file`: each input goes to [`scarecrow_fuzz::check_file`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(init: scarecrow_fuzz::crash::init(), |data: &[u8]| {
    scarecrow_fuzz::fuzz("check_file", scarecrow_fuzz::check_file, data);
});
