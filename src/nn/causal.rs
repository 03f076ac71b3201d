//! The blocks decoder-only GGUF architectures are built from: self-attention over a
//! [`LayerCache`] with grouped-query heads ([`SelfAttention`]), its causal and sliding-window
//! masks ([`attention_mask`]), the gated feed-forward layer ([`GatedMlp`]), and the model around
//! an architecture's layers ([`Decoder`]: embedding, final norm, output projection).
//!
//! Each block does what llama.cpp's graph does for the same tensors, in the same order (biases
//! after the projection, per-head norms before the rotation, the softmax scale applied to the
//! scores), so that an architecture file only says which blocks it has and how its residuals and
//! norms are arranged.
//!
//! Not for: the arrangement of a layer, hyper-parameters or tensor names (`crate::models`), the
//! weight kernels (`crate::nn::quantized`, `crate::kernels`), or the seq2seq attention
//! (`crate::nn::attention`).

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_transformers::quantized_nn::RmsNorm;

use super::kv_cache::{KvCache, LayerCache};
use crate::kernels::decode_attention;
use super::quantized::{QLinear, TokenEmbedding};
use super::rope::Rope;

/// The additive mask (seq, past + seq) of `seq` new positions after `past` cached ones: a
/// position sees itself and the positions before it, and, with a `window`, only the last
/// `window` of those (llama.cpp's standard sliding window: a key `j` is hidden from a query `i`
/// when `i - j >= window`). `None` when nothing is hidden (one new position, no window in the
/// way).
pub fn attention_mask(
    seq: usize,
    past: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    let total = past + seq;
    let window = window.filter(|&w| w < total);
    if seq == 1 && window.is_none() {
        return Ok(None);
    }
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| {
            let q = past + i;
            (0..total).map(move |j| {
                let hidden = j > q || window.is_some_and(|w| q - j >= w);
                if hidden {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Some(Tensor::from_vec(mask, (seq, total), device)?))
}

/// The Q, K and V projections: three matrices, or one fused matrix (Phi-3's `attn_qkv`) whose
/// rows are Q's, then K's, then V's.
#[derive(Debug)]
pub enum QkvProjection {
    Separate { q: QLinear, k: QLinear, v: QLinear },
    Fused(QLinear),
}

/// Self-attention of one decoder layer, with grouped-query heads (`num_kv_heads` divides
/// `num_heads`).
#[derive(Debug)]
pub struct SelfAttention {
    pub qkv: QkvProjection,
    /// Biases added after the Q, K and V projections (Qwen2).
    pub qkv_bias: Option<[Tensor; 3]>,
    /// RMS norms over each head of Q and K, before the rotation (Qwen3, Gemma 3).
    pub qk_norm: Option<[RmsNorm; 2]>,
    pub o: QLinear,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// Q is multiplied by this before the scores (Gemma 3's `f_attention_scale`), else 1.
    pub q_scale: Option<f64>,
    /// The scores are multiplied by this before the softmax (1/sqrt(head_dim) for most).
    pub score_scale: f64,
}

impl SelfAttention {
    /// Attends from `xs` (1, rows, hidden), the new positions of `parts`' sequences one after
    /// the other, each to everything in its own cache and to itself; writes each sequence's new
    /// keys and values into its cache. The projections run on all rows at once (one pass over
    /// the weights for every sequence); the attention itself runs per sequence, on exactly the
    /// tensors a pass of that sequence alone would have, so a sequence's numbers do not depend
    /// on the others. `windowed`: the layer uses the parts' sliding-window masks.
    pub fn forward(
        &self,
        xs: &Tensor,
        rope: &Rope,
        parts: &mut [Part<'_>],
        windowed: bool,
    ) -> Result<Tensor> {
        let (q_dim, kv_dim) = (
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
        );
        let lens: Vec<usize> = parts.iter().map(|p| p.len).collect();
        let lens = lens.as_slice();
        let (mut q, mut k, mut v) = match &self.qkv {
            QkvProjection::Separate { q, k, v } => (
                q.forward_parts(xs, lens)?,
                k.forward_parts(xs, lens)?,
                v.forward_parts(xs, lens)?,
            ),
            QkvProjection::Fused(qkv) => {
                let all = qkv.forward_parts(xs, lens)?;
                (
                    all.narrow(D::Minus1, 0, q_dim)?,
                    all.narrow(D::Minus1, q_dim, kv_dim)?,
                    all.narrow(D::Minus1, q_dim + kv_dim, kv_dim)?,
                )
            }
        };
        if let Some([qb, kb, vb]) = &self.qkv_bias {
            q = q.broadcast_add(qb)?;
            k = k.broadcast_add(kb)?;
            v = v.broadcast_add(vb)?;
        }
        // Each sequence's new positions are rotated and written into its cache; then each
        // sequence attends on its own. One new position (a decoding step) goes through
        // `decode_attention`, every such sequence of the pass in one call over the kernel
        // threads; several (a prompt) through candle's matrix products.
        let mut outs: Vec<Option<Tensor>> = Vec::with_capacity(parts.len());
        let mut steps = Vec::new();
        let mut at = 0;
        for part in parts.iter_mut() {
            let rows = |t: &Tensor| t.narrow(1, at, part.len);
            let mask = part.masks.pick(windowed);
            let (q, k, v) = self.rotate_and_cache(rows(&q)?, rows(&k)?, rows(&v)?, rope, part.cache)?;
            match DecodeStep::new(&q, &k, &v, mask)? {
                Some(step) => {
                    steps.push((outs.len(), step));
                    outs.push(None);
                }
                None => outs.push(Some(self.mix(q, k, v, mask)?)),
            }
            at += part.len;
        }
        if !steps.is_empty() {
            let shape = decode_attention::Heads {
                heads: self.num_heads,
                kv_heads: self.num_kv_heads,
                head_dim: self.head_dim,
                scale: self.score_scale as f32,
            };
            let all = DecodeStep::attend(steps.iter().map(|(_, s)| s), shape)?;
            let q_dim = self.num_heads * self.head_dim;
            for ((i, _), out) in steps.iter().zip(all.chunks_exact(q_dim)) {
                outs[*i] = Some(Tensor::from_slice(out, (1, 1, q_dim), xs.device())?);
            }
        }
        let outs: Vec<Tensor> = outs.into_iter().flatten().collect();
        let out = match outs.as_slice() {
            [one] => one.clone(),
            _ => Tensor::cat(&outs, 1)?,
        };
        self.o.forward_parts(&out, lens)
    }

    /// One sequence's new positions `q`, `k`, `v` (1, seq, dims), the first of which is
    /// `cache.len()`: split into heads, normed and rotated (Q scaled), K and V written into the
    /// cache. Returns Q (1, heads, seq, head_dim) and every cached K and V (1, kv_heads, past +
    /// seq, head_dim).
    fn rotate_and_cache(
        &self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        rope: &Rope,
        cache: &mut LayerCache,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, seq, _) = q.dims3()?;
        let pos = cache.len();
        let heads = |t: Tensor, n: usize| -> Result<Tensor> {
            t.reshape((b, seq, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let mut q = heads(q, self.num_heads)?;
        let mut k = heads(k, self.num_kv_heads)?;
        let v = heads(v, self.num_kv_heads)?;
        if let Some([qn, kn]) = &self.qk_norm {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let mut q = rope.apply(&q, pos)?;
        let k = rope.apply(&k, pos)?;
        if let Some(s) = self.q_scale {
            q = (q * s)?;
        }
        let (k, v) = cache.append(&k, &v)?;
        Ok((q, k, v))
    }

    /// The attention of one sequence through candle's matrix products: `q` (1, heads, seq,
    /// head_dim) over `k` and `v` (1, kv_heads, kv_len, head_dim) with `mask` (seq, kv_len).
    /// Returns (1, seq, q_dim), before the output projection.
    fn mix(&self, q: Tensor, k: Tensor, v: Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, seq, _) = q.dims4()?;
        let q_dim = self.num_heads * self.head_dim;
        let kv_len = k.dim(2)?;
        // Grouped-query attention: the `rep` query heads that share one K/V head are stacked
        // along the sequence axis, so each K/V head is used as is, never copied `rep` times.
        let rep = self.num_heads / self.num_kv_heads;
        let q = q.reshape((b, self.num_kv_heads, rep * seq, self.head_dim))?;
        let scores = q.matmul(&k.t()?)?;
        let scores = if self.score_scale == 1.0 {
            scores
        } else {
            (scores * self.score_scale)?
        };
        let scores = match mask {
            None => scores,
            Some(mask) => {
                // mask: (seq, kv_len), 0 or -inf; repeated for the stacked heads.
                let scores = scores.reshape((b, self.num_kv_heads, rep, seq, kv_len))?;
                scores
                    .broadcast_add(mask)?
                    .reshape((b, self.num_kv_heads, rep * seq, kv_len))?
            }
        };
        let probs = if scores.device().is_cpu() && scores.dtype() == candle_core::DType::F32 {
            crate::kernels::attention_softmax::softmax_last_dim(&scores)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let out = probs.matmul(&v)?; // (b, kv_heads, rep*seq, head_dim)
        out.reshape((b, self.num_heads, seq, self.head_dim))?
            .transpose(1, 2)?
            .reshape((b, seq, q_dim))
    }
}

/// A decoding step's attention inputs, read for [`decode_attention`]: the query's values, the
/// mask row, and the cached K and V tensors, whose storage the kernel reads in place.
struct DecodeStep {
    q: Vec<f32>,
    mask: Option<Vec<f32>>,
    k: Tensor,
    v: Tensor,
}

impl DecodeStep {
    /// The step for `q` (1, heads, 1, head_dim) over `k` and `v` (1, kv_heads, len, head_dim),
    /// or `None` where the kernel does not take them: not on the CPU, not f32, or a cache
    /// laid out otherwise than positions of `head_dim` contiguous values.
    fn new(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Option<Self>> {
        let fits = |t: &Tensor| {
            let dims = t.dims();
            let stride = t.layout().stride();
            t.device().is_cpu()
                && t.dtype() == DType::F32
                && dims.len() == 4
                && dims[0] == 1
                && stride[3] == 1
                && stride[2] == dims[3]
        };
        if q.dim(2)? != 1 || !fits(k) || !fits(v) || k.layout().stride() != v.layout().stride() {
            return Ok(None);
        }
        let q = q.flatten_all()?.to_vec1::<f32>()?;
        let mask = mask
            .map(|m| m.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>())
            .transpose()?;
        Ok(Some(Self {
            q,
            mask,
            k: k.clone(),
            v: v.clone(),
        }))
    }

    /// [`decode_attention::attend`] over `steps`, reading their caches in place.
    fn attend<'a>(
        steps: impl Iterator<Item = &'a DecodeStep>,
        shape: decode_attention::Heads,
    ) -> Result<Vec<f32>> {
        let steps: Vec<&DecodeStep> = steps.collect();
        let guards: Vec<_> = steps
            .iter()
            .map(|s| (s.k.storage_and_layout(), s.v.storage_and_layout()))
            .collect();
        let inputs = steps
            .iter()
            .zip(&guards)
            .map(|(s, (k, v))| {
                Ok(decode_attention::Step {
                    q: &s.q,
                    k: decode_attention::cache_values(&k.0, k.1.start_offset())?,
                    v: decode_attention::cache_values(&v.0, v.1.start_offset())?,
                    head_stride: s.k.layout().stride()[1],
                    len: s.k.dim(2)?,
                    mask: s.mask.as_deref(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(decode_attention::attend(&inputs, shape))
    }
}

/// The activation of a gated feed-forward layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU: Llama, Qwen, Mistral, Phi-3).
    Silu,
    /// GELU, tanh approximation (GeGLU: Gemma), computed as ggml's CPU backend computes it: the
    /// input rounded to f16, looked up in a table of f16 results ([`gelu_ggml`]).
    Gelu,
}

/// GELU (tanh approximation) of every value, with ggml's CPU arithmetic: below -10 it is 0, above
/// 10 it is the input, and in between the input is rounded to f16 and the result read from a
/// table of `gelu(f16)` rounded to f16. llama.cpp computes Gemma's GeGLU this way, and the f16
/// rounding (about 3 significant digits) is large enough to change a greedy token now and then
/// if the exact function were used instead.
pub fn gelu_ggml(xs: &Tensor) -> Result<Tensor> {
    use half::f16;
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<f16>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| {
                let x = f16::from_bits(bits).to_f32();
                let inner = 0.797_884_6_f32 * x * (1.0 + 0.044_715 * x * x);
                f16::from_f32(0.5 * x * (1.0 + inner.tanh()))
            })
            .collect()
    });
    let shape = xs.shape().clone();
    let values = xs.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let out: Vec<f32> = values
        .into_iter()
        .map(|x| {
            if x <= -10.0 {
                0.0
            } else if x >= 10.0 {
                x
            } else {
                table[f16::from_f32(x).to_bits() as usize].to_f32()
            }
        })
        .collect();
    Tensor::from_vec(out, shape, xs.device())
}

/// The gate and up projections: two matrices, or one fused matrix (Phi-3's `ffn_up`) whose
/// first half of rows is the gate and second half the up projection.
#[derive(Debug)]
pub enum GateUp {
    Separate { gate: QLinear, up: QLinear },
    Fused { gate_up: QLinear, hidden: usize },
}

/// `down(act(gate(x)) * up(x))`.
#[derive(Debug)]
pub struct GatedMlp {
    pub gate_up: GateUp,
    pub down: QLinear,
    pub act: Activation,
}

impl GatedMlp {
    /// Transforms `xs` (1, rows, hidden), rows of sequences `lens` long (see
    /// [`QLinear::forward_parts`]).
    pub fn forward(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        let (gate, up) = match &self.gate_up {
            GateUp::Separate { gate, up } => {
                (gate.forward_parts(xs, lens)?, up.forward_parts(xs, lens)?)
            }
            GateUp::Fused { gate_up, hidden } => {
                let both = gate_up.forward_parts(xs, lens)?;
                (
                    both.narrow(D::Minus1, 0, *hidden)?,
                    both.narrow(D::Minus1, *hidden, *hidden)?,
                )
            }
        };
        let gate = match self.act {
            // candle's SiLU, computed over the kernel threads (a prompt's gate is rows x 4864
            // values for Qwen2.5-0.5B; candle maps it on one thread).
            Activation::Silu => crate::kernels::activation::apply(&gate, candle_nn::Activation::Silu)?,
            Activation::Gelu => gelu_ggml(&gate)?,
        };
        self.down.forward_parts(&(gate * up)?, lens)
    }
}

/// The masks of one sequence in a forward pass, computed once and shared by the layers: the
/// causal one, and the sliding-window one for the layers that use it.
#[derive(Debug)]
pub struct Masks {
    pub causal: Option<Tensor>,
    pub windowed: Option<Tensor>,
}

/// One sequence's share of a forward pass through a layer: how many of the pass's rows are its
/// new positions (its rows follow those of the parts before it), its masks, and its cache.
#[derive(Debug)]
pub struct Part<'a> {
    pub len: usize,
    pub masks: &'a Masks,
    pub cache: &'a mut LayerCache,
}

impl Masks {
    /// The mask a layer applies: the sliding-window one for a `windowed` layer.
    pub fn pick(&self, windowed: bool) -> Option<&Tensor> {
        if windowed {
            self.windowed.as_ref()
        } else {
            self.causal.as_ref()
        }
    }
}

/// One layer of a decoder-only model: what an architecture file implements.
pub trait DecoderLayer: std::fmt::Debug + Send + Sync {
    /// Transforms `xs` (1, rows, hidden): the new positions of `parts`' sequences, one after
    /// the other. Everything but the attention works row by row, so it runs on all rows at
    /// once; [`SelfAttention::forward`] splits them by sequence.
    fn forward(&self, xs: &Tensor, parts: &mut [Part<'_>]) -> Result<Tensor>;

    /// The layer's self-attention, for what its cache holds per position.
    fn attention(&self) -> &SelfAttention;
}

/// The layer most architectures share (Llama, Mistral, Qwen2, Qwen3, Phi-3): RMS norm,
/// self-attention, residual; RMS norm, gated MLP, residual.
#[derive(Debug)]
pub struct PreNormLayer {
    pub attn_norm: RmsNorm,
    pub attn: SelfAttention,
    pub ffn_norm: RmsNorm,
    pub mlp: GatedMlp,
    pub rope: Arc<Rope>,
}

impl DecoderLayer for PreNormLayer {
    fn forward(&self, xs: &Tensor, parts: &mut [Part<'_>]) -> Result<Tensor> {
        let h = self.attn_norm.forward(xs)?;
        let h = self.attn.forward(&h, &self.rope, parts, false)?;
        let xs_mid = (h + xs)?;
        let lens: Vec<usize> = parts.iter().map(|p| p.len).collect();
        let h = self.mlp.forward(&self.ffn_norm.forward(&xs_mid)?, &lens)?;
        h + xs_mid
    }

    fn attention(&self) -> &SelfAttention {
        &self.attn
    }
}

/// A decoder-only model around its layers: the token embedding (optionally scaled, as Gemma
/// scales it by the square root of the hidden size), the layers, the final norm, and the output
/// projection of the last position, with optional final soft-capping (`c * tanh(x / c)`).
#[derive(Debug)]
pub struct Decoder<L> {
    pub embed: TokenEmbedding,
    pub embed_scale: Option<f64>,
    pub layers: Vec<L>,
    pub norm: RmsNorm,
    pub output: QLinear,
    pub final_softcap: Option<f64>,
    /// The sliding window of the layers that have one.
    pub window: Option<usize>,
    /// The longest sequence a cache holds.
    pub max_len: usize,
    pub device: Device,
}

impl<L: DecoderLayer> Decoder<L> {
    /// The longest sequence (prompt plus generation) a cache of this model holds.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Bytes of keys and values one cache holds at full length (f32, every layer).
    pub fn cache_bytes(&self) -> usize {
        let per_position: usize = (self.layers.iter())
            .map(|l| 2 * l.attention().num_kv_heads * l.attention().head_dim)
            .sum();
        per_position * self.max_len * std::mem::size_of::<f32>()
    }

    /// A fresh, empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len(), self.max_len)
    }

    /// Feeds `ids` (one sequence) after what `cache` already holds, and returns the logits
    /// (f32, vocabulary-sized) for the token that follows the last of them.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        self.forward_batch(&mut [(ids, cache)])?.squeeze(0)
    }

    /// Feeds several sequences in one pass, each `ids` after what its cache already holds, and
    /// returns the logits (f32, (sequences, vocabulary)) for the token that follows each. The
    /// weight matrices are read once for all of them; each sequence's logits are the very
    /// numbers [`Self::forward`] gives it alone, since every matrix kernel computes a row
    /// without regard to the other rows and the attention runs per sequence.
    pub fn forward_batch(&self, seqs: &mut [(&[u32], &mut KvCache)]) -> Result<Tensor> {
        if seqs.is_empty() {
            candle_core::bail!("forward called with no sequences");
        }
        let mut masks = Vec::with_capacity(seqs.len());
        for (ids, cache) in seqs.iter() {
            let (seq, pos) = (ids.len(), cache.len());
            if seq == 0 {
                candle_core::bail!("forward called with no tokens");
            }
            if pos + seq > self.max_len {
                candle_core::bail!(
                    "sequence of {} tokens exceeds the context of {} tokens",
                    pos + seq,
                    self.max_len
                );
            }
            masks.push(Masks {
                causal: attention_mask(seq, pos, None, &self.device)?,
                windowed: match self.window {
                    Some(w) => attention_mask(seq, pos, Some(w), &self.device)?,
                    None => None,
                },
            });
        }
        let ids: Vec<u32> = seqs.iter().flat_map(|(ids, _)| ids.iter().copied()).collect();
        let mut xs = self.embed.forward(&ids, &self.device)?;
        if let Some(scale) = self.embed_scale {
            xs = (xs * scale)?;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let mut parts: Vec<Part<'_>> = seqs
                .iter_mut()
                .zip(&masks)
                .map(|((ids, cache), masks)| Part {
                    len: ids.len(),
                    masks,
                    cache: &mut cache.layers_mut()[i],
                })
                .collect();
            xs = layer.forward(&xs, &mut parts)?;
        }
        // Only each sequence's last position is projected onto the (large) vocabulary.
        let mut end = 0;
        let lasts = seqs
            .iter()
            .map(|(ids, _)| {
                end += ids.len();
                xs.narrow(1, end - 1, 1)
            })
            .collect::<Result<Vec<_>>>()?;
        let last = match lasts.as_slice() {
            [one] => one.clone(),
            _ => Tensor::cat(&lasts, 1)?,
        };
        let last = self.norm.forward(&last)?;
        let mut logits = self.output.forward_parts(&last, &vec![1; seqs.len()])?;
        if let Some(cap) = self.final_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        logits.squeeze(0)?.to_dtype(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table GELU stays within f16 rounding of the exact tanh GELU, and is exact at the
    /// clamps.
    #[test]
    fn ggml_gelu_is_the_tanh_gelu_to_f16_precision() {
        let xs: Vec<f32> = (-1200..1200).map(|i| i as f32 / 100.0).collect();
        let t = Tensor::from_vec(xs.clone(), xs.len(), &Device::Cpu).unwrap();
        let got = gelu_ggml(&t).unwrap().to_vec1::<f32>().unwrap();
        for (x, g) in xs.iter().zip(got) {
            let exact = 0.5 * x * (1.0 + (0.797_884_6 * x * (1.0 + 0.044_715 * x * x)).tanh());
            if *x <= -10.0 {
                assert_eq!(g, 0.0);
            } else if *x >= 10.0 {
                assert_eq!(g, *x);
            } else {
                assert!((g - exact).abs() <= 2e-3 * exact.abs().max(0.05), "gelu({x}) = {g}, exact {exact}");
            }
        }
    }

    fn hidden(mask: &Tensor) -> Vec<Vec<bool>> {
        mask.to_vec2::<f32>()
            .unwrap()
            .into_iter()
            .map(|r| r.into_iter().map(|x| x.is_infinite()).collect())
            .collect()
    }

    /// The causal mask hides the future; a window of 2 also hides everything two positions
    /// back or more; one new position with nothing out of reach needs no mask at all.
    #[test]
    fn masks_hide_the_future_and_what_is_out_of_the_window() {
        let dev = Device::Cpu;
        let causal = attention_mask(3, 1, None, &dev).unwrap().unwrap();
        assert_eq!(
            hidden(&causal),
            vec![
                vec![false, false, true, true],
                vec![false, false, false, true],
                vec![false, false, false, false]
            ]
        );
        let windowed = attention_mask(3, 1, Some(2), &dev).unwrap().unwrap();
        assert_eq!(
            hidden(&windowed),
            vec![
                vec![false, false, true, true],
                vec![true, false, false, true],
                vec![true, true, false, false]
            ]
        );
        assert!(attention_mask(1, 5, None, &dev).unwrap().is_none());
        assert!(attention_mask(1, 1, Some(2), &dev).unwrap().is_none());
        let decode = attention_mask(1, 4, Some(2), &dev).unwrap().unwrap();
        assert_eq!(hidden(&decode), vec![vec![true, true, true, false, false]]);
    }
}
