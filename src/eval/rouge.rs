//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum exactly as Google's `rouge-score` package computes
//! them with `RougeScorer([...], use_stemmer=True)`: lowercase, every run of characters other than
//! `a-z0-9` becomes a space, tokens longer than 3 characters are Porter-stemmed (NLTK's variant,
//! see [`super::porter`]), and scores are precision, recall and F1.
//!
//! `rougeL` is the LCS over the whole text; `rougeLsum` is the summary-level LCS over sentences
//! separated by newlines (what CNN/DailyMail papers quote), without `split_summaries`. Not for:
//! corpus-level ROUGE as one statistic (rouge-score has none; [`mean`] averages segments) or
//! bootstrap confidence intervals.

use std::collections::HashMap;

use serde::Serialize;

use super::porter;

/// Precision, recall and F1, each in 0..=1 as rouge-score reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Prf {
    fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Prf {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// The four ROUGE variants of one segment (or their mean over several).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct RougeScores {
    pub rouge1: Prf,
    pub rouge2: Prf,
    #[serde(rename = "rougeL")]
    pub rouge_l: Prf,
    #[serde(rename = "rougeLsum")]
    pub rouge_lsum: Prf,
}

/// rouge-score's default tokenizer with stemming.
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let spaced: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                ' '
            }
        })
        .collect();
    spaced
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.len() > 3 {
                porter::stem(t)
            } else {
                t.to_string()
            }
        })
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .collect()
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], u64> {
    let mut counts = HashMap::new();
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

fn ngram_score(target: &[String], prediction: &[String], n: usize) -> Prf {
    let target_grams = ngram_counts(target, n);
    let prediction_grams = ngram_counts(prediction, n);
    let overlap: u64 = target_grams
        .iter()
        .map(|(g, c)| (*c).min(prediction_grams.get(g).copied().unwrap_or(0)))
        .sum();
    let target_count: u64 = target_grams.values().sum();
    let prediction_count: u64 = prediction_grams.values().sum();
    Prf::new(
        overlap as f64 / prediction_count.max(1) as f64,
        overlap as f64 / target_count.max(1) as f64,
    )
}

/// The LCS length table: `t[i][j]` is the LCS of `a[..i]` and `b[..j]`.
fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<u32>> {
    let mut t = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i][j] = if a[i - 1] == b[j - 1] {
                t[i - 1][j - 1] + 1
            } else {
                t[i - 1][j].max(t[i][j - 1])
            };
        }
    }
    t
}

fn lcs_score(target: &[String], prediction: &[String]) -> Prf {
    if target.is_empty() || prediction.is_empty() {
        return Prf::default();
    }
    let lcs = lcs_table(target, prediction)[target.len()][prediction.len()] as f64;
    Prf::new(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// Positions in `reference` of one longest common subsequence with `candidate`, chosen by
/// rouge-score's backtracking (prefer a match, then moving left in the candidate on a strict
/// improvement, else up in the reference).
fn lcs_positions(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let t = lcs_table(reference, candidate);
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut positions = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            positions.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i][j - 1] > t[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    positions
}

fn count_tokens(sentences: &[Vec<String>]) -> HashMap<&str, u64> {
    let mut counts = HashMap::new();
    for token in sentences.iter().flatten() {
        *counts.entry(token.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Summary-level LCS (ROUGE paper, section 3.2) with rouge-score's guard against counting a
/// token more often than it occurs on either side.
fn summary_lcs_score(target: &str, prediction: &str) -> Prf {
    let sentences = |text: &str| -> Vec<Vec<String>> {
        text.split('\n')
            .filter(|s| !s.is_empty())
            .map(tokenize)
            .collect()
    };
    let (reference, candidate) = (sentences(target), sentences(prediction));
    let m: usize = reference.iter().map(Vec::len).sum();
    let n: usize = candidate.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return Prf::default();
    }
    let mut ref_left = count_tokens(&reference);
    let mut cand_left = count_tokens(&candidate);
    let mut hits = 0u64;
    for sentence in &reference {
        let mut union: Vec<usize> = candidate
            .iter()
            .flat_map(|c| lcs_positions(sentence, c))
            .collect();
        union.sort_unstable();
        union.dedup();
        for token in union.iter().map(|&i| sentence[i].as_str()) {
            let (Some(c), Some(r)) = (cand_left.get_mut(token), ref_left.get_mut(token)) else {
                continue;
            };
            if *c > 0 && *r > 0 {
                hits += 1;
                *c -= 1;
                *r -= 1;
            }
        }
    }
    Prf::new(hits as f64 / n as f64, hits as f64 / m as f64)
}

/// `RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True).score(target,
/// prediction)`: the reference first, as rouge-score takes them.
pub fn score(target: &str, prediction: &str) -> RougeScores {
    let t = tokenize(target);
    let p = tokenize(prediction);
    RougeScores {
        rouge1: ngram_score(&t, &p, 1),
        rouge2: ngram_score(&t, &p, 2),
        rouge_l: lcs_score(&t, &p),
        rouge_lsum: summary_lcs_score(target, prediction),
    }
}

/// The mean of each precision, recall and F1 over segments (all zero for none).
pub fn mean(scores: &[RougeScores]) -> RougeScores {
    if scores.is_empty() {
        return RougeScores::default();
    }
    let k = scores.len() as f64;
    let avg = |pick: fn(&RougeScores) -> Prf| {
        let sum = scores.iter().map(pick).fold([0.0; 3], |acc, s| {
            [acc[0] + s.precision, acc[1] + s.recall, acc[2] + s.fmeasure]
        });
        Prf {
            precision: sum[0] / k,
            recall: sum[1] / k,
            fmeasure: sum[2] / k,
        }
    };
    RougeScores {
        rouge1: avg(|s| s.rouge1),
        rouge2: avg(|s| s.rouge2),
        rouge_l: avg(|s| s.rouge_l),
        rouge_lsum: avg(|s| s.rouge_lsum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_drops_punctuation_and_non_ascii_letters() {
        assert_eq!(tokenize("Ça va, 3-D!"), ["a", "va", "3", "d"]);
    }

    #[test]
    fn identical_texts_score_one_and_empty_zero() {
        let s = score("the cat sat\non the mat", "the cat sat\non the mat");
        for prf in [s.rouge1, s.rouge2, s.rouge_l, s.rouge_lsum] {
            assert!((prf.fmeasure - 1.0).abs() < 1e-12, "{s:?}");
        }
        assert_eq!(score("the cat", ""), RougeScores::default());
    }
}
