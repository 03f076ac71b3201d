//! Layers that architectures share, built on `crate::kernels` and candle:
//! - [`linear`]: the linear layers of the seq2seq families, f32 or int8 ([`linear::LinearKind`]);
//! - [`attention`]: the multi-head attention of the seq2seq families;
//! - [`quantized`]: GGUF weight matrices and token embeddings, in the file's block types;
//! - [`causal`]: the blocks of decoder-only models (grouped-query self-attention, masks, gated
//!   MLP) and the [`causal::Decoder`] around an architecture's layers;
//! - [`kv_cache`]: the key/value cache of decoder-only models;
//! - [`rope`]: rotary position embeddings;
//! - [`weights`]: reading `.safetensors` files tensor by tensor.
//!
//! Not for: a whole architecture (`crate::models`), or tokenizers, prompts and decoding.

pub mod attention;
pub mod causal;
pub mod kv_cache;
pub mod linear;
pub mod quantized;
pub mod rope;
pub mod weights;
