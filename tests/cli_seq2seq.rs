//! `transbrief run` with seq2seq models, through the binary: a Marian translator and a BART
//! summarizer named like the built-in hub entries (`opus-mt-fr-en`, `distilbart-cnn-12-6`) but
//! overridden by a local catalog that points at the tiny committed fixture models, so the test
//! needs no download. The tiny models have random weights: their words are noise, so the test
//! checks the contract (files written, paragraph layout, brief shape, skip on re-run), not the
//! wording.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seq2seq")
        .join(name)
}

/// A catalog whose `opus-mt-fr-en` and `distilbart-cnn-12-6` are the fixture models.
fn write_catalog(dir: &Path) -> PathBuf {
    let catalog = format!(
        r#"
[models."opus-mt-fr-en"]
description = "tiny random Marian fixture"
family = "marian"
tasks = ["translate"]
path = {marian:?}
files = {{ config = "config.json", generation_config = "generation_config.json", model = "model.safetensors", source_spm = "source.spm", target_spm = "target.spm", vocab = "vocab.json" }}

[models."distilbart-cnn-12-6"]
description = "tiny random BART fixture, tokenizer from vocab.json + merges.txt like distilbart"
family = "bart"
tasks = ["brief"]
path = {bart:?}
files = {{ config = "config.json", generation_config = "generation_config.json", model = "model.safetensors", vocab = "vocab.json", merges = "merges.txt" }}
# The tiny model's summaries (up to 40 tokens from 64) would shrink too slowly to merge.
generation = {{ num_beams = 2, max_new_tokens = 12 }}
"#,
        marian = fixture("marian").display().to_string(),
        bart = fixture("bart").display().to_string(),
    );
    let path = dir.join("catalog.toml");
    std::fs::write(&path, catalog).unwrap();
    path
}

/// Four paragraphs, long enough (over the tiny BART's 64 positions) that the brief goes through
/// chunk-then-merge.
const FRENCH: &str = "\
Les forces démocratiques syriennes sont entrées mardi dans Raqqa. Des milliers de familles ont \
fui vers le nord.

Selon l'ONU, cinq cents personnes vivent désormais dans les camps. « Nous n'avons plus rien », \
a dit une mère de famille.

Les combats ont repris mercredi à l'est de la ville ! Les habitants attendent de l'aide.

Le gouvernement a promis une enquête ? Rien n'a encore été annoncé.
";

fn run(dir: &Path, catalog: &Path, report: &Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("transbrief")
        .unwrap()
        .env("HF_HUB_OFFLINE", "1")
        .arg("run")
        .arg(dir.join("docs"))
        .arg("--catalog")
        .arg(catalog)
        .args(["--translate-model", "opus-mt-fr-en"])
        .args(["--brief-model", "distilbart-cnn-12-6"])
        .arg("--offline")
        .arg("--report")
        .arg(report)
        .args(["--device", "cpu", "-q"])
        .assert()
}

fn report_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A temp dir with `docs/x.fr.txt` and the catalog; returns it, the docs folder and the catalog.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("x.fr.txt"), FRENCH).unwrap();
    let catalog = write_catalog(tmp.path());
    (tmp, docs, catalog)
}

#[test]
fn run_translates_and_briefs_with_marian_and_bart_then_skips() {
    let (tmp, docs, catalog) = setup();

    let first = tmp.path().join("first.json");
    run(tmp.path(), &catalog, &first).success();

    let english = std::fs::read_to_string(docs.join("x.en.txt")).unwrap();
    let paragraphs: Vec<&str> = english
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(
        paragraphs.len(),
        4,
        "one paragraph per paragraph: {english:?}"
    );

    let brief = std::fs::read_to_string(docs.join("x.brief.en.md")).unwrap();
    assert!(brief.starts_with("# "), "{brief:?}");

    let report = report_json(&first);
    let doc = &report["documents"][0];
    assert_eq!(doc["status"], "done", "{doc}");
    assert_eq!(doc["model"]["translate"], "opus-mt-fr-en", "{doc}");
    assert_eq!(doc["model"]["brief"], "distilbart-cnn-12-6", "{doc}");
    assert!(doc["tokens"]["input_tokens"].as_u64().unwrap() > 0, "{doc}");
    assert!(
        doc["tokens"]["output_tokens"].as_u64().unwrap() > 0,
        "{doc}"
    );

    let second = tmp.path().join("second.json");
    run(tmp.path(), &catalog, &second).success();
    let report = report_json(&second);
    let doc = &report["documents"][0];
    assert_eq!(doc["status"], "skipped", "{doc}");
    let outputs = doc["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{doc}");
    for o in outputs {
        assert_eq!(o["action"], "up-to-date", "{o}");
    }
    // Skipping rewrote nothing.
    assert_eq!(
        std::fs::read_to_string(docs.join("x.en.txt")).unwrap(),
        english
    );
    assert_eq!(
        std::fs::read_to_string(docs.join("x.brief.en.md")).unwrap(),
        brief
    );
}

/// `transbrief run DOCS --catalog CATALOG ARGS...`.
fn run_with(docs: &Path, catalog: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("transbrief")
        .unwrap()
        .env("HF_HUB_OFFLINE", "1")
        .arg("run")
        .arg(docs)
        .arg("--catalog")
        .arg(catalog)
        .args(args)
        .assert()
}

#[test]
fn a_marian_model_cannot_write_briefs() {
    let (_tmp, docs, catalog) = setup();
    let args = [
        "--brief-model",
        "opus-mt-fr-en",
        "--only",
        "brief",
        "--offline",
    ];
    let out = run_with(&docs, &catalog, &args).failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("does not do brief"), "{stderr}");
}

/// `run --weights int8` with a Marian model: the translation is written, with the paragraph
/// layout; int8 is part of the output's fingerprint, so a later f32 run redoes it rather than
/// taking the int8 translation as up to date, and a second int8 run skips it.
#[test]
fn weights_int8_runs_marian_and_is_part_of_the_fingerprint() {
    let (tmp, docs, catalog) = setup();
    let translate = |weights: &str, report: &Path| {
        let report_arg = report.display().to_string();
        let args = [
            "--translate-model",
            "opus-mt-fr-en",
            "--only",
            "translate",
            "--weights",
            weights,
            "--offline",
            "--device",
            "cpu",
            "-q",
            "--report",
            &report_arg,
        ];
        run_with(&docs, &catalog, &args).success();
        report_json(report)["documents"][0].clone()
    };
    let int8 = translate("int8", &tmp.path().join("int8.json"));
    assert_eq!(int8["status"], "done", "{int8}");
    let english = std::fs::read_to_string(docs.join("x.en.txt")).unwrap();
    assert_eq!(english.trim_end().split("\n\n").count(), 4, "{english:?}");
    let again = translate("int8", &tmp.path().join("again.json"));
    assert_eq!(again["status"], "skipped", "{again}");
    let f32 = translate("f32", &tmp.path().join("f32.json"));
    assert_eq!(f32["status"], "done", "{f32}");
    assert_eq!(f32["outputs"][0]["reason"], "changed", "{f32}");
}

#[test]
fn weights_must_be_f32_or_int8() {
    let (_tmp, docs, catalog) = setup();
    let out = run_with(&docs, &catalog, &["--weights", "int4", "--offline"]).code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("f32 or int8"), "{stderr}");
}

/// Issue 19: a Marian-only run pools the sentences of every document in flight (64 by
/// default) into shared batches; the files it writes are the bytes of an unpooled run, and the
/// report says what the pool did.
#[test]
fn pooled_and_unpooled_runs_write_the_same_translations() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = write_catalog(tmp.path());
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let paragraphs: Vec<&str> = FRENCH.split("\n\n").collect();
    for i in 0..8 {
        // Documents of one to four paragraphs, in rotating order.
        let text: Vec<&str> = (0..1 + i % 4)
            .map(|k| paragraphs[(i + k) % paragraphs.len()].trim())
            .collect();
        std::fs::write(docs.join(format!("d{i}.fr.txt")), text.join("\n\n") + "\n").unwrap();
    }
    let translate = |out: &str, extra: &[&str]| {
        let out_dir = tmp.path().join(out);
        let report = tmp.path().join(format!("{out}.json"));
        let (out_arg, report_arg) = (out_dir.display().to_string(), report.display().to_string());
        let mut args = vec![
            "--translate-model",
            "opus-mt-fr-en",
            "--only",
            "translate",
            "--offline",
            "--device",
            "cpu",
            "-q",
            "--out-dir",
            &out_arg,
            "--report",
            &report_arg,
        ];
        args.extend_from_slice(extra);
        run_with(&docs, &catalog, &args).success();
        let files: Vec<(String, String)> = (0..8)
            .map(|i| {
                let name = format!("d{i}.en.txt");
                let text = std::fs::read_to_string(out_dir.join(&name)).unwrap();
                (name, text)
            })
            .collect();
        (files, report_json(&report))
    };
    let (pooled, report) = translate("pooled", &[]);
    assert_eq!(
        report["jobs"], 64,
        "pooled runs keep 64 documents in flight"
    );
    let pooling = &report["pooling"][0];
    assert_eq!(pooling["model"], "opus-mt-fr-en", "{report}");
    assert_eq!(pooling["budget_tokens"], 2048, "{pooling}");
    assert_eq!(pooling["calls"], 8, "one call per document: {pooling}");
    assert!(pooling["batches"].as_u64().unwrap() >= 1, "{pooling}");
    let (unpooled, report) = translate("unpooled", &["--pool-tokens", "0", "--jobs", "2"]);
    assert!(report.get("pooling").is_none(), "{report}");
    let (small, _) = translate("small", &["--pool-tokens", "40"]);
    assert_eq!(pooled, unpooled, "pooling changed a translation");
    assert_eq!(small, unpooled, "a small pool budget changed a translation");
}
