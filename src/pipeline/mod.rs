//! The pipeline: what `transbrief run` does with a set of paths.
//!
//! - [`plan`]: walk the paths, pick documents, name their outputs, catch collisions;
//! - [`run`]: per document, read, check what is up to date, translate, brief, write; in
//!   parallel, with progress and a report;
//! - [`brief`]: summarize (whole, or chunk-then-merge) and shape the brief's Markdown;
//! - [`write`]: atomic writes and the records that say which outputs are ours and up to date;
//! - [`report`]: the JSON report and the closing summary;
//! - [`shard`]: splitting a run over the tasks of a job array (`--shard K/N`);
//! - [`lock`]: per-output lock files, so that two tasks never write one output at once;
//! - [`merge`]: one report from the per-shard reports (`transbrief report merge`).
//!
//! Not for: models (`models`) or text handling (`text`).

pub mod brief;
pub mod lock;
pub mod merge;
pub mod plan;
pub mod report;
pub mod run;
pub mod shard;
pub mod write;

pub use plan::PlanOptions;
pub use run::{run, RunOptions};
