//! Finding a model's files on disk: a local path, then the Hugging Face cache, then a download.
//!
//! What it is for: given a catalog [`Entry`], return the local path of each of its files,
//! verified against the sha256 the catalog gives. The cache is the one every hub client shares
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), so a file fetched by
//! Python or by `transbrief models fetch` is found offline afterwards. With `--offline` or
//! `HF_HUB_OFFLINE=1`, nothing is downloaded and a missing file is an error that says how to get
//! it. Offline, an entry that follows `main` (an `hf:` reference without `@REVISION`, or a
//! catalog entry with `revision = "main"`) whose repository has no `refs/main` in the cache
//! (snapshots copied without their refs) uses the one snapshot that holds the file.
//! Not for: parsing the files (the model backends do that).
//!
//! Verifying a sha256 reads the whole file (a second per GB); the result is remembered in
//! `~/.cache/transbrief/verified.json`, keyed by path, size and modification time, so each file
//! is hashed once.

// `HubError` carries the repo, file, revision and cache path so that its message says how to get
// the file; it is built at most once per model load, so its size on the stack does not matter.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use hf_hub::{Repo, RepoType};
use sha2::{Digest, Sha256};

use crate::catalog::Entry;

/// Why a model file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "model '{model}': {file} from {repo} (revision {revision}) is not in the Hugging Face cache \
         ({cache}) and downloads are off ({why}). Run `transbrief models fetch {model}` where the \
         hub is reachable (the cache can then be copied), or point the catalog entry's `path` at a \
         local copy"
    )]
    Missing {
        model: String,
        repo: String,
        revision: String,
        file: String,
        cache: String,
        why: &'static str,
    },
    #[error("model '{model}': downloading {file} from {repo}: {message}")]
    Download {
        model: String,
        repo: String,
        file: String,
        message: String,
    },
    #[error(
        "model '{model}': the Hugging Face cache has no refs/main for {repo}, and several \
         snapshots hold {file} ({snapshots}): name one (hf:{repo}/{file}@COMMIT, or a catalog \
         entry's `revision`)"
    )]
    Ambiguous {
        model: String,
        repo: String,
        file: String,
        snapshots: String,
    },
    #[error("model '{model}': local file {} does not exist", path.display())]
    LocalMissing { model: String, path: PathBuf },
    #[error(
        "model '{model}': {} has sha256 {actual}, but the catalog expects {expected}: the file is \
         corrupt, truncated or another version. Delete it and fetch it again",
        path.display()
    )]
    Checksum {
        model: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How files may be obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Cache first, then download.
    Online,
    /// Cache only (`--offline` or `HF_HUB_OFFLINE=1`).
    Offline,
}

impl Access {
    /// `Offline` when asked on the command line or by `HF_HUB_OFFLINE`.
    pub fn from_flag(offline: bool) -> Self {
        let env = std::env::var("HF_HUB_OFFLINE")
            .map(|v| {
                matches!(
                    v.trim(),
                    "1" | "true" | "TRUE" | "yes" | "YES" | "on" | "ON"
                )
            })
            .unwrap_or(false);
        if offline || env {
            Access::Offline
        } else {
            Access::Online
        }
    }
}

/// The shared Hugging Face hub cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    hf_hub::Cache::default().path().clone()
}

/// A model's files, by the role the catalog gives them (`model`, `config`, ...).
#[derive(Debug, Clone)]
pub struct ResolvedFiles {
    pub paths: BTreeMap<String, PathBuf>,
}

impl ResolvedFiles {
    /// The path of the file with `role`.
    pub fn get(&self, role: &str) -> Option<&Path> {
        self.paths.get(role).map(PathBuf::as_path)
    }
}

/// Where one file of an entry stands, for `models list` / `models info`.
#[derive(Debug, Clone)]
pub struct FileStatus {
    pub role: String,
    pub file: String,
    pub local: Option<PathBuf>,
}

fn revision(entry: &Entry) -> &str {
    entry.source.revision.as_deref().unwrap_or("main")
}

fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The local path of `file` of `entry` if it is already on disk (local path or cache).
pub fn find_local(entry: &Entry, file: &str) -> Option<PathBuf> {
    if let Some(path) = &entry.source.path {
        let candidate = if path.is_dir() {
            path.join(file)
        } else {
            path.clone()
        };
        return candidate.is_file().then_some(candidate);
    }
    let repo = entry.source.repo.as_ref()?;
    let rev = revision(entry);
    let cache = hf_hub::Cache::new(cache_dir());
    let cache_repo = Repo::with_revision(repo.clone(), RepoType::Model, rev.to_string());
    if is_commit(rev) {
        // A pinned commit is a snapshot folder of its own, whatever the refs say.
        let p = cache
            .path()
            .join(cache_repo.folder_name())
            .join("snapshots")
            .join(rev)
            .join(file);
        return p.is_file().then_some(p);
    }
    cache.repo(cache_repo).get(file)
}

/// For an entry that follows `main` in a cache without `refs/main`: the one snapshot folder
/// holding `file`, `None` when none does (or when the entry is not such an entry), and the
/// snapshots' names when several do.
fn snapshot_without_ref(entry: &Entry, file: &str) -> Result<Option<PathBuf>, Vec<String>> {
    let (None, Some(repo), "main") = (&entry.source.path, &entry.source.repo, revision(entry))
    else {
        return Ok(None);
    };
    let folder = cache_dir().join(Repo::model(repo.clone()).folder_name());
    if folder.join("refs").join("main").exists() {
        return Ok(None);
    }
    let Ok(snapshots) = std::fs::read_dir(folder.join("snapshots")) else {
        return Ok(None);
    };
    let mut found: Vec<(String, PathBuf)> = snapshots
        .flatten()
        .map(|s| (s.file_name().to_string_lossy().into_owned(), s.path().join(file)))
        .filter(|(_, p)| p.is_file())
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop().map(|(_, p)| p)),
        _ => Err(found.into_iter().map(|(name, _)| name).collect()),
    }
}

/// The status of each file of `entry`, without downloading or hashing anything: what an
/// offline run would use.
pub fn status(entry: &Entry) -> Vec<FileStatus> {
    entry
        .files
        .iter()
        .map(|(role, file)| FileStatus {
            role: role.clone(),
            file: file.clone(),
            local: find_local(entry, file)
                .or_else(|| snapshot_without_ref(entry, file).ok().flatten()),
        })
        .collect()
}

/// Returns every file of `entry` on local disk, downloading what is missing when `access`
/// allows, and verifying the sha256 of every file the catalog gives one for.
pub fn resolve(entry: &Entry, access: Access) -> Result<ResolvedFiles, HubError> {
    let mut paths = BTreeMap::new();
    for (role, file) in &entry.files {
        let path = match find_local(entry, file) {
            Some(p) => p,
            None if access == Access::Offline => match snapshot_without_ref(entry, file) {
                Ok(Some(p)) => p,
                Ok(None) => fetch_file(entry, file, access)?,
                Err(snapshots) => {
                    return Err(HubError::Ambiguous {
                        model: entry.name.clone(),
                        repo: entry.source.repo.clone().unwrap_or_default(),
                        file: file.clone(),
                        snapshots: snapshots.join(", "),
                    })
                }
            },
            None => fetch_file(entry, file, access)?,
        };
        if let Some(expected) = entry.sha256.get(file) {
            verify(&entry.name, &path, expected)?;
        }
        paths.insert(role.clone(), path);
    }
    Ok(ResolvedFiles { paths })
}

fn fetch_file(entry: &Entry, file: &str, access: Access) -> Result<PathBuf, HubError> {
    let model = entry.name.clone();
    let Some(repo) = &entry.source.repo else {
        let path = entry.source.path.clone().unwrap_or_default();
        let path = if path.is_dir() { path.join(file) } else { path };
        return Err(HubError::LocalMissing { model, path });
    };
    let rev = revision(entry).to_string();
    if access == Access::Offline {
        let why = if std::env::var_os("HF_HUB_OFFLINE").is_some() {
            "HF_HUB_OFFLINE is set"
        } else {
            "--offline"
        };
        return Err(HubError::Missing {
            model,
            repo: repo.clone(),
            revision: rev,
            file: file.to_string(),
            cache: cache_dir().display().to_string(),
            why,
        });
    }
    let download_error = |message: String| HubError::Download {
        model: model.clone(),
        repo: repo.clone(),
        file: file.to_string(),
        message,
    };
    let api = hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(cache_dir()))
        .with_progress(true)
        .build()
        .map_err(|e| download_error(e.to_string()))?;
    api.repo(Repo::with_revision(repo.clone(), RepoType::Model, rev))
        .download(file)
        .map_err(|e| download_error(e.to_string()))
}

/// Checks `path` against `expected` (hex sha256), hashing it only if this exact file (path,
/// size, mtime) was not verified before.
pub fn verify(model: &str, path: &Path, expected: &str) -> Result<(), HubError> {
    let io = |source| HubError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let key = stamp_key(path, &meta);
    let mut stamps = load_stamps();
    if stamps.get(&key).map(String::as_str) == Some(expected) {
        return Ok(());
    }
    let actual = sha256_file(path).map_err(io)?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(HubError::Checksum {
            model: model.to_string(),
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    stamps.insert(key, actual);
    save_stamps(&stamps);
    Ok(())
}

/// Hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn stamp_key(path: &Path, meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    format!("{}|{}|{}", canonical.display(), meta.len(), mtime)
}

fn stamps_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("transbrief").join("verified.json"))
}

fn load_stamps() -> BTreeMap<String, String> {
    stamps_path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort: a cache that cannot be written only costs a re-hash next time.
fn save_stamps(stamps: &BTreeMap<String, String>) {
    let Some(path) = stamps_path() else { return };
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    if let Ok(json) = serde_json::to_vec_pretty(stamps) {
        let _ = crate::atomic::atomic_write(&path, &json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn local_entry(dir: &Path, sha: Option<&str>) -> Entry {
        let mut c = Catalog::default();
        let sha = sha
            .map(|s| format!("sha256 = {{ \"m.bin\" = \"{s}\" }}\n"))
            .unwrap_or_default();
        let text = format!(
            "[prompts.p]\ntranslate_system=''\ntranslate_user=''\nbrief_system=''\nbrief_user=''\nchunk_user=''\nreduce_user=''\n\
             [models.local]\ndescription='d'\nfamily='gguf-chat'\ntasks=['translate']\nprompts='p'\npath='{}'\nfiles={{model='m.bin'}}\n{sha}",
            dir.display()
        );
        c.add_str(&text, "test").unwrap();
        c.get("local").unwrap().clone()
    }

    #[test]
    fn local_path_wins_and_checksums_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.bin"), b"hello").unwrap();
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let files = resolve(&local_entry(dir.path(), Some(good)), Access::Offline).unwrap();
        assert_eq!(files.get("model").unwrap(), dir.path().join("m.bin"));

        let bad = "00".repeat(32);
        let err = resolve(&local_entry(dir.path(), Some(&bad)), Access::Offline)
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.bin") && err.contains(&bad), "{err}");
    }

    #[test]
    fn a_missing_local_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&local_entry(dir.path(), None), Access::Online)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.bin") && err.contains("does not exist"),
            "{err}"
        );
    }

    #[test]
    fn offline_and_missing_names_repo_file_and_the_fix() {
        let mut c = Catalog::default();
        c.add_str(crate::catalog::BUILTIN, "built-in").unwrap();
        let mut entry = c.get("qwen2.5-1.5b-instruct").unwrap().clone();
        entry.source.repo = Some("nobody/not-a-repo-transbrief-test".into());
        let err = resolve(&entry, Access::Offline).unwrap_err().to_string();
        assert!(err.contains("nobody/not-a-repo-transbrief-test"), "{err}");
        assert!(err.contains("qwen2.5-1.5b-instruct-q4_k_m.gguf"), "{err}");
        assert!(err.contains("transbrief models fetch"), "{err}");
    }
}
