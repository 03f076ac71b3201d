//! Per-call decoder state of an encoder-decoder model: the encoder's padding mask, the
//! cross-attention keys and values (computed once per input) and the decoder self-attention KV
//! cache, all with one row per live hypothesis so that beam search can reorder or drop rows with
//! one gather per layer (the self-attention cache is written in place, see [`SelfAttnCache`]).
//! Not for: anything that outlives one `generate` call (weights live in the model, never here).

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};

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
}

/// A decoder layer's self-attention keys and values, `(rows, heads, capacity, head_dim)` buffers
/// of which the first `len` positions are filled.
///
/// A step writes its new positions in place, and (on the CPU) beam reordering gathers the filled
/// positions of the rows it keeps into a new, uninitialised buffer, the rows split over the
/// kernel threads: one copy per step where
/// concatenating and then re-indexing made two, and no zero-filling. When full it grows by
/// `GROWTH` (16) positions (one copy every 16 steps), never past the positions the caller
/// said generation can reach, so the buffers hold little more than the cache itself.
#[derive(Debug, Default)]
pub struct SelfAttnCache {
    buffers: Option<KeyValue>,
    len: usize,
    /// Positions generation can reach (0: unknown).
    max_positions: usize,
}

/// Positions a full cache grows by.
const GROWTH: usize = 16;

impl SelfAttnCache {
    /// Appends `new` (`(rows, heads, positions, head_dim)`, one or more positions) after the
    /// cached positions and returns every position so far, to attend over.
    pub fn append(&mut self, new: KeyValue) -> Result<KeyValue> {
        let (rows, heads, added, head_dim) = new.key.dims4()?;
        let wanted = self.len + added;
        let buffers = match self.buffers.take() {
            Some(b) if b.key.dim(2)? >= wanted => b,
            old => {
                let mut capacity = wanted.next_multiple_of(GROWTH);
                if self.max_positions > 0 {
                    capacity = capacity.min(self.max_positions.max(wanted));
                }
                let grow = |past: Option<&Tensor>, like: &Tensor| -> Result<Tensor> {
                    let empty = Tensor::zeros(
                        (rows, heads, capacity - self.len, head_dim),
                        like.dtype(),
                        like.device(),
                    )?;
                    match past {
                        Some(past) => Tensor::cat(&[&past.narrow(2, 0, self.len)?, &empty], 2),
                        None => Ok(empty),
                    }
                };
                KeyValue {
                    key: grow(old.as_ref().map(|b| &b.key), &new.key)?,
                    value: grow(old.as_ref().map(|b| &b.value), &new.value)?,
                }
            }
        };
        buffers.key.slice_set(&new.key.contiguous()?, 2, self.len)?;
        buffers.value.slice_set(&new.value.contiguous()?, 2, self.len)?;
        self.len = wanted;
        let view = KeyValue {
            key: buffers.key.narrow(2, 0, wanted)?,
            value: buffers.value.narrow(2, 0, wanted)?,
        };
        self.buffers = Some(buffers);
        Ok(view)
    }

    /// Keeps the rows named by `rows` (indices into the current rows, repeats allowed).
    fn select(&mut self, rows: &[u32], index: &Tensor) -> Result<()> {
        let Some(buffers) = self.buffers.take() else {
            return Ok(());
        };
        if !buffers.key.device().is_cpu() {
            self.buffers = Some(buffers.select(index)?);
            return Ok(());
        }
        let (_, heads, capacity, head_dim) = buffers.key.dims4()?;
        let shape = (rows.len(), heads, capacity, head_dim);
        let device = buffers.key.device();
        // SAFETY: positions past `len` are never read: attention sees the first `len`
        // positions only, the gather below fills them for every row, and each later step
        // writes a position before it is read. (The previous buffers, freed just after, are
        // what the allocator hands back next step, so no fresh zeroed pages are needed.)
        let into = unsafe {
            KeyValue {
                key: Tensor::empty(shape, buffers.key.dtype(), device)?,
                value: Tensor::empty(shape, buffers.value.dtype(), device)?,
            }
        };
        let gather = GatherRows {
            rows,
            len: self.len,
        };
        into.key.inplace_op2(&buffers.key, &gather)?;
        into.value.inplace_op2(&buffers.value, &gather)?;
        self.buffers = Some(into);
        Ok(())
    }
}

/// Copies the first `len` positions of rows `rows` of a `(rows, heads, capacity, head_dim)`
/// buffer into rows `0..` of another of the same capacity (CPU only).
struct GatherRows<'a> {
    rows: &'a [u32],
    len: usize,
}

impl GatherRows<'_> {
    fn copy<T: Copy + Send + Sync>(&self, dst: &mut [T], dl: &Layout, src: &[T], sl: &Layout) -> Result<()> {
        let (Some((d0, d1)), Some((s0, s1))) = (dl.contiguous_offsets(), sl.contiguous_offsets())
        else {
            candle_core::bail!("gather-rows needs contiguous buffers");
        };
        let (dst, src) = (&mut dst[d0..d1], &src[s0..s1]);
        let (src_rows, heads, capacity, head_dim) = sl.shape().dims4()?;
        let (dst_rows, dst_heads, dst_capacity, dst_dim) = dl.shape().dims4()?;
        if (dst_rows, dst_heads, dst_capacity, dst_dim) != (self.rows.len(), heads, capacity, head_dim)
            || self.len > capacity
        {
            candle_core::bail!("gather-rows: shapes {:?} and {:?}", dl.shape(), sl.shape());
        }
        if let Some(&from) = self.rows.iter().find(|&&r| r as usize >= src_rows) {
            candle_core::bail!("gather-rows: row {from} of {src_rows}");
        }
        let plane = capacity * head_dim;
        let filled = self.len * head_dim;
        let row_len = heads * plane;
        // The rows are split over the kernel threads: each writes its own rows of `dst`.
        let out = RowsOut(dst.as_mut_ptr());
        let out = &out;
        candle_core::utils::barrier_pool().execute_chunked(self.rows.len(), |range| {
            for to in range {
                let from = self.rows[to] as usize;
                // SAFETY: `dst` holds `self.rows.len()` rows of `row_len` values (checked
                // above) and row `to` is written by this work item alone.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(to * row_len), row_len) };
                let src = &src[from * row_len..][..row_len];
                for h in 0..heads {
                    dst[h * plane..][..filled].copy_from_slice(&src[h * plane..][..filled]);
                }
            }
        });
        Ok(())
    }
}

/// `dst` of a [`GatherRows`] copy, written by several kernel threads, each its own rows.
struct RowsOut<T>(*mut T);

// SAFETY: the threads of one `execute_chunked` call write disjoint rows through the pointer,
// and the buffer outlives that call.
unsafe impl<T: Send> Sync for RowsOut<T> {}

impl InplaceOp2 for GatherRows<'_> {
    fn name(&self) -> &'static str {
        "gather-rows"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dl: &Layout, src: &CpuStorage, sl: &Layout) -> Result<()> {
        match (dst, src) {
            (CpuStorage::F32(d), CpuStorage::F32(s)) => self.copy(d, dl, s, sl),
            (CpuStorage::F16(d), CpuStorage::F16(s)) => self.copy(d, dl, s, sl),
            (CpuStorage::BF16(d), CpuStorage::BF16(s)) => self.copy(d, dl, s, sl),
            (CpuStorage::F64(d), CpuStorage::F64(s)) => self.copy(d, dl, s, sl),
            _ => candle_core::bail!("gather-rows: unsupported or mismatched dtypes"),
        }
    }
}

/// What one decoder layer keeps between steps.
#[derive(Debug)]
pub struct LayerCache {
    /// Self-attention keys/values of the tokens decoded so far.
    pub self_attn: SelfAttnCache,
    /// Cross-attention keys/values of the encoder output, fixed for the whole call.
    pub cross_attn: KeyValue,
}

/// Everything a decoder step needs besides the new tokens. Not `Clone`: the self-attention
/// caches are written in place, so a copy would share (and corrupt) them.
///
/// Rows are grouped: `group` consecutive rows (the beams of one input) share one input's
/// cross-attention keys/values and encoder mask, which are stored once per input, not once per
/// row. Beam search then reorders only the self-attention caches each step.
#[derive(Debug)]
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
                    self_attn: SelfAttnCache::default(),
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
        if !rows.len().is_multiple_of(group) {
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
            layer.self_attn.select(rows, &index)?;
        }
        Ok(())
    }

    /// Tells the caches that decoding stops after `positions` positions, so that none is
    /// given room beyond them.
    pub fn limit_positions(&mut self, positions: usize) {
        for layer in self.layers.iter_mut() {
            layer.self_attn.max_positions = positions;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Step `step`'s keys and values for `rows` rows: values that name the step and row.
    fn step_kv(step: usize, rows: usize) -> KeyValue {
        let (heads, dim) = (2, 3);
        let values: Vec<f32> = (0..rows * heads * dim)
            .map(|i| (step * 1000 + i) as f32)
            .collect();
        let t = Tensor::from_vec(values, (rows, heads, 1, dim), &Device::Cpu).unwrap();
        KeyValue {
            key: t.clone(),
            value: (t + 0.5).unwrap(),
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn in_place_cache_matches_concatenation_and_index_select() {
        // Growing past 16, 32 and then to the 40-position limit, with reorders, repeats and a
        // shrinking row count, as beam search and finished inputs produce.
        let mut cache = SelfAttnCache {
            max_positions: 40,
            ..Default::default()
        };
        let mut want: Option<KeyValue> = None;
        let mut rows = 4;
        for step in 0..45 {
            let new = step_kv(step, rows);
            let got = cache.append(new.clone()).unwrap();
            let naive = match &want {
                None => new,
                Some(past) => KeyValue {
                    key: Tensor::cat(&[&past.key, &new.key], 2).unwrap(),
                    value: Tensor::cat(&[&past.value, &new.value], 2).unwrap(),
                },
            };
            assert_eq!(values(&got.key), values(&naive.key), "step {step}");
            assert_eq!(values(&got.value), values(&naive.value), "step {step}");
            let order: Vec<u32> = if step == 20 {
                rows = 2;
                vec![3, 1]
            } else {
                (0..rows as u32).map(|r| (r + step as u32) % rows as u32 / 2 * 2).collect()
            };
            let index = Tensor::new(order.as_slice(), &Device::Cpu).unwrap();
            cache.select(&order, &index).unwrap();
            want = Some(naive.select(&index).unwrap());
        }
    }
}
