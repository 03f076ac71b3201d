//! transbrief: turns folders of French documents into English translations and English briefs,
//! written beside the originals, with open models run through candle.
//!
//! Follow one document through the crate:
//! - [`cli`] parses the command line and hands [`pipeline::RunOptions`] to [`pipeline::run`];
//! - [`catalog`] names the models (models.toml) and [`hub`] finds their files (local path, HF
//!   cache, download), which [`models::load`] opens on the chosen [`device`];
//! - [`pipeline::plan`] walks the paths and names each document's outputs;
//! - [`pipeline::run`] reads each document ([`text::read`]), splits it ([`text::segment`],
//!   [`text::markdown`]), translates it with a [`models::Translator`], briefs the English with a
//!   [`models::Summarizer`] ([`pipeline::brief`]), and writes both atomically
//!   ([`pipeline::write`]), over a rayon pool, with a report ([`pipeline::report`]);
//! - [`models`] holds the architectures and backends, [`generate`] the decoding loops.
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
    /// Bench aids for `scripts/bench` (hidden subcommands).
    pub mod bench;
    pub mod cancel;
    pub mod catalog;
    pub mod cli;
    pub mod compare;
    pub mod device;
    pub mod error;
    pub mod eval;
    pub mod generate;
    pub mod hub;
    pub mod models;
    pub mod pipeline;
    /// Tiny models for tests and examples (not part of the public API).
    #[doc(hidden)]
    pub mod testkit;
}
pub mod checks;
pub mod text;

#[cfg(feature = "engine")]
pub use error::{Error, Result};
