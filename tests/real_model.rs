//! End to end with the real Qwen2.5-Coder-0.5B-Instruct GGUF, when it is in the Hugging Face
//! cache (`../shared/models/seed-hf-cache qwen2.5-coder-0.5b` puts it there). Without it, each
//! test prints `SKIP:` and the reason, and passes.

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
