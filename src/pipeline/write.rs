//! Writing outputs so that nothing is ever half-written, and knowing which files are ours.
//!
//! What it is for:
//! - [`atomic_write`]: a temp file in the destination folder, flushed to disk, then renamed over
//!   the destination, so a reader (or a crash, or Ctrl-C) only ever sees the old file or the new
//!   one, whole;
//! - the *record* of each output, `.transbrief/<output name>.json` beside it, which says which
//!   input, model and settings produced it (a fingerprint) and the sha256 of what was written.
//!   From it [`output_state`] tells whether an output is up to date, stale, or a file transbrief
//!   did not write (which it then never overwrites).
//!
//! Not for: deciding output names (`plan`) or producing the content (`run`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the folder, beside outputs, that holds their records.
pub const STATE_DIR: &str = ".transbrief";
const TEMP_MARK: &str = ".transbrief-";
const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}{TEMP_MARK}");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    // Temp files are created 0600; the output must get the mode any new file gets (0666 less
    // the umask), or translations would be unreadable to the user's group.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On error the temp file is removed when `tmp` (or the error holding it) is dropped.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Removes temp files that an interrupted run (killed, power loss) left in `dir`. Only files
/// with transbrief's temp-file pattern and older than a minute are touched, so a concurrent
/// run's file in flight is left alone.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.contains(TEMP_MARK) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age.as_secs() >= 60);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

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
    let previous_sha256 = std::fs::read(output).ok().map(|b| sha256_hex(&b));
    let record = Record {
        tool: env!("CARGO_PKG_VERSION").to_string(),
        fingerprint: fingerprint.to_string(),
        output_sha256: sha256_hex(content),
        previous_sha256,
        input: input.display().to_string(),
        model: model.to_string(),
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
    fn atomic_write_replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.en.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_gives_the_mode_of_an_ordinary_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ordinary = dir.path().join("ordinary.txt");
        std::fs::write(&ordinary, b"x").unwrap();
        let ours = dir.path().join("a.en.txt");
        atomic_write(&ours, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&ordinary));
    }

    #[test]
    fn atomic_write_into_a_missing_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("a.txt");
        assert!(atomic_write(&p, b"x").is_err());
        assert!(!p.exists());
    }

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
