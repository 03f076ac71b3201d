//! Fuzz target: see `transbrief_fuzz::check_subtitles` for the properties (SRT and WebVTT). Run
//! with `cargo +nightly fuzz run srt` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| transbrief_fuzz::check_subtitles(data));
