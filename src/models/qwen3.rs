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

use super::{DecoderConfig, GgufTensors, Meta};
use crate::nn::causal::{Activation, Decoder, PreNormLayer};
use crate::nn::rope::Rope;

/// Hyper-parameters, read from the GGUF metadata (`qwen3.*` keys, as llama.cpp writes them):
/// only what every decoder has.
pub fn config(ct: &gguf_file::Content) -> Result<DecoderConfig> {
    Meta::new(ct, "qwen3")?.decoder_config(1_000_000.0)
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
    let cfg = config(ct)?;
    let max_len = cfg.max_len(max_len);
    let eps = cfg.rms_norm_eps;
    let mut t = GgufTensors::new(ct, reader, device);
    let embed_output = t.embedding_and_output(cfg.hidden_size)?;
    let rope = Arc::new(Rope::new(cfg.heads.head_dim, cfg.rope_theta, max_len, device)?);
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let mut attn = t.attention(i, cfg.heads)?;
        attn.qk_norm = Some(t.qk_norms(i, eps)?);
        let mlp = t.gated_mlp(i, Activation::Silu)?;
        layers.push(t.pre_norm_layer(i, eps, attn, mlp, &rope)?);
    }
    t.decoder(embed_output, layers, eps, max_len)
}
