//! Scoring outputs against references: BLEU, chrF and TER exactly as sacrebleu computes them with
//! its defaults, ROUGE exactly as Google's `rouge-score` computes it with stemming, and the
//! `transbrief eval` command that pairs output files with reference files and reports the scores.
//!
//! The metrics reproduce the reference implementations to the last digit where floating point
//! allows (tests/eval_metrics.rs checks them against values written by
//! scripts/make-eval-fixtures.py), so numbers printed here can be compared with published ones.
//! Not for: producing the outputs (the pipeline), or metrics with learned weights (COMET, BERTScore).
//!
//! A *segment* is one hypothesis/reference pair. Its text may hold several lines: BLEU, chrF and
//! TER read it as one line (line breaks count as spaces), ROUGE-Lsum reads the lines as sentences.

pub mod bleu;
pub mod chrf;
pub mod cli;
pub mod pairing;
pub mod porter;
pub mod rouge;
pub mod ter;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

pub use bleu::BleuScore;
pub use chrf::ChrfScore;
pub use rouge::RougeScores;
pub use ter::TerScore;

/// The sacrebleu release whose behaviour and signatures the BLEU, chrF and TER code reproduces.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// Whether Python's `str.isspace` holds: Unicode white space plus the ASCII separators
/// U+001C..U+001F, which Python's `str.split()` also splits on and Rust's does not.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()`.
pub(crate) fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|t| !t.is_empty())
}

/// Python's `s.rstrip()`.
pub(crate) fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// A segment as one line, for the metrics that read segments as lines.
fn one_line(s: &str) -> Cow<'_, str> {
    if s.contains('\n') {
        Cow::Owned(s.replace('\n', " "))
    } else {
        Cow::Borrowed(s)
    }
}

/// Which metrics to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub bleu: bool,
    pub chrf: bool,
    pub ter: bool,
    /// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum together.
    pub rouge: bool,
}

impl Metrics {
    /// Every metric.
    pub fn all() -> Self {
        Metrics {
            bleu: true,
            chrf: true,
            ter: true,
            rouge: true,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::all()
    }
}

impl FromStr for Metrics {
    type Err = Error;

    /// Parses a comma-separated list such as `bleu,chrf`; names are case-insensitive.
    fn from_str(list: &str) -> Result<Self> {
        let mut m = Metrics {
            bleu: false,
            chrf: false,
            ter: false,
            rouge: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "bleu" => m.bleu = true,
                "chrf" => m.chrf = true,
                "ter" => m.ter = true,
                "rouge" => m.rouge = true,
                _ => {
                    return Err(Error::msg(format!(
                        "unknown metric '{name}' (known: bleu, chrf, ter, rouge)"
                    )))
                }
            }
        }
        if !(m.bleu || m.chrf || m.ter || m.rouge) {
            return Err(Error::msg(
                "no metric named (known: bleu, chrf, ter, rouge)",
            ));
        }
        Ok(m)
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.bleu, "bleu"),
            (self.chrf, "chrf"),
            (self.ter, "ter"),
            (self.rouge, "rouge"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        f.write_str(&on.join(","))
    }
}

/// The scores of a set of segments; a metric not asked for is `None` (and absent from JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// How many segments were scored.
    pub segments: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bleu: Option<BleuScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chrf: Option<ChrfScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ter: Option<TerScore>,
    /// Serialized as four fields, `rouge1`, `rouge2`, `rougeL`, `rougeLsum`: each the mean over
    /// segments of rouge-score's per-segment precision, recall and F1.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub rouge: Option<RougeScores>,
}

/// Corpus scores of aligned segments, as `sacrebleu.corpus_bleu` / `corpus_chrf` / `corpus_ter`
/// (statistics summed over segments, BLEU without effective order) and the mean per-segment
/// ROUGE. Errors when the two lists differ in length.
pub fn score_corpus(hyps: &[String], refs: &[String], metrics: &Metrics) -> Result<Scores> {
    score_segments(hyps, refs, metrics, false)
}

/// Scores of one document's segments: as [`score_corpus`] but BLEU uses effective order, as
/// `sacrebleu.sentence_bleu` does, so a short document is not scored 0 for lacking 4-grams. For a
/// one-segment document the BLEU is exactly `sentence_bleu`.
pub fn score_document(hyps: &[String], refs: &[String], metrics: &Metrics) -> Result<Scores> {
    score_segments(hyps, refs, metrics, true)
}

fn score_segments(
    hyps: &[String],
    refs: &[String],
    metrics: &Metrics,
    effective_order: bool,
) -> Result<Scores> {
    if hyps.len() != refs.len() {
        return Err(Error::msg(format!(
            "{} hypotheses but {} references",
            hyps.len(),
            refs.len()
        )));
    }
    let flat_hyps: Vec<Cow<str>> = hyps.iter().map(|s| one_line(s)).collect();
    let flat_refs: Vec<Cow<str>> = refs.iter().map(|s| one_line(s)).collect();
    let bleu = metrics.bleu.then(|| {
        let stats = sum_stats(&flat_hyps, &flat_refs, bleu::segment_stats);
        bleu::compute(&stats, effective_order)
    });
    let chrf = metrics
        .chrf
        .then(|| chrf::compute(&sum_stats(&flat_hyps, &flat_refs, chrf::segment_stats)));
    let ter = metrics
        .ter
        .then(|| ter::compute(&sum_stats(&flat_hyps, &flat_refs, ter::segment_stats)));
    let rouge = metrics.rouge.then(|| {
        let per_segment: Vec<RougeScores> = hyps
            .par_iter()
            .zip(refs)
            .map(|(h, r)| rouge::score(r, h))
            .collect();
        rouge::mean(&per_segment)
    });
    Ok(Scores {
        segments: hyps.len(),
        bleu,
        chrf,
        ter,
        rouge,
    })
}

/// Computes per-segment statistics in parallel, then sums them in segment order, so the result
/// does not depend on the number of threads.
fn sum_stats<T, F>(hyps: &[Cow<str>], refs: &[Cow<str>], stats: F) -> T
where
    T: Default + Send + std::ops::AddAssign,
    F: Fn(&str, &str) -> T + Sync,
{
    let per_segment: Vec<T> = hyps
        .par_iter()
        .zip(refs)
        .map(|(h, r)| stats(h, r))
        .collect();
    let mut total = T::default();
    for s in per_segment {
        total += s;
    }
    total
}
