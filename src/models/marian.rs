//! Marian (opus-mt-*, including transformer-big `tc-big`) translation models.
//!
//! A Marian model is transformers' BART layout with two differences, selected by its
//! `config.json` (`model_type: "marian"`): fixed sinusoidal position embeddings instead of
//! learned ones, and no layer norm after the embeddings. [`super::bart`]
//! builds both, so there is one encoder-decoder implementation to keep in parity with
//! transformers; this file names it for Marian.
//!
//! Not for: the tokenizer (`crate::tokenizers::marian`), sentence splitting or batching
//! (`crate::backends::seq2seq`).

pub use super::bart::{BartForConditionalGeneration as MarianMtModel, Config};
