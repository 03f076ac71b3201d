//! Issue 6: the same input, model, settings and version give byte-identical outputs whatever
//! `--jobs` and batching.

mod common;

use std::path::Path;

use assert_cmd::Command;

fn run_into(catalog: &Path, docs: &Path, out: &Path, jobs: &str) {
    run_with(catalog, docs, out, &["--jobs", jobs]);
}

fn run_with(catalog: &Path, docs: &Path, out: &Path, extra: &[&str]) {
    Command::cargo_bin("transbrief")
        .expect("binary")
        .args(["--quiet", "--catalog"])
        .arg(catalog)
        .arg("run")
        .arg(docs)
        .args([
            "--translate-model",
            "tiny",
            "--brief-model",
            "tiny",
            "--offline",
        ])
        .args(["--device", "cpu"])
        .args(extra)
        .arg("--out-dir")
        .arg(out)
        .assert()
        .success();
}

#[test]
fn gguf_outputs_do_not_depend_on_jobs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let catalog = common::tiny_catalog(tmp.path(), &[("tiny", 7)]);
    let docs = tmp.path().join("docs");
    common::write_docs(&docs, common::DOCS);
    let one = tmp.path().join("jobs1");
    let two = tmp.path().join("jobs2");
    run_into(&catalog, &docs, &one, "1");
    run_into(&catalog, &docs, &two, "2");
    let a = common::tree(&one);
    let b = common::tree(&two);
    // Every document has a translation and a brief.
    assert_eq!(
        a.len(),
        2 * common::DOCS.len(),
        "{:?}",
        a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let names =
        |t: &[(std::path::PathBuf, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for ((path, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{} differs between --jobs 1 and --jobs 2:\n{}\n---\n{}",
            path.display(),
            String::from_utf8_lossy(x),
            String::from_utf8_lossy(y)
        );
    }
}

/// Issue 19: a chat model's conversations decoded together (`--batch`) give the bytes they give
/// one at a time, whatever the slots, the documents in flight, and so which conversations share
/// a pass and in what order; and the report says what batching chose.
#[test]
fn gguf_outputs_do_not_depend_on_batching() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let catalog = common::tiny_catalog(tmp.path(), &[("tiny", 7)]);
    let docs = tmp.path().join("docs");
    common::write_docs(&docs, common::DOCS);
    let off = tmp.path().join("off");
    run_with(&catalog, &docs, &off, &["--batch", "1", "--jobs", "1"]);
    let expected = common::tree(&off);
    assert_eq!(expected.len(), 2 * common::DOCS.len());
    for (name, extra) in [
        ("b4", &["--batch", "4"][..]),
        ("b2j5", &["--batch", "2", "--jobs", "5"][..]),
        ("b3j2", &["--batch", "3", "--jobs", "2"][..]),
        ("auto", &["--batch", "0"][..]),
    ] {
        let out = tmp.path().join(name);
        let report = tmp.path().join(format!("{name}.json"));
        let mut args = extra.to_vec();
        args.extend(["--report", report.to_str().unwrap()]);
        run_with(&catalog, &docs, &out, &args);
        let got = common::tree(&out);
        let names =
            |t: &[(std::path::PathBuf, Vec<u8>)]| t.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&expected), "{name}");
        for ((path, x), (_, y)) in got.iter().zip(&expected) {
            assert!(
                x == y,
                "{} differs between {extra:?} and --batch 1:\n{}\n---\n{}",
                path.display(),
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            );
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let batching = &report["batching"][0];
        assert_eq!(batching["model"], "tiny", "{name}: {report}");
        let slots = batching["slots"].as_u64().unwrap();
        match extra[1] {
            "0" => assert!((1..=8).contains(&slots), "{name}: {slots}"),
            n => assert_eq!(slots.to_string(), n, "{name}"),
        }
        assert!(batching["passes"].as_u64().unwrap() > 0, "{name}: {report}");
        eprintln!("{name}: batching {batching}");
    }
}

#[test]
fn marian_translations_do_not_depend_on_batch_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seq2seq/marian");
    let files = transbrief::backends::seq2seq::Seq2SeqFiles::from_dir(&dir);
    let model = transbrief::backends::seq2seq::load_marian_translator(
        &files,
        transbrief::nn::linear::LinearKind::F32,
        &candle_core::Device::Cpu,
    )
    .expect("marian fixture");
    let sentences = [
        "Le chat dort.",
        "Il fait beau aujourd'hui à Paris, et les terrasses sont pleines.",
        "Bonjour.",
        "Le gouvernement a annoncé une nouvelle loi sur l'énergie et les transports publics.",
        "Trois.",
        "Les marchés restent calmes malgré la hausse des prix.",
    ];
    let together = model.translate_sentences(&sentences).expect("batch").value;
    assert_eq!(together.len(), sentences.len());
    // Each alone (batch of one, no padding).
    for (s, expected) in sentences.iter().zip(&together) {
        let alone = model.translate_sentences(&[s]).expect("alone").value;
        assert_eq!(&alone[0], expected, "'{s}' alone vs in a batch");
    }
    // Reversed order, and in pairs: other batch neighbours, other padding.
    let reversed: Vec<&str> = sentences.iter().rev().copied().collect();
    let mut back = model
        .translate_sentences(&reversed)
        .expect("reversed")
        .value;
    back.reverse();
    assert_eq!(back, together);
    let pairs: Vec<String> = sentences
        .chunks(2)
        .flat_map(|c| model.translate_sentences(c).expect("pair").value)
        .collect();
    assert_eq!(pairs, together);
}
