//! Issue 14's contract through the binary: `transbrief check SOURCE TRANSLATION [--json]` on
//! hand-written pairs (no model), and the report's `checks`, the summary line's flagged count and
//! `--strict` with the tiny random GGUF model, whose English always fails the checks.

mod common;

use std::path::Path;

use assert_cmd::Command;

const FRENCH: &str = "\
Un budget de 12 millions d'euros

Le conseil municipal de Lyon a voté mardi un budget de 12 millions d'euros pour rénover trois écoles.
Les travaux commenceront en septembre, selon la mairie.
";

const GOOD: &str = "\
A budget of 12 million euros

The Lyon city council voted on Tuesday a budget of 12 million euros to renovate three schools.
The works will begin in September, according to the town hall.
";

/// The same translation with a changed number and an answer in place of the second line.
const BAD: &str = "\
A budget of 12 million euros

The Lyon city council voted on Tuesday a budget of 15 million euros to renovate three schools.
Banane.
";

fn check(dir: &Path, english: &str, json: bool) -> assert_cmd::assert::Assert {
    let (fr, en) = (dir.join("a.fr.txt"), dir.join("a.en.txt"));
    std::fs::write(&fr, FRENCH).unwrap();
    std::fs::write(&en, english).unwrap();
    let mut cmd = Command::cargo_bin("transbrief").unwrap();
    cmd.arg("check").arg(&fr).arg(&en);
    if json {
        cmd.arg("--json");
    }
    cmd.assert()
}

#[test]
fn check_passes_a_faithful_pair_and_locates_each_defect() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), GOOD, false).code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("0 findings in 0 of 2 paragraphs"),
        "{stdout}"
    );

    let out = check(dir.path(), BAD, true).code(1);
    let findings: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let findings = findings.as_array().unwrap();
    let at = |check: &str, line: u64| {
        findings
            .iter()
            .any(|f| f["check"] == check && f["paragraph"] == 2 && f["line"] == line)
    };
    assert!(at("numbers", 1), "{findings:?}");
    assert!(at("answer", 2), "{findings:?}");
    assert!(
        findings.iter().all(|f| f["paragraph"] == 2),
        "the title is faithful: {findings:?}"
    );
}

#[test]
fn check_of_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let fr = dir.path().join("a.fr.txt");
    std::fs::write(&fr, FRENCH).unwrap();
    let out = Command::cargo_bin("transbrief")
        .unwrap()
        .arg("check")
        .arg(&fr)
        .arg(dir.path().join("missing.en.txt"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("missing.en.txt"), "{stderr}");
}

/// The tiny model's English is noise, so every paragraph is flagged (after its retries): the
/// report says where and why, the summary line counts them, and the run still succeeds.
/// `--strict` makes the same document fail while its outputs are written and their records say
/// they are flagged; a second `--strict` run, with nothing to redo, fails on the record alone.
#[test]
fn flagged_paragraphs_are_reported_and_strict_fails_on_them() {
    let env = common::Env::new(8);
    let docs = env.folder("docs");
    std::fs::write(docs.join("a.fr.txt"), FRENCH).unwrap();
    let run = env.run(&[docs.to_str().unwrap(), "--only", "translate"]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let doc = run.doc("a.fr.txt");
    assert_eq!(doc["status"], "done", "{}", run.describe());
    let checks = doc["checks"].as_array().unwrap();
    assert!(!checks.is_empty(), "{}", run.describe());
    for c in checks {
        assert!(c["check"].is_string() && c["detail"].is_string(), "{c}");
        assert!(
            c["paragraph"]
                .as_u64()
                .is_some_and(|p| (1..=2).contains(&p)),
            "{c}"
        );
        assert!(c["repaired"].is_boolean(), "{c}");
    }
    let flagged = doc["flagged_paragraphs"].as_u64().unwrap();
    assert!(flagged >= 1, "{}", run.describe());
    assert!(
        doc["tokens"]["retries"].as_u64().unwrap() >= 1,
        "{}",
        run.describe()
    );
    assert!(run.stderr().contains("flagged"), "{}", run.stderr());

    std::fs::write(docs.join("b.fr.txt"), FRENCH.replace("Lyon", "Lille")).unwrap();
    let strict = env.run(&[docs.to_str().unwrap(), "--only", "translate", "--strict"]);
    assert_eq!(strict.code(), Some(1), "{}", strict.describe());
    let b = strict.doc("b.fr.txt");
    assert_eq!(b["status"], "failed", "{}", strict.describe());
    assert!(b["error"].as_str().unwrap().contains("--strict"), "{b}");
    assert!(docs.join("b.en.txt").is_file(), "written although flagged");
    let record = std::fs::read_to_string(docs.join(".transbrief/b.en.txt.json")).unwrap();
    assert!(record.contains("flagged_paragraphs"), "{record}");
    // a.fr.txt was up to date, but its record says flagged: it fails under --strict too.
    assert_eq!(
        strict.doc("a.fr.txt")["status"],
        "failed",
        "{}",
        strict.describe()
    );

    let again = env.run(&[docs.to_str().unwrap(), "--only", "translate"]);
    assert_eq!(again.code(), Some(0), "{}", again.describe());
    assert_eq!(
        again.doc("b.fr.txt")["status"],
        "skipped",
        "{}",
        again.describe()
    );
}
