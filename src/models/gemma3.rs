//! The `gemma3` architecture of GGUF files: Gemma 3 text models (270M to 27B), quantized.
//!
//! What differs from Llama, as llama.cpp runs it:
//! - the embeddings are multiplied by sqrt(hidden size);
//! - each block has a norm before and after it ("sandwich" norms: `attn_norm`,
//!   `post_attention_norm`, `ffn_norm`, `post_ffw_norm`); the converter has already added 1 to
//!   Gemma's norm weights, so every norm is a plain RMS norm;
//! - Q and K get a per-head RMS norm before the NeoX rotation, and Q is scaled by
//!   1/sqrt(head size) before the scores (1/sqrt(hidden / heads) for the 27B);
//! - five layers in six (`il % 6 < 5`) attend within a sliding window
//!   (`attention.sliding_window`) and rotate at base 10,000 (or `rope.freq_base_swa`); every
//!   sixth is global and rotates at `rope.freq_base`, with the file's linear scaling;
//! - the MLP is GeGLU (ggml's f16-table GELU), the output is tied to the embeddings, and the
//!   logits are soft-capped when the file has `final_logit_softcapping`.
//!
//! Not for: the vision tower of the multimodal files (their text weights load; images are not
//! read), Gemma 2 or Gemma 3n (other architectures).

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::{DecoderConfig, GgufTensors, Meta};
use crate::nn::causal::{Activation, Decoder, DecoderLayer, GatedMlp, Part, SelfAttention};
use crate::nn::rope::{Rope, RopeConfig};

/// Every `SWA_PERIOD`-th layer is global; the others use the sliding window (llama.cpp's
/// `set_swa_pattern(6)` for Gemma 3).
const SWA_PERIOD: usize = 6;

/// Hyper-parameters, read from the GGUF metadata (`gemma3.*` keys, as llama.cpp writes them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    /// Its `rope_theta` is the base of the global layers' rotation.
    #[serde(flatten)]
    pub decoder: DecoderConfig,
    /// The base of the sliding-window layers' rotation.
    pub rope_theta_local: f32,
    /// 1 / the linear scaling factor of the global layers' rotation.
    pub rope_freq_scale: f32,
    /// The sliding window, when the file declares one.
    pub sliding_window: Option<usize>,
    pub final_softcap: Option<f64>,
    /// Q is multiplied by this before the scores.
    pub query_scale: f64,
}

impl Config {
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let meta = Meta::new(ct, "gemma3")?;
        let decoder = meta.decoder_config(1_000_000.0)?;
        // llama.cpp: the 27B (62 layers) scales by the hidden size per head, the others by the
        // head size.
        let query_scale = if decoder.num_layers == 62 {
            1.0 / ((decoder.hidden_size / decoder.heads.heads) as f64).sqrt()
        } else {
            1.0 / (decoder.heads.head_dim as f64).sqrt()
        };
        Ok(Self {
            decoder,
            rope_theta_local: meta.opt_f32("rope.freq_base_swa")?.unwrap_or(10_000.0),
            rope_freq_scale: meta.linear_rope_scale()?,
            sliding_window: meta.opt_usize("attention.sliding_window")?.filter(|&w| w > 0),
            final_softcap: meta
                .opt_f32("final_logit_softcapping")?
                .filter(|&c| c > 0.0)
                .map(f64::from),
            query_scale,
        })
    }

    /// Whether layer `i` attends within the sliding window.
    pub fn is_local(&self, i: usize) -> bool {
        self.sliding_window.is_some() && i % SWA_PERIOD < SWA_PERIOD - 1
    }
}

/// One Gemma 3 layer.
#[derive(Debug)]
pub struct Layer {
    attn_norm: RmsNorm,
    attn: SelfAttention,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    mlp: GatedMlp,
    post_ffn_norm: RmsNorm,
    rope: Arc<Rope>,
    local: bool,
}

impl DecoderLayer for Layer {
    fn forward(&self, xs: &Tensor, parts: &mut [Part<'_>]) -> Result<Tensor> {
        let h = self.attn_norm.forward(xs)?;
        let h = self.attn.forward(&h, &self.rope, parts, self.local)?;
        let h = self.post_attn_norm.forward(&h)?;
        let xs_mid = (h + xs)?;
        let lens: Vec<usize> = parts.iter().map(|p| p.len).collect();
        let h = self.mlp.forward(&self.ffn_norm.forward(&xs_mid)?, &lens)?;
        let h = self.post_ffn_norm.forward(&h)?;
        h + xs_mid
    }

    fn attention(&self) -> &SelfAttention {
        &self.attn
    }
}

/// The decoder: immutable once loaded, shared by reference between threads.
pub type Model = Decoder<Layer>;

/// Loads the weights; `max_len` caps the context (prompt plus generation), clamped to the
/// model's own.
pub fn from_gguf<R: std::io::Seek + std::io::Read>(
    ct: &gguf_file::Content,
    reader: &mut R,
    max_len: usize,
    device: &Device,
) -> Result<Model> {
    let cfg = Config::from_gguf(ct)?;
    let dec = &cfg.decoder;
    let max_len = dec.max_len(max_len);
    let eps = dec.rms_norm_eps;
    let head_dim = dec.heads.head_dim;
    let mut t = GgufTensors::new(ct, reader, device);
    let embed_output = t.embedding_and_output(dec.hidden_size)?;
    let global = RopeConfig {
        freq_scale: cfg.rope_freq_scale,
        ..RopeConfig::neox(head_dim, dec.rope_theta)
    };
    let global = Arc::new(Rope::with(&global, max_len, device)?);
    let local = Arc::new(Rope::new(head_dim, cfg.rope_theta_local, max_len, device)?);
    let mut layers = Vec::with_capacity(dec.num_layers);
    for i in 0..dec.num_layers {
        let p = |suffix: &str| format!("blk.{i}.{suffix}");
        let mut attn = t.attention(i, dec.heads)?;
        attn.qk_norm = Some(t.qk_norms(i, eps)?);
        attn.q_scale = Some(cfg.query_scale);
        attn.score_scale = 1.0;
        let is_local = cfg.is_local(i);
        layers.push(Layer {
            attn_norm: t.rms_norm(&p("attn_norm.weight"), eps)?,
            attn,
            post_attn_norm: t.rms_norm(&p("post_attention_norm.weight"), eps)?,
            ffn_norm: t.rms_norm(&p("ffn_norm.weight"), eps)?,
            mlp: t.gated_mlp(i, Activation::Gelu)?,
            post_ffn_norm: t.rms_norm(&p("post_ffw_norm.weight"), eps)?,
            rope: if is_local { local.clone() } else { global.clone() },
            local: is_local,
        });
    }
    let mut decoder = t.decoder(embed_output, layers, eps, max_len)?;
    decoder.embed_scale = Some((dec.hidden_size as f64).sqrt());
    decoder.window = cfg.sliding_window;
    decoder.final_softcap = cfg.final_softcap;
    Ok(decoder)
}
