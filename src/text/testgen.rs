//! Deterministic random inputs for this module's property tests: a seeded xorshift generator,
//! builders for strings made of given pieces or of arbitrary characters, and a runner that names
//! the input a property failed on. Fixed seeds, so every run checks the same cases.
//!
//! Not for: anything outside tests (compiled only with `cfg(test)`), nor for cryptography.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64* generator.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        // Any non-zero state works; zero would stay zero.
        Gen(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Up to `max` pieces drawn from `pieces`, concatenated.
    pub fn pieces(&mut self, pieces: &[&str], max: usize) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| pieces[self.below(pieces.len())]).collect()
    }

    /// Up to `max` bytes: raw noise, or text-like bytes behind an optional BOM, so that every
    /// decoding path is taken.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        const STARTS: &[&[u8]] = &[b"", b"", b"\xEF\xBB\xBF", b"\xFF\xFE", b"\xFE\xFF", b"GGUF"];
        let mut out = STARTS[self.below(STARTS.len())].to_vec();
        let len = self.below(max + 1);
        match self.below(3) {
            0 => out.extend((0..len).map(|_| self.next_u64() as u8)),
            1 => out.extend(self.any_text(len).bytes()),
            _ => {
                // UTF-16-like: text bytes with a zero byte every other position.
                for b in self.any_text(len / 2).bytes() {
                    out.extend([b, 0]);
                }
            }
        }
        out
    }

    /// Up to `max` characters, mostly the kind found in French text but also control
    /// characters, other scripts, combining marks and emoji.
    pub fn any_text(&mut self, max: usize) -> String {
        const COMMON: &[char] = &[
            ' ', ' ', '\n', '\t', '\r', '\u{A0}', '\u{202F}', '.', '.', ',', '!', '?', '…', ':',
            '«', '»', '"', '“', '”', '\'', '’', '-', '—', '(', ')', '[', ']', '#', '>', '*', '`',
            '|', 'é', 'É', 'à', 'œ', 'ç',
        ];
        let len = self.below(max + 1);
        (0..len)
            .map(|_| match self.below(8) {
                0..=2 => char::from(b'a' + self.below(26) as u8),
                3 => char::from(b'A' + self.below(26) as u8),
                4 => char::from(b'0' + self.below(10) as u8),
                5 => COMMON[self.below(COMMON.len())],
                6 => char::from(self.below(0x80) as u8),
                // Any scalar value below U+30000 (surrogates fall back to U+FFFD).
                _ => char::from_u32(self.below(0x30000) as u32).unwrap_or('\u{FFFD}'),
            })
            .collect()
    }
}

/// Runs `check` on `cases` inputs built by `make`; if a check panics, panics again naming the
/// case and its input.
pub fn for_each_case<T: Debug>(
    cases: usize,
    mut make: impl FnMut(&mut Gen) -> T,
    check: impl Fn(&T),
) {
    let mut gen = Gen::new(cases as u64);
    for case in 0..cases {
        let input = make(&mut gen);
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            panic!("property failed on case {case}, input {input:?}");
        }
    }
}
