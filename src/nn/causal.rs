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
    /// Attends from `xs` (batch, seq, hidden), whose first position is `cache.len()`, to
    /// everything in `cache` and itself; writes the new keys and values into `cache`.
    pub fn forward(
        &self,
        xs: &Tensor,
        rope: &Rope,
        mask: Option<&Tensor>,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let (b, seq, _) = xs.dims3()?;
        let pos = cache.len();
        let (q_dim, kv_dim) = (
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
        );
        let (mut q, mut k, mut v) = match &self.qkv {
            QkvProjection::Separate { q, k, v } => (q.forward(xs)?, k.forward(xs)?, v.forward(xs)?),
            QkvProjection::Fused(qkv) => {
                let all = qkv.forward(xs)?;
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
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?; // (b, kv_heads, rep*seq, head_dim)
        let out = out
            .reshape((b, self.num_heads, seq, self.head_dim))?
            .transpose(1, 2)?
            .reshape((b, seq, q_dim))?;
        self.o.forward(&out)
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

impl Module for GatedMlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (gate, up) = match &self.gate_up {
            GateUp::Separate { gate, up } => (gate.forward(xs)?, up.forward(xs)?),
            GateUp::Fused { gate_up, hidden } => {
                let both = gate_up.forward(xs)?;
                (
                    both.narrow(D::Minus1, 0, *hidden)?,
                    both.narrow(D::Minus1, *hidden, *hidden)?,
                )
            }
        };
        let gate = match self.act {
            Activation::Silu => candle_nn::ops::silu(&gate)?,
            Activation::Gelu => gelu_ggml(&gate)?,
        };
        self.down.forward(&(gate * up)?)
    }
}

/// The masks of one forward pass, computed once and shared by the layers: the causal one, and
/// the sliding-window one for the layers that use it.
#[derive(Debug)]
pub struct Masks {
    pub causal: Option<Tensor>,
    pub windowed: Option<Tensor>,
}

/// One layer of a decoder-only model: what an architecture file implements.
pub trait DecoderLayer: std::fmt::Debug + Send + Sync {
    /// Transforms `xs` (batch, seq, hidden), whose first position is `cache.len()`.
    fn forward(&self, xs: &Tensor, masks: &Masks, cache: &mut LayerCache) -> Result<Tensor>;
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
    fn forward(&self, xs: &Tensor, masks: &Masks, cache: &mut LayerCache) -> Result<Tensor> {
        let h = self.attn_norm.forward(xs)?;
        let h = self
            .attn
            .forward(&h, &self.rope, masks.causal.as_ref(), cache)?;
        let xs_mid = (h + xs)?;
        let h = self.mlp.forward(&self.ffn_norm.forward(&xs_mid)?)?;
        h + xs_mid
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

    /// A fresh, empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len(), self.max_len)
    }

    /// Feeds `ids` (one sequence) after what `cache` already holds, and returns the logits
    /// (f32, vocabulary-sized) for the token that follows the last of them.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let seq = ids.len();
        if seq == 0 {
            candle_core::bail!("forward called with no tokens");
        }
        let pos = cache.len();
        if pos + seq > self.max_len {
            candle_core::bail!(
                "sequence of {} tokens exceeds the context of {} tokens",
                pos + seq,
                self.max_len
            );
        }
        let masks = Masks {
            causal: attention_mask(seq, pos, None, &self.device)?,
            windowed: match self.window {
                Some(w) => attention_mask(seq, pos, Some(w), &self.device)?,
                None => None,
            },
        };
        let mut xs = self.embed.forward(ids, &self.device)?;
        if let Some(scale) = self.embed_scale {
            xs = (xs * scale)?;
        }
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers_mut().iter_mut()) {
            xs = layer.forward(&xs, &masks, layer_cache)?;
        }
        // Only the last position is projected onto the (large) vocabulary.
        let last = xs.narrow(1, seq - 1, 1)?;
        let last = self.norm.forward(&last)?;
        let mut logits = self.output.forward(&last)?;
        if let Some(cap) = self.final_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        logits.squeeze(0)?.squeeze(0)?.to_dtype(DType::F32)
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
