//! What a run did, document by document: the JSON report (`--report FILE.json`) and the
//! closing summary line.
//!
//! The JSON field names are a contract other people's scripts read: add fields freely, never
//! rename or remove one. Not for: deciding what to do (`run`).

use std::path::PathBuf;

use serde::Serialize;

use crate::backends::Usage;

/// The outcome of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocStatus {
    /// At least one output was written, none failed.
    Done,
    /// Every output was already up to date.
    Skipped,
    /// `--dry-run`: what would be done.
    Planned,
    /// Something failed; `error` says what. Other documents are unaffected.
    Failed,
    /// Ctrl-C or SIGTERM arrived first; nothing of it was written.
    Interrupted,
}

/// What happened to one output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputReport {
    /// `translation` or `brief`.
    pub kind: &'static str,
    pub path: PathBuf,
    /// `written`, `up-to-date`, `would-write`, `not-written`.
    pub action: &'static str,
    /// Why it was (or would be) written: `new`, `changed` (input, model or settings), `forced`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Milliseconds spent in each stage of a document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub read_ms: f64,
    pub translate_ms: f64,
    /// Of `translate_ms` and `brief_ms`, the time spent in the checks of the outputs.
    pub check_ms: f64,
    pub brief_ms: f64,
    pub total_ms: f64,
}

/// The models used for a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelsUsed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
}

/// One doubt the checks raised about a document's English (`crate::checks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The output checked: `translation` or `brief`.
    pub output: &'static str,
    /// `length`, `language`, `numbers`, `names`, `echo`, `loop`, `answer`.
    pub check: &'static str,
    /// 1-based paragraph (piece) of the document; 1 for a brief, which is checked whole.
    pub paragraph: usize,
    /// 1-based line within the paragraph, when the paragraph has lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub detail: String,
    /// The first English failed this check and a retry passed it: what was written passes.
    pub repaired: bool,
}

/// One document's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocReport {
    pub input: PathBuf,
    pub status: DocStatus,
    pub outputs: Vec<OutputReport>,
    /// The encoding the document was read as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    pub paragraphs: usize,
    pub timings: Timings,
    pub tokens: Usage,
    pub model: ModelsUsed,
    /// What the checks found in the translation, repaired or not.
    pub checks: Vec<CheckReport>,
    /// Paragraphs left with a finding that was not repaired.
    pub flagged_paragraphs: usize,
    /// Paragraphs whose inline formatting (bold, italic, links) came back broken from the model
    /// and was dropped, their text kept.
    pub formatting_dropped: usize,
    /// The brief states numbers or names the English does not have, or copies its sentences,
    /// even after its retry.
    pub flagged_brief: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DocReport {
    pub fn new(input: PathBuf) -> Self {
        Self {
            input,
            status: DocStatus::Skipped,
            outputs: Vec::new(),
            encoding: None,
            paragraphs: 0,
            timings: Timings::default(),
            tokens: Usage::default(),
            model: ModelsUsed::default(),
            checks: Vec::new(),
            flagged_paragraphs: 0,
            formatting_dropped: 0,
            flagged_brief: false,
            error: None,
        }
    }

    /// A document that failed before anything else was known of it.
    pub fn failed(input: PathBuf, error: String) -> Self {
        Self {
            status: DocStatus::Failed,
            error: Some(error),
            ..Self::new(input)
        }
    }
}

/// Counts over all documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub documents: usize,
    pub done: usize,
    pub skipped: usize,
    pub planned: usize,
    pub failed: usize,
    pub interrupted: usize,
    /// Paragraphs, over all documents, left with a finding of the checks.
    pub flagged_paragraphs: usize,
    /// Documents with at least one such paragraph.
    pub flagged_documents: usize,
    pub tokens: Usage,
    /// Generated tokens per second of wall time.
    pub output_tokens_per_s: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub device: String,
    pub jobs: usize,
    pub elapsed_s: f64,
    pub totals: Totals,
    pub documents: Vec<DocReport>,
    /// The shard this run processed (`--shard`, or the scheduler's environment); absent when it
    /// processed every document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardReport>,
    /// Each chat model that decoded conversations together: the slots chosen and what the
    /// batching did. Absent when batching was off (`--batch 1`) or no chat model ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batching: Vec<crate::backends::batch::BatchReport>,
    /// Each Marian model that pooled the sentences of the documents in flight: its budget and
    /// what the batches held. Absent when pooling was off (`--pool-tokens 0`) or no Marian
    /// model ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pooling: Vec<crate::backends::pool::PoolReport>,
}

/// Which part of the plan a sharded run processed, and the plan it was cut from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardReport {
    pub index: usize,
    pub count: usize,
    /// `flag`, `slurm` or `kubernetes`: where the shard came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::pipeline::shard::Source>,
    /// The scheduler's name for this task (`slurm job 41_2`, `kubernetes pod NAME`), and the
    /// host it ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub host: String,
    /// Documents (and unplannable paths) of this shard, and their bytes.
    pub documents: usize,
    pub bytes: u64,
    /// Documents of the whole plan, every shard together.
    pub plan_documents: usize,
    /// The plan's digest: equal in every shard that saw the same folders. `report merge`
    /// reads the plan from `plan-DIGEST.json` beside the reports.
    pub plan_digest: String,
    /// The whole plan, written beside the per-shard reports (not in the report itself).
    #[serde(skip)]
    pub listing: Option<crate::pipeline::shard::PlanListing>,
}

impl ShardReport {
    pub fn new(shard: crate::pipeline::shard::Shard, listing: &crate::pipeline::shard::PlanListing) -> Self {
        let mine = listing.documents.iter().filter(|d| d.shard == shard.index);
        let (documents, bytes) = mine.fold((0, 0), |(n, b), d| (n + 1, b + d.bytes));
        Self {
            index: shard.index,
            count: shard.count,
            source: None,
            task: None,
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            documents,
            bytes,
            plan_documents: listing.documents.len(),
            plan_digest: listing.digest.clone(),
            listing: Some(listing.clone()),
        }
    }
}

impl Report {
    pub fn new(device: String, jobs: usize, documents: Vec<DocReport>, elapsed_s: f64) -> Self {
        let mut totals = Totals {
            documents: documents.len(),
            ..Default::default()
        };
        for d in &documents {
            match d.status {
                DocStatus::Done => totals.done += 1,
                DocStatus::Skipped => totals.skipped += 1,
                DocStatus::Planned => totals.planned += 1,
                DocStatus::Failed => totals.failed += 1,
                DocStatus::Interrupted => totals.interrupted += 1,
            }
            totals.tokens += d.tokens;
            totals.flagged_paragraphs += d.flagged_paragraphs;
            totals.flagged_documents += usize::from(d.flagged_paragraphs > 0);
        }
        if elapsed_s > 0.0 {
            totals.output_tokens_per_s = totals.tokens.output_tokens as f64 / elapsed_s;
        }
        Self {
            tool: "transbrief",
            version: env!("CARGO_PKG_VERSION"),
            device,
            jobs,
            elapsed_s,
            totals,
            documents,
            shard: None,
            batching: Vec::new(),
            pooling: Vec::new(),
        }
    }

    /// Whether every document succeeded (done, skipped or planned).
    pub fn all_ok(&self) -> bool {
        self.totals.failed == 0 && self.totals.interrupted == 0
    }

    /// The closing line for the terminal.
    pub fn summary_line(&self) -> String {
        let t = &self.totals;
        let mut parts = vec![format!("{} done", t.done), format!("{} skipped", t.skipped)];
        if t.planned > 0 {
            parts.push(format!("{} planned", t.planned));
        }
        parts.push(format!("{} failed", t.failed));
        if t.interrupted > 0 {
            parts.push(format!("{} interrupted", t.interrupted));
        }
        if t.flagged_paragraphs > 0 {
            parts.push(format!(
                "{} paragraph{} flagged in {} document{} (see the report's checks)",
                t.flagged_paragraphs,
                if t.flagged_paragraphs == 1 { "" } else { "s" },
                t.flagged_documents,
                if t.flagged_documents == 1 { "" } else { "s" },
            ));
        }
        format!(
            "{} document{}: {} in {:.1} s ({} tokens generated, {:.1} tokens/s)",
            t.documents,
            if t.documents == 1 { "" } else { "s" },
            parts.join(", "),
            self.elapsed_s,
            t.tokens.output_tokens,
            t.output_tokens_per_s
        )
    }
}
