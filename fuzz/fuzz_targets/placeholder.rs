//! Fuzz target `placeholder`: each input goes to [`scarecrow_fuzz::placeholder`] on a
//! thread with the daemon's stack size.
#![no_main]

libfuzzer_sys::fuzz_target!(init: scarecrow_fuzz::crash::init(), |data: &[u8]| {
    scarecrow_fuzz::fuzz("placeholder", scarecrow_fuzz::placeholder, data);
});
