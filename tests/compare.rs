//! `transbrief compare` and `transbrief run --check-golden`, through the CLI, with tiny models.

mod common;

use std::path::Path;

use assert_cmd::Command;

fn transbrief(catalog: &Path) -> Command {
    let mut c = Command::cargo_bin("transbrief").expect("binary");
    c.args(["--quiet", "--catalog"]).arg(catalog);
    c
}

/// Two documents with references beside them; one paragraph count matches, one does not.
const REFS: &[(&str, &str)] = &[
    (
        "a.ref.en.txt",
        "The cat sleeps on the sofa.\n\nIt is sunny today in Paris.",
    ),
    ("b.ref.en.txt", "The government announced a new energy law."),
];

#[test]
fn compare_writes_html_and_markdown_with_every_paragraph_and_scores() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let catalog = common::tiny_catalog(tmp.path(), &[("tiny-a", 1), ("tiny-b", 2)]);
    let docs = tmp.path().join("docs");
    common::write_docs(&docs, common::DOCS);
    common::write_docs(&docs, REFS);
    let html = tmp.path().join("report.html");
    transbrief(&catalog)
        .arg("compare")
        .arg(&docs)
        .args([
            "--models",
            "tiny-a,tiny-b",
            "--offline",
            "--device",
            "cpu",
            "--jobs",
            "2",
        ])
        .arg("--out")
        .arg(&html)
        .assert()
        .success();
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<link"));
    assert!(page.contains("position:sticky"));
    for (name, text) in common::DOCS {
        assert!(page.contains(&format!("<h2>{name}</h2>")), "{name} missing");
        for p in transbrief::eval::pairing::paragraphs(text) {
            let escaped = p
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(page.contains(&escaped), "paragraph '{p}' of {name} missing");
        }
    }
    // The scores table: both models, with numbers, since two documents have references.
    let header =
        &page[page.find("<header>").expect("header")..page.find("</header>").expect("end")];
    for m in ["tiny-a", "tiny-b"] {
        let row = &header[header.find(&format!("<td>{m}</td>")).expect("model row")..];
        let row = &row[..row.find("</tr>").expect("row end")];
        let numbers = row.matches("class=\"num\">").count();
        assert_eq!(numbers, 4, "{row}");
        assert!(
            !row.contains("<td class=\"num\">–</td><td class=\"num\">–</td>"),
            "no scores: {row}"
        );
    }
    assert!(page.contains("The government announced a new energy law."));
    // Each model's outputs are cached and reused: a second run writes nothing new.
    let cached = common::tree(&docs.join(".transbrief/compare/tiny-a"));
    assert_eq!(cached.len(), common::DOCS.len());
    let md = tmp.path().join("report.md");
    transbrief(&catalog)
        .arg("compare")
        .arg(&docs)
        .args(["--models", "tiny-a,tiny-b", "--offline", "--device", "cpu"])
        .arg("--out")
        .arg(&md)
        .assert()
        .success();
    assert_eq!(
        common::tree(&docs.join(".transbrief/compare/tiny-a")),
        cached
    );
    let text = std::fs::read_to_string(&md).expect("markdown report");
    assert!(text.contains("| Model | BLEU | chrF2 | Tokens/s | Failed |"));
    assert!(text.contains("(cached)"), "{text}");
    for (name, _) in common::DOCS {
        assert!(
            text.contains(&format!("## {}", name.replace('_', "\\_"))),
            "{name}"
        );
    }
}

#[test]
fn compare_rejects_unknown_models_as_usage_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let catalog = common::tiny_catalog(tmp.path(), &[("tiny-a", 1)]);
    transbrief(&catalog)
        .arg("compare")
        .arg(tmp.path())
        .args(["--models", "tiny-a,nope", "--offline"])
        .assert()
        .code(2);
}

/// `transbrief run` with the tiny model for both tasks, writing into `out`.
fn run_into(catalog: &Path, docs: &Path, out: &Path) -> Command {
    let mut c = transbrief(catalog);
    c.arg("run")
        .arg(docs)
        .args([
            "--translate-model",
            "tiny-a",
            "--brief-model",
            "tiny-a",
            "--offline",
        ])
        .args(["--device", "cpu", "--out-dir"])
        .arg(out);
    c
}

fn run_golden(
    catalog: &Path,
    docs: &Path,
    out: &Path,
    golden: &Path,
) -> assert_cmd::assert::Assert {
    run_into(catalog, docs, out)
        .arg("--check-golden")
        .arg(golden)
        .assert()
}

#[test]
fn check_golden_passes_on_identical_outputs_and_fails_with_a_diff() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let catalog = common::tiny_catalog(tmp.path(), &[("tiny-a", 3)]);
    let docs = tmp.path().join("docs");
    common::write_docs(&docs, &common::DOCS[..2]);
    // The golden files are a first run's outputs.
    let golden = tmp.path().join("golden");
    run_into(&catalog, &docs, &golden).assert().success();
    let out = tmp.path().join("out");
    run_golden(&catalog, &docs, &out, &golden).success();

    // An edited golden file: exit 1 and a unified diff naming it.
    let edited = golden.join("a.en.txt");
    let mut text = std::fs::read_to_string(&edited).expect("golden");
    text.push_str("an extra golden line\n");
    std::fs::write(&edited, text).expect("edit");
    let a = run_golden(&catalog, &docs, &out, &golden).code(1);
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(stdout.contains("--- golden/a.en.txt"), "{stdout}");
    assert!(stdout.contains("-an extra golden line"), "{stdout}");

    // A missing golden file is reported as such.
    std::fs::remove_file(golden.join("b.brief.en.md")).expect("rm");
    let a = run_golden(&catalog, &docs, &out, &golden).code(1);
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(
        stdout.contains("golden file missing:") && stdout.contains("b.brief.en.md"),
        "{stdout}"
    );
}
