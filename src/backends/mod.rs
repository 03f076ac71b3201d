//! Backends: a loaded model with its tokenizer and settings, wrapped as one of the two things a
//! pipeline asks for, a [`Translator`] or a [`Summarizer`].
//!
//! This is the seam between *what a user asks for* (`pipeline`) and *how a family of models does
//! it*: the pipeline only ever sees these traits, so a GGUF chat model, Marian, BART or T5 plug in
//! the same way.
//! - [`chat`]: any GGUF instruct model of a registered architecture (`crate::models`), prompted
//!   through its chat template ([`chat_template`]);
//! - [`seq2seq`]: Marian as a translator, BART and T5 as summarizers;
//! - [`batch`]: the conversations of concurrent chat calls decoded together;
//! - [`pool`]: the sentences of concurrent Marian calls generated in shared batches;
//! - [`engine`]: the engine thread and shared state that `batch` and `pool` run on;
//! - [`load`]: from a catalog entry to a loaded backend, each model opened once per process;
//! - [`gguf_info`]: what a GGUF file says about itself (`models info`), read from its header.
//!
//! Not for: the transformer arithmetic (`models`, `nn`, `kernels`), tokenizers (`tokenizers`),
//! reading documents, or writing outputs (`pipeline`).
//!
//! Backends are `Send + Sync` and take `&self`: one loaded model is shared by all rayon workers,
//! and whatever per-request state a model needs (KV caches) lives in the call, not in the weights.

pub mod batch;
pub mod chat;
pub mod chat_template;
pub mod engine;
pub mod faithful;
pub mod gguf_info;
pub mod load;
pub mod pool;
pub mod seq2seq;

use serde::Serialize;

use crate::checks::{self, CheckKind};

use crate::Result;

/// Tokens read and written by a model call, for progress, tokens/s and the JSON report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Tokens fed to the model (prompt or encoder input).
    pub input_tokens: u64,
    /// Tokens the model generated.
    pub output_tokens: u64,
    /// Extra model calls made to repair outputs that failed a check (`crate::checks`).
    pub retries: u64,
    /// Tokens (input and output) of those calls, included in the two counts above.
    pub retry_tokens: u64,
    /// Microseconds spent in the checks (`crate::checks`) of the outputs, retries included:
    /// what checking costs beside the model calls. Reported as the document's
    /// `timings.check_ms`, not among the tokens.
    #[serde(skip)]
    pub check_us: u64,
}

impl Usage {
    /// Runs `f` (a check) and adds its time to [`Usage::check_us`].
    pub fn time_checks<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = std::time::Instant::now();
        let out = f();
        self.check_us += t.elapsed().as_micros() as u64;
        out
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.input_tokens += rhs.input_tokens;
        self.output_tokens += rhs.output_tokens;
        self.retries += rhs.retries;
        self.retry_tokens += rhs.retry_tokens;
        self.check_us += rhs.check_us;
    }
}

/// The output of a model call, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Output<T> {
    pub value: T,
    pub usage: Usage,
}

/// A doubt about a piece's English, from the checks (`crate::checks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// 1-based line of the piece, when the piece has lines.
    pub line: Option<usize>,
    pub kind: CheckKind,
    pub detail: String,
    /// The finding went away when the window was translated again; the English kept passes
    /// this check.
    pub repaired: bool,
}

/// One piece's English with what the checks said about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub text: String,
    pub notes: Vec<Note>,
}

impl Checked {
    /// Whether a finding is left that was not repaired.
    pub fn flagged(&self) -> bool {
        self.notes.iter().any(|n| !n.repaired)
    }
}

/// Checks each piece's English against its French ([`checks::check_paragraph`]: line by line
/// where both have as many lines, else as a whole; the previous segment as echo context). No
/// repair: for backends that translate in one pass.
pub fn check_pieces(pieces: &[&str], english: Vec<String>) -> Vec<Checked> {
    let mut previous = None;
    pieces
        .iter()
        .zip(english)
        .map(|(source, text)| {
            let notes = checks::check_paragraph(source, &text, &mut previous)
                .into_iter()
                .map(|(line, f)| Note {
                    line,
                    kind: f.kind,
                    detail: f.detail,
                    repaired: false,
                })
                .collect();
            Checked { text, notes }
        })
        .collect()
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

    /// [`Translator::translate`], with each piece's English checked (`crate::checks`). A
    /// backend that can repair what fails (by translating again) overrides this; the default
    /// only checks.
    fn translate_checked(&self, paragraphs: &[&str]) -> Result<Output<Vec<Checked>>> {
        let mut out = self.translate(paragraphs)?;
        let value = out.usage.time_checks(|| check_pieces(paragraphs, out.value));
        Ok(Output {
            value,
            usage: out.usage,
        })
    }
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

    /// [`Summarizer::summarize`] again, after a brief failed the brief check (numbers or names
    /// the document does not have, copied sentences): a backend that can be told to keep to the
    /// text (a chat model) does so; the default summarizes as before.
    fn summarize_strictly(&self, text: &str, input: SummaryInput) -> Result<Output<String>> {
        self.summarize(text, input)
    }
}
