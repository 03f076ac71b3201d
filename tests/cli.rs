//! The command line end to end, on a tiny GGUF model the test writes itself (random weights, a
//! real byte-level BPE vocabulary): naming, skipping up-to-date outputs, `--force`, `--dry-run`,
//! `--out-dir`, foreign files, usage errors, the report, stdin/stdout, `models list`.
//!
//! The tiny model writes nonsense, so these tests check the tool's behaviour, not translation
//! quality (tests/real_model.rs does that when the real model is present).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

struct Fixture {
    dir: tempfile::TempDir,
    catalog: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir_all(&models).unwrap();
        transbrief::testkit::write_tiny_qwen2_gguf(&models.join("tiny.gguf"), 42).unwrap();
        let catalog = dir.path().join("catalog.toml");
        std::fs::write(
            &catalog,
            r#"
[defaults]
translate = "tiny"
brief = "tiny"

[models.tiny]
description = "tiny random qwen2 for tests"
family = "gguf-chat"
tasks = ["translate", "brief"]
path = "models"
files = { model = "tiny.gguf" }
prompts = "news-fr-en"
[models.tiny.generation]
max_new_tokens = 12
context = 512
"#,
        )
        .unwrap();
        Self { dir, catalog }
    }

    fn docs(&self) -> PathBuf {
        let d = self.dir.path().join("docs");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(
            d.join("a.fr.txt"),
            "Le président a parlé.\n\nLes familles ont quitté Raqqa.\n\nM. Dupont est arrivé à 12 h 30.\n",
        )
        .unwrap();
        std::fs::write(
            d.join("sub/b.md"),
            "# Titre\n\nUn paragraphe en français.\n\n```\ncode\n```\n",
        )
        .unwrap();
        d
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("transbrief").unwrap();
        c.arg("--catalog")
            .arg(&self.catalog)
            .env("HF_HUB_OFFLINE", "1");
        c
    }

    fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.cmd()
            .arg("run")
            .args(args)
            .args(["--jobs", "2", "-q"])
            .assert()
    }
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn statuses(r: &serde_json::Value) -> Vec<String> {
    r["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn run_writes_translations_and_briefs_then_skips_then_forces() {
    let f = Fixture::new();
    let docs = f.docs();
    let rep = f.dir.path().join("r.json");
    f.run(&[docs.to_str().unwrap(), "--report", rep.to_str().unwrap()])
        .success();

    let en = std::fs::read_to_string(docs.join("a.en.txt")).unwrap();
    assert_eq!(
        en.trim_end().split("\n\n").count(),
        3,
        "one output paragraph per input paragraph: {en:?}"
    );
    let brief = std::fs::read_to_string(docs.join("a.brief.en.md")).unwrap();
    assert!(brief.starts_with("# "), "{brief:?}");
    let md = std::fs::read_to_string(docs.join("sub/b.en.md")).unwrap();
    assert!(md.starts_with("# "), "heading marker kept: {md:?}");
    assert!(md.contains("```\ncode\n```"), "code kept verbatim: {md:?}");
    assert!(docs.join("sub/b.brief.en.md").is_file());

    let r = report(&rep);
    assert_eq!(statuses(&r), ["done", "done"]);
    assert_eq!(r["totals"]["done"], 2);
    let d = &r["documents"][0];
    for field in ["input", "status", "outputs", "timings", "tokens", "model"] {
        assert!(!d[field].is_null(), "report field {field}");
    }
    assert_eq!(d["model"]["translate"], "tiny");
    assert!(d["tokens"]["output_tokens"].as_u64().unwrap() > 0);

    // Second run: everything up to date.
    f.run(&[docs.to_str().unwrap(), "--report", rep.to_str().unwrap()])
        .success();
    assert_eq!(statuses(&report(&rep)), ["skipped", "skipped"]);

    // --force redoes both, with the same bytes (greedy decoding).
    f.run(&[
        docs.to_str().unwrap(),
        "--force",
        "--report",
        rep.to_str().unwrap(),
    ])
    .success();
    assert_eq!(statuses(&report(&rep)), ["done", "done"]);
    assert_eq!(std::fs::read_to_string(docs.join("a.en.txt")).unwrap(), en);

    // Editing the input makes its outputs stale. Only that document needs the model, so it runs
    // alone (the kernel threads are sized for one document in flight, not for --jobs 2). Without
    // batching: a batching chat model runs one pass at a time on every core anyway.
    std::fs::write(docs.join("a.fr.txt"), "Un autre texte.\n").unwrap();
    let rerun = f
        .cmd()
        .env("TRANSBRIEF_LOG", "transbrief=debug")
        .arg("run")
        .arg(&docs)
        .args([
            "--report",
            rep.to_str().unwrap(),
            "--jobs",
            "2",
            "--batch",
            "1",
            "-q",
        ])
        .assert()
        .success();
    assert_eq!(statuses(&report(&rep)), ["done", "skipped"]);
    let log = String::from_utf8_lossy(&rerun.get_output().stderr).into_owned();
    assert!(log.contains("to_run=1 in_flight=1"), "{log}");
}

#[test]
fn dry_run_says_what_and_why_and_touches_nothing() {
    let f = Fixture::new();
    let docs = f.docs();
    f.cmd()
        .args(["run", "--dry-run"])
        .arg(&docs)
        .assert()
        .success()
        .stdout(predicate::str::contains("write (new)"))
        .stdout(predicate::str::contains("a.en.txt"))
        .stdout(predicate::str::contains("b.brief.en.md"));
    assert!(!docs.join("a.en.txt").exists());
    assert!(!docs.join(".transbrief").exists());
}

#[test]
fn out_dir_mirrors_the_tree_and_only_limits_outputs() {
    let f = Fixture::new();
    let docs = f.docs();
    let out = f.dir.path().join("out");
    f.run(&[
        docs.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--only",
        "translate",
    ])
    .success();
    assert!(out.join("a.en.txt").is_file());
    assert!(out.join("sub/b.en.md").is_file());
    assert!(!out.join("a.brief.en.md").exists());
    assert!(
        !docs.join("a.en.txt").exists(),
        "originals' folder untouched"
    );
}

#[test]
fn a_foreign_file_is_never_overwritten_and_costs_only_its_document() {
    let f = Fixture::new();
    let docs = f.docs();
    std::fs::write(docs.join("a.en.txt"), "my own translation").unwrap();
    let rep = f.dir.path().join("r.json");
    f.cmd()
        .arg("run")
        .arg(&docs)
        .args(["--report", rep.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a.en.txt"))
        .stderr(predicate::str::contains("not written by transbrief"));
    assert_eq!(
        std::fs::read_to_string(docs.join("a.en.txt")).unwrap(),
        "my own translation"
    );
    assert_eq!(statuses(&report(&rep)), ["failed", "done"]);
    assert!(
        docs.join("sub/b.en.md").is_file(),
        "the other document is written"
    );
}

#[test]
fn a_binary_file_is_a_per_file_error() {
    let f = Fixture::new();
    let docs = f.docs();
    std::fs::write(docs.join("image.txt"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    f.cmd()
        .arg("run")
        .arg(&docs)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("image.txt"))
        .stderr(predicate::str::contains("binary"));
    assert!(docs.join("a.en.txt").is_file());
}

#[test]
fn usage_errors_exit_2_with_a_did_you_mean() {
    let f = Fixture::new();
    let docs = f.docs();
    f.cmd()
        .arg("run")
        .arg(&docs)
        .args(["--translate-model", "tinny"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean 'tiny'"));
    f.cmd()
        .arg("run")
        .arg(&docs)
        .args(["--include", "["])
        .assert()
        .code(2);
    let bad = f.dir.path().join("bad.toml");
    std::fs::write(&bad, "[models.x\n").unwrap();
    f.cmd()
        .args(["models", "list", "--catalog"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 1"));
}

#[test]
fn translate_reads_stdin_and_writes_stdout() {
    let f = Fixture::new();
    let out = f
        .cmd()
        .args(["translate", "-"])
        .write_stdin("Premier paragraphe.\n\nDeuxième paragraphe.\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.trim_end().split("\n\n").count(), 2, "{text:?}");
}

#[test]
fn models_list_shows_the_catalog_and_what_is_local() {
    let f = Fixture::new();
    f.cmd()
        .args(["models", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("qwen2.5-coder-0.5b"))
        .stdout(predicate::str::is_match(r"tiny\*\s+gguf-chat\s+translate,brief\s+yes").unwrap());
    f.cmd()
        .args(["models", "info", "qwen2.5-coder-1.5b"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "f86cb2c1fa58255f8052cc32aeede1b7482d4361",
        ));
}

#[test]
fn help_has_examples() {
    Command::cargo_bin("transbrief")
        .unwrap()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("--dry-run"));
}
