//! Decoding loops shared by the model backends.
//!
//! Not for: model architectures (`models`) or prompts (the backends).

pub mod sampling;
