//! The stable-toolchain fuzzing driver: feeds one property check with seeded inputs (random
//! bytes, text assembled from pieces that exercise encodings, sentence ends and Markdown, and
//! mutations of earlier inputs) until a deadline, and returns the first input that fails. It has
//! no coverage feedback, so it finds less than libFuzzer per execution; it is what runs where
//! libFuzzer cannot (a stable toolchain). Shared, by `#[path]`, by `src/bin/stable.rs` and the
//! root crate's `tests/fuzz_stable.rs`, which reuses the root's compiled dependencies.
//!
//! Not for: replacing `cargo +nightly fuzz run`, which should be preferred where it works.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Pieces that reach the interesting paths: BOMs, NUL and control bytes, CR/LF mixes, French
/// punctuation and abbreviations, multi-byte characters, Markdown markup, windows-1252 bytes.
#[rustfmt::skip]
const PIECES: &[&[u8]] = &[
    b"\xEF\xBB\xBF", b"\xFF\xFE", b"\xFE\xFF", b"\x00", b"\x01", b"\r\n", b"\r", b"\n", b"\n\n",
    b" ", b"\t", b"\xC2\xA0", b". ", b"? ", b"! ", b"...", b"\xE2\x80\xA6", b"M. ", b"Dr. ",
    b"p. ex. ", b"etc. ", b"\xC2\xAB ", b" \xC2\xBB", b"\"", b"'", b"3.14", b"1er", b"U.S.A. ",
    b"Le chat", b"dort", b"\xC3\xA9t\xC3\xA9", b"\xC5\x93uvre", b"\xF0\x9F\x98\x80",
    b"\xE2\x80\x8B", b"# ", b"## ", b"- ", b"* ", b"1. ", b"> ", b"```", b"    ", b"| a | b |",
    b"|---|---|", b"[lien](http://x)", b"**gras**", b"<div>", b"</div>", b"---", b"[^1]: note",
    b"\x93", b"\x94", b"\x9C", b"\xE9", b"\x80", b"\xFF", b"GGUF", b"\x89PNG\r\n\x1a\n",
    // The XML of DOCX and ODT paragraphs, which the package targets wrap in a document.
    b"<w:p>", b"</w:p>", b"<w:r>", b"</w:r>", b"<w:t>", b"</w:t>", b"<w:rPr><w:b/></w:rPr>",
    b"<w:r><w:t>Le chat</w:t></w:r>", b"<w:r><w:rPr><w:i/></w:rPr><w:t xml:space=\"preserve\"> dort </w:t></w:r>",
    b"<w:hyperlink r:id=\"x\">", b"</w:hyperlink>", b"<w:tab/>", b"<w:br/>", b"<w:br w:type=\"page\"/>",
    b"<w:r><w:fldChar w:fldCharType=\"begin\"/></w:r>", b"<w:r><w:fldChar w:fldCharType=\"end\"/></w:r>",
    b"<mc:AlternateContent><mc:Choice>", b"</mc:Choice><mc:Fallback>", b"</mc:Fallback></mc:AlternateContent>",
    b"<text:p>", b"</text:p>", b"<text:span text:style-name=\"T1\">", b"</text:span>",
    b"<text:a xlink:href=\"x\">", b"</text:a>", b"<text:s text:c=\"3\"/>", b"<text:tab/>",
    b"<text:line-break/>", b"<text:note><text:note-body><text:p>n</text:p></text:note-body></text:note>",
    b"&amp;", b"&#233;", b"&x;", b"<!DOCTYPE x>", b"<a>", b"</a>", b"<![CDATA[<]]>",
    b"<p>", b"</p>", b"<b>", b"</b>", b"<i>", b"</i>", b"<a href=\"x?a=1&amp;b\">", b"</a>",
    b"<br>", b"<img alt=\"image\" title=t>", b"&eacute;", b"&amp;", b"&#233;", b"&nbsp;",
    b"<!-- c -->", b"<script>x<y</script>", b"<code>", b"</code>", b"<html lang=fr>",
    b"<meta charset=latin1>", b"<li>", b"<span translate=no>", b"</span>", b"<title>",
    b"1\n", b"00:00:01,000 --> 00:00:02,000\n", b"00:01.000 --> 00:02.000 line:0\n",
    b"WEBVTT\n\n", b"NOTE x\n", b"<font color=\"red\">", b"</font>", b"<v Ana>", b"{\\an8}",
    b"- ", b"<00:01.500>",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(4) {
        0 => (0..rng.below(256)).map(|_| rng.next() as u8).collect(),
        1 if !pool.is_empty() => {
            // Mutate an earlier input: flip, insert or delete bytes, or splice two inputs.
            let mut v = pool[rng.below(pool.len())].clone();
            for _ in 0..=rng.below(8) {
                let at = rng.below(v.len() + 1);
                match rng.below(4) {
                    0 if at < v.len() => v[at] ^= 1 << rng.below(8),
                    1 => v.insert(at, rng.next() as u8),
                    2 if at < v.len() => {
                        v.remove(at);
                    }
                    _ => {
                        let other = &pool[rng.below(pool.len())];
                        let from = rng.below(other.len() + 1);
                        v.splice(at..at, other[from..].iter().copied().take(64));
                    }
                }
            }
            v
        }
        _ => {
            let mut v = Vec::new();
            for _ in 0..rng.below(200) {
                v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
            v
        }
    }
}

/// Runs `check` on seeded inputs for `secs` seconds. Returns the number of inputs tried, or the
/// first input on which `check` panicked (with how many were tried before it).
pub fn drive(check: fn(&[u8]), secs: u64, seed: u64) -> Result<u64, (u64, Vec<u8>)> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs: u64 = 0;
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        for _ in 0..256 {
            let data = input(&mut rng, &pool);
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                std::panic::set_hook(previous_hook);
                return Err((runs, data));
            }
            // Keep some inputs to mutate later; text-like ones are the useful seeds.
            if pool.len() < 4096 && std::str::from_utf8(&data).is_ok() {
                pool.push(data);
            } else if !pool.is_empty() && rng.below(16) == 0 {
                let at = rng.below(pool.len());
                pool[at] = data;
            }
        }
    }
    std::panic::set_hook(previous_hook);
    Ok(runs)
}
