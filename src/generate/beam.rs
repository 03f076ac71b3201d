//! Batched beam search with transformers' semantics (its `_beam_search`, read in 5.23, the version
//! the fixtures record): per input, `num_beams` running beams; each step keeps the top
//! `max(2, 1 + #eos) * num_beams` continuations of the log-softmaxed, processed scores;
//! candidates among the first `num_beams` that end in EOS (or reach `max_length`) become finished hypotheses scored
//! `sum_logprobs / generated_len ** length_penalty`; `early_stopping` decides when an input is
//! done. An input that is done leaves the batch (its rows are dropped from the decoder state),
//! which cannot change its result: transformers freezes a done input's hypotheses too.
//!
//! Not for: sampling, group/diverse beam search, constraints.

use std::cmp::Ordering;

use super::GenerationConfig;
use super::{logits, step, DecoderState, EarlyStopping, EncoderDecoder, Sequence};
use crate::Result;

/// transformers' stand-in for "impossible" scores.
const VERY_NEGATIVE: f32 = -1.0e9;

struct Beam {
    /// Decoder ids, start token included.
    seq: Vec<u32>,
    /// Sum of processed log-probabilities (f32, as transformers accumulates it).
    score: f32,
}

struct Item {
    /// Position of this input in the caller's batch.
    input: usize,
    beams: Vec<Beam>,
    /// Finished hypotheses, best first, at most `num_beams`.
    finished: Vec<(f32, Vec<u32>)>,
    /// transformers' `is_early_stop_heuristic_unsatisfied`.
    can_improve: bool,
}

/// A continuation: `(score, flat index = beam * vocab + token)`.
type Candidate = (f32, usize);

/// Orders candidates best first, lower flat index first on equal scores.
fn better(a: &Candidate, b: &Candidate) -> Ordering {
    b.0.partial_cmp(&a.0)
        .unwrap_or(Ordering::Equal)
        .then(a.1.cmp(&b.1))
}

/// Pushes `c` into `top` (sorted best first) if it belongs to the best `k`.
fn push_top(top: &mut Vec<Candidate>, c: Candidate, k: usize) {
    if top.len() == k && better(&c, &top[k - 1]) != Ordering::Less {
        return;
    }
    let at = top
        .binary_search_by(|probe| better(probe, &c))
        .unwrap_or_else(|i| i);
    top.insert(at, c);
    top.truncate(k);
}

thread_local! {
    /// One row's processed scores, kept per thread so that each step does not allocate (and
    /// page-fault in) a fresh vocabulary-sized buffer per row.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The best `k` continuations of one beam row, best first: `(score + beam_score, base + token)`.
/// Once `k` are held, a candidate is only compared with the worst one kept; candidates come in
/// ascending index order, so one that ties the worst loses, exactly as [`push_top`] decides.
fn row_top(scores: &[f32], beam_score: f32, base: usize, k: usize) -> Vec<Candidate> {
    let mut top: Vec<Candidate> = Vec::with_capacity(k + 1);
    let mut tokens = scores.iter().enumerate();
    for (token, &s) in tokens.by_ref() {
        push_top(&mut top, (s + beam_score, base + token), k);
        if top.len() == k {
            break;
        }
    }
    let Some(mut worst) = top.last().map(|c| c.0) else {
        return top;
    };
    for (token, &s) in tokens {
        let score = s + beam_score;
        // `>` is false for NaN on either side, which push_top rejects too.
        if score > worst {
            push_top(&mut top, (score, base + token), k);
            worst = top[k - 1].0;
        }
    }
    top
}

/// What one search needs to know at every step, read once from the [`GenerationConfig`].
struct Search<'a> {
    config: &'a GenerationConfig,
    processors: logits::Processors,
    num_beams: usize,
    /// Continuations kept per input and step.
    keep: usize,
    /// The length penalty's exponent.
    lp: f64,
}

/// What became of one input after a step.
enum Advance {
    /// It is done: its best hypothesis, start token dropped (empty when none finished).
    Done(Sequence),
    /// It goes on; these are the rows (by position in this step's batch) its beams continue.
    Running(Vec<u32>),
}

impl<'a> Search<'a> {
    fn new(config: &'a GenerationConfig) -> Self {
        Self {
            config,
            processors: logits::Processors::new(config),
            num_beams: config.num_beams,
            keep: config.num_beams * 2.max(1 + config.eos_token_id.len()),
            lp: f64::from(config.length_penalty),
        }
    }

    fn length_norm(&self, len: usize) -> f32 {
        (len as f64).powf(self.lp) as f32
    }

    /// One item per input, with `num_beams` beams holding the start token; all but the first
    /// start at an impossible score, so the first step does not pick the same token n times.
    fn start(&self, batch: usize, start: u32) -> Vec<Item> {
        (0..batch)
            .map(|input| Item {
                input,
                beams: (0..self.num_beams)
                    .map(|b| Beam {
                        seq: vec![start],
                        score: if b == 0 { 0.0 } else { VERY_NEGATIVE },
                    })
                    .collect(),
                finished: Vec::new(),
                can_improve: true,
            })
            .collect()
    }

    /// Runs the decoder one step for every beam of `items`, and returns each row's best `keep`
    /// continuations (rows in parallel: an input's best `keep` are among the union of its rows'
    /// bests, since the order does not depend on the row), with the vocabulary size.
    fn score_rows(
        &self,
        model: &dyn EncoderDecoder,
        items: &[Item],
        start: u32,
        state: &mut DecoderState,
    ) -> Result<(Vec<Vec<Candidate>>, usize)> {
        let tokens: Vec<u32> = items
            .iter()
            .flat_map(|item| item.beams.iter().map(|b| *b.seq.last().unwrap_or(&start)))
            .collect();
        let row_beams: Vec<(usize, &[u32], f32)> = items
            .iter()
            .flat_map(|item| {
                (item.beams.iter().enumerate()).map(|(b, beam)| (b, beam.seq.as_slice(), beam.score))
            })
            .collect();
        step(model, &tokens, state, |flat, vocab| {
            let tops = super::par_map(row_beams.len(), |row| {
                let (beam, seq, beam_score) = row_beams[row];
                SCORES.with_borrow_mut(|scores| {
                    let logits = &flat[row * vocab..(row + 1) * vocab];
                    crate::kernels::softmax::log_softmax_into(logits, scores);
                    self.processors.apply(seq, scores);
                    row_top(scores, beam_score, beam * vocab, self.keep)
                })
            });
            Ok((tops, vocab))
        })
    }

    /// Moves `item` one step on from its rows' continuations (`row_tops`, one per beam), and
    /// says whether it is done. `row_base` is the position of its first row in this step.
    fn advance(
        &self,
        item: &mut Item,
        row_tops: &mut impl Iterator<Item = Vec<Candidate>>,
        row_base: u32,
        vocab: usize,
        cur_len: usize,
    ) -> Result<Advance> {
        let config = self.config;
        let num_beams = self.num_beams;
        let hits_max = cur_len + 1 >= config.max_length;
        // Top `keep` continuations over all beams of this input.
        let mut top: Vec<Candidate> = Vec::with_capacity(self.keep + 1);
        for _ in 0..item.beams.len() {
            let Some(row_top) = row_tops.next() else {
                return Err(crate::Error::msg("decoder returned fewer rows than beams"));
            };
            for c in row_top {
                push_top(&mut top, c, self.keep);
            }
        }
        let ended: Vec<bool> = top
            .iter()
            .map(|&(_, flat)| hits_max || config.is_eos((flat % vocab) as u32))
            .collect();
        self.record_finished(item, &top, &ended, vocab, cur_len);

        // Running beams for the next step: the best num_beams candidates that did not end.
        let mut running: Vec<Candidate> = top
            .iter()
            .zip(&ended)
            .enumerate()
            .map(|(rank, (&(score, _), &end))| {
                (if end { score + VERY_NEGATIVE } else { score }, rank)
            })
            .collect();
        running.sort_by(better);
        running.truncate(num_beams);
        let beams: Vec<Beam> = running
            .iter()
            .map(|&(score, rank)| {
                let flat = top[rank].1;
                let mut seq = item.beams[flat / vocab].seq.clone();
                seq.push((flat % vocab) as u32);
                Beam { seq, score }
            })
            .collect();

        if item.can_improve {
            item.can_improve = self.can_improve(item, beams[0].score, cur_len);
        }
        let full = item.finished.len() == num_beams;
        let done = hits_max
            || !item.can_improve
            || (full && config.early_stopping == EarlyStopping::Always);
        if done {
            let best = item.finished.first().map(|(_, s)| s.clone());
            return Ok(Advance::Done(
                best.map(|s| s[1..].to_vec()).unwrap_or_default(),
            ));
        }
        let rows = running
            .iter()
            .map(|&(_, rank)| row_base + (top[rank].1 / vocab) as u32)
            .collect();
        item.beams = beams;
        Ok(Advance::Running(rows))
    }

    /// Finished hypotheses: only the first num_beams candidates may finish, and only while this
    /// input can still improve.
    fn record_finished(
        &self,
        item: &mut Item,
        top: &[Candidate],
        ended: &[bool],
        vocab: usize,
        cur_len: usize,
    ) {
        let num_beams = self.num_beams;
        let full = item.finished.len() == num_beams;
        let frozen =
            !item.can_improve || (full && self.config.early_stopping == EarlyStopping::Always);
        if frozen {
            return;
        }
        for (rank, &(score, flat)) in top.iter().enumerate().take(num_beams) {
            if !ended[rank] {
                continue;
            }
            let mut seq = item.beams[flat / vocab].seq.clone();
            seq.push((flat % vocab) as u32);
            let normed = score / self.length_norm(cur_len);
            // Existing hypotheses win ties (they come first in transformers' merge).
            let at = item.finished.partition_point(|(s, _)| *s >= normed);
            item.finished.insert(at, (normed, seq));
            item.finished.truncate(num_beams);
        }
    }

    /// transformers' early-stop heuristic, evaluated with the new length: whether the best
    /// running beam (`best_score`) could still beat the worst kept hypothesis.
    fn can_improve(&self, item: &Item, best_score: f32, cur_len: usize) -> bool {
        let config = self.config;
        let hypothetical = if config.early_stopping == EarlyStopping::Never && self.lp > 0.0 {
            config.max_length - 1
        } else {
            cur_len
        };
        let best = best_score / self.length_norm(hypothetical);
        let worst = if item.finished.len() == self.num_beams {
            item.finished[self.num_beams - 1].0
        } else {
            VERY_NEGATIVE
        };
        best > worst
    }
}

/// Beam search over a batch of `batch` inputs whose encoder states are in `state`; one
/// sequence per input, start token dropped. Inputs that are done leave the batch.
pub(crate) fn beam_search(
    model: &dyn EncoderDecoder,
    mut state: DecoderState,
    batch: usize,
    config: &GenerationConfig,
) -> Result<Vec<Sequence>> {
    let search = Search::new(config);
    let start = config.decoder_start()?;
    // Expand each input to num_beams rows.
    state.expand(search.num_beams)?;
    let mut items = search.start(batch, start);
    let mut results: Vec<Sequence> = vec![Vec::new(); batch];
    let mut cur_len = 1;

    while !items.is_empty() {
        let (row_tops, vocab) = search.score_rows(model, &items, start, &mut state)?;
        let mut row_tops = row_tops.into_iter();
        let mut next_rows: Vec<u32> = Vec::new();
        let mut still: Vec<Item> = Vec::with_capacity(items.len());
        for (item_index, mut item) in items.into_iter().enumerate() {
            let row_base = (item_index * search.num_beams) as u32;
            match search.advance(&mut item, &mut row_tops, row_base, vocab, cur_len)? {
                Advance::Done(sequence) => results[item.input] = sequence,
                Advance::Running(rows) => {
                    next_rows.extend(rows);
                    still.push(item);
                }
            }
        }
        items = still;
        cur_len += 1;
        if !items.is_empty() {
            state.select(&next_rows)?;
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_top_keeps_best_k_in_order() {
        let mut top = Vec::new();
        for (i, s) in [1.0f32, 5.0, 3.0, 5.0, -1.0, 4.0].iter().enumerate() {
            push_top(&mut top, (*s, i), 3);
        }
        assert_eq!(top, vec![(5.0, 1), (5.0, 3), (4.0, 5)]);
    }

    #[test]
    fn row_top_ranks_as_push_top_does() {
        // Ties with the worst kept, ties inside the kept set, -inf and NaN scores.
        let rows: [&[f32]; 4] = [
            &[1.0, 5.0, 3.0, 5.0, -1.0, 4.0, 4.0, 5.0, 3.0],
            &[f32::NEG_INFINITY, 2.0, 2.0, 2.0, 2.0, f32::NEG_INFINITY, 7.0],
            &[0.5, f32::NAN, 0.25, 9.0, f32::NAN, 0.5, 8.0],
            &[3.0, 1.0],
        ];
        for row in rows {
            for k in [1, 2, 3, 4, 8] {
                let mut want = Vec::new();
                for (token, &s) in row.iter().enumerate() {
                    push_top(&mut want, (s + 0.5, 100 + token), k);
                }
                let got = row_top(row, 0.5, 100, k);
                let bits = |v: &[Candidate]| v.iter().map(|c| (c.0.to_bits(), c.1)).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "row {row:?}, k {k}");
            }
        }
    }
}
