//! Fuzz target: see `transbrief_fuzz::check_odt` for the properties. Run with
//! `cargo +nightly fuzz run odt` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    transbrief_fuzz::check_odt(data);
});
