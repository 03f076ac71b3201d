//! Decoding loops shared by the model backends.
//!
//! - This module: one batched engine for every encoder-decoder family (Marian, BART, T5) that
//!   runs greedy search or beam search over an [`EncoderDecoder`], with the logits processors
//!   transformers applies (min length, repetition penalty, no-repeat n-grams, bad words, forced
//!   BOS/EOS), and settings read from `generation_config.json` as transformers reads them.
//! - [`sampling`]: the token-by-token loop of decoder-only (chat) models.
//!
//! Not for: tokenization, sentence splitting, or prompts.

mod beam;
mod cache;
mod config;
mod logits;
pub mod sampling;

pub use cache::{additive_mask, DecoderState, KeyValue, LayerCache, SelfAttnCache};
pub use config::{EarlyStopping, GenerationConfig};

use candle_core::{Device, Tensor};

use crate::Result;

/// An encoder-decoder model as the generation engine sees it.
pub trait EncoderDecoder: Send + Sync {
    /// Runs the encoder on a padded batch (`input_ids` and 0/1 `attention_mask`, both
    /// `(batch, source_len)` u32) and returns the decoder state for those rows, with the
    /// cross-attention keys and values already computed.
    fn encode(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<DecoderState>;

    /// Feeds one token per row (`(rows, 1)` u32) to the decoder, extends the self-attention
    /// cache, and returns the next-token logits, `(rows, vocab)` f32.
    fn decode_step(&self, tokens: &Tensor, state: &mut DecoderState)
        -> candle_core::Result<Tensor>;

    fn device(&self) -> &Device;
}

/// One generated sequence: the decoder ids after the start token, ending with EOS when the
/// model stopped by itself.
pub type Sequence = Vec<u32>;

/// Generates one sequence per input (token ids without padding), greedy when
/// `config.num_beams == 1`, beam search otherwise. The output for an input does not depend on
/// the other inputs of the batch.
pub fn generate(
    model: &dyn EncoderDecoder,
    inputs: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Sequence>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    config.validate()?;
    let (ids, mask) = pad_batch(inputs, config.pad_token_id.unwrap_or(0), model.device())?;
    let mut state = model.encode(&ids, &mask)?;
    // A decoder input holds the start token and every generated token but the last.
    state.limit_positions(config.max_length.saturating_sub(1).max(1));
    if config.num_beams <= 1 {
        greedy(model, state, inputs.len(), config)
    } else {
        beam::beam_search(model, state, inputs.len(), config)
    }
}

/// Right-pads `inputs` into `(batch, max_len)` ids and a 0/1 mask.
pub fn pad_batch(inputs: &[Vec<u32>], pad: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let len = inputs.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(inputs.len() * len);
    let mut mask = Vec::with_capacity(inputs.len() * len);
    for input in inputs {
        ids.extend_from_slice(input);
        mask.extend(std::iter::repeat_n(1u32, input.len()));
        ids.extend(std::iter::repeat_n(pad, len - input.len()));
        mask.extend(std::iter::repeat_n(0u32, len - input.len()));
    }
    let shape = (inputs.len(), len);
    Ok((
        Tensor::from_vec(ids, shape, device)?,
        Tensor::from_vec(mask, shape, device)?,
    ))
}

/// Feeds `tokens` (one per live row) and hands `f` the logits, row after row in one slice of
/// `rows * vocab` values, with the vocabulary size. On the CPU the slice is the decoder's own
/// output, read in place; from a GPU it is copied to the host once.
fn step<R>(
    model: &dyn EncoderDecoder,
    tokens: &[u32],
    state: &mut DecoderState,
    f: impl FnOnce(&[f32], usize) -> Result<R>,
) -> Result<R> {
    let input = Tensor::from_slice(tokens, (tokens.len(), 1), model.device())?;
    let logits = model
        .decode_step(&input, state)?
        .to_dtype(candle_core::DType::F32)?
        .contiguous()?;
    let (rows, vocab) = logits.dims2()?;
    if rows != tokens.len() {
        return Err(crate::Error::msg(format!(
            "decoder returned {rows} rows for {} tokens",
            tokens.len()
        )));
    }
    {
        let (storage, layout) = logits.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            return f(&cpu.as_slice::<f32>()?[start..end], vocab);
        }
    }
    let flat = logits.flatten_all()?.to_vec1::<f32>()?;
    f(&flat, vocab)
}

/// `f(0..n)` in parallel on candle's kernel threads (idle between the decoder's matmuls), in
/// input order. Each item is computed by one thread alone, so results do not depend on the
/// number of threads.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<std::sync::Mutex<Option<T>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    candle_core::utils::barrier_pool().execute_chunked(n, |range| {
        for i in range {
            let value = f(i);
            if let Ok(mut slot) = slots[i].lock() {
                *slot = Some(value);
            }
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| unreachable!("every index was computed"))
        })
        .collect()
}

/// Greedy search: each input keeps the argmax of its processed logits until EOS or max length;
/// an input that has produced EOS leaves the batch.
fn greedy(
    model: &dyn EncoderDecoder,
    mut state: DecoderState,
    batch: usize,
    config: &GenerationConfig,
) -> Result<Vec<Sequence>> {
    let start = config.decoder_start()?;
    let processors = logits::Processors::new(config);
    // Decoder ids per input, starting with the decoder start token (transformers' input_ids).
    let mut seqs: Vec<Vec<u32>> = vec![vec![start]; batch];
    // Inputs still generating, in state row order.
    let mut live: Vec<usize> = (0..batch).collect();
    let max_len = config.max_length;
    while !live.is_empty() && seqs[live[0]].len() < max_len {
        let tokens: Vec<u32> = live
            .iter()
            .map(|&i| *seqs[i].last().unwrap_or(&start))
            .collect();
        let next: Vec<u32> = step(model, &tokens, &mut state, |flat, vocab| {
            Ok(par_map(live.len(), |row| {
                let mut scores = flat[row * vocab..(row + 1) * vocab].to_vec();
                processors.apply(&seqs[live[row]], &mut scores);
                logits::argmax(&scores)
            }))
        })?;
        let mut keep = Vec::with_capacity(live.len());
        for (row, (&i, next)) in live.iter().zip(next).enumerate() {
            seqs[i].push(next);
            if !config.is_eos(next) {
                keep.push((row, i));
            }
        }
        if keep.len() != live.len() && !keep.is_empty() {
            let rows: Vec<u32> = keep.iter().map(|&(row, _)| row as u32).collect();
            state.select(&rows)?;
        }
        live = keep.into_iter().map(|(_, i)| i).collect();
    }
    Ok(seqs.into_iter().map(|s| s[1..].to_vec()).collect())
}
