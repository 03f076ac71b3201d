//! Qwen2 / Qwen2.5 decoder, quantized, loaded from a GGUF file.
//!
//! What it is for: the forward pass of the instruct LLMs that the `gguf-chat` backend runs
//! (Qwen2.5 and Qwen2.5-Coder in any llama.cpp quantization). Not for: tokenizing, prompting or
//! decoding loops (see `tokenizers::gguf`, `backends::chat` and `generate`).
//!
//! Why not candle-transformers' `quantized_qwen2`: it is the reference we follow (same tensors,
//! same maths, same kernels: `QMatMul`, `rms_norm`, `rope`, bar our own for Q5_0 and Q8_0
//! weights in `kernels::q5_0` and `kernels::q8_0`), but it keeps the KV cache *inside* the weights and
//! grows it with `Tensor::cat` at every step. A batch tool wants the opposite:
//! - one copy of the weights shared by every worker thread (`Model` is immutable, `Sync`), with
//!   the per-sequence state in a separate [`KvCache`] that each worker owns;
//! - a cache preallocated once and written in place, that can be cut back to a shared prompt
//!   prefix ([`KvCache::truncate`]) so the system prompt is computed once per worker, not once per
//!   paragraph;
//! - grouped-query attention without materialising repeated K/V heads.

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use crate::nn::kv_cache::{causal_mask, KvCache, LayerCache};
use crate::nn::quantized::{widen_q5_0, QLinear, TokenEmbedding};
use crate::nn::rope::Rope;

/// Hyper-parameters, read from the GGUF metadata (`qwen2.*` keys, as llama.cpp writes them).
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
        let get = |key: &str| {
            ct.metadata
                .get(key)
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata has no '{key}'")))
        };
        let arch = get("general.architecture")?.to_string()?.clone();
        if arch != "qwen2" {
            candle_core::bail!("architecture '{arch}' is not qwen2");
        }
        let num_heads = get("qwen2.attention.head_count")?.to_u32()? as usize;
        let hidden_size = get("qwen2.embedding_length")?.to_u32()? as usize;
        let rope_theta = match ct.metadata.get("qwen2.rope.freq_base") {
            Some(v) => v.to_f32()?,
            None => 10_000.0,
        };
        Ok(Self {
            hidden_size,
            num_layers: get("qwen2.block_count")?.to_u32()? as usize,
            num_heads,
            num_kv_heads: get("qwen2.attention.head_count_kv")?.to_u32()? as usize,
            head_dim: hidden_size / num_heads,
            context_length: get("qwen2.context_length")?.to_u32()? as usize,
            rms_norm_eps: get("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_theta,
        })
    }
}

#[derive(Debug)]
struct Mlp {
    gate: QLinear,
    up: QLinear,
    down: QLinear,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(xs)?)?;
        self.down.forward(&(gate * self.up.forward(xs)?)?)
    }
}

#[derive(Debug)]
struct Attention {
    q: QLinear,
    k: QLinear,
    v: QLinear,
    q_bias: Tensor,
    k_bias: Tensor,
    v_bias: Tensor,
    o: QLinear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn forward(
        &self,
        xs: &Tensor,
        rope: &Rope,
        mask: Option<&Tensor>,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let (b, seq, hidden) = xs.dims3()?;
        let pos = cache.len();
        let heads = |t: Tensor, n: usize| {
            t.reshape((b, seq, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(
            self.q.forward(xs)?.broadcast_add(&self.q_bias)?,
            self.num_heads,
        )?;
        let k = heads(
            self.k.forward(xs)?.broadcast_add(&self.k_bias)?,
            self.num_kv_heads,
        )?;
        let v = heads(
            self.v.forward(xs)?.broadcast_add(&self.v_bias)?,
            self.num_kv_heads,
        )?;
        let q = rope.apply(&q, pos)?;
        let k = rope.apply(&k, pos)?;
        let (k, v) = cache.append(&k, &v)?;
        let kv_len = k.dim(2)?;

        // Grouped-query attention: the `rep` query heads that share one K/V head are stacked
        // along the sequence axis, so each K/V head is used as is, never copied `rep` times.
        let rep = self.num_heads / self.num_kv_heads;
        let q = q.reshape((b, self.num_kv_heads, rep * seq, self.head_dim))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?;
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
            .reshape((b, seq, hidden))?;
        self.o.forward(&out)
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: RmsNorm,
    attn: Attention,
    ffn_norm: RmsNorm,
    mlp: Mlp,
}

/// The decoder: immutable once loaded, shared by reference between threads.
#[derive(Debug)]
pub struct Model {
    embed: TokenEmbedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QLinear,
    rope: Rope,
    cfg: Config,
    max_len: usize,
    device: Device,
}

impl Model {
    /// Loads the weights. `max_len` caps the context this process will use (prompt plus
    /// generated tokens), which bounds the rotary tables and each [`KvCache`]; it is clamped to the
    /// model's own context length.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        max_len: usize,
        device: &Device,
    ) -> Result<Self> {
        let cfg = Config::from_gguf(ct)?;
        let max_len = max_len.min(cfg.context_length).max(1);
        let eps = cfg.rms_norm_eps;
        let mut tensor = |name: &str| ct.tensor(reader, name, device);

        let embed = Arc::new(tensor("token_embd.weight").and_then(widen_q5_0)?);
        let output = match tensor("output.weight") {
            Ok(w) => QLinear::new(w)?,
            // Small Qwen models tie the output projection to the embeddings: one copy serves both.
            Err(_) => QLinear::tied(embed.clone())?,
        };
        let embed = TokenEmbedding::new(embed, cfg.hidden_size)?;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let mut q = |suffix: &str| -> Result<QLinear> {
                QLinear::new(tensor(&format!("blk.{i}.{suffix}"))?)
            };
            let attn_q = q("attn_q.weight")?;
            let attn_k = q("attn_k.weight")?;
            let attn_v = q("attn_v.weight")?;
            let attn_o = q("attn_output.weight")?;
            let mlp = Mlp {
                gate: q("ffn_gate.weight")?,
                up: q("ffn_up.weight")?,
                down: q("ffn_down.weight")?,
            };
            let mut dense = |suffix: &str| -> Result<Tensor> {
                tensor(&format!("blk.{i}.{suffix}"))?.dequantize(device)
            };
            let attn = Attention {
                q: attn_q,
                k: attn_k,
                v: attn_v,
                q_bias: dense("attn_q.bias")?,
                k_bias: dense("attn_k.bias")?,
                v_bias: dense("attn_v.bias")?,
                o: attn_o,
                num_heads: cfg.num_heads,
                num_kv_heads: cfg.num_kv_heads,
                head_dim: cfg.head_dim,
            };
            layers.push(Layer {
                attn_norm: RmsNorm::from_qtensor(
                    tensor(&format!("blk.{i}.attn_norm.weight"))?,
                    eps,
                )?,
                attn,
                ffn_norm: RmsNorm::from_qtensor(tensor(&format!("blk.{i}.ffn_norm.weight"))?, eps)?,
                mlp,
            });
        }
        Ok(Self {
            embed,
            layers,
            norm,
            output,
            rope: Rope::new(cfg.head_dim, cfg.rope_theta, max_len, device)?,
            cfg,
            max_len,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The longest sequence (prompt plus generation) a [`KvCache`] of this model holds.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A fresh, empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.cfg.num_layers, self.max_len)
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
        let mask = if seq > 1 {
            Some(causal_mask(seq, pos, &self.device)?)
        } else {
            None
        };
        let mut xs = self.embed.forward(ids, &self.device)?;
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers_mut().iter_mut()) {
            let residual = &xs;
            let h = layer.attn_norm.forward(&xs)?;
            let h = layer
                .attn
                .forward(&h, &self.rope, mask.as_ref(), layer_cache)?;
            let xs_mid = (h + residual)?;
            let h = layer.mlp.forward(&layer.ffn_norm.forward(&xs_mid)?)?;
            xs = (h + xs_mid)?;
        }
        // Only the last position is projected onto the (large) vocabulary.
        let last = xs.narrow(1, seq - 1, 1)?;
        let last = self.norm.forward(&last)?;
        self.output
            .forward(&last)?
            .squeeze(0)?
            .squeeze(0)?
            .to_dtype(DType::F32)
    }
}

impl super::CausalLm for Model {
    fn max_len(&self) -> usize {
        Model::max_len(self)
    }

    fn new_cache(&self) -> KvCache {
        Model::new_cache(self)
    }

    fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        Model::forward(self, ids, cache)
    }
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
        let ours = Model::from_gguf(&content, &mut file, 64, &dev).unwrap();
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
