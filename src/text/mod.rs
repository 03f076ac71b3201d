//! Plain-text plumbing between a file on disk and a model: decoding bytes into text, the table of
//! document formats ([`format`]) and how each is cut into translatable pieces and rebuilt,
//! splitting text into paragraphs and French sentences, and fitting it into a model's input
//! budget.
//!
//! Every splitter here returns byte ranges into the caller's string rather than copies, so the
//! caller can always put a document back together around translated pieces.
//!
//! Not for: tokenizing (that is the model's tokenizer, passed in as a counting closure), running
//! models, or writing outputs (that is `pipeline`).

pub mod chunk;
pub mod docx;
pub mod format;
pub mod html;
pub mod inline;
pub mod markdown;
pub mod odt;
pub mod package;
pub mod plain;
pub mod read;
pub mod segment;
pub mod subtitles;
#[cfg(test)]
mod testgen;
