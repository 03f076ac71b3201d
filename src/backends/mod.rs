//! Backends: a loaded model with its tokenizer and settings, wrapped as one of the two things a
//! pipeline asks for, a [`Translator`] or a [`Summarizer`].
//!
//! This is the seam between *what a user asks for* (`pipeline`) and *how a family of models does
//! it*: the pipeline only ever sees these traits, so a GGUF chat model, Marian, BART or T5 plug in
//! the same way.
//! - [`chat`]: any GGUF instruct model of a registered architecture (`crate::models`), prompted
//!   through its chat template ([`chat_template`]);
//! - [`seq2seq`]: Marian as a translator, BART and T5 as summarizers;
//! - [`load`]: from a catalog entry to a loaded backend, each model opened once per process.
//!
//! Not for: the transformer arithmetic (`models`, `nn`, `kernels`), tokenizers (`tokenizers`),
//! reading documents, or writing outputs (`pipeline`).
//!
//! Backends are `Send + Sync` and take `&self`: one loaded model is shared by all rayon workers,
//! and whatever per-request state a model needs (KV caches) lives in the call, not in the weights.

pub mod chat;
pub mod chat_template;
pub mod load;
pub mod seq2seq;

use serde::Serialize;

use crate::Result;

/// Tokens read and written by a model call, for progress, tokens/s and the JSON report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens fed to the model (prompt or encoder input).
    pub input_tokens: u64,
    /// Tokens the model generated.
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.input_tokens += rhs.input_tokens;
        self.output_tokens += rhs.output_tokens;
    }
}

/// The output of a model call, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Output<T> {
    pub value: T,
    pub usage: Usage,
}

/// French paragraphs in, English paragraphs out.
pub trait Translator: Send + Sync {
    /// Translates each paragraph; the result has exactly one entry per input, in order, and no
    /// entry contains a blank line (so the paragraph layout of the document survives).
    ///
    /// Paragraphs may come from several documents at once; a backend that batches is free to
    /// pool and reorder internally, but its output for a paragraph never depends on which other
    /// paragraphs came with it.
    fn translate(&self, paragraphs: &[&str]) -> Result<Output<Vec<String>>>;
}

/// What a call to [`Summarizer::summarize`] is asked to summarize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SummaryInput {
    /// A whole document that fits the model's input.
    Document,
    /// One chunk of a document too long for one call.
    Chunk,
    /// Partial summaries of the chunks, to be merged into one.
    Partials,
}

/// English text in, a short English summary out.
pub trait Summarizer: Send + Sync {
    /// The largest input, in this model's tokens, that one `summarize` call accepts.
    fn max_input_tokens(&self) -> usize;

    /// How many tokens `text` takes as input to this model.
    fn count_tokens(&self, text: &str) -> Result<usize>;

    /// Summarizes `text`, which must fit [`Summarizer::max_input_tokens`]. Returns plain text:
    /// sentences or bullet lines, which the pipeline shapes into the brief's Markdown.
    fn summarize(&self, text: &str, input: SummaryInput) -> Result<Output<String>>;
}
