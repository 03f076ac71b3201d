//! Writing outputs so that nothing is ever half-written, and knowing which files are ours.
//!
//! What it is for:
//! - [`atomic_write`] (from `crate::atomic`): a temp file in the destination folder, flushed to
//!   disk, then renamed over the destination, so a reader (or a crash, or Ctrl-C) only ever sees
//!   the old file or the new one, whole;
//! - the *record* of each output, `.transbrief/<output name>.json` beside it, which says which
//!   input, model and settings produced it (a fingerprint) and the sha256 of what was written.
//!   From it [`output_state`] tells whether an output is up to date, stale, or a file transbrief
//!   did not write (which it then never overwrites).
//!
//! Not for: deciding output names (`plan`) or producing the content (`run`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::atomic::{atomic_write, remove_stale_temps};

/// Name of the folder, beside outputs, that holds their records.
pub const STATE_DIR: &str = ".transbrief";


/// What transbrief knows about one output it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// transbrief version that wrote it.
    pub tool: String,
    /// Hash of everything the output depends on: input bytes, model, settings.
    pub fingerprint: String,
    /// sha256 of the output as written.
    pub output_sha256: String,
    /// sha256 of the output this one replaced, so that an interruption between writing this
    /// record and renaming the output in place never makes our own file look foreign.
    #[serde(default)]
    pub previous_sha256: Option<String>,
    /// The input it was made from.
    pub input: String,
    /// The catalog name of the model that made it.
    pub model: String,
    /// Paragraphs of the output left with a finding of the checks when it was written (absent
    /// when none), so that a later `--strict` run still fails on it without translating again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flagged_paragraphs: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The flagged paragraphs an output's record says it has (0 without a record).
pub fn flagged_paragraphs(output: &Path) -> usize {
    read_record(output).map_or(0, |r| r.flagged_paragraphs)
}

/// Where the record of `output` lives.
pub fn record_path(output: &Path) -> PathBuf {
    let dir = output.parent().unwrap_or(Path::new("."));
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(STATE_DIR).join(format!("{name}.json"))
}

fn read_record(output: &Path) -> Option<Record> {
    let bytes = std::fs::read(record_path(output)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where an output stands before a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputState {
    /// Not there yet.
    Absent,
    /// Written by transbrief from the same input, model and settings.
    UpToDate,
    /// Written by transbrief, but from another input, model or settings.
    Stale,
    /// There, but not written by transbrief (or edited since): never overwritten.
    Foreign,
}

/// The state of `output` given the fingerprint a run would give it.
pub fn output_state(output: &Path, fingerprint: &str) -> std::io::Result<OutputState> {
    let bytes = match std::fs::read(output) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutputState::Absent),
        Err(e) => return Err(e),
    };
    let Some(record) = read_record(output) else {
        return Ok(OutputState::Foreign);
    };
    let actual = sha256_hex(&bytes);
    if actual == record.output_sha256 {
        Ok(if record.fingerprint == fingerprint {
            OutputState::UpToDate
        } else {
            OutputState::Stale
        })
    } else if record.previous_sha256.as_deref() == Some(actual.as_str()) {
        // Interrupted between the record and the rename: our older output is still in place.
        Ok(OutputState::Stale)
    } else {
        Ok(OutputState::Foreign)
    }
}

/// Writes `content` to `output` with its record: record first (naming the output it replaces),
/// then the output, both atomically. The caller has checked the output is not foreign.
pub fn commit_output(
    output: &Path,
    content: &[u8],
    fingerprint: &str,
    input: &Path,
    model: &str,
) -> std::io::Result<()> {
    commit_flagged_output(output, content, fingerprint, input, model, 0)
}

/// [`commit_output`] for an output with `flagged_paragraphs` paragraphs that the checks flagged.
pub fn commit_flagged_output(
    output: &Path,
    content: &[u8],
    fingerprint: &str,
    input: &Path,
    model: &str,
    flagged_paragraphs: usize,
) -> std::io::Result<()> {
    let previous_sha256 = std::fs::read(output).ok().map(|b| sha256_hex(&b));
    let record = Record {
        tool: env!("CARGO_PKG_VERSION").to_string(),
        fingerprint: fingerprint.to_string(),
        output_sha256: sha256_hex(content),
        previous_sha256,
        input: input.display().to_string(),
        model: model.to_string(),
        flagged_paragraphs,
    };
    let record_file = record_path(output);
    if let Some(dir) = record_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    atomic_write(&record_file, &json)?;
    atomic_write(output, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.en.txt");
        let input = dir.path().join("a.fr.txt");
        assert_eq!(output_state(&out, "f1").unwrap(), OutputState::Absent);

        commit_output(&out, b"hello", "f1", &input, "m").unwrap();
        assert_eq!(output_state(&out, "f1").unwrap(), OutputState::UpToDate);
        assert_eq!(output_state(&out, "f2").unwrap(), OutputState::Stale);

        // Edited by a person: no longer ours.
        std::fs::write(&out, b"hand edited").unwrap();
        assert_eq!(output_state(&out, "f1").unwrap(), OutputState::Foreign);

        // A file with no record is foreign.
        let other = dir.path().join("b.en.txt");
        std::fs::write(&other, b"mine").unwrap();
        assert_eq!(output_state(&other, "f1").unwrap(), OutputState::Foreign);
    }

    #[test]
    fn interrupted_between_record_and_rename_is_stale_not_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.en.txt");
        let input = dir.path().join("a.fr.txt");
        commit_output(&out, b"old", "f1", &input, "m").unwrap();
        // Simulate: the new record was written, the rename did not happen.
        let record = Record {
            tool: "t".into(),
            fingerprint: "f2".into(),
            output_sha256: sha256_hex(b"new"),
            previous_sha256: Some(sha256_hex(b"old")),
            input: "a".into(),
            model: "m".into(),
            flagged_paragraphs: 0,
        };
        atomic_write(&record_path(&out), &serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(output_state(&out, "f2").unwrap(), OutputState::Stale);
    }

    #[test]
    fn stale_temps_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".a.en.txt.transbrief-x1.tmp");
        let keep = dir.path().join("notes.tmp");
        std::fs::write(&stale, b"x").unwrap();
        std::fs::write(&keep, b"x").unwrap();
        remove_stale_temps(dir.path());
        assert!(stale.exists(), "a fresh temp may belong to a run in flight");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        remove_stale_temps(dir.path());
        assert!(!stale.exists());
        assert!(keep.exists());
    }
}
