//! TER (translation edit rate) as sacrebleu 2.x computes it with its defaults: lowercased,
//! whitespace-tokenized, no normalization and no punctuation removal, with sacrebleu's
//! Tercom-like shift search (shifts of at most 10 words, at most 50 positions apart, a beam of
//! 25 around the diagonal for the edit distance, at most 1000 shift candidates per segment).
//!
//! The shift search follows sacrebleu's heuristics step by step, ties included, because TER is
//! only comparable between tools when the same shifts are found. Not for: the `normalized`,
//! `no_punct` or `asian_support` options, case-sensitive TER, or several references.

use serde::Serialize;

use super::{py_rstrip, py_split, SACREBLEU_VERSION};

const MAX_SHIFT_SIZE: usize = 10;
const MAX_SHIFT_DIST: usize = 50;
const BEAM_WIDTH: i64 = 25;
const MAX_SHIFT_CANDIDATES: usize = 1000;
/// The cost of a cell outside the beam; far above any real edit count.
const INFINITY: i64 = 10_000_000_000_000_000;

/// A TER score with its signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerScore {
    /// TER in percent (edits per reference word, times 100; can exceed 100).
    pub score: f64,
    /// Edits summed over the segments (shifts count one each).
    pub num_edits: u64,
    /// Reference words summed over the segments.
    pub ref_length: f64,
    /// sacrebleu's signature string, e.g. `nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0`.
    pub signature: String,
}

/// Edits and reference length of one segment, or of a corpus once summed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TerStats {
    pub edits: u64,
    pub ref_length: f64,
}

impl std::ops::AddAssign for TerStats {
    fn add_assign(&mut self, rhs: Self) {
        self.edits += rhs.edits;
        self.ref_length += rhs.ref_length;
    }
}

/// sacrebleu's signature for TER with default settings.
pub fn signature() -> String {
    format!("nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:{SACREBLEU_VERSION}")
}

/// One step of an edit script turning the hypothesis into the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The words match.
    Keep,
    Substitute,
    /// A reference word is inserted.
    Insert,
    /// A hypothesis word is deleted.
    Delete,
    /// A cell the beam never reached.
    Unreached,
}

/// One cell of the edit distance matrix: the cost so far and the last operation.
type Cell = (i64, Op);

/// The band of the matrix that sacrebleu computes: for row `i` (hypothesis words so far), the
/// columns within `width` of the length-scaled diagonal, and every column in the last row.
struct Beam {
    ratio: f64,
    width: i64,
    n_hyp: usize,
    n_ref: usize,
}

impl Beam {
    fn new(n_hyp: usize, n_ref: usize) -> Self {
        let ratio = if n_hyp > 0 {
            n_ref as f64 / n_hyp as f64
        } else {
            1.0
        };
        // Very unequal lengths widen the beam so consecutive rows still overlap.
        let width = if (BEAM_WIDTH as f64) < ratio / 2.0 {
            (ratio / 2.0 + BEAM_WIDTH as f64).ceil() as i64
        } else {
            BEAM_WIDTH
        };
        Beam {
            ratio,
            width,
            n_hyp,
            n_ref,
        }
    }

    fn columns(&self, i: usize) -> std::ops::Range<usize> {
        let diagonal = (i as f64 * self.ratio).floor() as i64;
        let min_j = (diagonal - self.width).max(0) as usize;
        let max_j = if i == self.n_hyp {
            self.n_ref + 1
        } else {
            (diagonal + self.width).min(self.n_ref as i64 + 1).max(0) as usize
        };
        min_j..max_j
    }
}

/// The first row: reference words inserted one by one.
fn first_row(n_ref: usize) -> Vec<Cell> {
    (0..=n_ref).map(|j| (j as i64, Op::Insert)).collect()
}

/// Computes row `cur` (after hypothesis word `word`) from row `prev` over `columns`; cells
/// outside them stay unreached.
fn fill_row(
    prev: &[Cell],
    cur: &mut [Cell],
    word: &str,
    reference: &[&str],
    columns: std::ops::Range<usize>,
) {
    cur.fill((INFINITY, Op::Unreached));
    for j in columns {
        if j == 0 {
            cur[0] = (prev[0].0 + 1, Op::Delete);
            continue;
        }
        let (sub_cost, sub_op) = if word == reference[j - 1] {
            (0, Op::Keep)
        } else {
            (1, Op::Substitute)
        };
        // Preference on ties: keep/substitute, then delete, then insert (sacrebleu's order).
        let candidates = [
            (prev[j - 1].0 + sub_cost, sub_op),
            (prev[j].0 + 1, Op::Delete),
            (cur[j - 1].0 + 1, Op::Insert),
        ];
        for (cost, op) in candidates {
            if cur[j].0 > cost {
                cur[j] = (cost, op);
            }
        }
    }
}

/// Word-level Levenshtein distance from `hyp` to `reference`, computed only in the [`Beam`],
/// with the edit script that achieves it and every row of the matrix.
fn beam_edit_distance(hyp: &[&str], reference: &[&str]) -> (i64, Vec<Op>, Vec<Vec<Cell>>) {
    let (n_hyp, n_ref) = (hyp.len(), reference.len());
    let beam = Beam::new(n_hyp, n_ref);
    let mut dist = vec![first_row(n_ref)];
    for (i, word) in hyp.iter().enumerate() {
        let mut row = vec![(INFINITY, Op::Unreached); n_ref + 1];
        fill_row(&dist[i], &mut row, word, reference, beam.columns(i + 1));
        dist.push(row);
    }
    let mut trace = Vec::with_capacity(n_hyp + n_ref);
    let (mut i, mut j) = (n_hyp, n_ref);
    while i > 0 || j > 0 {
        let mut op = dist[i][j].1;
        if op == Op::Unreached {
            // sacrebleu raises here; the first row and the last row are always complete and the
            // beam keeps rows overlapping, so this is not expected. Walk on towards the origin
            // rather than fail: only the shift heuristics would see the difference.
            op = if i > 0 { Op::Delete } else { Op::Insert };
        }
        trace.push(op);
        match op {
            Op::Keep | Op::Substitute => {
                i -= 1;
                j -= 1;
            }
            Op::Insert => j -= 1,
            _ => i -= 1,
        }
    }
    trace.reverse();
    (dist[n_hyp][n_ref].0, trace, dist)
}

/// The distance of `hyp` given row `start` of the matrix, which only depends on `hyp[..start]`
/// and the lengths (this replaces sacrebleu's prefix cache, with the same results).
fn distance_from(hyp: &[&str], reference: &[&str], row: &[Cell], start: usize) -> i64 {
    let beam = Beam::new(hyp.len(), reference.len());
    let mut prev = row.to_vec();
    let mut cur = prev.clone();
    for (i, word) in hyp.iter().enumerate().skip(start) {
        fill_row(&prev, &mut cur, word, reference, beam.columns(i + 1));
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[reference.len()].0
}

/// The alignment implied by an edit script: for each reference position, the hypothesis
/// position it is aligned to (-1 before the first word), and which positions are in error.
struct Alignment {
    ref_to_hyp: Vec<i64>,
    ref_err: Vec<bool>,
    hyp_err: Vec<bool>,
}

/// Reads the hyp-to-ref edit script as an alignment; sacrebleu flips insertions and deletions to
/// rewrite the reference into the hypothesis, which is what this walks.
fn alignment(trace: &[Op], n_ref: usize) -> Alignment {
    let (mut pos_hyp, mut pos_ref) = (-1i64, -1i64);
    let mut al = Alignment {
        ref_to_hyp: vec![-1; n_ref],
        ref_err: Vec::with_capacity(n_ref),
        hyp_err: Vec::new(),
    };
    for &op in trace {
        match op {
            Op::Keep | Op::Substitute => {
                pos_hyp += 1;
                pos_ref += 1;
                al.ref_to_hyp[pos_ref as usize] = pos_hyp;
                al.hyp_err.push(op == Op::Substitute);
                al.ref_err.push(op == Op::Substitute);
            }
            // A deleted hypothesis word (an insertion when rewriting the reference).
            Op::Delete => {
                pos_hyp += 1;
                al.hyp_err.push(true);
            }
            // An inserted reference word (a deletion when rewriting the reference).
            Op::Insert | Op::Unreached => {
                pos_ref += 1;
                al.ref_to_hyp[pos_ref as usize] = pos_hyp;
                al.ref_err.push(true);
            }
        }
    }
    al
}

/// `words[a..b]` with Python's clamping of out-of-range bounds.
fn slice<'a, 'w>(words: &'a [&'w str], a: usize, b: usize) -> &'a [&'w str] {
    let n = words.len();
    let (a, b) = (a.min(n), b.min(n));
    if a >= b {
        &[]
    } else {
        &words[a..b]
    }
}

/// Moves `words[start..start + len]` so that it begins before position `target` of the original.
fn perform_shift<'w>(words: &[&'w str], start: usize, len: usize, target: usize) -> Vec<&'w str> {
    let n = words.len();
    let parts: [&[&str]; 4] = if target < start {
        [
            slice(words, 0, target),
            slice(words, start, start + len),
            slice(words, target, start),
            slice(words, start + len, n),
        ]
    } else if target > start + len {
        [
            slice(words, 0, start),
            slice(words, start + len, target),
            slice(words, start, start + len),
            slice(words, target, n),
        ]
    } else {
        [
            slice(words, 0, start),
            slice(words, start + len, len + target),
            slice(words, start, start + len),
            slice(words, len + target, n),
        ]
    };
    parts.concat()
}

/// Word sequences of the hypothesis that also occur in the reference at another position, as
/// (hyp start, ref start, length), in sacrebleu's order.
fn shifted_pairs(hyp: &[&str], reference: &[&str]) -> Vec<(usize, usize, usize)> {
    let mut pairs = Vec::new();
    for start_h in 0..hyp.len() {
        for start_r in 0..reference.len() {
            if start_r.abs_diff(start_h) > MAX_SHIFT_DIST {
                continue;
            }
            let mut len = 0;
            while len < MAX_SHIFT_SIZE && hyp[start_h + len] == reference[start_r + len] {
                len += 1;
                pairs.push((start_h, start_r, len));
                if start_h + len == hyp.len() || start_r + len == reference.len() {
                    break;
                }
            }
        }
    }
    pairs
}

/// A candidate shift, ranked as sacrebleu ranks them: highest gain, then longest, then earliest
/// source, then earliest target, then the shifted words themselves.
type Candidate<'w> = (i64, usize, i64, i64, Vec<&'w str>);

/// The best shift of `hyp` towards `reference`: its gain in edit distance (0 when there is none)
/// and the shifted words. Counts the candidates it evaluates into `checked`.
fn best_shift<'w>(hyp: &[&'w str], reference: &[&str], checked: &mut usize) -> (i64, Vec<&'w str>) {
    let (pre_score, trace, rows) = beam_edit_distance(hyp, reference);
    let al = alignment(&trace, reference.len());
    let mut best: Option<Candidate<'w>> = None;
    for (start_h, start_r, len) in shifted_pairs(hyp, reference) {
        let hyp_wrong = al.hyp_err[start_h..start_h + len].iter().any(|&e| e);
        let ref_wrong = al.ref_err[start_r..start_r + len].iter().any(|&e| e);
        let aligned = al.ref_to_hyp[start_r];
        let inside = (start_h as i64) <= aligned && aligned < (start_h + len) as i64;
        if !hyp_wrong || !ref_wrong || inside {
            continue;
        }
        let mut prev_target = -1i64;
        for offset in -1..len as i64 {
            let r = start_r as i64 + offset;
            // Every reference position is aligned, so only -1 needs a special case.
            let target = if r < 0 {
                0
            } else {
                al.ref_to_hyp[r as usize] + 1
            };
            if target == prev_target {
                continue;
            }
            prev_target = target;
            // `target` is at least 0 here: alignment positions start at -1.
            let shifted = perform_shift(hyp, start_h, len, target as usize);
            // Words before both the shifted phrase and its target are unchanged.
            let unchanged = start_h.min(target as usize);
            let distance = distance_from(&shifted, reference, &rows[unchanged], unchanged);
            let gain = pre_score - distance;
            let candidate = (gain, len, -(start_h as i64), -target, shifted);
            *checked += 1;
            if best.as_ref().is_none_or(|b| candidate > *b) {
                best = Some(candidate);
            }
        }
        if *checked >= MAX_SHIFT_CANDIDATES {
            break;
        }
    }
    match best {
        Some((gain, _, _, _, shifted)) => (gain, shifted),
        None => (0, hyp.to_vec()),
    }
}

/// Edits (shifts plus word edits) turning `hyp` into `reference`, both tokenized.
fn translation_edits(hyp: &[&str], reference: &[&str]) -> u64 {
    if reference.is_empty() {
        return hyp.len() as u64;
    }
    let mut words = hyp.to_vec();
    let mut shifts = 0u64;
    let mut checked = 0;
    loop {
        let (gain, shifted) = best_shift(&words, reference, &mut checked);
        if checked >= MAX_SHIFT_CANDIDATES || gain <= 0 {
            break;
        }
        shifts += 1;
        words = shifted;
    }
    let (distance, _, _) = beam_edit_distance(&words, reference);
    shifts + distance as u64
}

/// The statistics of one hypothesis against its reference (both untokenized).
pub fn segment_stats(hyp: &str, reference: &str) -> TerStats {
    let hyp = py_rstrip(hyp).to_lowercase();
    let reference = py_rstrip(reference).to_lowercase();
    let hyp: Vec<&str> = py_split(&hyp).collect();
    let reference: Vec<&str> = py_split(&reference).collect();
    TerStats {
        edits: translation_edits(&hyp, &reference),
        ref_length: reference.len() as f64,
    }
}

/// TER from summed statistics.
pub fn compute(stats: &TerStats) -> TerScore {
    let rate = if stats.ref_length > 0.0 {
        stats.edits as f64 / stats.ref_length
    } else if stats.edits > 0 {
        1.0
    } else {
        0.0
    };
    TerScore {
        score: 100.0 * rate,
        num_edits: stats.edits,
        ref_length: stats.ref_length,
        signature: signature(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(h: &str, r: &str) -> u64 {
        segment_stats(h, r).edits
    }

    #[test]
    fn counts_word_edits_and_lowercases() {
        assert_eq!(edits("The cat sat", "the cat sat"), 0);
        assert_eq!(edits("the cat", "the cat sat"), 1);
        assert_eq!(edits("the dog sat", "the cat sat"), 1);
        assert_eq!(edits("a b", ""), 2);
    }

    #[test]
    fn a_moved_phrase_costs_one_shift() {
        // Moving "on monday" to the end is one shift instead of four word edits.
        assert_eq!(
            edits(
                "on monday the minister resigned",
                "the minister resigned on monday"
            ),
            1
        );
    }

    #[test]
    fn shift_keeps_words() {
        let w = ["a", "b", "c", "d", "e"];
        assert_eq!(perform_shift(&w, 3, 2, 0), ["d", "e", "a", "b", "c"]);
        assert_eq!(perform_shift(&w, 0, 2, 4), ["c", "d", "a", "b", "e"]);
        assert_eq!(perform_shift(&w, 1, 2, 2).len(), 5);
    }
}
