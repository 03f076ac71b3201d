//! Token-by-token decoding for decoder-only models: greedy by default, sampling with a seed on
//! request, with stop tokens, a token limit and a repetition guard.
//!
//! What it is for: the loop of the `gguf-chat` backend, written against a `step` closure so it
//! knows nothing of the model. Not for: beam search or batched seq2seq decoding.
//!
//! The repetition guard exists because small models, greedy, sometimes fall into a loop ("the
//! the the", or one sentence over and over) and would otherwise burn the whole token budget.
//! A loop is a block of `p` tokens repeated back to back at the end of the output, at least
//! `max(3, 32 / p)` times; the output is cut back to its first copy.

use candle_core::{Result, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

/// How to pick each token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// 0 means greedy (argmax): deterministic.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: u64,
    /// Penalty on tokens already generated (1.0 = none), over the last 64 tokens.
    pub repeat_penalty: f32,
    pub repeat_guard: bool,
    pub max_new_tokens: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: None,
            top_k: None,
            seed: 0,
            repeat_penalty: 1.0,
            repeat_guard: true,
            max_new_tokens: 512,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The model produced a stop token.
    Stop,
    /// `max_new_tokens` was reached.
    MaxTokens,
    /// The repetition guard cut a loop.
    Repetition,
}

/// Generated ids (stop token excluded) and why generation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub ids: Vec<u32>,
    pub stop: StopReason,
}

fn processor(cfg: &SamplingConfig) -> LogitsProcessor {
    let sampling = if cfg.temperature <= 0.0 {
        Sampling::ArgMax
    } else {
        let temperature = cfg.temperature;
        match (cfg.top_k, cfg.top_p) {
            (None, None) => Sampling::All { temperature },
            (Some(k), None) => Sampling::TopK { k, temperature },
            (None, Some(p)) => Sampling::TopP { p, temperature },
            (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
        }
    };
    LogitsProcessor::from_sampling(cfg.seed, sampling)
}

/// Runs the loop. `logits` are those after the prompt; `step(token)` feeds one token and returns
/// the next logits. `budget` further caps the tokens (what is left of the model's context).
pub fn generate(
    mut logits: Tensor,
    mut step: impl FnMut(u32) -> Result<Tensor>,
    stop_ids: &[u32],
    cfg: &SamplingConfig,
    budget: usize,
) -> Result<Generated> {
    let mut picker = processor(cfg);
    let max = cfg.max_new_tokens.min(budget);
    let mut ids: Vec<u32> = Vec::new();
    while ids.len() < max {
        let scored = if cfg.repeat_penalty != 1.0 && !ids.is_empty() {
            let from = ids.len().saturating_sub(64);
            candle_transformers::utils::apply_repeat_penalty(
                &logits,
                cfg.repeat_penalty,
                &ids[from..],
            )?
        } else {
            logits
        };
        let next = picker.sample(&scored)?;
        if stop_ids.contains(&next) {
            return Ok(Generated {
                ids,
                stop: StopReason::Stop,
            });
        }
        ids.push(next);
        if cfg.repeat_guard {
            if let Some(keep) = loop_cut(&ids) {
                ids.truncate(keep);
                return Ok(Generated {
                    ids,
                    stop: StopReason::Repetition,
                });
            }
        }
        if ids.len() >= max {
            break;
        }
        logits = step(next)?;
    }
    Ok(Generated {
        ids,
        stop: StopReason::MaxTokens,
    })
}

/// If `ids` ends in a loop, the length to keep (the output up to the end of the first copy).
pub fn loop_cut(ids: &[u32]) -> Option<usize> {
    let n = ids.len();
    for period in 1..=64usize {
        let reps = 3.max(32usize.div_ceil(period));
        let span = period * reps;
        if span > n {
            // Longer periods need even more tokens only while reps stays above 3.
            if reps == 3 {
                break;
            }
            continue;
        }
        let tail = &ids[n - span..];
        let block = &tail[..period];
        if tail.chunks(period).all(|c| c == block) {
            // Walk back over earlier copies, to keep only the first.
            let mut start = n - span;
            while start >= period && ids[start - period..start] == *block {
                start -= period;
            }
            return Some(start + period);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one_hot(id: u32, vocab: usize) -> Tensor {
        let mut v = vec![0f32; vocab];
        v[id as usize] = 10.0;
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn loops_are_cut_to_one_copy() {
        let mut ids: Vec<u32> = vec![1, 2, 3];
        for _ in 0..10 {
            ids.extend([7, 8, 9, 10, 11, 12]);
        }
        let keep = loop_cut(&ids).unwrap();
        assert_eq!(&ids[..keep], &[1, 2, 3, 7, 8, 9, 10, 11, 12]);
        assert_eq!(loop_cut(&[5; 31]), None, "31 repeats of one token are not yet a loop");
        assert!(loop_cut(&[5; 32]).is_some());
        assert_eq!(loop_cut(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
    }

    #[test]
    fn greedy_stops_on_a_stop_token_and_excludes_it() {
        let script = [4u32, 5, 6, 2, 9];
        let mut i = 0;
        let first = one_hot(script[0], 10);
        let out = generate(
            first,
            |_| {
                i += 1;
                Ok(one_hot(script[i], 10))
            },
            &[2],
            &SamplingConfig::default(),
            100,
        )
        .unwrap();
        assert_eq!(out.ids, vec![4, 5, 6]);
        assert_eq!(out.stop, StopReason::Stop);
    }

    #[test]
    fn the_token_limit_and_the_guard_end_runaway_output() {
        let cfg = SamplingConfig {
            max_new_tokens: 5,
            ..Default::default()
        };
        let mut t = 0u32;
        let out = generate(
            one_hot(0, 10),
            |_| {
                t = (t + 1) % 10;
                Ok(one_hot(t, 10))
            },
            &[],
            &cfg,
            100,
        )
        .unwrap();
        assert_eq!(out.ids.len(), 5);
        assert_eq!(out.stop, StopReason::MaxTokens);

        let out = generate(
            one_hot(3, 10),
            |_| Ok(one_hot(3, 10)),
            &[],
            &SamplingConfig::default(),
            1000,
        )
        .unwrap();
        assert_eq!(out.ids, vec![3]);
        assert_eq!(out.stop, StopReason::Repetition);
    }

    #[test]
    fn sampling_with_a_seed_is_reproducible() {
        let cfg = SamplingConfig {
            temperature: 1.0,
            seed: 42,
            max_new_tokens: 20,
            repeat_guard: false,
            ..Default::default()
        };
        let flat = || Tensor::new(vec![0f32; 50], &Device::Cpu).unwrap();
        let run = || generate(flat(), |_| Ok(flat()), &[], &cfg, 100).unwrap().ids;
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|&x| x != a[0]), "sampling from a flat distribution varies");
    }
}
