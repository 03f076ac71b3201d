//! Models named without a catalog entry: a local GGUF file (absolute or relative) and
//! `hf:ORG/REPO/FILE.gguf[@REVISION]`, found offline in a Hugging Face cache this test lays out
//! itself (`HF_HUB_CACHE`, or `HF_HOME/hub`), with the tiny seeded model. `models info` on each
//! form, and what a reference that names nothing says.
//!
//! The real model under an `hf:` reference is in tests/real_model.rs.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

/// A commit name for the fake cache's snapshots.
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER_COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";
const REPO_FOLDER: &str = "models--tiny-org--tiny-GGUF";
const HF_REF: &str = "hf:tiny-org/tiny-GGUF/tiny.gguf";

struct Fixture {
    dir: tempfile::TempDir,
    /// A catalog with only catalog-wide generation settings: few tokens, a short context.
    settings: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("settings.toml");
        std::fs::write(
            &settings,
            "[generation]\nmax_new_tokens = 12\ncontext = 512\n",
        )
        .unwrap();
        Self { dir, settings }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `transbrief --catalog settings.toml`, with the fake cache as the only HF cache.
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("transbrief").unwrap();
        c.arg("--catalog")
            .arg(&self.settings)
            .env("HF_HUB_CACHE", self.path("hub"))
            .env_remove("HF_HOME")
            .env_remove("HF_HUB_OFFLINE");
        c
    }

    /// The tiny model as `commit`'s snapshot of `tiny-org/tiny-GGUF`, a link into `blobs/` as
    /// the hub clients lay it out; `refs/main` points at it when `main` is true.
    fn cache_snapshot(&self, commit: &str, main: bool) {
        let repo = self.path("hub").join(REPO_FOLDER);
        let blob = repo.join("blobs").join(format!("blob-{commit}"));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        transbrief::testkit::write_tiny_qwen2_gguf(&blob, 7).unwrap();
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(format!("blob-{commit}")),
            snapshot.join("tiny.gguf"),
        )
        .unwrap();
        if main {
            std::fs::create_dir_all(repo.join("refs")).unwrap();
            std::fs::write(repo.join("refs/main"), commit).unwrap();
        }
    }

    /// `transbrief translate --offline --translate-model MODEL -` on one French sentence.
    fn translate(&self, model: &str) -> assert_cmd::assert::Assert {
        translate(self.cmd(), model)
    }
}

/// `COMMAND translate --offline --translate-model MODEL -` on one French sentence.
fn translate(mut command: Command, model: &str) -> assert_cmd::assert::Assert {
    let args = ["translate", "--offline", "--jobs", "1"];
    command
        .args(args)
        .args(["--translate-model", model, "-"])
        .write_stdin("Le chat dort sur le canapé.\n")
        .assert()
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_relative_gguf_path_translates_and_briefs_and_is_named_by_its_absolute_path() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path("models")).unwrap();
    transbrief::testkit::write_tiny_qwen2_gguf(&f.path("models/tiny.gguf"), 7).unwrap();
    let docs = f.path("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.fr.txt"), "Le président a parlé.\n").unwrap();
    let run = |cwd: &Path, model: &str| {
        f.cmd()
            .current_dir(cwd)
            .arg("run")
            .arg(&docs)
            .args(["--offline", "-q", "--jobs", "1"])
            .args(["--translate-model", model, "--brief-model", model])
            .arg("--report")
            .arg(f.path("report.json"))
            .assert()
    };
    run(f.dir.path(), "models/tiny.gguf").success();
    assert!(docs.join("a.en.txt").is_file());
    assert!(docs.join("a.brief.en.md").is_file());
    let r = report(&f.path("report.json"));
    let absolute = f
        .dir
        .path()
        .canonicalize()
        .unwrap()
        .join("models/tiny.gguf")
        .display()
        .to_string();
    let doc = &r["documents"][0];
    assert_eq!(doc["model"]["translate"], absolute.as_str(), "{r:#}");
    assert_eq!(doc["model"]["brief"], absolute.as_str(), "{r:#}");
    assert_eq!(doc["status"], "done", "{r:#}");
    // The same file spelt another way, from another folder: the same model, so the outputs
    // are up to date.
    run(&docs, "../models/./tiny.gguf").success();
    let r = report(&f.path("report.json"));
    assert_eq!(r["documents"][0]["status"], "skipped", "{r:#}");
}

#[test]
fn a_file_that_is_not_gguf_fails_its_documents_naming_the_file() {
    let f = Fixture::new();
    let bogus = f.path("notes.txt");
    std::fs::write(&bogus, "not a model").unwrap();
    f.translate(bogus.to_str().unwrap())
        .code(1)
        .stderr(predicate::str::contains("notes.txt"))
        .stderr(predicate::str::contains("not a GGUF model"));
}

#[test]
fn an_hf_reference_is_found_offline_in_the_cache() {
    let f = Fixture::new();
    f.cache_snapshot(COMMIT, true);
    f.translate(HF_REF).success();
    f.translate(&format!("{HF_REF}@{COMMIT}")).success();
    // HF_HOME/hub is the cache when HF_HUB_CACHE is not set.
    std::fs::rename(f.path("hub"), f.path("home-hub")).unwrap();
    std::fs::create_dir_all(f.path("home")).unwrap();
    std::fs::rename(f.path("home-hub"), f.path("home/hub")).unwrap();
    let mut command = f.cmd();
    command
        .env_remove("HF_HUB_CACHE")
        .env("HF_HOME", f.path("home"));
    translate(command, HF_REF).success();
}

#[test]
fn offline_without_refs_main_the_one_snapshot_holding_the_file_is_used() {
    let f = Fixture::new();
    f.cache_snapshot(COMMIT, false);
    f.translate(HF_REF).success();
    // Two snapshots hold it: which one is meant cannot be told.
    f.cache_snapshot(OTHER_COMMIT, false);
    f.translate(HF_REF)
        .code(1)
        .stderr(predicate::str::contains("refs/main"))
        .stderr(predicate::str::contains(COMMIT))
        .stderr(predicate::str::contains(OTHER_COMMIT));
    // A revision named picks its snapshot.
    f.translate(&format!("{HF_REF}@{OTHER_COMMIT}")).success();
}

#[test]
fn an_hf_reference_missing_offline_names_the_repo_the_file_and_the_fix() {
    let f = Fixture::new();
    f.cache_snapshot(COMMIT, true);
    f.translate("hf:tiny-org/tiny-GGUF/other.gguf")
        .code(1)
        .stderr(predicate::str::contains("tiny-org/tiny-GGUF"))
        .stderr(predicate::str::contains("other.gguf"))
        .stderr(predicate::str::contains("--offline"))
        .stderr(predicate::str::contains("transbrief models fetch"));
}

#[test]
fn models_info_describes_the_gguf_file_of_every_form() {
    let f = Fixture::new();
    f.cache_snapshot(COMMIT, true);
    let file = f.path("tiny.gguf");
    transbrief::testkit::write_tiny_qwen2_gguf(&file, 7).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let catalog = f.path("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[models.tiny]\ndescription = \"d\"\nfamily = \"gguf-chat\"\n\
             tasks = [\"translate\"]\npath = \"{}\"\nfiles = {{ model = \"tiny.gguf\" }}\n\
             prompts = \"news-fr-en\"\n",
            f.dir.path().display()
        ),
    )
    .unwrap();
    for model in [file.to_str().unwrap(), HF_REF, "tiny"] {
        let out = f
            .cmd()
            .arg("--catalog")
            .arg(&catalog)
            .args(["models", "info", model])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let out = String::from_utf8(out).unwrap();
        for line in [
            "architecture:  qwen2 (supported: Qwen2, Qwen2.5)".to_string(),
            format!("({size} bytes)"),
            "quantization:  Q8_0 (general.file_type 7)".to_string(),
            "tensors:       ".to_string(),
            "Q8_0: ".to_string(),
            "chat template: yes".to_string(),
            format!(
                "context:       {} tokens",
                transbrief::testkit::TINY_CONTEXT
            ),
        ] {
            assert!(out.contains(&line), "{model}: no {line:?} in\n{out}");
        }
    }
}

#[test]
fn models_info_on_a_truncated_gguf_file_names_it() {
    let f = Fixture::new();
    let file = f.path("cut.gguf");
    transbrief::testkit::write_tiny_qwen2_gguf(&file, 7).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    f.cmd()
        .args(["models", "info"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cut.gguf"))
        .stderr(predicate::str::contains("truncated"));
}

#[test]
fn a_reference_that_names_nothing_is_a_usage_error_saying_what_is_accepted() {
    let f = Fixture::new();
    for (model, why) in [
        ("qwen2.5-coder-05b", "did you mean 'qwen2.5-coder-0.5b'"),
        ("missing/model.gguf", "no such file"),
        ("hf:tiny-org/tiny.gguf", "names no repository and file"),
        ("hf:tiny-org/tiny-GGUF/tiny.bin", "not a .gguf file"),
    ] {
        f.translate(model)
            .code(2)
            .stderr(predicate::str::contains(format!("'{model}'")))
            .stderr(predicate::str::contains(why))
            .stderr(predicate::str::contains(
                "a catalog name, a local GGUF file (PATH.gguf), or hf:ORG/REPO/FILE.gguf",
            ));
    }
}

#[test]
fn compare_keeps_each_referenced_model_in_a_folder_of_its_own() {
    let f = Fixture::new();
    for seed in ["a", "b"] {
        let dir = f.path(seed);
        std::fs::create_dir_all(&dir).unwrap();
        transbrief::testkit::write_tiny_qwen2_gguf(&dir.join("tiny.gguf"), 7).unwrap();
    }
    let docs = f.path("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.fr.txt"), "Le président a parlé.\n").unwrap();
    let (a, b) = (f.path("a/tiny.gguf"), f.path("b/tiny.gguf"));
    f.cmd()
        .args(["compare", "-q", "--offline", "--jobs", "1", "--models"])
        .arg(format!("{},{}", a.display(), b.display()))
        .arg("--out")
        .arg(f.path("compare.md"))
        .arg(&docs)
        .assert()
        .success();
    let folders: Vec<PathBuf> = std::fs::read_dir(docs.join(".transbrief/compare"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 2, "{folders:?}");
    for folder in &folders {
        assert!(folder.join("a.en.txt").is_file(), "{}", folder.display());
    }
    // Nothing was written beside the models.
    assert_eq!(std::fs::read_dir(f.path("a")).unwrap().count(), 1);
}
