//! Interruption safety through the CLI, with the tiny seeded model: `transbrief run` is killed
//! (SIGKILL, as by the OOM killer or a power cut, and SIGINT, as by Ctrl-C) at seeded
//! pseudo-random moments. After each kill, every output that exists must be complete and
//! byte-identical to a clean run's; after SIGINT no temp file may be left; and a rerun must
//! finish the job (exit 0) and report what was already written as up to date.
//!
//! `TRANSBRIEF_KILLS=N` sets the number of kills (default 30); `TRANSBRIEF_KILL_SEED` the seed.
//!
//! Not for: bad documents (tests/bad_input.rs).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;

const DOCS: usize = 8;

fn write_docs(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..DOCS {
        let name = if i % 3 == 0 {
            format!("sub/note{i}.fr.md")
        } else {
            format!("doc{i}.fr.txt")
        };
        let text = format!(
            "Le conseil municipal s'est réuni le {i} mars. Il a voté le budget.\n\n\
             Les habitants du quartier {i} ont demandé une nouvelle école.\n"
        );
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// Every output file (translations and briefs) under `root`, by relative path.
fn outputs(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    for entry in walk(root) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        // Hidden names are temp files (whole or not, they are never outputs).
        if name.contains(".en.")
            && !name.starts_with('.')
            && !entry.components().any(|c| c.as_os_str() == ".transbrief")
        {
            let rel = entry.strip_prefix(root).unwrap().to_path_buf();
            found.insert(rel, std::fs::read(&entry).unwrap());
        }
    }
    found
}

/// transbrief's temp files (`.NAME.transbrief-XXXX.tmp`) under `root`.
fn temp_files(root: &Path) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with('.') && n.contains(".transbrief-") && n.ends_with(".tmp")
        })
        .collect()
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

fn command(env: &Env, dir: &Path, report: Option<&Path>) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("transbrief"));
    c.arg("run").arg(dir).args(env.model_args()).arg("--quiet");
    if let Some(r) = report {
        c.arg("--report").arg(r);
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// splitmix64 of `x`: the delays are reproducible from the seed.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn killed_runs_leave_only_whole_outputs_and_a_rerun_finishes() {
    let kills = env_number("TRANSBRIEF_KILLS", 30);
    let seed = env_number("TRANSBRIEF_KILL_SEED", 0x5EED_0005);
    let env = Env::new(2);

    // The clean run: the reference bytes, and how long a whole run takes.
    let clean = env.dir.path().join("clean");
    write_docs(&clean);
    let t = Instant::now();
    let out = command(&env, &clean, None).output().unwrap();
    let clean_time = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = outputs(&clean);
    assert_eq!(reference.len(), 2 * DOCS, "{reference:?}");

    let span_us = (clean_time.as_micros() as u64).max(1000) * 5 / 4;
    let (mut sigkills, mut sigints) = (0, 0);
    let mut complete_before_rerun = 0usize;
    for i in 0..kills {
        let dir = env.dir.path().join(format!("run{i}"));
        write_docs(&dir);
        let delay = Duration::from_micros(mix(seed.wrapping_add(i)) % span_us);
        let use_sigint = i % 2 == 1;
        let mut child = command(&env, &dir, None).spawn().unwrap();
        std::thread::sleep(delay);
        if use_sigint {
            // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
            let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            assert_eq!(rc, 0);
            sigints += 1;
        } else {
            // Err only when the child already exited, which is fine.
            let _ = child.kill();
            sigkills += 1;
        }
        let status = child.wait().unwrap();
        let what = format!(
            "kill {i} ({}, after {delay:?}, exit {status:?})",
            if use_sigint { "SIGINT" } else { "SIGKILL" }
        );

        let partial = outputs(&dir);
        for (rel, bytes) in &partial {
            assert!(
                reference.get(rel) == Some(bytes),
                "{what}: {} is not the clean run's output",
                rel.display()
            );
        }
        // SIGINT: temp files are removed on the way out. SIGKILL leaves them (nothing runs);
        // they are hidden, and removed by a later run once a minute old.
        let temps_left = temp_files(&dir);
        if use_sigint {
            assert_eq!(temps_left, Vec::<PathBuf>::new(), "{what}");
        }
        complete_before_rerun += partial.len();

        // The rerun finishes the job and skips what is already there.
        let report = env.dir.path().join(format!("report{i}.json"));
        let out = command(&env, &dir, Some(&report)).output().unwrap();
        assert!(
            out.status.success(),
            "{what}: rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(outputs(&dir), reference, "{what}: rerun");
        let mut after = temp_files(&dir);
        after.retain(|t| !temps_left.contains(t));
        assert_eq!(
            after,
            Vec::<PathBuf>::new(),
            "{what}: the rerun left temp files"
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        for doc in report["documents"].as_array().unwrap() {
            for o in doc["outputs"].as_array().unwrap() {
                let path = PathBuf::from(o["path"].as_str().unwrap());
                let rel = path.strip_prefix(&dir).unwrap();
                let expected = if partial.contains_key(rel) {
                    "up-to-date"
                } else {
                    "written"
                };
                assert_eq!(o["action"], expected, "{what}: {}", rel.display());
            }
            let all_there = doc["outputs"].as_array().unwrap().iter().all(|o| {
                let p = PathBuf::from(o["path"].as_str().unwrap());
                partial.contains_key(p.strip_prefix(&dir).unwrap())
            });
            if all_there {
                assert_eq!(doc["status"], "skipped", "{what}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "{kills} kills ({sigkills} SIGKILL, {sigints} SIGINT) over 0..{span_us} us (clean run \
         {clean_time:?}); {complete_before_rerun} of {} outputs were already complete at the \
         kills, all byte-identical; every rerun finished",
        kills as usize * 2 * DOCS
    );
}
