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

pub(crate) fn beam_search(
    model: &dyn EncoderDecoder,
    mut state: DecoderState,
    batch: usize,
    config: &GenerationConfig,
) -> Result<Vec<Sequence>> {
    let num_beams = config.num_beams;
    let start = config.decoder_start()?;
    let processors = logits::Processors::new(config);
    let keep = num_beams * 2.max(1 + config.eos_token_id.len());
    let max_length = config.max_length;
    let lp = f64::from(config.length_penalty);
    let length_norm = |len: usize| (len as f64).powf(lp) as f32;

    // Expand each input to num_beams rows.
    state.expand(num_beams)?;

    let mut items: Vec<Item> = (0..batch)
        .map(|input| Item {
            input,
            beams: (0..num_beams)
                .map(|b| Beam {
                    seq: vec![start],
                    score: if b == 0 { 0.0 } else { VERY_NEGATIVE },
                })
                .collect(),
            finished: Vec::new(),
            can_improve: true,
        })
        .collect();
    let mut results: Vec<Sequence> = vec![Vec::new(); batch];
    let mut cur_len = 1;

    while !items.is_empty() {
        let tokens: Vec<u32> = items
            .iter()
            .flat_map(|item| item.beams.iter().map(|b| *b.seq.last().unwrap_or(&start)))
            .collect();
        // Each row's best `keep` continuations, rows in parallel: the best `keep` of an input
        // are among the union of its rows' bests, since the order does not depend on the row.
        let row_beams: Vec<(usize, &[u32], f32)> = items
            .iter()
            .flat_map(|item| {
                (item.beams.iter().enumerate()).map(|(b, beam)| (b, beam.seq.as_slice(), beam.score))
            })
            .collect();
        let (row_tops, vocab) = step(model, &tokens, &mut state, |flat, vocab| {
            let tops = super::par_map(row_beams.len(), |row| {
                let (beam, seq, beam_score) = row_beams[row];
                SCORES.with_borrow_mut(|scores| {
                    logits::log_softmax_into(&flat[row * vocab..(row + 1) * vocab], scores);
                    processors.apply(seq, scores);
                    row_top(scores, beam_score, beam * vocab, keep)
                })
            });
            Ok((tops, vocab))
        })?;
        let mut row_tops = row_tops.into_iter();
        let hits_max = cur_len + 1 >= max_length;

        let mut next_rows: Vec<u32> = Vec::new();
        let mut still: Vec<Item> = Vec::with_capacity(items.len());
        for (item_index, mut item) in items.into_iter().enumerate() {
            let row_base = (item_index * num_beams) as u32;
            // Top `keep` continuations over all beams of this input.
            let mut top: Vec<Candidate> = Vec::with_capacity(keep + 1);
            for _ in 0..item.beams.len() {
                let Some(row_top) = row_tops.next() else {
                    return Err(crate::Error::msg("decoder returned fewer rows than beams"));
                };
                for c in row_top {
                    push_top(&mut top, c, keep);
                }
            }
            let ended: Vec<bool> = top
                .iter()
                .map(|&(_, flat)| hits_max || config.is_eos((flat % vocab) as u32))
                .collect();

            // Finished hypotheses: only the first num_beams candidates may finish, and only
            // while this input can still improve.
            let full = item.finished.len() == num_beams;
            let frozen =
                !item.can_improve || (full && config.early_stopping == EarlyStopping::Always);
            if !frozen {
                for (rank, &(score, flat)) in top.iter().enumerate().take(num_beams) {
                    if !ended[rank] {
                        continue;
                    }
                    let mut seq = item.beams[flat / vocab].seq.clone();
                    seq.push((flat % vocab) as u32);
                    let normed = score / length_norm(cur_len);
                    // Existing hypotheses win ties (they come first in transformers' merge).
                    let at = item.finished.partition_point(|(s, _)| *s >= normed);
                    item.finished.insert(at, (normed, seq));
                    item.finished.truncate(num_beams);
                }
            }

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

            // transformers' early-stop heuristic, evaluated with the new length.
            if item.can_improve {
                let hypothetical = if config.early_stopping == EarlyStopping::Never && lp > 0.0 {
                    max_length - 1
                } else {
                    cur_len
                };
                let best = beams[0].score / length_norm(hypothetical);
                let worst = if item.finished.len() == num_beams {
                    item.finished[num_beams - 1].0
                } else {
                    VERY_NEGATIVE
                };
                item.can_improve = best > worst;
            }
            let full = item.finished.len() == num_beams;
            let done = hits_max
                || !item.can_improve
                || (full && config.early_stopping == EarlyStopping::Always);
            if done {
                let best = item.finished.first().map(|(_, s)| s.clone());
                results[item.input] = best.map(|s| s[1..].to_vec()).unwrap_or_default();
                continue;
            }
            next_rows.extend(
                running
                    .iter()
                    .map(|&(_, rank)| row_base + (top[rank].1 / vocab) as u32),
            );
            item.beams = beams;
            still.push(item);
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
