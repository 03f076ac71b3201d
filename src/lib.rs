//! transbrief: turns folders of French documents into English translations and English briefs,
//! written beside the originals, with open models run through candle.
//!
//! ARCHITECTURE.md at the top of the repository is the map: the rooms, what each may import,
//! and the path of one document. In short:
//! - [`cli`] parses the command line; [`backends::load::Loader::select`] resolves the model
//!   names once and [`pipeline::run`] gets [`pipeline::RunOptions`];
//! - [`catalog`] names the models (models.toml) and [`hub`] finds their files (local path, HF
//!   cache, download), which [`backends::load`] opens on the chosen [`device`];
//! - [`pipeline::plan`] walks the paths and names each document's outputs, from the table of
//!   formats ([`text::format`]);
//! - [`pipeline::run`] reads each document ([`text::read`]), cuts it into pieces as its format
//!   says, translates them with a [`backends::Translator`], briefs the English with a
//!   [`backends::Summarizer`] ([`pipeline::brief`]), and writes both atomically
//!   ([`pipeline::write`]), over a rayon pool, with a report ([`pipeline::report`]);
//! - under the backends: [`models`] (architectures, one file each, and the registry of GGUF
//!   architectures), [`nn`] (shared layers), [`kernels`] (our CPU kernels), [`tokenizers`], and
//!   [`generate`] (the decoding loops).
//!
//! [`checks`] looks at a translation without a reference (length, language, numbers, names,
//! echoes and loops, answers instead of translations).
//!
//! Without the default `engine` feature only [`text`] and [`checks`] are built (no candle): that
//! is what the fuzz targets in `fuzz/` link against.

/// Marks each module it wraps `#[cfg(feature = "engine")]`.
macro_rules! engine {
    ($($module:item)*) => { $(#[cfg(feature = "engine")] $module)* };
}

engine! {
    pub mod atomic;
    /// Bench aids for `scripts/bench` (hidden subcommands).
    pub mod bench;
    pub mod cancel;
    pub mod catalog;
    pub mod cli;
    pub mod compare;
    pub mod device;
    pub mod error;
    pub mod eval;
    pub mod backends;
    pub mod generate;
    pub mod hub;
    pub mod kernels;
    pub mod models;
    pub mod nn;
    pub mod pipeline;
    /// Tiny models for tests and examples (not part of the public API).
    #[doc(hidden)]
    pub mod testkit;
    pub mod tokenizers;
}
pub mod checks;
pub mod text;

#[cfg(feature = "engine")]
pub use error::{Error, Result};
