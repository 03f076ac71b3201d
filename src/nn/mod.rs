//! Layers that architectures share, built on `crate::kernels` and candle:
//! - [`linear`]: the linear layers of the seq2seq families, f32 or int8 ([`linear::LinearKind`]);
//! - [`attention`]: the multi-head attention of the seq2seq families;
//! - [`quantized`]: GGUF weight matrices and token embeddings, in the file's block types;
//! - [`kv_cache`]: the key/value cache of decoder-only models and their causal mask;
//! - [`rope`]: rotary position embeddings;
//! - [`weights`]: reading `.safetensors` files tensor by tensor.
//!
//! Not for: a whole architecture (`crate::models`), or tokenizers, prompts and decoding.

pub mod attention;
pub mod kv_cache;
pub mod linear;
pub mod quantized;
pub mod rope;
pub mod weights;
