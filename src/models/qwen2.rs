//! Qwen2 / Qwen2.5 decoder, quantized, loaded from a GGUF file.
//!
//! What it is for: the forward pass of the instruct LLMs that the `gguf-chat` backend runs
//! (Qwen2.5 and Qwen2.5-Coder in any llama.cpp quantization). Not for: tokenizing, prompting or
//! decoding loops (see `tokenizers::gguf`, `backends::chat` and `generate`).
//!
//! A layer: RMS norm, self-attention with biases on Q, K and V and NeoX rotation, residual; RMS
//! norm, SwiGLU MLP, residual.
//!
//! Why not candle-transformers' `quantized_qwen2`: it is the reference we follow (same tensors,
//! same maths, same kernels: `QMatMul`, `rms_norm`, `rope`, bar our own for Q5_0 and Q8_0
//! weights in `kernels::q5_0` and `kernels::q8_0`), but it keeps the KV cache *inside* the weights and
//! grows it with `Tensor::cat` at every step. A batch tool wants the opposite:
//! - one copy of the weights shared by every worker thread (a [`Model`] is immutable, `Sync`), with
//!   the per-sequence state in a separate [`KvCache`](crate::nn::kv_cache::KvCache) that each
//!   worker owns;
//! - a cache preallocated once and written in place, that can be cut back to a shared prompt
//!   prefix so the system prompt is computed once per worker, not once per paragraph;
//! - grouped-query attention without materialising repeated K/V heads.
//!
//! These hold for every architecture in `crate::models`, through the shared blocks of
//! `crate::nn::causal`.

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result};

use super::{DecoderConfig, GgufTensors, Meta};
use crate::nn::causal::{Activation, Decoder, PreNormLayer};
use crate::nn::rope::Rope;

/// Hyper-parameters, read from the GGUF metadata (`qwen2.*` keys, as llama.cpp writes them):
/// only what every decoder has.
pub fn config(ct: &gguf_file::Content) -> Result<DecoderConfig> {
    Meta::new(ct, "qwen2")?.decoder_config(10_000.0)
}

/// The decoder: immutable once loaded, shared by reference between threads.
pub type Model = Decoder<PreNormLayer>;

/// Loads the weights. `max_len` caps the context this process will use (prompt plus generated
/// tokens), which bounds the rotary tables and each cache; it is clamped to the model's own
/// context length.
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
        attn.qkv_bias = Some([
            t.dense(&format!("blk.{i}.attn_q.bias"))?,
            t.dense(&format!("blk.{i}.attn_k.bias"))?,
            t.dense(&format!("blk.{i}.attn_v.bias"))?,
        ]);
        let mlp = t.gated_mlp(i, Activation::Silu)?;
        layers.push(t.pre_norm_layer(i, eps, attn, mlp, &rope)?);
    }
    t.decoder(embed_output, layers, eps, max_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our decoder against candle-transformers' `quantized_qwen2` (the reference this file
    /// follows) on a tiny model whose matrices are all Q5_0 and whose output projection is the
    /// embedding table: the prompt's logits and one cached decode step. On an AVX2 CPU this runs
    /// our Q5_0 kernel; elsewhere the Q8_0 widening.
    #[test]
    fn matches_candle_transformers_with_q5_0_weights_and_tied_output() {
        use candle_core::quantized::GgmlDType;
        use candle_core::Tensor;
        use candle_transformers::models::quantized_qwen2::ModelWeights;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q5.gguf");
        crate::testkit::write_tiny_qwen2_gguf_q5_tied(&path, 9).unwrap();
        let read = || {
            let mut file = std::fs::File::open(&path).unwrap();
            let content = gguf_file::Content::read(&mut file).unwrap();
            (file, content)
        };
        let (mut file, content) = read();
        assert!(!content.tensor_infos.contains_key("output.weight"));
        assert_eq!(
            content.tensor_infos["blk.0.ffn_up.weight"].ggml_dtype,
            GgmlDType::Q5_0
        );
        let dev = Device::Cpu;
        let ours = from_gguf(&content, &mut file, 64, &dev).unwrap();
        let (mut file, content) = read();
        let mut stock = ModelWeights::from_gguf(content, &mut file, &dev).unwrap();

        let prompt = [3u32, 100, 200, 300, 17];
        let mut cache = ours.new_cache();
        let steps = [
            (
                ours.forward(&prompt, &mut cache).unwrap(),
                stock
                    .forward(&Tensor::new(&[prompt], &dev).unwrap(), 0)
                    .unwrap(),
            ),
            (
                ours.forward(&[5], &mut cache).unwrap(),
                stock
                    .forward(&Tensor::new(&[[5u32]], &dev).unwrap(), prompt.len())
                    .unwrap(),
            ),
        ];
        for (step, (a, b)) in steps.iter().enumerate() {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(a.len(), b.len());
            let range = b.iter().fold(0f32, |m, x| m.max(x.abs()));
            let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(range > 1e-3, "step {step}: flat logits");
            assert!(diff <= 1e-3 * range, "step {step}: differ by {diff} (range {range})");
        }
    }
}
