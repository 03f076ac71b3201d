//! BART-style encoder-decoder transformers: BART (bart-large-cnn, distilbart-cnn-*), mBART, and
//! the Marian (opus-mt) family, which transformers builds from the same parts. Weights and config
//! follow transformers' `BartForConditionalGeneration` / `MarianMTModel` layout.
//!
//! Written here rather than reused from candle-transformers: its Marian keeps the KV caches
//! inside the layers (so weights cannot be shared across threads), has no encoder padding mask,
//! recomputes cross-attention keys/values every step and cannot reorder caches for beam search;
//! and it has no BART. Here the model is immutable and all per-call state is a
//! [`DecoderState`].
//!
//! Not for: generation loops (`crate::generate`) or tokenizers (`crate::tokenizers`, `crate::backends::seq2seq`).

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{layer_norm, Activation, Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use crate::nn::attention::{MultiHead, Spec};
pub use crate::nn::linear::LinearKind;
use crate::nn::linear::{linear_b, Linear};
use crate::generate::{additive_mask, DecoderState, EncoderDecoder, LayerCache};

fn default_true() -> bool {
    true
}

/// The `config.json` of a BART, mBART or Marian checkpoint (the fields the model needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// "bart", "mbart" or "marian".
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    /// Marian only: the target vocabulary size when it differs from the source one.
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub activation_function: Activation,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub scale_embedding: bool,
    pub pad_token_id: u32,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    /// Marian only: whether encoder and decoder share one embedding matrix.
    #[serde(default = "default_true")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// How linear weights are held in memory (not read from the file; set by
    /// [`BartForConditionalGeneration::new_with`]).
    #[serde(skip)]
    pub linear_kind: LinearKind,
}

impl Config {
    fn is_marian(&self) -> bool {
        self.model_type == "marian"
    }

    /// mBART normalizes before each sublayer and after each stack; BART and Marian after.
    fn pre_norm(&self) -> bool {
        self.model_type == "mbart"
    }

    pub(crate) fn target_vocab(&self) -> usize {
        self.decoder_vocab_size.unwrap_or(self.vocab_size)
    }
}

/// Position embeddings: Marian's fixed sinusoids, or BART's learned table offset by 2.
#[derive(Debug, Clone)]
enum Positions {
    Sinusoidal(Tensor),
    Learned(Tensor),
}

impl Positions {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        if cfg.is_marian() {
            sinusoidal(cfg.max_position_embeddings, cfg.d_model, vb.device()).map(Self::Sinusoidal)
        } else {
            let table = vb.get(
                (cfg.max_position_embeddings + 2, cfg.d_model),
                "embed_positions.weight",
            )?;
            Ok(Self::Learned(table))
        }
    }

    /// Embeddings of positions `start..start + len`, `(len, d_model)`.
    fn get(&self, start: usize, len: usize) -> Result<Tensor> {
        match self {
            Self::Sinusoidal(t) => t.narrow(0, start, len),
            Self::Learned(t) => t.narrow(0, start + 2, len),
        }
    }
}

/// Marian's sinusoid table: sines of all frequencies in the first half of each row, cosines in
/// the second, computed in f64 and rounded to f32 as transformers does.
fn sinusoidal(positions: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; positions * dim];
    for pos in 0..positions {
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            if j % 2 == 0 {
                row[j / 2] = angle.sin() as f32;
            } else {
                row[half + j / 2] = angle.cos() as f32;
            }
        }
    }
    Tensor::from_vec(table, (positions, dim), device)
}

/// BART's attention: biased `q_proj`/`k_proj`/`v_proj`/`out_proj`, queries scaled by
/// `head_dim ** -0.5`.
fn attention(cfg: &Config, heads: usize, vb: VarBuilder) -> Result<MultiHead> {
    let d_model = cfg.d_model;
    let head_dim = d_model / heads;
    let spec = Spec {
        d_model,
        heads,
        head_dim,
        bias: true,
        names: ["q_proj", "k_proj", "v_proj", "out_proj"],
        scaling: (head_dim as f64).powf(-0.5),
        kind: cfg.linear_kind,
    };
    MultiHead::new(spec, &vb)
}

/// Feed-forward block: fc1, activation, fc2.
#[derive(Debug, Clone)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn new(cfg: &Config, ffn_dim: usize, vb: &VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear_b(cfg.d_model, ffn_dim, true, cfg.linear_kind, vb.pp("fc1"))?,
            fc2: linear_b(ffn_dim, cfg.d_model, true, cfg.linear_kind, vb.pp("fc2"))?,
            activation: cfg.activation_function,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let h = xs.apply(&self.fc1)?;
        crate::kernels::activation::apply(&h, self.activation)?.apply(&self.fc2)
    }
}

/// Residual sublayer with its layer norm, applied before (mBART) or after (BART, Marian).
fn residual(
    xs: &Tensor,
    norm: &LayerNorm,
    pre_norm: bool,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if pre_norm {
        xs + f(&xs.apply(norm)?)?
    } else {
        (xs + f(xs)?)?.apply(norm)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: MultiHead,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            self_attn: attention(cfg, cfg.encoder_attention_heads, vb.pp("self_attn"))?,
            self_attn_layer_norm: layer_norm(cfg.d_model, 1e-5, vb.pp("self_attn_layer_norm"))?,
            ffn: FeedForward::new(cfg, cfg.encoder_ffn_dim, &vb)?,
            final_layer_norm: layer_norm(cfg.d_model, 1e-5, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor, pre_norm: bool) -> Result<Tensor> {
        let xs = residual(xs, &self.self_attn_layer_norm, pre_norm, |h| {
            self.self_attn
                .attend(h, &self.self_attn.key_value(h)?, Some(mask))
        })?;
        residual(&xs, &self.final_layer_norm, pre_norm, |h| {
            self.ffn.forward(h)
        })
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: MultiHead,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: MultiHead,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let heads = cfg.decoder_attention_heads;
        Ok(Self {
            self_attn: attention(cfg, heads, vb.pp("self_attn"))?,
            self_attn_layer_norm: layer_norm(cfg.d_model, 1e-5, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: attention(cfg, heads, vb.pp("encoder_attn"))?,
            encoder_attn_layer_norm: layer_norm(
                cfg.d_model,
                1e-5,
                vb.pp("encoder_attn_layer_norm"),
            )?,
            ffn: FeedForward::new(cfg, cfg.decoder_ffn_dim, &vb)?,
            final_layer_norm: layer_norm(cfg.d_model, 1e-5, vb.pp("final_layer_norm"))?,
        })
    }

    /// One incremental step: `xs` holds the new positions only, the cache everything before.
    fn forward(
        &self,
        xs: &Tensor,
        cache: &mut LayerCache,
        encoder_mask: &Tensor,
        pre_norm: bool,
    ) -> Result<Tensor> {
        let xs = residual(xs, &self.self_attn_layer_norm, pre_norm, |h| {
            let kv = cache.self_attn.append(self.self_attn.key_value(h)?)?;
            self.self_attn.attend(h, &kv, None)
        })?;
        let xs = residual(&xs, &self.encoder_attn_layer_norm, pre_norm, |h| {
            self.encoder_attn
                .attend(h, &cache.cross_attn, Some(encoder_mask))
        })?;
        residual(&xs, &self.final_layer_norm, pre_norm, |h| {
            self.ffn.forward(h)
        })
    }
}

/// A token embedding table: its own, or the rows of a tied LM head as that layer holds them
/// (packed f32, or int8 like the other linear layers), so the matrix is in memory once.
#[derive(Debug, Clone)]
enum TokenTable {
    Table(Embedding),
    LmHead(Arc<Linear>),
}

impl TokenTable {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Table(table) => ids.apply(table),
            Self::LmHead(head) => head
                .rows(ids)
                .unwrap_or_else(|| candle_core::bail!("this LM head cannot serve as a table")),
        }
    }
}

/// Token embeddings, positions and the optional embedding layer norm of one stack.
#[derive(Debug, Clone)]
struct Embeddings {
    tokens: TokenTable,
    positions: Positions,
    layernorm_embedding: Option<LayerNorm>,
    scale: f64,
}

impl Embeddings {
    fn new(cfg: &Config, tokens: TokenTable, vb: &VarBuilder) -> Result<Self> {
        let layernorm_embedding = if cfg.is_marian() {
            None
        } else {
            Some(layer_norm(cfg.d_model, 1e-5, vb.pp("layernorm_embedding"))?)
        };
        Ok(Self {
            tokens,
            positions: Positions::new(cfg, vb.clone())?,
            layernorm_embedding,
            scale: if cfg.scale_embedding {
                (cfg.d_model as f64).sqrt()
            } else {
                1.0
            },
        })
    }

    fn forward(&self, ids: &Tensor, start: usize) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let xs = (self.tokens.forward(ids)? * self.scale)?;
        let xs = xs.broadcast_add(&self.positions.get(start, len)?)?;
        match &self.layernorm_embedding {
            Some(norm) => xs.apply(norm),
            None => Ok(xs),
        }
    }
}

/// The first of `names` that `vb` holds, with the given shape.
fn get_first(vb: &VarBuilder, shape: (usize, usize), names: &[&str]) -> Result<Tensor> {
    for name in names {
        if vb.contains_tensor(name) {
            return vb.get(shape, name);
        }
    }
    // None present: let the var builder report the first name as missing.
    vb.get(shape, names[0])
}

/// A BART, mBART or Marian model with its LM head, ready for [`crate::generate`].
#[derive(Debug, Clone)]
pub struct BartForConditionalGeneration {
    encoder_embeddings: Embeddings,
    encoder_layers: Vec<EncoderLayer>,
    encoder_layer_norm: Option<LayerNorm>,
    decoder_embeddings: Embeddings,
    decoder_layers: Vec<DecoderLayer>,
    decoder_layer_norm: Option<LayerNorm>,
    /// The LM head (with the final logits bias, if any), held as the other linear layers are.
    lm_head: Arc<Linear>,
    pre_norm: bool,
    device: Device,
}

impl BartForConditionalGeneration {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let model = vb.pp("model");
        let d = cfg.d_model;
        let src_shape = (cfg.vocab_size, d);
        let tgt_shape = (cfg.target_vocab(), d);
        let encoder_tokens = get_first(
            &model,
            src_shape,
            &["encoder.embed_tokens.weight", "shared.weight"],
        )?;
        // Shared embeddings are one matrix: keep one copy in memory, not one per stack.
        let decoder_tokens = if cfg.share_encoder_decoder_embeddings && src_shape == tgt_shape {
            encoder_tokens.clone()
        } else if cfg.share_encoder_decoder_embeddings {
            get_first(
                &model,
                tgt_shape,
                &["decoder.embed_tokens.weight", "shared.weight"],
            )?
        } else {
            model.get(tgt_shape, "decoder.embed_tokens.weight")?
        };
        let tied = cfg.tie_word_embeddings || !vb.contains_tensor("lm_head.weight");
        let encoder_is_decoder = cfg.share_encoder_decoder_embeddings && src_shape == tgt_shape;
        let lm_head = if tied {
            decoder_tokens.clone()
        } else {
            vb.get(tgt_shape, "lm_head.weight")?
        };
        // Marian and BART checkpoints store an all-zero bias; adding it would only cost a pass
        // over the logits at every step.
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            let bias = vb.get((1, cfg.target_vocab()), "final_logits_bias")?;
            let nonzero = bias.abs()?.max_all()?.to_scalar::<f32>()? != 0.0;
            nonzero.then(|| bias.squeeze(0)).transpose()?
        } else {
            None
        };
        let pre_norm = cfg.pre_norm();
        let stack_norm = |vb: VarBuilder| -> Result<Option<LayerNorm>> {
            if pre_norm {
                Ok(Some(layer_norm(d, 1e-5, vb.pp("layer_norm"))?))
            } else {
                Ok(None)
            }
        };
        let lm_head = Arc::new(Linear::new(lm_head, final_logits_bias, cfg.linear_kind)?);
        // A table tied to a packed or int8 LM head reads its rows from that copy.
        let table = |tokens: Tensor, is_lm_head: bool| match lm_head.as_ref() {
            Linear::F32(_) => TokenTable::Table(Embedding::new(tokens, d)),
            _ if is_lm_head => TokenTable::LmHead(lm_head.clone()),
            _ => TokenTable::Table(Embedding::new(tokens, d)),
        };
        let encoder_tokens = table(encoder_tokens, tied && encoder_is_decoder);
        let decoder_tokens = table(decoder_tokens, tied);
        let enc = model.pp("encoder");
        let dec = model.pp("decoder");
        Ok(Self {
            encoder_embeddings: Embeddings::new(cfg, encoder_tokens, &enc)?,
            encoder_layers: (0..cfg.encoder_layers)
                .map(|i| EncoderLayer::new(cfg, enc.pp(format!("layers.{i}"))))
                .collect::<Result<_>>()?,
            encoder_layer_norm: stack_norm(enc.clone())?,
            decoder_embeddings: Embeddings::new(cfg, decoder_tokens, &dec)?,
            decoder_layers: (0..cfg.decoder_layers)
                .map(|i| DecoderLayer::new(cfg, dec.pp(format!("layers.{i}"))))
                .collect::<Result<_>>()?,
            decoder_layer_norm: stack_norm(dec.clone())?,
            lm_head,
            pre_norm,
            device: vb.device().clone(),
        })
    }

    /// [`Self::new`] with the linear layers (attention projections, feed-forward, LM head) held
    /// as `kind`.
    pub fn new_with(cfg: &Config, vb: VarBuilder, kind: LinearKind) -> Result<Self> {
        let cfg = Config {
            linear_kind: kind,
            ..cfg.clone()
        };
        Self::new(&cfg, vb)
    }

    /// Encoder output for a padded batch, `(b, len, d_model)`.
    pub fn encode_hidden(&self, input_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let mut xs = self.encoder_embeddings.forward(input_ids, 0)?;
        for layer in &self.encoder_layers {
            xs = layer.forward(&xs, mask, self.pre_norm)?;
        }
        match &self.encoder_layer_norm {
            Some(norm) => xs.apply(norm),
            None => Ok(xs),
        }
    }

    /// Decoder forward over the new tokens `(rows, len)`; returns logits `(rows, len, vocab)`.
    pub fn forward(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let (_, len) = tokens.dims2()?;
        let mut xs = self.decoder_embeddings.forward(tokens, state.position)?;
        for (layer, cache) in self.decoder_layers.iter().zip(state.layers.iter_mut()) {
            xs = layer.forward(&xs, cache, &state.encoder_mask, self.pre_norm)?;
        }
        if let Some(norm) = &self.decoder_layer_norm {
            xs = xs.apply(norm)?;
        }
        state.position += len;
        self.lm_head.forward(&xs)
    }
}

impl EncoderDecoder for BartForConditionalGeneration {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<DecoderState> {
        let mask = additive_mask(attention_mask)?;
        let hidden = self.encode_hidden(input_ids, &mask)?;
        let cross = self
            .decoder_layers
            .iter()
            .map(|layer| layer.encoder_attn.key_value(&hidden))
            .collect::<Result<_>>()?;
        Ok(DecoderState::start(mask, cross))
    }

    fn decode_step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let logits = self.forward(tokens, state)?;
        logits.squeeze(1)?.to_dtype(DType::F32)
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoids_put_sines_first_and_cosines_second() {
        let t = sinusoidal(3, 4, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(t[0], vec![0.0, 0.0, 1.0, 1.0]);
        // Position 1, dim 4: frequencies 1 and 1/100.
        let expect = [1f64.sin(), 0.01f64.sin(), 1f64.cos(), 0.01f64.cos()];
        for (got, want) in t[1].iter().zip(expect) {
            assert!((f64::from(*got) - want).abs() < 1e-7);
        }
    }
}
