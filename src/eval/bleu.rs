//! BLEU as sacrebleu 2.x computes it with its defaults: the `13a` tokenizer (mteval-v13a), mixed
//! case, 4-gram precisions with `exp` smoothing, one reference per segment.
//!
//! Corpus BLEU ([`super::score_corpus`]) sums [`segment_stats`] over a corpus and [`compute`]s
//! with `eff:no`, like `sacrebleu.corpus_bleu`; [`sentence_bleu`] and the per-document scores use effective order
//! (`eff:yes`), like `sacrebleu.sentence_bleu`. Not for: other tokenizers (`intl`, `zh`, `spm`),
//! lowercased BLEU, several references per segment or bootstrap confidence intervals.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::{py_rstrip, py_split, SACREBLEU_VERSION};

/// The highest n-gram order, as sacrebleu's default.
pub const MAX_ORDER: usize = 4;

/// A BLEU score with the statistics sacrebleu prints beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BleuScore {
    /// BLEU in 0..=100.
    pub score: f64,
    /// Matched n-grams, orders 1 to 4.
    pub counts: [u64; MAX_ORDER],
    /// Hypothesis n-grams, orders 1 to 4.
    pub totals: [u64; MAX_ORDER],
    /// n-gram precisions in percent (smoothed where a count is zero).
    pub precisions: [f64; MAX_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis length over reference length, in tokens (0 when the reference is empty).
    pub ratio: f64,
    pub hyp_len: u64,
    pub ref_len: u64,
    /// sacrebleu's signature string, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    pub signature: String,
}

/// Sufficient statistics of one segment, or of a corpus once summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BleuStats {
    pub hyp_len: u64,
    pub ref_len: u64,
    pub correct: [u64; MAX_ORDER],
    pub total: [u64; MAX_ORDER],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, rhs: Self) {
        self.hyp_len += rhs.hyp_len;
        self.ref_len += rhs.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += rhs.correct[n];
            self.total[n] += rhs.total[n];
        }
    }
}

/// sacrebleu's signature for BLEU with default settings.
pub fn signature(effective_order: bool) -> String {
    let eff = if effective_order { "yes" } else { "no" };
    format!("nrefs:1|case:mixed|eff:{eff}|tok:13a|smooth:exp|version:{SACREBLEU_VERSION}")
}

/// The rules of mteval-v13a after its language-independent part, in order, each applied to the
/// whole line (left to right, matches not overlapping) before the next.
static RULES_13A: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
    // The patterns are literals tested by `tokenize_13a`'s unit tests, so they compile.
    let re = |p: &str| Regex::new(p).expect("13a pattern is a valid literal");
    [
        // ASCII symbols and punctuation other than . , ' and -, each as its own token.
        (re(r"([{-~\[-` -&(-+:-@/])"), " $1 "),
        // Period and comma unless preceded by a digit...
        (re(r"([^0-9])([.,])"), "$1 $2 "),
        // ... and unless followed by a digit.
        (re(r"([.,])([^0-9])"), " $1 $2"),
        // Dash after a digit.
        (re(r"([0-9])(-)"), "$1 $2 "),
    ]
});

/// Tokenizes a line as sacrebleu's `13a` tokenizer does; tokens are separated by one space.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut line = format!(" {line} ");
    for (re, replacement) in RULES_13A.iter() {
        line = re.replace_all(&line, *replacement).into_owned();
    }
    py_split(&line).collect::<Vec<_>>().join(" ")
}

/// Counts of every n-gram of order 1 to 4, and the number of tokens.
fn ngram_counts<'a>(tokens: &'a [&'a str]) -> HashMap<&'a [&'a str], u64> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// The statistics of one hypothesis against its reference (both untokenized).
pub fn segment_stats(hyp: &str, reference: &str) -> BleuStats {
    let hyp = tokenize_13a(py_rstrip(hyp));
    let reference = tokenize_13a(py_rstrip(reference));
    let hyp_tokens: Vec<&str> = py_split(&hyp).collect();
    let ref_tokens: Vec<&str> = py_split(&reference).collect();
    let ref_counts = ngram_counts(&ref_tokens);
    let mut stats = BleuStats {
        hyp_len: hyp_tokens.len() as u64,
        ref_len: ref_tokens.len() as u64,
        ..BleuStats::default()
    };
    for (gram, count) in ngram_counts(&hyp_tokens) {
        let n = gram.len() - 1;
        stats.total[n] += count;
        if let Some(ref_count) = ref_counts.get(gram) {
            stats.correct[n] += count.min(*ref_count);
        }
    }
    stats
}

/// sacrebleu's floored logarithm: log(0) is a very large negative number instead of -inf.
fn floored_ln(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// BLEU from summed statistics, with `exp` smoothing; `effective_order` stops at the first
/// order the hypothesis has no n-grams of, as sacrebleu does.
pub fn compute(stats: &BleuStats, effective_order: bool) -> BleuScore {
    let (hyp_len, ref_len) = (stats.hyp_len, stats.ref_len);
    let mut bp = 1.0;
    if hyp_len < ref_len {
        bp = if hyp_len > 0 {
            (1.0 - ref_len as f64 / hyp_len as f64).exp()
        } else {
            0.0
        };
    }
    let mut precisions = [0.0; MAX_ORDER];
    let mut score = 0.0;
    if stats.correct.iter().any(|&c| c > 0) {
        let mut smooth = 1.0;
        let mut eff_order = MAX_ORDER;
        let orders = precisions
            .iter_mut()
            .zip(stats.correct.iter().zip(&stats.total));
        for (n, (precision, (&correct, &total))) in orders.enumerate() {
            if total == 0 {
                break;
            }
            if effective_order {
                eff_order = n + 1;
            }
            *precision = if correct == 0 {
                smooth *= 2.0;
                100.0 / (smooth * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }
        let log_sum: f64 = precisions[..eff_order].iter().map(|&p| floored_ln(p)).sum();
        score = bp * (log_sum / eff_order as f64).exp();
    }
    BleuScore {
        score,
        counts: stats.correct,
        totals: stats.total,
        precisions,
        bp,
        ratio: if ref_len > 0 {
            hyp_len as f64 / ref_len as f64
        } else {
            0.0
        },
        hyp_len,
        ref_len,
        signature: signature(effective_order),
    }
}

/// `sacrebleu.sentence_bleu(hyp, [reference])` with default settings (`eff:yes`).
pub fn sentence_bleu(hyp: &str, reference: &str) -> BleuScore {
    compute(&segment_stats(hyp, reference), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_punctuation_but_keeps_decimals_and_apostrophes() {
        assert_eq!(
            tokenize_13a("It's 3.5% (up), \"big\" news."),
            "It's 3.5 % ( up ) , \" big \" news ."
        );
        assert_eq!(tokenize_13a("1990-2000, a.b"), "1990 - 2000 , a . b");
        assert_eq!(tokenize_13a("x &amp; y &lt;z&gt;"), "x & y < z >");
    }

    #[test]
    fn identical_segments_score_100_and_empty_ones_0() {
        let s = sentence_bleu("The cat sat on the mat.", "The cat sat on the mat.");
        assert!((s.score - 100.0).abs() < 1e-9, "{s:?}");
        assert_eq!(sentence_bleu("", "The cat.").score, 0.0);
        assert_eq!(compute(&BleuStats::default(), false).score, 0.0);
    }
}
