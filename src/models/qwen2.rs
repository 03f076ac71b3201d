//! Qwen2 / Qwen2.5 decoder, quantized, loaded from a GGUF file.
//!
//! What it is for: the forward pass of the instruct LLMs that the `gguf-chat` backend runs
//! (Qwen2.5 and Qwen2.5-Coder in any llama.cpp quantization). Not for: tokenizing, prompting or
//! decoding loops (see `gguf_tokenizer`, `gguf_chat` and `generate`).
//!
//! Why not candle-transformers' `quantized_qwen2`: it is the reference we follow (same tensors,
//! same maths, same kernels: `QMatMul`, `rms_norm`, `rope`, bar our own for Q5_0 and Q8_0
//! weights in `q5_linear` and `q8_linear`), but it keeps the KV cache *inside* the weights and
//! grows it with `Tensor::cat` at every step. A batch tool wants the opposite:
//! - one copy of the weights shared by every worker thread (`Model` is immutable, `Sync`), with
//!   the per-sequence state in a separate [`Cache`] that each worker owns;
//! - a cache preallocated once and written in place, that can be cut back to a shared prompt
//!   prefix ([`Cache::truncate`]) so the system prompt is computed once per worker, not once per
//!   paragraph;
//! - grouped-query attention without materialising repeated K/V heads.

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::q5_linear::{self, Q5Linear};
use super::q8_linear::Q8Linear;
use std::sync::Arc;

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

/// A weight matrix: candle's quantized matmul, or, for Q5_0 and Q8_0 weights on an AVX2 CPU,
/// our own kernels ([`Q5Linear`], which candle lacks, and [`Q8Linear`], which prefetches).
#[derive(Debug)]
enum Linear {
    Candle(QMatMul),
    Q5(Q5Linear),
    Q8(Q8Linear),
}

impl Linear {
    /// The layer for `t`: Q5_0 and Q8_0 through our kernels on a CPU that runs them; otherwise
    /// through candle, with Q5_0 widened to Q8_0 ([`fast_kernels`]).
    fn new(t: QTensor) -> Result<Self> {
        if t.device().is_cpu() {
            let (n, k) = t.shape().dims2()?;
            match t.dtype() {
                GgmlDType::Q5_0 => {
                    if let Some(q5) = Q5Linear::new(&t.data()?, n, k)? {
                        return Ok(Self::Q5(q5));
                    }
                }
                GgmlDType::Q8_0 => {
                    if let Some(q8) = Q8Linear::new(&t.data()?, n, k)? {
                        return Ok(Self::Q8(q8));
                    }
                }
                _ => {}
            }
        }
        Ok(Self::Candle(QMatMul::from_qtensor(fast_kernels(t)?)?))
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle(m) => m.forward(xs),
            Self::Q5(m) => m.forward(xs),
            Self::Q8(m) => m.forward(xs),
        }
    }
}

#[derive(Debug)]
struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(xs)?)?;
        self.down.forward(&(gate * self.up.forward(xs)?)?)
    }
}

#[derive(Debug)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    q_bias: Tensor,
    k_bias: Tensor,
    v_bias: Tensor,
    o: Linear,
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
        let pos = cache.len;
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

/// Rotary position embedding tables (NeoX layout: halves, not interleaved pairs).
#[derive(Debug)]
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(cfg: &Config, max_len: usize, device: &Device) -> Result<Self> {
        let inv_freq: Vec<f32> = (0..cfg.head_dim)
            .step_by(2)
            .map(|i| 1.0 / cfg.rope_theta.powf(i as f32 / cfg.head_dim as f32))
            .collect();
        let n = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, n), device)?;
        let positions = Tensor::arange(0u32, max_len as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_len, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
        })
    }

    fn apply(&self, xs: &Tensor, pos: usize) -> Result<Tensor> {
        let seq = xs.dim(2)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        candle_nn::rotary_emb::rope(xs, &cos, &sin)
    }
}

/// The decoder: immutable once loaded, shared by reference between threads.
#[derive(Debug)]
pub struct Model {
    embed: TokenEmbedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
    cfg: Config,
    max_len: usize,
    device: Device,
}

/// Q5_0 weights (which llama.cpp's Q4_K_M files use for most matrices whose rows are not a
/// multiple of 256, such as the 896-wide matrices of Qwen2.5-0.5B) have no SIMD kernel in
/// candle, and ran ~4x slower than the rest. Every Q5_0 value is a 5-bit integer times its
/// block's scale, which a Q8_0 block (same 32 values, same f16 scale, 8-bit integers) holds
/// exactly: converting costs 12 more bytes per 32 weights and changes no weight. Used where
/// [`Q5Linear`] does not run (no AVX2/FMA, GPUs) and for a Q5_0 embedding table.
fn fast_kernels(t: QTensor) -> candle_core::Result<QTensor> {
    if t.dtype() != GgmlDType::Q5_0 {
        return Ok(t);
    }
    let raw = t.data()?;
    let blocks = raw.len() / q5_linear::BLOCK_BYTES;
    let mut out = Vec::with_capacity(blocks * 34);
    for b in raw.chunks_exact(q5_linear::BLOCK_BYTES) {
        // The same f16 scale, then the 32 values as signed bytes.
        out.extend_from_slice(&b[0..2]);
        let (_, q) = q5_linear::unpack_block(b);
        out.extend(q.map(|v| v as u8));
    }
    let dims = t.shape().dims().to_vec();
    let device = t.device();
    candle_core::quantized::ggml_file::qtensor_from_ggml(GgmlDType::Q8_0, &out, dims, &device)
}

/// The token embedding table, kept quantized as in the file: only the rows of the tokens being
/// read are expanded (candle's `QTensor::embedding`, on every device). The f32 table of a
/// 150k-token vocabulary would be 545 MB for Qwen2.5-0.5B, against 145 MB as Q8_0, and with tied
/// weights the output projection reads the very same bytes.
#[derive(Debug)]
struct TokenEmbedding(Arc<QTensor>);

impl TokenEmbedding {
    fn new(table: Arc<QTensor>, hidden: usize) -> Result<Self> {
        let (rows, cols) = table.shape().dims2()?;
        if cols != hidden || rows == 0 {
            candle_core::bail!("token_embd.weight is {rows}x{cols}, expected rows of {hidden}");
        }
        Ok(Self(table))
    }

    /// The embeddings of `ids`: (1, ids.len(), hidden), f32. An id outside the table is an error.
    fn forward(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        self.0.embedding(&Tensor::new(ids, device)?.unsqueeze(0)?)
    }
}

impl Model {
    /// Loads the weights. `max_len` caps the context this process will use (prompt plus
    /// generated tokens), which bounds the rotary tables and each [`Cache`]; it is clamped to the
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

        let embed = Arc::new(tensor("token_embd.weight").and_then(fast_kernels)?);
        let output = match tensor("output.weight") {
            Ok(w) => Linear::new(w)?,
            // Small Qwen models tie the output projection to the embeddings: one copy serves both.
            Err(_) => Linear::Candle(QMatMul::from_arc(embed.clone())?),
        };
        let embed = TokenEmbedding::new(embed, cfg.hidden_size)?;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let mut q = |suffix: &str| -> Result<Linear> {
                Linear::new(tensor(&format!("blk.{i}.{suffix}"))?)
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
            rope: Rope::new(&cfg, max_len, device)?,
            cfg,
            max_len,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The longest sequence (prompt plus generation) a [`Cache`] of this model holds.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A fresh, empty cache for one sequence.
    pub fn new_cache(&self) -> Cache {
        Cache {
            layers: (0..self.cfg.num_layers)
                .map(|_| LayerCache {
                    k: None,
                    v: None,
                    len: 0,
                    cap: self.max_len,
                })
                .collect(),
        }
    }

    /// Feeds `ids` (one sequence) after what `cache` already holds, and returns the logits
    /// (f32, vocabulary-sized) for the token that follows the last of them.
    pub fn forward(&self, ids: &[u32], cache: &mut Cache) -> Result<Tensor> {
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
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
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

/// Additive causal mask for `seq` new tokens after `past` cached ones: (seq, past + seq).
fn causal_mask(seq: usize, past: usize, device: &Device) -> Result<Tensor> {
    let total = past + seq;
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (seq, total), device)
}

/// Keys and values of one layer, preallocated to the model's `max_len` on first use and
/// written in place.
#[derive(Debug, Clone)]
struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
    cap: usize,
}

impl LayerCache {
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let seq = k.dim(2)?;
        let alloc = |t: &Tensor| -> Result<Tensor> {
            let (b, h, _, d) = t.dims4()?;
            Tensor::zeros((b, h, self.cap, d), t.dtype(), t.device())
        };
        if self.k.is_none() {
            self.k = Some(alloc(k)?);
            self.v = Some(alloc(v)?);
        }
        let (Some(kc), Some(vc)) = (&self.k, &self.v) else {
            unreachable!("allocated just above")
        };
        kc.slice_set(k, 2, self.len)?;
        vc.slice_set(v, 2, self.len)?;
        self.len += seq;
        Ok((kc.narrow(2, 0, self.len)?, vc.narrow(2, 0, self.len)?))
    }
}

/// The per-sequence state of a [`Model`]: what it has read so far.
#[derive(Debug, Clone)]
pub struct Cache {
    layers: Vec<LayerCache>,
}

impl Cache {
    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything after the first `len` tokens (a shared prompt prefix, say); the
    /// memory is kept and overwritten by what comes next.
    pub fn truncate(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.len = layer.len.min(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q5_0_weights_become_q8_0_without_changing_a_value() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (4, 64), &dev).unwrap();
        let q5 = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
        let before = q5.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap();
        let q8 = fast_kernels(q5).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        assert_eq!(
            q8.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap(),
            before
        );
    }

    /// Rows looked up in the quantized table are the rows of the table dequantized whole, for
    /// each block type the table can have; an id outside the vocabulary is an error.
    #[test]
    fn quantized_embedding_rows_equal_the_dequantized_table() {
        use candle_nn::Embedding;
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (7, 256), &dev).unwrap();
        let ids = [6u32, 0, 3, 3];
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::F16] {
            let table = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let dense = Embedding::new(table.dequantize(&dev).unwrap(), 256);
            let want = dense
                .forward(&Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap())
                .unwrap();
            let quantized = TokenEmbedding::new(table, 256).unwrap();
            let got = quantized.forward(&ids, &dev).unwrap();
            assert_eq!(
                got.to_vec3::<f32>().unwrap(),
                want.to_vec3::<f32>().unwrap(),
                "{dtype:?}"
            );
            assert!(quantized.forward(&[7], &dev).is_err());
        }
    }

    /// Our decoder against candle-transformers' `quantized_qwen2` (the reference this file
    /// follows) on a tiny model whose matrices are all Q5_0 and whose output projection is the
    /// embedding table: the prompt's logits and one cached decode step. On an AVX2 CPU this runs
    /// our Q5_0 kernel; elsewhere the Q8_0 widening.
    #[test]
    fn matches_candle_transformers_with_q5_0_weights_and_tied_output() {
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

    #[test]
    fn causal_mask_lets_each_token_see_the_past_only() {
        let m = causal_mask(2, 3, &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = m.to_vec2().unwrap();
        assert_eq!(rows[0][..4], [0.0, 0.0, 0.0, 0.0]);
        assert!(rows[0][4].is_infinite());
        assert_eq!(rows[1], vec![0.0; 5]);
    }
}
