//! The `qwen3` architecture of GGUF files: Qwen3 dense models (0.6B to 32B), quantized.
//!
//! A layer as Qwen2's, without the Q/K/V biases and with an RMS norm over each head of Q and K
//! (`attn_q_norm`, `attn_k_norm`) before the NeoX rotation. The head size is
//! `qwen3.attention.key_length`, which need not be the hidden size over the heads.
//!
//! Not for: Qwen3's mixtures of experts (`qwen3moe`, another architecture), or switching its
//! thinking off, which the chat template does (`backends::chat_template`).

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result};

use super::{GgufTensors, HeadShape, Meta};
use crate::nn::causal::{Activation, Decoder, PreNormLayer};
use crate::nn::rope::{Rope, RopeConfig};

/// Hyper-parameters, read from the GGUF metadata (`qwen3.*` keys, as llama.cpp writes them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub context_length: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f32,
}

impl Config {
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let meta = Meta::new(ct, "qwen3")?;
        let (num_heads, num_kv_heads) = meta.heads()?;
        let hidden_size = meta.usize("embedding_length")?;
        Ok(Self {
            hidden_size,
            num_layers: meta.usize("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim: meta.head_dim(hidden_size, num_heads)?,
            context_length: meta.usize("context_length")?,
            rms_norm_eps: meta.f32("attention.layer_norm_rms_epsilon")? as f64,
            rope_theta: meta.opt_f32("rope.freq_base")?.unwrap_or(1_000_000.0),
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
    let cfg = Config::from_gguf(ct)?;
    let max_len = max_len.min(cfg.context_length).max(1);
    let eps = cfg.rms_norm_eps;
    let mut t = GgufTensors::new(ct, reader, device);
    let embed_output = t.embedding_and_output(cfg.hidden_size)?;
    let rope = RopeConfig::neox(cfg.head_dim, cfg.rope_theta);
    let rope = Arc::new(Rope::with(&rope, max_len, device)?);
    let shape = HeadShape {
        heads: cfg.num_heads,
        kv_heads: cfg.num_kv_heads,
        head_dim: cfg.head_dim,
    };
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let mut attn = t.attention(i, shape)?;
        attn.qk_norm = Some(t.qk_norms(i, eps)?);
        let mlp = t.gated_mlp(i, Activation::Silu)?;
        layers.push(t.pre_norm_layer(i, eps, attn, mlp, &rope)?);
    }
    t.decoder(embed_output, layers, eps, max_len)
}
