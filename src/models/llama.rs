//! The `llama` architecture of GGUF files: Llama 2, Llama 3.x (3.1's frequency factors
//! included) and Mistral, quantized.
//!
//! A layer: RMS norm, self-attention (grouped-query, no biases, interleaved rotation: llama.cpp's
//! converter permutes Q and K so that pairs are adjacent), residual; RMS norm, SwiGLU MLP,
//! residual. The output projection is tied to the embeddings when the file has no
//! `output.weight` (Llama 3.2 1B and 3B).
//!
//! Not for: mixtures of experts (`llama.expert_count` > 0, Mixtral), which are refused; the
//! tokenizer and chat template (`tokenizers::gguf`, `backends::chat_template`).

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result};

use super::{DecoderConfig, GgufTensors, Meta};
use crate::nn::causal::{Activation, Decoder, PreNormLayer};
use crate::nn::rope::{Rope, RopeConfig, RopeStyle};

/// Hyper-parameters, read from the GGUF metadata (`llama.*` keys, as llama.cpp writes them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    #[serde(flatten)]
    pub decoder: DecoderConfig,
    /// 1 / `rope.scaling.factor` when the scaling is linear, else 1.
    pub rope_freq_scale: f32,
}

impl Config {
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let meta = Meta::new(ct, "llama")?;
        if meta.opt_usize("expert_count")?.unwrap_or(0) > 0 {
            candle_core::bail!("mixture-of-experts llama models (Mixtral) are not supported");
        }
        Ok(Self {
            decoder: meta.decoder_config(10_000.0)?,
            rope_freq_scale: meta.linear_rope_scale()?,
        })
    }
}

/// The decoder: immutable once loaded, shared by reference between threads.
pub type Model = Decoder<PreNormLayer>;

/// Loads the weights; `max_len` caps the context (prompt plus generation), clamped to the
/// model's own.
pub fn from_gguf<R: std::io::Seek + std::io::Read>(
    ct: &gguf_file::Content,
    reader: &mut R,
    max_len: usize,
    device: &Device,
) -> Result<Model> {
    let Config {
        decoder: cfg,
        rope_freq_scale,
    } = Config::from_gguf(ct)?;
    let max_len = cfg.max_len(max_len);
    let eps = cfg.rms_norm_eps;
    let mut t = GgufTensors::new(ct, reader, device);
    let embed_output = t.embedding_and_output(cfg.hidden_size)?;
    let rope = RopeConfig {
        style: RopeStyle::Interleaved,
        n_rot: cfg.n_rot,
        freq_scale: rope_freq_scale,
        // Llama 3.1 and later: one divisor per rotated pair, shared by every layer.
        factors: t.opt_vector("rope_freqs.weight")?,
        ..RopeConfig::neox(cfg.heads.head_dim, cfg.rope_theta)
    };
    let rope = Arc::new(Rope::with(&rope, max_len, device)?);
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let attn = t.attention(i, cfg.heads)?;
        let mlp = t.gated_mlp(i, Activation::Silu)?;
        layers.push(t.pre_norm_layer(i, eps, attn, mlp, &rope)?);
    }
    t.decoder(embed_output, layers, eps, max_len)
}
