//! Model architectures: weights in, logits out. One file per architecture, after
//! candle-transformers: a config read from the model's own files, `new` / `from_gguf`, and
//! `forward`.
//!
//! - Encoder-decoder (safetensors): [`bart`] (BART, mBART, and the Marian layout), [`marian`]
//!   (what Marian changes), [`t5`]. They implement `crate::generate::EncoderDecoder`.
//! - Decoder-only (GGUF): [`qwen2`]. They implement [`CausalLm`], and [`ARCHITECTURES`] maps a
//!   file's `general.architecture` to the one that loads it: adding an architecture is its file
//!   plus one line there.
//!
//! Not for: tokenizers (`crate::tokenizers`), prompts, batching and decoding loops
//! (`crate::backends`, `crate::generate`), where model files come from (`crate::hub`,
//! `crate::catalog`), or the CPU kernels (`crate::kernels`) and shared layers (`crate::nn`)
//! the architectures are built from.
//!
//! A loaded model is immutable and shared between threads; per-sequence state (KV caches) is
//! owned by the caller.

pub mod bart;
pub mod marian;
pub mod qwen2;
pub mod t5;

use std::fs::File;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result, Tensor};

use crate::nn::kv_cache::KvCache;

/// A decoder-only language model loaded from a GGUF file: what the chat backend runs.
pub trait CausalLm: Send + Sync {
    /// The longest sequence (prompt plus generation) a cache of this model holds.
    fn max_len(&self) -> usize;

    /// A fresh, empty cache for one sequence.
    fn new_cache(&self) -> KvCache;

    /// Feeds `ids` (one sequence) after what `cache` already holds, and returns the logits
    /// (f32, vocabulary-sized) for the token that follows the last of them.
    fn forward(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor>;
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
pub const ARCHITECTURES: &[Architecture] = &[Architecture {
    name: "qwen2",
    families: "Qwen2, Qwen2.5",
    load: |ct, file, max_len, device| Ok(Box::new(qwen2::Model::from_gguf(ct, file, max_len, device)?)),
}];

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
