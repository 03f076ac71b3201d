//! `transbrief run --shard K/N` end to end on the tiny seeded model, without a scheduler: the
//! shards of a folder together do every document once, with the bytes of a single run; each
//! writes `shard-K-of-N.json` into a report folder and `report merge` joins them (and fails,
//! naming them, when a shard's documents are missing); `--dry-run` lists one shard's work; the
//! scheduler's environment is read, and refused when its task ids are not shard numbers; a task
//! killed mid-run leaves nothing half-written and its re-run finishes the shard.
//!
//! Not for: a real Slurm cluster (tests/slurm.rs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::Env;

fn transbrief(env: &Env, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("transbrief"))
        .args(args)
        .args(env.model_args())
        .arg("-q")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("TRANSBRIEF_SHARDS")
        .output()
        .unwrap()
}

fn merge(dir: &Path) -> (Output, serde_json::Value) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("transbrief"))
        .args(["report", "merge"])
        .arg(dir)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

#[test]
fn three_shards_do_every_document_once_with_the_bytes_of_one_run() {
    let env = Env::new(8);
    let (single, docs) = env.nine_docs_run_once();

    // The dry run of one shard lists that shard's work only.
    let dry = transbrief(
        &env,
        &["run", docs.to_str().unwrap(), "--dry-run", "--shard", "1/3"],
    );
    let listing = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        listing.starts_with("shard 1/3: "),
        "{}",
        common::describe(&dry)
    );
    assert!(listing.contains(" of 9 documents"), "{listing}");

    let reports = env.dir.path().join("reports");
    let dir_arg = format!("{}/", reports.display());
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = transbrief(
            &env,
            &[
                "run",
                docs.to_str().unwrap(),
                "--shard",
                &shard,
                "--report",
                &dir_arg,
            ],
        );
        assert!(out.status.success(), "{}", common::describe(&out));
        assert!(reports.join(format!("shard-{k}-of-3.json")).is_file());
    }
    let (out, merged) = merge(&reports);
    assert!(out.status.success(), "{}", common::describe(&out));
    let done = common::merged_inputs(&merged, "done");
    assert_eq!(done.len(), 9, "{merged:#}");
    let mut unique = done.clone();
    unique.dedup();
    assert_eq!(unique, done, "a document was done twice");
    assert_eq!(merged["totals"]["missing"], 0);
    assert_eq!(common::tree(&docs), common::tree(&single), "outputs differ");

    // A shard whose report is lost: merge names its documents and fails.
    let lost = reports.join("shard-2-of-3.json");
    let lost_docs = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&lost).unwrap())
        .unwrap()["documents"]
        .as_array()
        .unwrap()
        .len();
    std::fs::remove_file(&lost).unwrap();
    let (out, merged) = merge(&reports);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    assert_eq!(merged["shards"]["missing"], serde_json::json!([2]));
    assert_eq!(
        merged["missing_documents"].as_array().unwrap().len(),
        lost_docs
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("never reported: 2"));
}

#[test]
fn the_scheduler_environment_gives_the_shard_or_is_refused() {
    let env = Env::new(8);
    let docs = env.folder("docs");
    common::write_nine_docs(&docs);
    let run = |vars: &[(&str, &str)]| {
        Command::new(assert_cmd::cargo::cargo_bin("transbrief"))
            .args(["run", docs.to_str().unwrap(), "--dry-run"])
            .args(env.model_args())
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&[
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_MAX", "2"),
        ("SLURM_ARRAY_TASK_STEP", "1"),
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("shard 2/3: "));
    let out = run(&[("JOB_COMPLETION_INDEX", "0"), ("TRANSBRIEF_SHARDS", "4")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("shard 0/4: "),
        "{}",
        common::describe(&out)
    );
    // --array=1,5,7: the task ids are not shard numbers.
    let out = run(&[
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "7"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--array=0-2"));
    let out = run(&[("JOB_COMPLETION_INDEX", "0")]);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TRANSBRIEF_SHARDS"));
}

/// Every output file under `root` (names with `.en.`), with its bytes.
fn outputs(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    common::tree(root)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains(".en."))
        .collect()
}

#[test]
fn a_killed_task_leaves_nothing_half_written_and_its_rerun_finishes_the_shard() {
    let env = Env::new(8);
    let (single, docs) = env.nine_docs_run_once();
    let clean = outputs(&single);

    let reports = env.dir.path().join("reports");
    let dir_arg = format!("{}/", reports.display());
    let args = |k: usize| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("transbrief"));
        c.args(["run", docs.to_str().unwrap(), "--shard"])
            .arg(format!("{k}/2"))
            .args(["--report", &dir_arg])
            .args(env.model_args())
            .arg("-q");
        c
    };
    // Kill shard 0 once it has written its first output (or after 20 s at most).
    let mut child = args(0).spawn().unwrap();
    let start = Instant::now();
    while outputs(&docs).is_empty() && start.elapsed() < Duration::from_secs(20) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    for (path, bytes) in outputs(&docs) {
        let whole = clean.iter().find(|(p, _)| *p == path).map(|(_, b)| b);
        assert_eq!(whole, Some(&bytes), "{} is not whole", path.display());
    }
    assert!(
        !reports.join("shard-0-of-2.json").exists(),
        "killed before its report"
    );

    // The re-run (its locks are stale: their holder is dead) and the other shard finish.
    for k in [0, 1] {
        let out = args(k).output().unwrap();
        assert!(out.status.success(), "{}", common::describe(&out));
    }
    let (out, merged) = merge(&reports);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert_eq!(
        common::merged_inputs(&merged, "done").len()
            + common::merged_inputs(&merged, "skipped").len(),
        9,
        "{merged:#}"
    );
    assert_eq!(outputs(&docs), clean);
    let locks: Vec<_> = walk(&docs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    assert!(locks.is_empty(), "locks left: {locks:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
