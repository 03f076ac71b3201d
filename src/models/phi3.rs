//! The `phi3` architecture of GGUF files: Phi-3 and Phi-3.5 mini/medium and Phi-4-mini,
//! quantized.
//!
//! A layer: RMS norm, self-attention with one fused `attn_qkv` matrix (Q's rows, then K's, then
//! V's; files with separate matrices load too), Q scaled by 1/sqrt(head size) before the scores
//! as llama.cpp does, NeoX rotation of the first `rope.dimension_count` dimensions, residual; RMS
//! norm, SwiGLU MLP with one fused `ffn_up` matrix (gate rows first), residual. Like llama.cpp,
//! no sliding window, although the files declare one.
//!
//! Known limit: the long-context rotation of the 128k models (`rope_factors_long`) is not
//! implemented. Their short factors are used, and the context is capped at
//! `rope.scaling.original_context_length`, within which those are the right ones.
//!
//! Not for: the tokenizer and chat template (`tokenizers::gguf`, `backends::chat_template`).

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result};

use super::{DecoderConfig, GgufTensors, Meta};
use crate::nn::causal::{Activation, Decoder, GateUp, GatedMlp, PreNormLayer};
use crate::nn::rope::{Rope, RopeConfig};

/// Hyper-parameters, read from the GGUF metadata (`phi3.*` keys, as llama.cpp writes them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    #[serde(flatten)]
    pub decoder: DecoderConfig,
    /// The rows of each half of the fused gate/up matrix.
    pub feed_forward: usize,
    /// The context the short rope factors are for, when the file has long ones.
    pub original_context_length: Option<usize>,
}

impl Config {
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let meta = Meta::new(ct, "phi3")?;
        Ok(Self {
            decoder: meta.decoder_config(10_000.0)?,
            feed_forward: meta.usize("feed_forward_length")?,
            original_context_length: meta.opt_usize("rope.scaling.original_context_length")?,
        })
    }
}

/// The decoder: immutable once loaded, shared by reference between threads.
pub type Model = Decoder<PreNormLayer>;

/// Loads the weights; `max_len` caps the context (prompt plus generation), clamped to the
/// model's own (and, with long-context rope factors, to the original context).
pub fn from_gguf<R: std::io::Seek + std::io::Read>(
    ct: &gguf_file::Content,
    reader: &mut R,
    max_len: usize,
    device: &Device,
) -> Result<Model> {
    let Config {
        decoder: cfg,
        feed_forward,
        original_context_length,
    } = Config::from_gguf(ct)?;
    let mut t = GgufTensors::new(ct, reader, device);
    let mut max_len = cfg.max_len(max_len);
    if t.has("rope_factors_long.weight") {
        max_len = max_len.min(original_context_length.unwrap_or(max_len));
    }
    let eps = cfg.rms_norm_eps;
    let embed_output = t.embedding_and_output(cfg.hidden_size)?;
    let rope = RopeConfig {
        n_rot: cfg.n_rot,
        factors: t.opt_vector("rope_factors_short.weight")?,
        ..RopeConfig::neox(cfg.heads.head_dim, cfg.rope_theta)
    };
    let rope = Arc::new(Rope::with(&rope, max_len, device)?);
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = |suffix: &str| format!("blk.{i}.{suffix}");
        let mut attn = t.attention(i, cfg.heads)?;
        attn.q_scale = Some(attn.score_scale);
        attn.score_scale = 1.0;
        let mlp = GatedMlp {
            gate_up: GateUp::Fused {
                gate_up: t.linear(&p("ffn_up.weight"))?,
                hidden: feed_forward,
            },
            down: t.linear(&p("ffn_down.weight"))?,
            act: Activation::Silu,
        };
        layers.push(t.pre_norm_layer(i, eps, attn, mlp, &rope)?);
    }
    t.decoder(embed_output, layers, eps, max_len)
}
