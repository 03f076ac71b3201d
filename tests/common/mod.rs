//! Shared set-up for the CLI tests: a temp folder holding the tiny seeded GGUF model, a catalog
//! that names it `tiny`, and helpers to run `transbrief` on it and read its JSON report.
//!
//! Not for: checking anything; each test file asserts what it is about.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::path::{Path, PathBuf};
use std::process::Output;

/// A temp folder with the tiny model and its catalog.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub catalog: PathBuf,
    pub model: PathBuf,
}

/// The catalog text for the tiny model in `model_dir`; `extra` is appended to its entry.
pub fn catalog_text(model_dir: &Path, max_new_tokens: usize, extra: &str) -> String {
    format!(
        "[models.tiny]\ndescription = \"tiny seeded test model\"\nfamily = \"gguf-chat\"\ntasks = [\"translate\", \"brief\"]\n\
         path = \"{}\"\nfiles = {{ model = \"tiny.gguf\" }}\nprompts = \"news-fr-en\"\n{extra}\n\
         [models.tiny.generation]\nmax_new_tokens = {max_new_tokens}\ncontext = 512\n",
        model_dir.display()
    )
}

impl Env {
    /// A fresh folder; the model is written with seed 7.
    pub fn new(max_new_tokens: usize) -> Env {
        Env::with_catalog_extra(max_new_tokens, "")
    }

    pub fn with_catalog_extra(max_new_tokens: usize, extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let model_dir = dir.path().join("model");
        std::fs::create_dir_all(&model_dir).expect("model dir");
        let model = model_dir.join("tiny.gguf");
        transbrief::testkit::write_tiny_qwen2_gguf(&model, 7).expect("tiny model");
        let catalog = dir.path().join("catalog.toml");
        std::fs::write(&catalog, catalog_text(&model_dir, max_new_tokens, extra)).expect("catalog");
        Env {
            dir,
            catalog,
            model,
        }
    }

    /// A folder under the temp dir, created.
    pub fn folder(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("folder");
        p
    }

    /// The arguments that pick the tiny model, one worker, offline.
    pub fn model_args(&self) -> Vec<String> {
        let mut args = self.model_choice();
        args.extend(["--jobs".into(), "1".into()]);
        args
    }

    /// The arguments that pick the tiny model, offline (no `--jobs`).
    pub fn model_choice(&self) -> Vec<String> {
        vec![
            "--catalog".into(),
            self.catalog.display().to_string(),
            "--translate-model".into(),
            "tiny".into(),
            "--brief-model".into(),
            "tiny".into(),
            "--offline".into(),
        ]
    }

    /// The shard tests' set-up: folders `single` and `docs` with the same [`write_nine_docs`],
    /// `single` already run through one `transbrief run` (its outputs are the reference).
    pub fn nine_docs_run_once(&self) -> (PathBuf, PathBuf) {
        let single = self.folder("single");
        let docs = self.folder("docs");
        write_nine_docs(&single);
        write_nine_docs(&docs);
        let r = self.run(&[single.to_str().expect("utf-8 path")]);
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        (single, docs)
    }

    /// `transbrief run <args> <model args> --report <report>`, waited for.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_as(args, None).expect("run transbrief")
    }

    /// [`Env::run`] as the unprivileged user `nobody`, for the permission cases when this process
    /// reads through permissions (root): the temp folder is handed to `nobody` first, so its
    /// chmods mean what they say. `None` when the process cannot be started as `nobody` (no
    /// CAP_SETUID), which the caller reports as a skip.
    pub fn run_as_nobody(&self, args: &[&str]) -> Option<Run> {
        let binary = assert_cmd::cargo::cargo_bin("transbrief");
        // `nobody` must be able to reach the temp folder (given to it below) and run the binary.
        let runnable = mode(&binary) & 0o005 == 0o005 && ancestors_passable(&binary);
        if !runnable || !ancestors_passable(self.dir.path()) {
            return None;
        }
        chown_tree(self.dir.path(), NOBODY)?;
        self.run_as(args, Some(NOBODY))
    }

    fn run_as(&self, args: &[&str], user: Option<u32>) -> Option<Run> {
        use std::os::unix::process::CommandExt;
        let report = self.dir.path().join("report.json");
        let _ = std::fs::remove_file(&report);
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("transbrief"));
        command
            .arg("run")
            .args(args)
            .args(self.model_args())
            .arg("--report")
            .arg(&report);
        if let Some(id) = user {
            command.uid(id).gid(id).env("HOME", self.dir.path());
        }
        let output = command.output().ok()?;
        let report = std::fs::read(&report)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Some(Run { output, report })
    }
}

/// The user and group id of `nobody`.
pub const NOBODY: u32 = 65534;

/// Whether every folder above `path` lets other users through (o+x).
fn ancestors_passable(path: &Path) -> bool {
    path.ancestors().skip(1).all(|a| mode(a) & 0o001 != 0)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0, |m| m.permissions().mode())
}

/// Gives `dir` and everything under it (links not followed) to user and group `id`; `None` if
/// that is not allowed.
fn chown_tree(dir: &Path, id: u32) -> Option<()> {
    std::os::unix::fs::lchown(dir, Some(id), Some(id)).ok()?;
    if std::fs::symlink_metadata(dir).ok()?.is_dir() {
        for entry in std::fs::read_dir(dir).ok()? {
            chown_tree(&entry.ok()?.path(), id)?;
        }
    }
    Some(())
}

/// What one run gave.
pub struct Run {
    pub output: Output,
    pub report: Option<serde_json::Value>,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// The report's entry for the document whose input path ends with `name`.
    pub fn doc(&self, name: &str) -> &serde_json::Value {
        let docs = self
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("no report; stderr:\n{}", self.stderr()))["documents"]
            .as_array()
            .expect("documents array");
        docs.iter()
            .find(|d| d["input"].as_str().is_some_and(|i| i.ends_with(name)))
            .unwrap_or_else(|| panic!("{name} not in the report: {docs:#?}"))
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}\nreport:\n{:#?}",
            self.code(),
            self.stdout(),
            self.stderr(),
            self.report
        )
    }
}

/// Whether this process can read files whatever their permissions (root, CAP_DAC_OVERRIDE):
/// tested, not guessed from the user id.
pub fn permissions_are_bypassed(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join(".perm-probe");
    std::fs::write(&probe, b"x").expect("probe");
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let readable = std::fs::read(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    readable
}

// --- Shared by the determinism, compare and golden tests: several tiny models, a document set.

/// Writes `tiny-<seed>.gguf` for each `(name, seed)` into `dir` and a catalog naming them, with
/// the settings the tests rely on (8 new tokens, 512 context: with more, the random English of a tiny model is too long to brief within its context). Returns the catalog path.
pub fn tiny_catalog(dir: &Path, models: &[(&str, u64)]) -> PathBuf {
    let mut toml = String::new();
    for (name, seed) in models {
        let file = format!("{name}.gguf");
        transbrief::testkit::write_tiny_qwen2_gguf(&dir.join(&file), *seed).expect("tiny gguf");
        toml.push_str(&format!(
            "[models.{name}]\ndescription = \"tiny test model, seed {seed}\"\n\
             family = \"gguf-chat\"\ntasks = [\"translate\", \"brief\"]\n\
             path = \"{}\"\nfiles = {{ model = \"{file}\" }}\nprompts = \"news-fr-en\"\n\
             [models.{name}.generation]\nmax_new_tokens = 8\ncontext = 512\n\n",
            dir.display()
        ));
    }
    let path = dir.join("catalog.toml");
    std::fs::write(&path, toml).expect("catalog");
    path
}

/// French documents, plain and Markdown, some with several paragraphs, one in a subfolder.
pub const DOCS: &[(&str, &str)] = &[
    ("a.fr.txt", "Le chat dort sur le canapé.\n\nIl fait beau aujourd'hui à Paris."),
    ("b.fr.txt", "Le gouvernement a annoncé une nouvelle loi sur l'énergie."),
    ("c.fr.md", "# Titre\n\nUn paragraphe en *Markdown* avec un lien.\n\n- un point\n- un autre point\n"),
    ("d.fr.txt", "Les prix ont augmenté de 3 % en mars.\n\nLa banque centrale réagit.\n\nLes marchés restent calmes."),
    ("sub/e.fr.txt", "Une phrase dans un sous-dossier."),
    ("sub/f.fr.txt", "Le train de 8 h 15 partira de la voie 4. Merci de votre patience."),
];

/// Writes [`DOCS`] under `dir`.
pub fn write_docs(dir: &Path, docs: &[(&str, &str)]) {
    for (name, text) in docs {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("joined path has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write doc");
    }
}

/// Every file under `dir` (records and hidden folders excluded), by relative path, with its
/// bytes, sorted.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// --- Shared by the shard and Slurm tests.

/// Nine documents in three folders (the folder itself, `actualites/`, `rapports/`), of
/// different lengths.
pub fn write_nine_docs(dir: &Path) {
    for i in 0..9 {
        let folder = ["", "actualites/", "rapports/"][i % 3];
        let path = dir.join(format!("{folder}doc{i}.fr.txt"));
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        let mut text = format!("Le conseil s'est réuni le {i} mars.");
        for _ in 0..i % 4 {
            text.push_str("\n\nLes habitants ont demandé une nouvelle école.");
        }
        std::fs::write(path, text).expect("write doc");
    }
}

/// A finished command's exit status, stdout and stderr, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The inputs a merged report (`transbrief report merge`) lists with `status`, sorted.
pub fn merged_inputs(merged: &serde_json::Value, status: &str) -> Vec<String> {
    let mut v: Vec<String> = merged["by_status"][status]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The seeded snapshot of `repo`/`file` in the HF cache, any revision.
pub fn seeded_file(repo: &str, file: &str) -> Option<PathBuf> {
    let snapshots = hf_hub::Cache::from_env()
        .path()
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("snapshots");
    std::fs::read_dir(snapshots)
        .ok()?
        .flatten()
        .map(|e| e.path().join(file))
        .find(|p| p.is_file())
}

/// Loads the GGUF model at `path` with the architecture its `general.architecture` names, on
/// the CPU, its context capped at `max_len`.
pub fn load_gguf(path: &Path, max_len: usize) -> Box<dyn transbrief::models::CausalLm> {
    let mut file = std::fs::File::open(path).unwrap();
    let ct = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let arch = transbrief::models::architecture_of(&ct)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (arch.load)(&ct, &mut file, max_len, &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: loading failed: {e}", path.display()))
}
