//! T5 and flan-T5 encoder-decoders (transformers' `T5ForConditionalGeneration` layout): RMS layer
//! norms before each sublayer, unscaled attention with bucketed relative position biases (computed
//! by the first block of each stack and shared by the others), ReLU or gated-GELU feed-forward,
//! and the `d_model ** -0.5` rescaling of decoder outputs that tied-embedding T5 checkpoints use.
//!
//! Written here rather than reused from candle-transformers: its T5 keeps KV caches inside the
//! layers (weights cannot be shared across threads, caches cannot be reordered for beam search),
//! has no encoder padding mask, and recomputes cross-attention keys/values at every step.
//!
//! Not for: generation loops (`crate::generate`) or prompts (`crate::backends::seq2seq`).

use candle_core::{DType, Device, Result, Tensor};
use candle_core::Module;
use candle_nn::{embedding, Activation, Embedding, Linear as CandleLinear, RmsNorm, VarBuilder};
use serde::Deserialize;

use crate::kernels::activation;
use crate::nn::attention::{MultiHead, Spec};
use crate::nn::linear::{linear_b, LinearKind, Linear};
use crate::generate::{additive_mask, DecoderState, EncoderDecoder, KeyValue};

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}

/// The `config.json` of a T5 or flan-T5 checkpoint (the fields the model needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// "relu" or "gated-gelu" (flan-T5).
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
    /// transformers < 5 ties the LM head to the embeddings and rescales decoder outputs unless
    /// this is false; transformers 5 writes `scale_decoder_outputs` instead.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    /// How linear weights are held in memory (not read from the file; set by
    /// [`T5ForConditionalGeneration::new_with`]).
    #[serde(skip)]
    pub linear_kind: LinearKind,
}

impl Config {
    fn scales_decoder_outputs(&self) -> bool {
        self.scale_decoder_outputs
            .unwrap_or(self.tie_word_embeddings)
    }
}

/// T5's bucket for a relative position `memory - context`: exact buckets for small distances,
/// logarithmic ones up to `max_distance`; the log is taken in f32, as transformers does.
fn relative_bucket(relative: i64, bidirectional: bool, buckets: usize, max_distance: usize) -> u32 {
    let mut num = buckets as i64;
    let mut base = 0;
    let distance = if bidirectional {
        num /= 2;
        if relative > 0 {
            base = num;
        }
        relative.abs()
    } else {
        -relative.min(0)
    };
    let max_exact = num / 2;
    let bucket = if distance < max_exact {
        distance
    } else {
        let log_ratio = (distance as f32 / max_exact as f32).ln();
        let log_range = (max_distance as f64 / max_exact as f64).ln() as f32;
        let large = max_exact + (log_ratio / log_range * (num - max_exact) as f32) as i64;
        large.min(num - 1)
    };
    (base + bucket) as u32
}

#[derive(Debug, Clone)]
struct Attention {
    proj: MultiHead,
    /// `(buckets, heads)`, only in the first block of a stack's self-attention.
    relative_bias: Option<Embedding>,
    buckets: usize,
    max_distance: usize,
}

impl Attention {
    fn new(cfg: &Config, relative_bias: bool, vb: VarBuilder) -> Result<Self> {
        let relative_bias = if relative_bias {
            Some(embedding(
                cfg.relative_attention_num_buckets,
                cfg.num_heads,
                vb.pp("relative_attention_bias"),
            )?)
        } else {
            None
        };
        let spec = Spec {
            d_model: cfg.d_model,
            heads: cfg.num_heads,
            head_dim: cfg.d_kv,
            bias: false,
            names: ["q", "k", "v", "o"],
            scaling: 1.0,
            kind: cfg.linear_kind,
        };
        Ok(Self {
            proj: MultiHead::new(spec, &vb)?,
            relative_bias,
            buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
        })
    }

    /// Relative position bias `(1, heads, q_len, k_len)` for queries at `q_start..q_start+q_len`.
    fn position_bias(
        &self,
        q_start: usize,
        q_len: usize,
        k_len: usize,
        bidirectional: bool,
    ) -> Result<Option<Tensor>> {
        let Some(table) = &self.relative_bias else {
            return Ok(None);
        };
        let mut ids = Vec::with_capacity(q_len * k_len);
        for q in q_start..q_start + q_len {
            for k in 0..k_len {
                let relative = k as i64 - q as i64;
                ids.push(relative_bucket(
                    relative,
                    bidirectional,
                    self.buckets,
                    self.max_distance,
                ));
            }
        }
        let ids = Tensor::from_vec(ids, (q_len, k_len), table.embeddings().device())?;
        Ok(Some(ids.apply(table)?.permute((2, 0, 1))?.unsqueeze(0)?))
    }

    fn key_value(&self, xs: &Tensor) -> Result<KeyValue> {
        self.proj.key_value(xs)
    }

    /// Unscaled attention with an additive bias broadcastable to `(b, heads, q_len, k_len)`.
    fn attend(&self, xs: &Tensor, kv: &KeyValue, bias: &Tensor) -> Result<Tensor> {
        self.proj.attend(xs, kv, Some(bias))
    }
}

#[derive(Debug, Clone)]
enum FeedForward {
    Relu {
        wi: Linear,
        wo: Linear,
    },
    Gated {
        wi_0: Linear,
        wi_1: Linear,
        wo: Linear,
        act: Activation,
    },
}

impl FeedForward {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (d, ff) = (cfg.d_model, cfg.d_ff);
        let wo = linear_b(ff, d, false, cfg.linear_kind, vb.pp("wo"))?;
        if let Some(act) = cfg.feed_forward_proj.strip_prefix("gated-") {
            let act = match act {
                "gelu" | "gelu_new" => Activation::NewGelu,
                "relu" => Activation::Relu,
                "silu" | "swish" => Activation::Silu,
                other => {
                    return Err(candle_core::Error::Msg(format!(
                        "unsupported T5 feed_forward_proj gated-{other}"
                    )))
                }
            };
            Ok(Self::Gated {
                wi_0: linear_b(d, ff, false, cfg.linear_kind, vb.pp("wi_0"))?,
                wi_1: linear_b(d, ff, false, cfg.linear_kind, vb.pp("wi_1"))?,
                wo,
                act,
            })
        } else {
            Ok(Self::Relu {
                wi: linear_b(d, ff, false, cfg.linear_kind, vb.pp("wi"))?,
                wo,
            })
        }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Relu { wi, wo } => activation::apply(&xs.apply(wi)?, Activation::Relu)?.apply(wo),
            Self::Gated {
                wi_0,
                wi_1,
                wo,
                act,
            } => (activation::apply(&xs.apply(wi_0)?, *act)? * xs.apply(wi_1)?)?.apply(wo),
        }
    }
}

fn rms_norm(cfg: &Config, vb: VarBuilder) -> Result<RmsNorm> {
    candle_nn::rms_norm(cfg.d_model, cfg.layer_norm_epsilon, vb)
}

#[derive(Debug, Clone)]
struct Block {
    self_attn: Attention,
    self_attn_norm: RmsNorm,
    /// Decoder blocks only.
    cross_attn: Option<(Attention, RmsNorm)>,
    ff: FeedForward,
    ff_norm: RmsNorm,
}

impl Block {
    fn new(cfg: &Config, first: bool, decoder: bool, vb: VarBuilder) -> Result<Self> {
        let layer = vb.pp("layer");
        let self_attn = Attention::new(cfg, first, layer.pp("0").pp("SelfAttention"))?;
        let self_attn_norm = rms_norm(cfg, layer.pp("0").pp("layer_norm"))?;
        let (cross_attn, ff_index) = if decoder {
            let cross = Attention::new(cfg, false, layer.pp("1").pp("EncDecAttention"))?;
            let norm = rms_norm(cfg, layer.pp("1").pp("layer_norm"))?;
            (Some((cross, norm)), "2")
        } else {
            (None, "1")
        };
        Ok(Self {
            self_attn,
            self_attn_norm,
            cross_attn,
            ff: FeedForward::new(cfg, layer.pp(ff_index).pp("DenseReluDense"))?,
            ff_norm: rms_norm(cfg, layer.pp(ff_index).pp("layer_norm"))?,
        })
    }

    fn feed_forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs + self.ff.forward(&xs.apply(&self.ff_norm)?)?
    }
}

/// A T5 or flan-T5 model with its LM head, ready for [`crate::generate`].
#[derive(Debug, Clone)]
pub struct T5ForConditionalGeneration {
    shared: Embedding,
    encoder: Vec<Block>,
    encoder_norm: RmsNorm,
    decoder: Vec<Block>,
    decoder_norm: RmsNorm,
    /// Its own matrix (packed for our kernel where it can be), or the shared embeddings.
    lm_head: Linear,
    output_scale: f64,
    device: Device,
}

impl T5ForConditionalGeneration {
    /// [`Self::new`] with the linear layers (attention projections, feed-forward, an untied LM
    /// head) held as `kind`.
    pub fn new_with(cfg: &Config, vb: VarBuilder, kind: LinearKind) -> Result<Self> {
        let cfg = Config {
            linear_kind: kind,
            ..cfg.clone()
        };
        Self::new(&cfg, vb)
    }

    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let shared = embedding(cfg.vocab_size, cfg.d_model, vb.pp("shared"))?;
        let lm_head = if vb.contains_tensor("lm_head.weight") {
            let w = vb.get((cfg.vocab_size, cfg.d_model), "lm_head.weight")?;
            Linear::new(w, None, cfg.linear_kind)?
        } else {
            // Tied: multiply by the embedding table itself rather than hold a packed copy.
            Linear::F32(CandleLinear::new(shared.embeddings().clone(), None))
        };
        let stack = |name: &str, layers: usize, decoder: bool| -> Result<Vec<Block>> {
            (0..layers)
                .map(|i| Block::new(cfg, i == 0, decoder, vb.pp(name).pp("block").pp(i)))
                .collect()
        };
        Ok(Self {
            encoder: stack("encoder", cfg.num_layers, false)?,
            encoder_norm: rms_norm(cfg, vb.pp("encoder").pp("final_layer_norm"))?,
            decoder: stack(
                "decoder",
                cfg.num_decoder_layers.unwrap_or(cfg.num_layers),
                true,
            )?,
            decoder_norm: rms_norm(cfg, vb.pp("decoder").pp("final_layer_norm"))?,
            shared,
            lm_head,
            output_scale: if cfg.scales_decoder_outputs() {
                (cfg.d_model as f64).powf(-0.5)
            } else {
                1.0
            },
            device: vb.device().clone(),
        })
    }

    /// Encoder output for a padded batch, `(b, len, d_model)`; `mask` is additive.
    pub fn encode_hidden(&self, input_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_, len) = input_ids.dims2()?;
        let mut xs = input_ids.apply(&self.shared)?;
        let bias = match self.encoder.first() {
            Some(first) => first.self_attn.position_bias(0, len, len, true)?,
            None => None,
        };
        let bias = match bias {
            Some(b) => b.broadcast_add(mask)?,
            None => mask.clone(),
        };
        for block in &self.encoder {
            let h = xs.apply(&block.self_attn_norm)?;
            xs = (&xs
                + block
                    .self_attn
                    .attend(&h, &block.self_attn.key_value(&h)?, &bias)?)?;
            xs = block.feed_forward(&xs)?;
        }
        xs.apply(&self.encoder_norm)
    }

    /// Decoder forward over one new token per row, `(rows, 1)`; returns logits `(rows, vocab)`.
    pub fn forward(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let (_, len) = tokens.dims2()?;
        let start = state.position;
        let mut xs = tokens.apply(&self.shared)?;
        let self_bias = match self.decoder.first() {
            Some(first) => first
                .self_attn
                .position_bias(start, len, start + len, false)?,
            None => None,
        };
        let self_bias = match self_bias {
            Some(b) => b,
            None => Tensor::zeros(1, DType::F32, &self.device)?,
        };
        for (block, cache) in self.decoder.iter().zip(state.layers.iter_mut()) {
            let h = xs.apply(&block.self_attn_norm)?;
            let kv = cache.self_attn.append(block.self_attn.key_value(&h)?)?;
            xs = (&xs + block.self_attn.attend(&h, &kv, &self_bias)?)?;
            if let Some((cross, norm)) = &block.cross_attn {
                let h = xs.apply(norm)?;
                xs = (&xs + cross.attend(&h, &cache.cross_attn, &state.encoder_mask)?)?;
            }
            xs = block.feed_forward(&xs)?;
        }
        state.position += len;
        let xs = (xs.apply(&self.decoder_norm)? * self.output_scale)?;
        self.lm_head.forward(&xs)
    }
}

impl EncoderDecoder for T5ForConditionalGeneration {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<DecoderState> {
        let mask = additive_mask(attention_mask)?;
        let hidden = self.encode_hidden(input_ids, &mask)?;
        // Every decoder block has cross-attention (`Block::new` with `decoder = true`).
        let cross = self
            .decoder
            .iter()
            .filter_map(|block| block.cross_attn.as_ref())
            .map(|(cross, _)| cross.key_value(&hidden))
            .collect::<Result<_>>()?;
        Ok(DecoderState::start(mask, cross))
    }

    fn decode_step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        self.forward(tokens, state)?
            .squeeze(1)?
            .to_dtype(DType::F32)
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn buckets_are_exact_near_and_logarithmic_far() {
        // Bidirectional, 32 buckets: 16 per direction, 8 exact.
        assert_eq!(relative_bucket(0, true, 32, 128), 0);
        assert_eq!(relative_bucket(-3, true, 32, 128), 3);
        assert_eq!(relative_bucket(3, true, 32, 128), 19);
        assert_eq!(relative_bucket(-1000, true, 32, 128), 15);
        // Unidirectional: future positions all land in bucket 0.
        assert_eq!(relative_bucket(5, false, 32, 128), 0);
        assert_eq!(relative_bucket(-5, false, 32, 128), 5);
        assert_eq!(relative_bucket(-1000, false, 32, 128), 31);
    }
}
