//! Batched decoding of a chat model: the conversations that worker threads run at the same time
//! go through the model together, one forward pass for all of them, so that the weights are
//! read from memory once per step instead of once per conversation (decoding is bound by that
//! read on a CPU).
//!
//! What it is for: [`Batcher`] runs one engine thread per loaded model. A worker takes a slot
//! ([`Batcher::join`], which waits while every slot is taken) and then calls
//! [`Slot::forward`] wherever it would call the model's `forward`: the call hands the tokens
//! and the cache to the engine and waits for the logits. The engine gathers what the slots have
//! handed in, waits until every slot in use has handed in its next tokens (or a short while),
//! and runs one [`CausalLm::forward_batch`] over all of them: continuous batching, since a
//! conversation that ends frees its slot for the next one at once, and a new prompt is computed
//! in the same pass as the others' next tokens. Sampling and everything else stay in the
//! worker.
//!
//! Determinism: a sequence's logits do not depend on which others share its pass, nor on their
//! order (`forward_batch` computes each sequence's numbers as a pass of it alone would;
//! `tests/batching.rs` checks it bit for bit), and a worker hands in the same pieces (system
//! prompt, rest of the prompt, one token at a time) as without batching. So the outputs are
//! the same with or without batching, whatever the timing.
//!
//! Not for: choosing what to translate or sampling (`super::chat`, `crate::generate`), or the
//! model's arithmetic (`crate::models`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use candle_core::Tensor;

use super::engine::{Engine, Shared};
use crate::models::CausalLm;
use crate::nn::kv_cache::KvCache;
use crate::Result;

/// How long the engine waits for the slots in use to hand in their next tokens before it runs
/// with what it has. A worker hands its next token in within microseconds of getting its
/// logits; this only matters when a slot's worker is busy elsewhere (between two chats of a
/// document it has released its slot, so that is rare). The timing changes only which
/// sequences share a pass, never their numbers.
const GATHER_WAIT: Duration = Duration::from_millis(20);

/// One conversation's call, handed to the engine.
struct Request {
    ticket: u64,
    ids: Vec<u32>,
    cache: KvCache,
}

#[derive(Default)]
struct State {
    /// Calls handed in and not yet run.
    pending: Vec<Request>,
    /// Results of calls run, by ticket, with the caches handed back.
    done: HashMap<u64, (std::result::Result<Tensor, String>, KvCache)>,
    /// Slots taken.
    taken: usize,
    next_ticket: u64,
    stats: Stats,
}

/// What the engine did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Forward passes run.
    pub passes: u64,
    /// Sequences fed, summed over the passes (passes × mean sequences per pass).
    pub sequences: u64,
    /// The most sequences one pass fed.
    pub widest: usize,
}

/// What the report says about a model's batching: what was chosen, and what it did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchReport {
    /// The catalog name of the model.
    pub model: String,
    /// Conversations fed together at most (`--batch`, or chosen from the memory).
    pub slots: usize,
    /// `flag` (`--batch N`) or `auto` (from the available memory and the model's cache size).
    pub chosen: &'static str,
    /// Bytes of keys and values one slot's cache holds at full context.
    pub kv_bytes_per_slot: u64,
    /// Forward passes run.
    pub passes: u64,
    /// Sequences per pass, on average.
    pub mean_sequences: f64,
    /// The most sequences one pass fed.
    pub widest: usize,
}

/// The most slots `--batch 0` (auto) chooses. On a CPU, passes of more than about eight
/// sequences stop being bound by reading the weights, and gain little.
pub const AUTO_MAX_SLOTS: usize = 8;

/// The slots `--batch 0` chooses for a model whose full cache takes `cache_bytes`: as many as
/// half the available memory holds, at most [`AUTO_MAX_SLOTS`]; 4 when the available memory
/// cannot be read.
pub fn auto_slots(cache_bytes: usize) -> usize {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map(|kb| kb * 1024)
    });
    match available {
        Some(bytes) => (bytes / 2 / cache_bytes.max(1)).clamp(1, AUTO_MAX_SLOTS),
        None => 4,
    }
}

/// Feeds the conversations of up to `slots` workers through one model together.
pub struct Batcher {
    slots: usize,
    engine: Engine<State>,
}

impl Batcher {
    /// Starts the engine thread for `model`, with `slots` conversations at most in one pass.
    pub fn new(model: Arc<dyn CausalLm>, slots: usize) -> Result<Self> {
        let engine = Engine::spawn("transbrief-batch", State::default(), move |shared| {
            engine(shared, model.as_ref())
        })?;
        Ok(Self {
            slots: slots.max(1),
            engine,
        })
    }

    /// Conversations fed together at most.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// What the engine has done so far.
    pub fn stats(&self) -> Stats {
        self.engine.shared().lock().stats
    }

    /// Takes a slot for one conversation, waiting while all are taken. The slot is released
    /// when dropped.
    pub fn join(&self) -> Slot<'_> {
        let shared = self.engine.shared();
        let mut st = shared.lock();
        while st.taken >= self.slots {
            st = shared.wait(st);
        }
        st.taken += 1;
        Slot { batcher: self }
    }
}

/// One conversation's place in the batch.
pub struct Slot<'a> {
    batcher: &'a Batcher,
}

impl Slot<'_> {
    /// What `CausalLm::forward` does (feeds `ids` after what `cache` holds, returns the next
    /// token's logits), computed in the engine's next pass together with the other slots'
    /// calls.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let shared = self.batcher.engine.shared();
        let mut st = shared.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        // The cache travels to the engine and back; an empty one holds its place meanwhile.
        let handed = std::mem::replace(cache, KvCache::new(0, 0));
        st.pending.push(Request {
            ticket,
            ids: ids.to_vec(),
            cache: handed,
        });
        shared.notify();
        loop {
            if let Some((result, back)) = st.done.remove(&ticket) {
                *cache = back;
                return result.map_err(candle_core::Error::Msg);
            }
            if shared.closing() {
                return Err(candle_core::Error::Msg("the batching thread stopped".into()));
            }
            st = shared.wait(st);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let shared = self.batcher.engine.shared();
        shared.lock().taken -= 1;
        shared.notify();
    }
}

/// The engine thread: gathers the slots' calls and runs them in one pass, until the batcher is
/// dropped.
fn engine(shared: &Shared<State>, model: &dyn CausalLm) {
    let mut st = shared.lock();
    loop {
        // Wait for a first call, then for every slot in use to hand one in (or a short while).
        while st.pending.is_empty() && !shared.closing() {
            st = shared.wait(st);
        }
        if shared.closing() {
            return;
        }
        let deadline = std::time::Instant::now() + GATHER_WAIT;
        while st.pending.len() < st.taken && !shared.closing() && std::time::Instant::now() < deadline {
            st = shared.wait_until(st, deadline);
        }
        let mut batch = std::mem::take(&mut st.pending);
        st.stats.passes += 1;
        st.stats.sequences += batch.len() as u64;
        st.stats.widest = st.stats.widest.max(batch.len());
        drop(st);
        let results = run(model, &mut batch);
        st = shared.lock();
        for (req, result) in batch.into_iter().zip(results) {
            st.done.insert(req.ticket, (result, req.cache));
        }
        shared.notify();
    }
}

/// Runs `batch` in one pass; each call's logits, or its error. A call that cannot run (its
/// tokens overflow the context) fails alone; if the pass itself fails, each call is run alone
/// from where its cache was, so that one call's problem is not the others'.
fn run(model: &dyn CausalLm, batch: &mut [Request]) -> Vec<std::result::Result<Tensor, String>> {
    let max = model.max_len();
    let fits = |r: &Request| r.cache.len() + r.ids.len() <= max && !r.ids.is_empty();
    let mut results: Vec<Option<std::result::Result<Tensor, String>>> = batch
        .iter()
        .map(|r| {
            (!fits(r)).then(|| {
                Err(format!(
                    "sequence of {} tokens exceeds the context of {max} tokens",
                    r.cache.len() + r.ids.len()
                ))
            })
        })
        .collect();
    let lens: Vec<usize> = batch.iter().map(|r| r.cache.len()).collect();
    let passed = {
        let mut seqs: Vec<(&[u32], &mut KvCache)> = batch
            .iter_mut()
            .zip(&results)
            .filter(|(_, r)| r.is_none())
            .map(|(r, _)| (r.ids.as_slice(), &mut r.cache))
            .collect();
        if seqs.is_empty() {
            Ok(None)
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                model.forward_batch(&mut seqs)
            }))
            .map_err(|_| "the batched forward pass panicked".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map(Some)
        }
    };
    match passed {
        Ok(Some(logits)) => {
            for (row, slot) in results.iter_mut().filter(|r| r.is_none()).enumerate() {
                *slot = Some(logits.get(row).map_err(|e| e.to_string()));
            }
        }
        Ok(None) => {}
        Err(why) => {
            tracing::warn!("batched pass failed ({why}); running its sequences one by one");
            for ((req, len), slot) in batch.iter_mut().zip(lens).zip(results.iter_mut()) {
                if slot.is_none() {
                    req.cache.truncate(len);
                    let one = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        model.forward(&req.ids, &mut req.cache)
                    }));
                    *slot = Some(match one {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err("the forward pass panicked".to_string()),
                    });
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".to_string())))
        .collect()
}
