//! Per-call decoder state of an encoder-decoder model: the encoder's padding mask, the
//! cross-attention keys and values (computed once per input) and the decoder self-attention KV
//! cache, all with one row per live hypothesis so that beam search can reorder or drop rows with
//! one `index_select`. Not for: anything that outlives one `generate` call (weights live in the
//! model, never here).

use candle_core::{Result, Tensor};

/// Keys and values of one attention layer, shaped `(rows, heads, positions, head_dim)`.
#[derive(Debug, Clone)]
pub struct KeyValue {
    pub key: Tensor,
    pub value: Tensor,
}

impl KeyValue {
    fn select(&self, rows: &Tensor) -> Result<Self> {
        Ok(Self {
            key: self.key.index_select(rows, 0)?,
            value: self.value.index_select(rows, 0)?,
        })
    }

    /// Appends `new` (one or more positions) after the cached positions.
    pub fn append(past: Option<&KeyValue>, new: KeyValue) -> Result<KeyValue> {
        match past {
            None => Ok(new),
            Some(past) => Ok(KeyValue {
                key: Tensor::cat(&[&past.key, &new.key], 2)?,
                value: Tensor::cat(&[&past.value, &new.value], 2)?,
            }),
        }
    }
}

/// What one decoder layer keeps between steps.
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// Self-attention keys/values of the tokens decoded so far (`None` before the first step).
    pub self_attn: Option<KeyValue>,
    /// Cross-attention keys/values of the encoder output, fixed for the whole call.
    pub cross_attn: KeyValue,
}

/// Everything a decoder step needs besides the new tokens.
#[derive(Debug, Clone)]
pub struct DecoderState {
    pub layers: Vec<LayerCache>,
    /// Additive mask over encoder positions, `(rows, 1, 1, source_len)`: 0 for tokens, a very
    /// large negative number for padding.
    pub encoder_mask: Tensor,
    /// How many decoder positions are already in the self-attention cache.
    pub position: usize,
}

impl DecoderState {
    /// The state before the first decoder step: the encoder's additive mask and, per decoder
    /// layer, the cross-attention keys/values of the encoder output.
    pub fn start(encoder_mask: Tensor, cross_attn: Vec<KeyValue>) -> Self {
        Self {
            layers: cross_attn
                .into_iter()
                .map(|cross_attn| LayerCache {
                    self_attn: None,
                    cross_attn,
                })
                .collect(),
            encoder_mask,
            position: 0,
        }
    }

    /// Keeps the rows named by `rows` (u32 indices, repeats allowed), in that order: expands a
    /// batch into beams, reorders beams after a step, or drops finished inputs.
    pub fn select(&mut self, rows: &Tensor) -> Result<()> {
        for layer in self.layers.iter_mut() {
            layer.self_attn = match &layer.self_attn {
                Some(kv) => Some(kv.select(rows)?),
                None => None,
            };
            layer.cross_attn = layer.cross_attn.select(rows)?;
        }
        self.encoder_mask = self.encoder_mask.index_select(rows, 0)?;
        Ok(())
    }

    /// Number of rows (hypotheses) in the state.
    pub fn rows(&self) -> Result<usize> {
        self.encoder_mask.dim(0)
    }
}

/// Turns a `(rows, source_len)` 0/1 attention mask into the additive `(rows, 1, 1, source_len)`
/// form, using the dtype's smallest finite value for padding as transformers does.
pub fn additive_mask(mask: &Tensor) -> Result<Tensor> {
    let (rows, len) = mask.dims2()?;
    let keep = mask.to_dtype(candle_core::DType::F32)?;
    // (1 - keep) * f32::MIN: 0 where kept, f32::MIN where padded.
    let inverted = keep.affine(-1.0, 1.0)?;
    (inverted * f64::from(f32::MIN))?.reshape((rows, 1, 1, len))
}
