//! Fuzz target: see `transbrief_fuzz::check_html` for the properties. Run
//! with `cargo +nightly fuzz run html` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| transbrief_fuzz::check_html(data));
