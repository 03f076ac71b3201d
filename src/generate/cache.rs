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
///
/// Rows are grouped: `group` consecutive rows (the beams of one input) share one input's
/// cross-attention keys/values and encoder mask, which are stored once per input, not once per
/// row. Beam search then reorders only the self-attention caches each step.
#[derive(Debug, Clone)]
pub struct DecoderState {
    pub layers: Vec<LayerCache>,
    /// Additive mask over encoder positions, `(inputs, 1, 1, source_len)`: 0 for tokens, a very
    /// large negative number for padding.
    pub encoder_mask: Tensor,
    /// How many decoder positions are already in the self-attention cache.
    pub position: usize,
    /// Rows per input (1 for greedy search, the beam width for beam search).
    pub group: usize,
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
            group: 1,
        }
    }

    /// Gives each input `rows_per_input` rows (its beams), copies of its single row. Only
    /// the self-attention caches are copied; the encoder side stays shared.
    pub fn expand(&mut self, rows_per_input: usize) -> Result<()> {
        if self.group != 1 {
            candle_core::bail!("decoder state already expanded");
        }
        if rows_per_input > 1 {
            let inputs = self.encoder_mask.dim(0)? as u32;
            let rows: Vec<u32> = (0..inputs)
                .flat_map(|i| std::iter::repeat_n(i, rows_per_input))
                .collect();
            self.select_self_attn(&rows)?;
            self.group = rows_per_input;
        }
        Ok(())
    }

    /// Keeps the rows named by `rows` (indices into the current rows, repeats allowed), in that
    /// order: reorders beams after a step, or drops finished inputs. Each run of `group` new
    /// rows must come from one input (as beam search guarantees); the encoder side is then
    /// re-indexed only when the set of inputs changes.
    pub fn select(&mut self, rows: &[u32]) -> Result<()> {
        let group = self.group;
        if rows.len() % group != 0 {
            candle_core::bail!("{} rows do not form groups of {group}", rows.len());
        }
        let inputs: Vec<u32> = rows
            .chunks(group)
            .map(|g| {
                let input = g[0] / group as u32;
                if g.iter().any(|&r| r / group as u32 != input) {
                    candle_core::bail!("a group of rows mixes inputs: {g:?}");
                }
                Ok(input)
            })
            .collect::<Result<_>>()?;
        self.select_self_attn(rows)?;
        let unchanged = inputs.len() == self.encoder_mask.dim(0)?
            && inputs.iter().enumerate().all(|(i, &x)| x as usize == i);
        if !unchanged {
            let index = Tensor::from_slice(&inputs, inputs.len(), self.encoder_mask.device())?;
            for layer in self.layers.iter_mut() {
                layer.cross_attn = layer.cross_attn.select(&index)?;
            }
            self.encoder_mask = self.encoder_mask.index_select(&index, 0)?;
        }
        Ok(())
    }

    fn select_self_attn(&mut self, rows: &[u32]) -> Result<()> {
        let index = Tensor::from_slice(rows, rows.len(), self.encoder_mask.device())?;
        for layer in self.layers.iter_mut() {
            if let Some(kv) = &layer.self_attn {
                layer.self_attn = Some(kv.select(&index)?);
            }
        }
        Ok(())
    }

    /// Number of rows (hypotheses) in the state.
    pub fn rows(&self) -> Result<usize> {
        Ok(self.encoder_mask.dim(0)? * self.group)
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
