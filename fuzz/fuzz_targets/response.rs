//! Fuzz target `response`: each input goes to [`scarecrow_fuzz::response`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(init: scarecrow_fuzz::crash::init(), |data: &[u8]| {
    scarecrow_fuzz::fuzz("response", scarecrow_fuzz::response, data);
});
