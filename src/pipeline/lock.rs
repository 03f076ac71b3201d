//! Per-output locks, so that two tasks given overlapping shards by mistake (or two runs over
//! the same folder) never write the same output at once.
//!
//! What it is for: before a document's outputs are made, `run` takes `.transbrief/NAME.lock`
//! beside each output it will write. The lock appears whole: its body is written to a temp file
//! that is then hard-linked to the lock's name, which is atomic and fails when the name exists,
//! on local file systems and on NFS v3 and later (where hard links are not supported, the lock
//! is created with O_EXCL and then written). The file says who holds it (host, pid, the
//! process's start time, shard, since when). A lock held by a live process is respected: the
//! document fails with a message naming the holder, and the other task finishes it. A lock whose
//! holder is gone (same host, and that process is dead or is another process reusing its pid) is
//! stale: it is reported on stderr, removed and taken. A lock from another host cannot be
//! checked from here: it is reported with the command that removes it once that task is known to
//! be dead. The lock is removed when the output is written or given up (`Drop`).
//!
//! Not for: writing outputs (`write`), or deciding whether they are up to date (`run`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::write::STATE_DIR;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot, /proc/PID/stat field 22), so that a
    /// reused pid is not taken for the holder.
    #[serde(default)]
    pub start: Option<u64>,
    /// `K/N` when the holder ran one shard.
    #[serde(default)]
    pub shard: Option<String>,
    /// Seconds since the Unix epoch when it was taken.
    pub since: u64,
}

impl Holder {
    /// This process.
    pub fn me(shard: Option<String>) -> Holder {
        Holder {
            host: hostname(),
            pid: std::process::id(),
            start: start_time(std::process::id()),
            shard,
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    fn describe(&self) -> String {
        let shard = self
            .shard
            .as_ref()
            .map(|s| format!(", shard {s}"))
            .unwrap_or_default();
        format!(
            "host {} pid {}{shard}, since {} (Unix time)",
            self.host, self.pid, self.since
        )
    }

    /// Whether the holder is known to be gone: on this host, and its pid is dead or belongs to
    /// another process now. `None`: cannot tell (another host).
    fn gone(&self) -> Option<bool> {
        if self.host != hostname() {
            return None;
        }
        if self.pid == std::process::id() && self.start == start_time(self.pid) {
            return Some(false);
        }
        let now = start_time(self.pid);
        Some(match (now, self.start) {
            (None, _) => !Path::new(&format!("/proc/{}", self.pid)).exists(),
            (Some(now), Some(then)) => now != then,
            (Some(_), None) => false,
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Field 22 of /proc/PID/stat (after the parenthesised command name, which may hold spaces).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Where the lock of `output` lives.
pub fn lock_path(output: &Path) -> PathBuf {
    let dir = output.parent().unwrap_or(Path::new("."));
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(STATE_DIR).join(format!("{name}.lock"))
}

/// A lock held by this process; removed on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Another live process (or one on another host) holds it.
    Held { path: PathBuf, holder: Holder },
    /// The lock could not be created or read.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Held { path, holder } => {
                let mine = hostname() == holder.host;
                write!(
                    f,
                    "is being written by another transbrief ({}); it was left to that task. \
                     {}",
                    holder.describe(),
                    if mine {
                        "Run again once it has finished".to_string()
                    } else {
                        format!(
                            "If that task is dead, the lock is stale: remove {} and run again",
                            path.display()
                        )
                    }
                )
            }
            Refused::Io(path, e) => write!(f, "cannot take the lock {}: {e}", path.display()),
        }
    }
}

/// Takes the lock of `output` for `me`. A stale lock (its holder is gone) is reported on stderr
/// and taken over.
pub fn acquire(output: &Path, me: &Holder) -> Result<Lock, Refused> {
    let path = lock_path(output);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Refused::Io(path.clone(), e))?;
    }
    let body = serde_json::to_vec(me).map_err(|e| Refused::Io(path.clone(), e.into()))?;
    // The lock appears with its body or not at all: the body goes into a file of this process
    // first, which is then hard-linked to the lock's name (atomic, and failing when the name
    // exists, as O_EXCL; on NFS too). A run killed between creating the lock and writing its
    // body would otherwise leave an empty lock that no one could tell from one being written.
    let draft =
        crate::atomic::temp_beside(&path, &body).map_err(|e| Refused::Io(path.clone(), e))?;
    // Two tries: the second after removing a stale lock.
    for _ in 0..2 {
        match link_or_create(draft.path(), &path, &body) {
            Ok(()) => return Ok(Lock { path: path.clone() }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = match std::fs::read(&path) {
                    Ok(bytes) => serde_json::from_slice::<Holder>(&bytes).ok(),
                    // Released in between: try again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Refused::Io(path, e)),
                };
                let Some(holder) = holder else {
                    // Garbage, or (on a file system without hard links) being written.
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .map_or(0, |d| d.as_secs());
                    if age >= 60 {
                        eprintln!(
                            "warning: stale lock {} (unreadable, {age} s old): removed",
                            path.display()
                        );
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    return Err(Refused::Held {
                        path,
                        holder: Holder {
                            host: "unknown".into(),
                            pid: 0,
                            start: None,
                            shard: None,
                            since: 0,
                        },
                    });
                };
                if holder.gone() == Some(true) {
                    eprintln!(
                        "warning: stale lock {} (held by {}, which is no longer running): taken \
                         over",
                        path.display(),
                        holder.describe()
                    );
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                return Err(Refused::Held { path, holder });
            }
            Err(e) => return Err(Refused::Io(path, e)),
        }
    }
    Err(Refused::Io(
        path,
        std::io::Error::other("another process keeps taking it"),
    ))
}

/// Gives the lock `path` the body in `draft`: a hard link, or, on a file system without them,
/// a file created with O_EXCL and then written. Either fails with `AlreadyExists` when the lock
/// is there.
fn link_or_create(draft: &Path, path: &Path, body: &[u8]) -> std::io::Result<()> {
    match std::fs::hard_link(draft, path) {
        Err(e) if !matches!(e.kind(), std::io::ErrorKind::AlreadyExists) => {
            tracing::debug!("no hard link for {} ({e}): O_EXCL instead", path.display());
            let mut f = (std::fs::OpenOptions::new())
                .write(true)
                .create_new(true)
                .open(path)?;
            f.write_all(body).and_then(|_| f.sync_all())
        }
        linked => linked,
    }
}

/// Removes the stale locks (holder gone: same host, process dead) in the records folder of the
/// output folder `dir`, reporting each on stderr: a killed run leaves its locks behind, also
/// those of outputs it finished, which no later run would otherwise look at.
pub fn remove_stale(dir: &Path) {
    // The drafts of locks whose run was killed before it linked them.
    crate::atomic::remove_stale_temps(&dir.join(STATE_DIR));
    let Ok(entries) = std::fs::read_dir(dir.join(STATE_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        let Some(holder) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
        else {
            continue;
        };
        if holder.gone() == Some(true) && std::fs::remove_file(&path).is_ok() {
            eprintln!(
                "warning: stale lock {} (held by {}, which is no longer running): removed",
                path.display(),
                holder.describe()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.en.txt");
        let me = Holder::me(Some("0/2".into()));
        let lock = acquire(&out, &me).unwrap();
        assert!(lock_path(&out).is_file());
        // The same live process holds it: refused, with the holder named.
        let e = acquire(&out, &me).unwrap_err();
        assert!(e.to_string().contains("shard 0/2"), "{e}");
        drop(lock);
        assert!(!lock_path(&out).exists());
        drop(acquire(&out, &me).unwrap());
    }

    /// The lock is linked from a draft, which does not outlive `acquire`; a draft a killed run
    /// left behind is swept with the stale locks once it is a minute old.
    #[test]
    fn a_lock_appears_whole_and_leaves_no_draft() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.en.txt");
        let me = Holder::me(None);
        let lock = acquire(&out, &me).unwrap();
        let state = dir.path().join(STATE_DIR);
        let names = |d: &Path| -> Vec<String> {
            let mut n: Vec<String> = (std::fs::read_dir(d).unwrap())
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&state), ["a.en.txt.lock"]);
        let body: Holder = serde_json::from_slice(&std::fs::read(lock_path(&out)).unwrap()).unwrap();
        assert_eq!(body, me);
        drop(lock);
        let draft = crate::atomic::temp_beside(&lock_path(&out), b"{}").unwrap();
        let (_, kept) = draft.keep().unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        (std::fs::File::options().write(true).open(&kept).unwrap())
            .set_modified(old)
            .unwrap();
        remove_stale(dir.path());
        assert!(names(&state).is_empty(), "{:?}", names(&state));
    }

    #[test]
    fn a_dead_holders_lock_is_stale_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.en.txt");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder {
            pid,
            start: Some(1),
            ..Holder::me(None)
        };
        std::fs::create_dir_all(lock_path(&out).parent().unwrap()).unwrap();
        std::fs::write(lock_path(&out), serde_json::to_vec(&dead).unwrap()).unwrap();
        let lock = acquire(&out, &Holder::me(None)).unwrap();
        drop(lock);
        // Left behind by a dead run, found by the sweep of its folder.
        std::fs::write(lock_path(&out), serde_json::to_vec(&dead).unwrap()).unwrap();
        remove_stale(dir.path());
        assert!(!lock_path(&out).exists());
        // Another host's lock cannot be checked: refused, saying how to remove it.
        let far = Holder {
            host: "elsewhere".into(),
            ..Holder::me(None)
        };
        std::fs::write(lock_path(&out), serde_json::to_vec(&far).unwrap()).unwrap();
        let e = acquire(&out, &Holder::me(None)).unwrap_err().to_string();
        assert!(e.contains("elsewhere") && e.contains("remove"), "{e}");
    }
}
