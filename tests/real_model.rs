//! End to end with the real Qwen2.5-Coder-0.5B-Instruct GGUF, when it is in the Hugging Face
//! cache (`../shared/models/seed-hf-cache qwen2.5-coder-0.5b` puts it there), by its catalog
//! name and by its `hf:` reference. Without it, each test prints `SKIP:` and the reason, and
//! passes.

use std::path::PathBuf;

use assert_cmd::Command;
use transbrief::catalog::Catalog;

const MODEL: &str = "qwen2.5-coder-0.5b";

fn real_model() -> Option<PathBuf> {
    let catalog = Catalog::load(&[]).ok()?;
    let entry = catalog.get(MODEL).ok()?;
    let file = entry.files.get("model")?;
    let found = transbrief::hub::find_local(entry, file);
    if found.is_none() {
        eprintln!(
            "SKIP: {file} is not in the Hugging Face cache ({}); run \
             `../shared/models/seed-hf-cache {MODEL}` to run this test",
            transbrief::hub::cache_dir().display()
        );
    }
    found
}

#[test]
fn translates_a_news_article_keeping_names_and_paragraphs_and_briefs_it() {
    if real_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("raqqa.fr.txt"),
        "Les forces américaines se sont déployées près de Raqqa, à l’aéroport militaire de Tabqa.\n\n\
         Selon des sources locales, des centaines de combattants de Daech ont quitté la ville pour Deir ez-Zor.\n",
    )
    .unwrap();
    Command::cargo_bin("transbrief")
        .unwrap()
        .args([
            "run",
            "--offline",
            "-q",
            "--translate-model",
            MODEL,
            "--brief-model",
            MODEL,
        ])
        .arg(dir.path())
        .assert()
        .success();
    let en = std::fs::read_to_string(dir.path().join("raqqa.en.txt")).unwrap();
    eprintln!("translation:\n{en}");
    assert_eq!(en.trim_end().split("\n\n").count(), 2, "{en:?}");
    for name in ["Raqqa", "Tabqa", "Deir ez-Zor"] {
        assert!(en.contains(name), "{name} survives: {en:?}");
    }
    assert!(
        en.contains("Daech") || en.contains("ISIS") || en.contains("Daesh") || en.contains("IS "),
        "{en:?}"
    );
    assert!(!en.contains("Les forces"), "the output is English: {en:?}");

    let brief = std::fs::read_to_string(dir.path().join("raqqa.brief.en.md")).unwrap();
    eprintln!("brief:\n{brief}");
    assert!(brief.starts_with("# "), "{brief:?}");
    let bullets = brief.lines().filter(|l| l.starts_with("- ")).count();
    assert!((1..=6).contains(&bullets), "{brief:?}");
    assert!(brief.contains("Raqqa"), "{brief:?}");
}

/// The same file, named as llama.cpp users name it.
const HF_REF: &str =
    "hf:Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// The file `HF_REF` names offline (the cache's `refs/main`, or its one snapshot holding it).
fn real_hf_ref() -> Option<PathBuf> {
    let catalog = Catalog::load(&[]).ok()?;
    let entry = catalog.resolve(HF_REF).ok()?;
    let found = transbrief::hub::status(&entry).pop()?.local;
    if found.is_none() {
        eprintln!(
            "SKIP: {HF_REF} is not in the Hugging Face cache ({}) at refs/main; run \
             `../shared/models/seed-hf-cache {MODEL}` to run this test",
            transbrief::hub::cache_dir().display()
        );
    }
    found
}

#[test]
fn the_real_model_is_described_and_translates_offline_by_its_hf_reference() {
    let Some(file) = real_hf_ref() else {
        return;
    };
    let size = std::fs::metadata(&file).unwrap().len();
    let info = Command::cargo_bin("transbrief")
        .unwrap()
        .args(["models", "info", HF_REF])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let info = String::from_utf8(info).unwrap();
    eprintln!("{info}");
    for line in [
        "repo:        Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF @ main".to_string(),
        "architecture:  qwen2 (supported".to_string(),
        format!("({size} bytes)"),
        "quantization:  Q4_K_M (general.file_type 15)".to_string(),
        "Q4_K: ".to_string(),
        "chat template: yes".to_string(),
        "context:       32768 tokens".to_string(),
        "prompts:     news-fr-en".to_string(),
    ] {
        assert!(info.contains(&line), "no {line:?} in\n{info}");
    }
    let out = Command::cargo_bin("transbrief")
        .unwrap()
        .env_remove("HF_HUB_OFFLINE")
        .args(["translate", "--offline", "--translate-model", HF_REF, "-"])
        .write_stdin("Le gouvernement a annoncé une nouvelle loi sur l'énergie.\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let en = String::from_utf8(out).unwrap();
    eprintln!("translation: {en}");
    assert!(en.to_lowercase().contains("government"), "{en:?}");
    assert!(
        !en.contains("gouvernement"),
        "the output is English: {en:?}"
    );
}
