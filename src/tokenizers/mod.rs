//! Tokenizers, built from a model's own files without Python, each checked id for id against
//! its reference (llama.cpp for GGUF, transformers for the seq2seq families):
//! - [`gguf`]: from a GGUF file's `tokenizer.ggml.*` metadata (byte-level BPE and SentencePiece
//!   BPE);
//! - [`spm`]: SentencePiece model files (`*.spm`), read as protobuf;
//! - [`marian`]: transformers' `MarianTokenizer` over `source.spm` and `vocab.json`;
//! - [`hf`]: `tokenizer.json`, and BART's `vocab.json` + `merges.txt`.
//!
//! Not for: chat templates and prompt assembly (`crate::backends`), or models. Nothing here
//! imports from the rest of the crate but errors.

pub mod gguf;
pub mod hf;
pub mod marian;
pub mod spm;
