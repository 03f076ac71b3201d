//! chrF2 as sacrebleu 2.x computes it with its defaults: character n-grams of order 1 to 6 with
//! whitespace removed, no word n-grams, beta 2, mixed case, and sacrebleu's effective-order
//! averaging (not epsilon smoothing).
//!
//! Statistics are summed over the corpus before the F-score ([`super::score_corpus`]), as
//! `sacrebleu.corpus_chrf` does.
//! Not for: chrF++ (word n-grams), lowercased chrF, or several references per segment.

use std::collections::HashMap;

use serde::Serialize;

use super::{py_split, SACREBLEU_VERSION};

/// Character n-gram order (sacrebleu's `CHAR_ORDER`).
pub const CHAR_ORDER: usize = 6;
/// Recall weighs `BETA` times as much as precision.
pub const BETA: f64 = 2.0;

/// A chrF score with its signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChrfScore {
    /// chrF2 in 0..=100.
    pub score: f64,
    /// sacrebleu's signature string, e.g. `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`.
    pub signature: String,
}

/// Per order: hypothesis n-grams, reference n-grams, matched n-grams.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChrfStats(pub [[u64; 3]; CHAR_ORDER]);

impl std::ops::AddAssign for ChrfStats {
    fn add_assign(&mut self, rhs: Self) {
        for (mine, theirs) in self.0.iter_mut().zip(rhs.0) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }
}

/// sacrebleu's signature for chrF with default settings.
pub fn signature() -> String {
    format!("nrefs:1|case:mixed|eff:yes|nc:{CHAR_ORDER}|nw:0|space:no|version:{SACREBLEU_VERSION}")
}

/// Counts of the character n-grams of order `n` in `chars`.
fn char_ngrams(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut counts = HashMap::new();
    for gram in chars.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// The statistics of one hypothesis against its reference.
pub fn segment_stats(hyp: &str, reference: &str) -> ChrfStats {
    let hyp: Vec<char> = py_split(hyp).flat_map(str::chars).collect();
    let reference: Vec<char> = py_split(reference).flat_map(str::chars).collect();
    let mut stats = ChrfStats::default();
    for (n, slot) in (1..=CHAR_ORDER).zip(stats.0.iter_mut()) {
        let hyp_grams = char_ngrams(&hyp, n);
        let ref_grams = char_ngrams(&reference, n);
        let mut hyp_count = 0;
        let mut matched = 0;
        for (gram, count) in &hyp_grams {
            hyp_count += count;
            if let Some(ref_count) = ref_grams.get(gram) {
                matched += (*count).min(*ref_count);
            }
        }
        // sacrebleu counts no hypothesis n-grams of an order the reference has none of.
        let hyp_count = if ref_grams.is_empty() { 0 } else { hyp_count };
        *slot = [hyp_count, ref_grams.values().sum(), matched];
    }
    stats
}

/// chrF from summed statistics: precision and recall averaged over the orders both sides have
/// n-grams of, then combined into an F-beta score.
pub fn compute(stats: &ChrfStats) -> ChrfScore {
    let factor = BETA * BETA;
    let (mut avg_prec, mut avg_rec, mut effective_order) = (0.0, 0.0, 0);
    for &[n_hyp, n_ref, n_match] in &stats.0 {
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += n_match as f64 / n_hyp as f64;
            avg_rec += n_match as f64 / n_ref as f64;
            effective_order += 1;
        }
    }
    let mut score = 0.0;
    if effective_order > 0 {
        avg_prec /= effective_order as f64;
        avg_rec /= effective_order as f64;
        if avg_prec + avg_rec != 0.0 {
            // Same operation order as sacrebleu, so the floating-point result is identical.
            let f = (1.0 + factor) * avg_prec * avg_rec / ((factor * avg_prec) + avg_rec);
            score = 100.0 * f;
        }
    }
    ChrfScore {
        score,
        signature: signature(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrf(h: &str, r: &str) -> f64 {
        compute(&segment_stats(h, r)).score
    }

    #[test]
    fn identical_is_100_disjoint_is_0() {
        assert!((chrf("a cat", "a cat") - 100.0).abs() < 1e-9);
        assert_eq!(chrf("xyz", "abc"), 0.0);
        assert_eq!(chrf("", "abc"), 0.0);
    }

    #[test]
    fn whitespace_does_not_count() {
        assert!((chrf("the cat sat", "thecat  sat") - 100.0).abs() < 1e-9);
    }
}
