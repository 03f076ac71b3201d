//! Pooled generation for an encoder-decoder model: the sentences that several documents hand
//! in at the same time are generated together, longest first, in batches cut by a budget of
//! padded source tokens, and each caller gets its own outputs back, in its own order.
//!
//! What it is for: a Marian translator batches the sentences of one call. A folder of short
//! documents then pays for small batches (two sentences, say), and a step of the decoder reads
//! every weight for a handful of rows. [`Seq2seqPool`] runs one engine thread per model:
//! workers call [`Seq2seqPool::generate`] with their document's sentences (token ids) and
//! wait; the engine gathers what every caller has handed in, sorts it by length (so that a
//! batch pads little), cuts it into batches of at most [`Budget::tokens`] padded source tokens
//! and [`Budget::sentences`] sentences, and runs them one after the other. Sentences handed in
//! while a batch runs join the next ones. This is what CTranslate2's `translate_file` does
//! within one file, done across the documents in flight.
//!
//! Determinism: `crate::generate` computes each input's output without regard to the others
//! in its batch (`tests/determinism.rs` checks it for Marian, `tests/pooling.rs` for the
//! pool), so which sentences share a batch, and when they arrive, changes speed only, never
//! an output.
//!
//! Not for: tokenizing or splitting text (`super::seq2seq`), or chat models (`super::batch`
//! batches their decoding steps instead).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{Engine, Shared};
use crate::generate::{generate, EncoderDecoder, GenerationConfig, Sequence};
use crate::{Error, Result};

/// How long the engine lets the first sentences handed in wait for others before it runs
/// less than a full batch. Documents in flight hand in their sentences as soon as they are read,
/// so a short wait gathers the documents that started together; later ones join the batches
/// after. The timing changes which sentences share a batch, never their outputs.
const GATHER_WAIT: Duration = Duration::from_millis(20);

/// The documents a folder run keeps in flight when every model of the run pools (each worker
/// mostly waits for the engine, so more documents than cores cost little and fill the
/// batches; each document in flight holds only its text).
pub const DOCUMENTS_IN_FLIGHT: usize = 64;

/// How big one pooled batch may be, and how many callers to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Padded source tokens: sentences × the longest one's tokens.
    pub tokens: usize,
    /// Sentences, whatever their length.
    pub sentences: usize,
    /// Calls that may run at once (the documents in flight). While fewer are waiting and the
    /// batch is not full, the engine lets the first sentences wait up to [`GATHER_WAIT`] for
    /// the others; with 1, it never waits.
    pub callers: usize,
}

impl Default for Budget {
    /// 2,048 padded source tokens (CTranslate2's `translate_batch` with `batch_type="tokens"`
    /// counts the same way), at most 64 sentences. On the opus-mt shape with beam 4, a batch
    /// of 64 short sentences decodes 256 rows per step, where the weights' reading no longer
    /// dominates; bigger batches only hold more memory.
    fn default() -> Self {
        Self {
            tokens: 2048,
            sentences: 64,
            callers: 1,
        }
    }
}

/// What the report says about a model's pooling: its budget, and what the engine did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PoolReport {
    /// The catalog name of the model.
    pub model: String,
    /// Padded source tokens per batch at most (`--pool-tokens`).
    pub budget_tokens: usize,
    /// Sentences per batch at most.
    pub budget_sentences: usize,
    #[serde(flatten)]
    pub stats: PoolStats,
    /// Sentences per batch, on average.
    pub mean_sentences: f64,
}

impl PoolReport {
    pub fn new(model: &str, budget: Budget, stats: PoolStats) -> Self {
        Self {
            model: model.to_string(),
            budget_tokens: budget.tokens,
            budget_sentences: budget.sentences,
            stats,
            mean_sentences: stats.sentences as f64 / stats.batches.max(1) as f64,
        }
    }
}

/// What the engine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Calls (documents' sentence lists) handed in.
    pub calls: u64,
    /// Sentences generated.
    pub sentences: u64,
    /// Batches run.
    pub batches: u64,
    /// The most sentences one batch held.
    pub widest: usize,
}

/// One sentence handed in: which call, which of its sentences, and the ids.
struct Item {
    ticket: u64,
    index: usize,
    ids: Vec<u32>,
}

/// A call waiting for its sentences.
struct Waiting {
    out: Vec<Option<Sequence>>,
    left: usize,
    error: Option<String>,
}

#[derive(Default)]
struct State {
    pending: Vec<Item>,
    /// When the oldest sentence of `pending` was handed in.
    oldest: Option<Instant>,
    waiting: HashMap<u64, Waiting>,
    next_ticket: u64,
    stats: PoolStats,
}

impl State {
    /// Calls with sentences not yet generated. (A call whose sentences are all done may not
    /// have woken up yet: it no longer counts as handed in.)
    fn open_calls(&self) -> usize {
        self.waiting.values().filter(|w| w.left > 0).count()
    }
}

/// Generates the sentences of every caller through one model, pooled.
pub struct Seq2seqPool {
    budget: Budget,
    engine: Engine<State>,
}

impl Seq2seqPool {
    /// Starts the engine thread for `model`, generating with `config`.
    pub fn new(
        model: Arc<dyn EncoderDecoder>,
        config: GenerationConfig,
        budget: Budget,
    ) -> Result<Self> {
        config.validate()?;
        let budget = Budget {
            tokens: budget.tokens.max(1),
            sentences: budget.sentences.max(1),
            callers: budget.callers.max(1),
        };
        let engine = Engine::spawn("transbrief-pool", State::default(), move |shared| {
            engine(shared, model.as_ref(), &config, budget)
        })?;
        Ok(Self { budget, engine })
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// What the engine has done so far.
    pub fn stats(&self) -> PoolStats {
        self.engine.shared().lock().stats
    }

    /// What [`generate`] returns for `inputs` (one sequence per input, in order), computed
    /// in the engine's batches together with the other callers' sentences. Blocks until all
    /// of them are done. If a sentence fails (alone: a failing batch is run again one sentence
    /// at a time), the call fails with its error; the other callers are not affected.
    pub fn generate(&self, inputs: Vec<Vec<u32>>) -> Result<Vec<Sequence>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let shared = self.engine.shared();
        let mut st = shared.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.stats.calls += 1;
        st.waiting.insert(
            ticket,
            Waiting {
                out: vec![None; inputs.len()],
                left: inputs.len(),
                error: None,
            },
        );
        if st.pending.is_empty() {
            st.oldest = Some(Instant::now());
        }
        (st.pending).extend(inputs.into_iter().enumerate().map(|(index, ids)| Item {
            ticket,
            index,
            ids,
        }));
        shared.notify();
        let done = loop {
            if st.waiting.get(&ticket).is_some_and(|w| w.left == 0) {
                break st.waiting.remove(&ticket);
            }
            if shared.closing() {
                st.waiting.remove(&ticket);
                break None;
            }
            st = shared.wait(st);
        };
        match done {
            None => Err(Error::msg("the pooling thread stopped")),
            Some(Waiting { error: Some(e), .. }) => Err(Error::msg(e)),
            Some(w) => Ok(w.out.into_iter().map(Option::unwrap_or_default).collect()),
        }
    }
}

/// Whether `pending` already holds a full batch.
fn full(pending: &[Item], budget: Budget) -> bool {
    pending.len() >= budget.sentences || pending.iter().map(|i| i.ids.len()).sum::<usize>() >= budget.tokens
}

/// The engine thread: gathers, sorts, cuts and runs batches until the pool is dropped.
fn engine(shared: &Shared<State>, model: &dyn EncoderDecoder, config: &GenerationConfig, budget: Budget) {
    let mut st = shared.lock();
    loop {
        while st.pending.is_empty() && !shared.closing() {
            st = shared.wait(st);
        }
        if shared.closing() {
            return;
        }
        // Less than a full batch, and documents in flight that have not handed theirs in: let
        // the first sentences wait a little for them.
        let deadline = st.oldest.unwrap_or_else(Instant::now) + GATHER_WAIT;
        while !full(&st.pending, budget)
            && st.open_calls() < budget.callers
            && !shared.closing()
            && Instant::now() < deadline
        {
            st = shared.wait_until(st, deadline);
        }
        let batch = take_batch(&mut st.pending, budget);
        if st.pending.is_empty() {
            st.oldest = None;
        }
        st.stats.batches += 1;
        st.stats.sentences += batch.len() as u64;
        st.stats.widest = st.stats.widest.max(batch.len());
        drop(st);
        let results = run(model, config, &batch);
        st = shared.lock();
        for (item, result) in batch.into_iter().zip(results) {
            if let Some(w) = st.waiting.get_mut(&item.ticket) {
                match result {
                    Ok(seq) => w.out[item.index] = Some(seq),
                    Err(e) => {
                        w.error.get_or_insert(e);
                    }
                }
                w.left -= 1;
            }
        }
        shared.notify();
    }
}

/// Sorts `pending` longest first (ties in the order handed in) and takes the longest sentences
/// that fit `budget` (at least one, whatever its length).
fn take_batch(pending: &mut Vec<Item>, budget: Budget) -> Vec<Item> {
    pending.sort_by_key(|i| (std::cmp::Reverse(i.ids.len()), i.ticket, i.index));
    let longest = pending.first().map_or(1, |i| i.ids.len().max(1));
    let n = (budget.tokens / longest).clamp(1, budget.sentences).min(pending.len());
    pending.drain(..n).collect()
}

/// Generates `batch` in one call; each sentence's output, or its error. If the batch fails
/// (an error or a panic), each sentence is generated alone, so that one sentence's problem is
/// not the others'.
fn run(
    model: &dyn EncoderDecoder,
    config: &GenerationConfig,
    batch: &[Item],
) -> Vec<std::result::Result<Sequence, String>> {
    let once = |inputs: &[Vec<u32>]| -> std::result::Result<Vec<Sequence>, String> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            generate(model, inputs, config)
        })) {
            Ok(Ok(out)) if out.len() == inputs.len() => Ok(out),
            Ok(Ok(out)) => Err(format!("{} outputs for {} inputs", out.len(), inputs.len())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("generation panicked".to_string()),
        }
    };
    let inputs: Vec<Vec<u32>> = batch.iter().map(|i| i.ids.clone()).collect();
    match once(&inputs) {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(why) if inputs.len() > 1 => {
            tracing::warn!("a pooled batch failed ({why}); generating its sentences one by one");
            (inputs.iter())
                .map(|i| once(std::slice::from_ref(i)).map(|mut o| o.remove(0)))
                .collect()
        }
        Err(why) => vec![Err(why)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(lens: &[usize]) -> Vec<Item> {
        (lens.iter().enumerate())
            .map(|(i, &n)| Item {
                ticket: i as u64 / 2,
                index: i % 2,
                ids: vec![7; n],
            })
            .collect()
    }

    #[test]
    fn batches_are_cut_longest_first_by_padded_tokens() {
        let mut pending = items(&[5, 30, 10, 30, 2, 12]);
        let budget = Budget {
            tokens: 64,
            sentences: 10,
            callers: 1,
        };
        let first = take_batch(&mut pending, budget);
        // 64 / 30 = 2 sentences of 30 padded tokens.
        assert_eq!(first.iter().map(|i| i.ids.len()).collect::<Vec<_>>(), [30, 30]);
        let second = take_batch(&mut pending, budget);
        assert_eq!(
            second.iter().map(|i| i.ids.len()).collect::<Vec<_>>(),
            [12, 10, 5, 2]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn a_sentence_over_the_budget_still_runs_alone_and_the_sentence_cap_holds() {
        let mut pending = items(&[100, 3, 3, 3]);
        let budget = Budget {
            tokens: 10,
            sentences: 2,
            callers: 1,
        };
        assert_eq!(take_batch(&mut pending, budget).len(), 1);
        assert_eq!(take_batch(&mut pending, budget).len(), 2);
        assert_eq!(take_batch(&mut pending, budget).len(), 1);
    }
}
