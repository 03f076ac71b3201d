//! A real Slurm cluster (`scripts/slurm-local start`, which `.ci/run` calls): the job array of
//! `scripts/slurm/translate.sbatch` (`sbatch --array=0-2 --wait`) over nine documents with the
//! tiny seeded model, its dependent merge job, and the merged report: every document done
//! exactly once, outputs byte-identical to a single-process `run`; then two outputs removed, the
//! array submitted again, and only those two redone.
//!
//! Without Slurm (no `sbatch`, or no idle node) the test prints `SKIP:` and why; in CI (the
//! `CI` variable set) it fails instead. Jobs run under slurmd as root here, so they can read the
//! test's temp folder and the cargo-built binary.
//!
//! Not for: sharding without a scheduler (tests/shard.rs).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Env;

/// Why Slurm cannot be used here, if it cannot.
fn slurm_missing() -> Option<String> {
    match Command::new("sinfo").args(["-h", "-o", "%t"]).output() {
        Err(e) => Some(format!(
            "sinfo cannot run ({e}); start a cluster with scripts/slurm-local"
        )),
        Ok(o) if !o.status.success() => Some(format!(
            "sinfo fails: {}; start a cluster with scripts/slurm-local",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(o) => {
            let states = String::from_utf8_lossy(&o.stdout).into_owned();
            (!states.contains("idle") && !states.contains("mix"))
                .then(|| format!("no idle Slurm node (sinfo says {:?})", states.trim()))
        }
    }
}

/// Submits the array over `docs` with reports into `reports`, waits for it, then for the merge
/// job's merged.json; prints what Slurm says about the jobs (squeue, scontrol) and the task
/// logs. Returns the merged report.
fn submit(env: &Env, docs: &Path, reports: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/translate.sbatch");
    let bin = assert_cmd::cargo::cargo_bin("transbrief");
    let logs = reports.with_extension("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let out = Command::new("sbatch")
        .args(["--array=0-2", "--wait", "--cpus-per-task=1"])
        .arg(format!("--chdir={}", env.dir.path().display()))
        .arg(format!("--output={}/task-%A_%a.out", logs.display()))
        .arg("--export=ALL")
        .env("TRANSBRIEF", &bin)
        .env("TRANSBRIEF_REPORT_DIR", reports)
        .env("HF_HUB_OFFLINE", "1")
        .arg(&script)
        .arg(docs)
        .args(env.model_choice())
        .output()
        .unwrap();
    let job = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    let mut evidence = vec![format!(
        "$ sbatch --array=0-2 --wait ...\n{}",
        common::describe(&out)
    )];
    // The merge job task 0 submitted runs once the array succeeded.
    let merged = reports.join("merged.json");
    let start = Instant::now();
    while out.status.success() && !merged.is_file() && start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(250));
    }
    // Its id is in the marker file task 0 left for this array.
    let merge_job = std::fs::read_to_string(reports.join(format!(".merge-submitted-{job}")))
        .unwrap_or_default();
    for args in [
        // Jobs finished within MinJobAge are still listed with --states=all.
        vec!["squeue", "-a", "--states=all", "-o", "%i %j %T %M %R"],
        vec!["scontrol", "show", "job", &job],
        vec!["scontrol", "show", "job", merge_job.trim()],
    ] {
        if let Ok(o) = Command::new(args[0]).args(&args[1..]).output() {
            evidence.push(format!(
                "$ {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout)
            ));
        }
    }
    let mut names: Vec<PathBuf> = [&logs, reports]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    names.sort();
    for p in names {
        evidence.push(format!(
            "--- {}\n{}",
            p.display(),
            std::fs::read_to_string(&p).unwrap_or_default()
        ));
    }
    println!("{}", evidence.join("\n"));
    assert!(out.status.success(), "the array failed (above)");
    assert!(
        merged.is_file(),
        "the merge job wrote no {}",
        merged.display()
    );
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    println!(
        "--- merged report (shards, totals, by_status)\n{:#}\n{:#}\n{:#}",
        value["shards"], value["totals"], value["by_status"]
    );
    value
}

#[test]
fn a_slurm_array_translates_a_folder_once_and_a_resubmission_redoes_only_what_is_missing() {
    if let Some(why) = slurm_missing() {
        if std::env::var_os("CI").is_some() {
            panic!("Slurm is needed in CI (scripts/slurm-local start): {why}");
        }
        println!("SKIP: {why}");
        return;
    }
    let env = Env::new(8);
    let (single, docs) = env.nine_docs_run_once();

    let merged = submit(&env, &docs, &env.dir.path().join("reports-1"));
    assert_eq!(merged["ok"], true, "{merged:#}");
    assert_eq!(merged["shards"]["reported"], serde_json::json!([0, 1, 2]));
    let done = common::merged_inputs(&merged, "done");
    let mut unique = done.clone();
    unique.dedup();
    assert_eq!(done.len(), 9, "{merged:#}");
    assert_eq!(unique, done, "a document was done twice");
    assert_eq!(merged["totals"]["duplicated"], 0);
    assert_eq!(
        common::tree(&docs),
        common::tree(&single),
        "outputs differ from one run's"
    );

    // Two outputs lost: the same array again redoes those two documents only.
    std::fs::remove_file(docs.join("doc0.en.txt")).unwrap();
    std::fs::remove_file(docs.join("rapports/doc5.brief.en.md")).unwrap();
    let again = submit(&env, &docs, &env.dir.path().join("reports-2"));
    assert_eq!(again["ok"], true, "{again:#}");
    let redone = common::merged_inputs(&again, "done");
    assert_eq!(redone.len(), 2, "{again:#}");
    assert!(redone[0].ends_with("docs/doc0.fr.txt"), "{redone:?}");
    assert!(
        redone[1].ends_with("docs/rapports/doc5.fr.txt"),
        "{redone:?}"
    );
    assert_eq!(common::merged_inputs(&again, "skipped").len(), 7);
    assert_eq!(common::tree(&docs), common::tree(&single));
}
