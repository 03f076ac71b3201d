//! transbrief: turns folders of French documents into English translations and English briefs,
//! written beside the originals, with open models run through candle.
//!
//! Follow one document through the crate:
//! - [`cli`] parses the command line and hands a [`pipeline::RunOptions`] to the pipeline;
//! - [`catalog`] names the models (models.toml) and [`hub`] finds their files (local path, HF
//!   cache, download);
//! - [`pipeline`] plans the work (which files, which outputs, what is up to date), schedules it
//!   over rayon workers, and writes outputs atomically with a report;
//! - [`text`] reads bytes into text (encodings), and splits it into paragraphs, sentences, chunks;
//! - [`models`] holds the architectures and the [`models::Translator`] / [`models::Summarizer`]
//!   backends built on them; [`generate`] holds the decoding loops they share.

pub mod error;
pub mod generate;
pub mod models;

pub use error::{Error, Result};
