//! Model architectures: weights in, logits out. One file per architecture, after
//! candle-transformers: a config read from the model's own files, `new` / `from_gguf`, and
//! `forward`.
//!
//! - Encoder-decoder (safetensors): [`bart`] (BART, mBART, and the Marian layout), [`marian`]
//!   (what Marian changes), [`t5`]. They implement `crate::generate::EncoderDecoder`.
//! - Decoder-only (GGUF): [`llama`] (Llama 2 and 3.x, Mistral), [`qwen2`], [`qwen3`],
//!   [`gemma3`] and [`phi3`]. They implement [`CausalLm`], and [`ARCHITECTURES`] maps a file's
//!   `general.architecture` to the one that loads it: adding an architecture is its file plus one
//!   line there. Their blocks (attention, masks, gated MLP, rotary tables) are shared, in
//!   `crate::nn::causal` and `crate::nn::rope`; each file says which blocks its layers have, how
//!   they are arranged, and which metadata keys and tensor names it reads ([`Meta`]).
//!
//! Not for: tokenizers (`crate::tokenizers`), prompts, batching and decoding loops
//! (`crate::backends`, `crate::generate`), where model files come from (`crate::hub`,
//! `crate::catalog`), or the CPU kernels (`crate::kernels`) and shared layers (`crate::nn`)
//! the architectures are built from.
//!
//! A loaded model is immutable and shared between threads; per-sequence state (KV caches) is
//! owned by the caller.

pub mod bart;
pub mod gemma3;
pub mod llama;
pub mod marian;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod t5;

use std::fs::File;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result, Tensor};

use crate::nn::causal::{
    Activation, Decoder, GateUp, GatedMlp, PreNormLayer, QkvProjection, SelfAttention,
};
use crate::nn::kv_cache::KvCache;
use crate::nn::rope::Rope;

/// A decoder-only language model loaded from a GGUF file: what the chat backend runs.
pub trait CausalLm: Send + Sync {
    /// The longest sequence (prompt plus generation) a cache of this model holds.
    fn max_len(&self) -> usize;

    /// A fresh, empty cache for one sequence.
    fn new_cache(&self) -> KvCache;

    /// Feeds `ids` (one sequence) after what `cache` already holds, and returns the logits
    /// (f32, vocabulary-sized) for the token that follows the last of them.
    fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor>;

    /// Feeds several sequences in one pass (each `ids` after what its cache holds) and returns
    /// the logits (f32, (sequences, vocabulary)) for the token after each: the same numbers as
    /// [`Self::forward`] on each alone, for one read of the weights.
    fn forward_batch(&self, seqs: &mut [(&[u32], &mut KvCache)]) -> Result<Tensor>;

    /// Bytes of keys and values one full-length cache holds.
    fn cache_bytes(&self) -> usize;
}

impl<L: crate::nn::causal::DecoderLayer> CausalLm for Decoder<L> {
    fn max_len(&self) -> usize {
        Decoder::max_len(self)
    }

    fn new_cache(&self) -> KvCache {
        Decoder::new_cache(self)
    }

    fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        Decoder::forward(self, ids, cache)
    }

    fn forward_batch(&self, seqs: &mut [(&[u32], &mut KvCache)]) -> Result<Tensor> {
        Decoder::forward_batch(self, seqs)
    }

    fn cache_bytes(&self) -> usize {
        Decoder::cache_bytes(self)
    }
}

/// Loads the weights of one architecture from an open GGUF file; `max_len` caps the context
/// (prompt plus generation) this process will use.
pub type LoadGguf = fn(&gguf_file::Content, &mut File, usize, &Device) -> Result<Box<dyn CausalLm>>;

/// A decoder-only architecture, by the `general.architecture` value of its GGUF files.
pub struct Architecture {
    /// `general.architecture`, as llama.cpp writes it.
    pub name: &'static str,
    /// The model families that use it, for messages and `models info`.
    pub families: &'static str,
    pub load: LoadGguf,
}

/// Every GGUF architecture transbrief runs. One line per architecture.
pub const ARCHITECTURES: &[Architecture] = &[
    Architecture {
        name: "llama",
        families: "Llama 2, Llama 3.x, Mistral",
        load: |ct, file, max_len, device| Ok(Box::new(llama::from_gguf(ct, file, max_len, device)?)),
    },
    Architecture {
        name: "qwen2",
        families: "Qwen2, Qwen2.5",
        load: |ct, file, max_len, device| Ok(Box::new(qwen2::from_gguf(ct, file, max_len, device)?)),
    },
    Architecture {
        name: "qwen3",
        families: "Qwen3",
        load: |ct, file, max_len, device| Ok(Box::new(qwen3::from_gguf(ct, file, max_len, device)?)),
    },
    Architecture {
        name: "gemma3",
        families: "Gemma 3",
        load: |ct, file, max_len, device| Ok(Box::new(gemma3::from_gguf(ct, file, max_len, device)?)),
    },
    Architecture {
        name: "phi3",
        families: "Phi-3, Phi-3.5, Phi-4-mini",
        load: |ct, file, max_len, device| Ok(Box::new(phi3::from_gguf(ct, file, max_len, device)?)),
    },
];

/// The `general.architecture` of a GGUF file, or an empty string when it has none.
pub fn architecture_name(ct: &gguf_file::Content) -> String {
    ct.metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default()
}

/// The registered architecture of a GGUF file; the error names the file's architecture and
/// lists the supported ones.
pub fn architecture_of(ct: &gguf_file::Content) -> std::result::Result<&'static Architecture, String> {
    let name = architecture_name(ct);
    ARCHITECTURES.iter().find(|a| a.name == name).ok_or_else(|| {
        let supported: Vec<String> = ARCHITECTURES
            .iter()
            .map(|a| format!("{} ({})", a.name, a.families))
            .collect();
        format!(
            "architecture '{name}' is not supported (supported: {})",
            supported.join("; ")
        )
    })
}

/// The GGUF metadata of one architecture: keys are read with the architecture's prefix
/// (`qwen2.block_count`), and a missing required key is an error that names it.
pub struct Meta<'a> {
    ct: &'a gguf_file::Content,
    arch: &'static str,
}

impl<'a> Meta<'a> {
    /// The metadata of `ct`, which must be of architecture `arch`.
    pub fn new(ct: &'a gguf_file::Content, arch: &'static str) -> Result<Self> {
        let found = architecture_name(ct);
        if found != arch {
            candle_core::bail!("architecture '{found}' is not {arch}");
        }
        Ok(Self { ct, arch })
    }

    fn value(&self, key: &str) -> Option<&gguf_file::Value> {
        self.ct.metadata.get(&format!("{}.{key}", self.arch))
    }

    fn missing(&self, key: &str) -> candle_core::Error {
        candle_core::Error::Msg(format!("GGUF metadata has no '{}.{key}'", self.arch))
    }

    /// A required integer, such as `block_count`.
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional integer (any integer type the writer chose).
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        use gguf_file::Value as V;
        Ok(match self.value(key) {
            None => None,
            Some(V::U8(x)) => Some(*x as usize),
            Some(V::U16(x)) => Some(*x as usize),
            Some(V::U32(x)) => Some(*x as usize),
            Some(V::U64(x)) => Some(*x as usize),
            Some(V::I32(x)) if *x >= 0 => Some(*x as usize),
            Some(V::I64(x)) if *x >= 0 => Some(*x as usize),
            Some(other) => candle_core::bail!(
                "GGUF metadata '{}.{key}' is not a count: {other:?}",
                self.arch
            ),
        })
    }

    /// A required float, such as `attention.layer_norm_rms_epsilon`.
    pub fn f32(&self, key: &str) -> Result<f32> {
        self.opt_f32(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional float.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        use gguf_file::Value as V;
        Ok(match self.value(key) {
            None => None,
            Some(V::F32(x)) => Some(*x),
            Some(V::F64(x)) => Some(*x as f32),
            Some(other) => candle_core::bail!(
                "GGUF metadata '{}.{key}' is not a number: {other:?}",
                self.arch
            ),
        })
    }

    /// An optional string, such as `rope.scaling.type`.
    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.value(key)
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
    }

    /// The hyper-parameters every decoder-only architecture has ([`DecoderConfig`]);
    /// `default_rope_theta` when the file has no `rope.freq_base`.
    ///
    /// Heads: `attention.head_count` (required) and `attention.head_count_kv` (defaults to it),
    /// refused unless the K/V heads divide the query heads. The head size is
    /// `attention.key_length` when the file has it (Qwen3, Gemma 3, Mistral Nemo), else the
    /// hidden size over the heads; the rotated dimensions are `rope.dimension_count`, else the
    /// whole head.
    pub fn decoder_config(&self, default_rope_theta: f32) -> Result<DecoderConfig> {
        let heads = self.usize("attention.head_count")?;
        let kv_heads = self.opt_usize("attention.head_count_kv")?.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
            candle_core::bail!("{heads} attention heads cannot share {kv_heads} key/value heads");
        }
        let hidden_size = self.usize("embedding_length")?;
        let head_dim = self
            .opt_usize("attention.key_length")?
            .unwrap_or(hidden_size / heads);
        Ok(DecoderConfig {
            hidden_size,
            num_layers: self.usize("block_count")?,
            heads: HeadShape {
                heads,
                kv_heads,
                head_dim,
            },
            n_rot: self.opt_usize("rope.dimension_count")?.unwrap_or(head_dim),
            context_length: self.usize("context_length")?,
            rms_norm_eps: self.f32("attention.layer_norm_rms_epsilon")? as f64,
            rope_theta: self.opt_f32("rope.freq_base")?.unwrap_or(default_rope_theta),
        })
    }

    /// 1 / the factor of a linear rope scaling (`rope.scaling.type = linear`), else 1.
    pub fn linear_rope_scale(&self) -> Result<f32> {
        Ok(match self.opt_str("rope.scaling.type") {
            Some("linear") => match self.opt_f32("rope.scaling.factor")? {
                Some(f) if f > 0.0 => 1.0 / f,
                _ => 1.0,
            },
            _ => 1.0,
        })
    }
}

/// The attention heads of a model: query heads, key/value heads, head size.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HeadShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// The hyper-parameters every decoder-only architecture reads from its `ARCH.*` metadata keys
/// ([`Meta::decoder_config`]); an architecture's own `Config` adds what only it has.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecoderConfig {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub heads: HeadShape,
    /// How many leading dimensions of a head are rotated.
    pub n_rot: usize,
    pub context_length: usize,
    pub rms_norm_eps: f64,
    /// The base frequency of the rotation.
    pub rope_theta: f32,
}

impl DecoderConfig {
    /// The context this process uses: what the caller asks for, clamped to the model's own.
    pub fn max_len(&self, asked: usize) -> usize {
        asked.min(self.context_length).max(1)
    }
}

/// Reads the tensors of an open GGUF file by name, on one device, in the shapes the shared
/// blocks take.
pub struct GgufTensors<'a, R> {
    ct: &'a gguf_file::Content,
    reader: &'a mut R,
    device: Device,
}

impl<'a, R: std::io::Read + std::io::Seek> GgufTensors<'a, R> {
    pub fn new(ct: &'a gguf_file::Content, reader: &'a mut R, device: &Device) -> Self {
        Self {
            ct,
            reader,
            device: device.clone(),
        }
    }

    /// Whether the file has a tensor of this name.
    pub fn has(&self, name: &str) -> bool {
        self.ct.tensor_infos.contains_key(name)
    }

    /// The tensor, in its stored block type.
    pub fn raw(&mut self, name: &str) -> Result<candle_core::quantized::QTensor> {
        self.ct.tensor(self.reader, name, &self.device)
    }

    /// A weight matrix, through the project's kernels where its block type allows.
    pub fn linear(&mut self, name: &str) -> Result<crate::nn::quantized::QLinear> {
        crate::nn::quantized::QLinear::new(self.raw(name)?)
    }

    /// A small tensor (bias, norm weight, factors), widened to f32.
    pub fn dense(&mut self, name: &str) -> Result<Tensor> {
        let t = self.raw(name)?;
        t.dequantize(&self.device)
    }

    /// A vector tensor as f32 values, when the file has it (rope frequency factors).
    pub fn opt_vector(&mut self, name: &str) -> Result<Option<Vec<f32>>> {
        if !self.has(name) {
            return Ok(None);
        }
        Ok(Some(self.dense(name)?.flatten_all()?.to_vec1::<f32>()?))
    }

    /// An RMS norm whose weight is this tensor.
    pub fn rms_norm(
        &mut self,
        name: &str,
        eps: f64,
    ) -> Result<candle_transformers::quantized_nn::RmsNorm> {
        candle_transformers::quantized_nn::RmsNorm::from_qtensor(self.raw(name)?, eps)
    }

    /// The attention of layer `i`: one fused `attn_qkv` matrix when the file has it, else
    /// `attn_q`, `attn_k` and `attn_v`; then `attn_output`; scores scaled by 1/sqrt(head size),
    /// and no biases or norms (the caller adds them).
    pub fn attention(&mut self, i: usize, shape: HeadShape) -> Result<SelfAttention> {
        let p = |suffix: &str| format!("blk.{i}.{suffix}");
        let qkv = if self.has(&p("attn_qkv.weight")) {
            QkvProjection::Fused(self.linear(&p("attn_qkv.weight"))?)
        } else {
            QkvProjection::Separate {
                q: self.linear(&p("attn_q.weight"))?,
                k: self.linear(&p("attn_k.weight"))?,
                v: self.linear(&p("attn_v.weight"))?,
            }
        };
        Ok(SelfAttention {
            qkv,
            qkv_bias: None,
            qk_norm: None,
            o: self.linear(&p("attn_output.weight"))?,
            num_heads: shape.heads,
            num_kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
            q_scale: None,
            score_scale: 1.0 / (shape.head_dim as f64).sqrt(),
        })
    }

    /// The per-head RMS norms of Q and K of layer `i` (`attn_q_norm`, `attn_k_norm`).
    pub fn qk_norms(
        &mut self,
        i: usize,
        eps: f64,
    ) -> Result<[candle_transformers::quantized_nn::RmsNorm; 2]> {
        Ok([
            self.rms_norm(&format!("blk.{i}.attn_q_norm.weight"), eps)?,
            self.rms_norm(&format!("blk.{i}.attn_k_norm.weight"), eps)?,
        ])
    }

    /// The MLP of layer `i` with separate `ffn_gate`, `ffn_up` and `ffn_down` matrices.
    pub fn gated_mlp(&mut self, i: usize, act: Activation) -> Result<GatedMlp> {
        let p = |suffix: &str| format!("blk.{i}.{suffix}");
        Ok(GatedMlp {
            gate_up: GateUp::Separate {
                gate: self.linear(&p("ffn_gate.weight"))?,
                up: self.linear(&p("ffn_up.weight"))?,
            },
            down: self.linear(&p("ffn_down.weight"))?,
            act,
        })
    }

    /// Layer `i` of the common arrangement ([`PreNormLayer`]): its `attn_norm` and `ffn_norm`
    /// around the given attention and MLP.
    pub fn pre_norm_layer(
        &mut self,
        i: usize,
        eps: f64,
        attn: SelfAttention,
        mlp: GatedMlp,
        rope: &std::sync::Arc<Rope>,
    ) -> Result<PreNormLayer> {
        Ok(PreNormLayer {
            attn_norm: self.rms_norm(&format!("blk.{i}.attn_norm.weight"), eps)?,
            attn,
            ffn_norm: self.rms_norm(&format!("blk.{i}.ffn_norm.weight"), eps)?,
            mlp,
            rope: rope.clone(),
        })
    }

    /// The model around `layers`: `output_norm` and the given embedding and output.
    pub fn decoder<L>(
        &mut self,
        (embed, output): (crate::nn::quantized::TokenEmbedding, crate::nn::quantized::QLinear),
        layers: Vec<L>,
        eps: f64,
        max_len: usize,
    ) -> Result<Decoder<L>> {
        Ok(Decoder {
            embed,
            embed_scale: None,
            layers,
            norm: self.rms_norm("output_norm.weight", eps)?,
            output,
            final_softcap: None,
            window: None,
            max_len,
            device: self.device.clone(),
        })
    }

    /// The token embedding (`token_embd.weight`) and the output projection (`output.weight`,
    /// or the embedding table itself when the model ties them: one copy serves both).
    pub fn embedding_and_output(
        &mut self,
        hidden: usize,
    ) -> Result<(crate::nn::quantized::TokenEmbedding, crate::nn::quantized::QLinear)> {
        use crate::nn::quantized::{widen_q5_0, QLinear, TokenEmbedding};
        let embed = std::sync::Arc::new(self.raw("token_embd.weight").and_then(widen_q5_0)?);
        let output = if self.has("output.weight") {
            QLinear::new(self.raw("output.weight")?)?
        } else {
            QLinear::tied(embed.clone())?
        };
        Ok((TokenEmbedding::new(embed, hidden)?, output))
    }
}
