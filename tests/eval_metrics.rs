//! transbrief's BLEU, chrF, TER, ROUGE and Porter stemmer against the values sacrebleu 2.6.0,
//! rouge-score 0.1.2 and NLTK give on the committed texts in tests/fixtures/eval/ (written to
//! expected.json by scripts/make-eval-fixtures.py), and `eval`'s pairing and exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;
use transbrief::eval::cli::{evaluate, run_with, EvalArgs};
use transbrief::eval::pairing::{segments, Kind, Split};
use transbrief::eval::rouge::{Prf, RougeScores};
use transbrief::eval::{bleu, chrf, porter, rouge, score_corpus, score_document, ter, Metrics};

/// Largest difference allowed from the reference implementations (they print 2 decimals).
const TOLERANCE: f64 = 1e-6;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

fn expected() -> Value {
    let text = fs::read_to_string(fixtures().join("expected.json")).expect("expected.json exists");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Records the largest difference seen, and every value that is off by more than the tolerance.
#[derive(Default)]
struct Diffs {
    max: f64,
    at: String,
    failures: Vec<String>,
    compared: usize,
}

impl Diffs {
    fn check(&mut self, what: &str, got: f64, want: f64) {
        self.compared += 1;
        let d = (got - want).abs();
        if d > self.max || (d.is_nan() && !self.max.is_nan()) {
            self.max = d;
            self.at = what.to_string();
        }
        if d > TOLERANCE || d.is_nan() {
            self.failures
                .push(format!("{what}: transbrief {got} reference {want}"));
        }
    }

    fn check_rouge(&mut self, what: &str, got: &RougeScores, want: &Value) {
        let pairs: [(&str, &Prf); 4] = [
            ("rouge1", &got.rouge1),
            ("rouge2", &got.rouge2),
            ("rougeL", &got.rouge_l),
            ("rougeLsum", &got.rouge_lsum),
        ];
        for (name, prf) in pairs {
            let w = &want[name];
            self.check(
                &format!("{what} {name} P"),
                prf.precision,
                num(&w["precision"]),
            );
            self.check(&format!("{what} {name} R"), prf.recall, num(&w["recall"]));
            self.check(
                &format!("{what} {name} F"),
                prf.fmeasure,
                num(&w["fmeasure"]),
            );
        }
    }

    fn finish(self, label: &str) {
        eprintln!(
            "{label}: {} values compared, max abs difference {:e} ({})",
            self.compared, self.max, self.at
        );
        assert!(
            self.failures.is_empty(),
            "{} values differ:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn split_of(set: &Value) -> (Kind, Split) {
    match set["split"].as_str() {
        Some("lines") => (Kind::Translation, Split::Lines),
        Some("paragraphs") => (Kind::Translation, Split::Paragraphs),
        Some("document") => (Kind::Brief, Split::Paragraphs),
        other => panic!("unknown split {other:?}"),
    }
}

#[test]
fn segments_match_the_fixture_script() {
    let exp = expected();
    for (name, set) in exp["sets"].as_object().expect("sets") {
        let (kind, split) = split_of(set);
        for (side, key) in [("hyp", "hyps"), ("ref", "refs")] {
            let text = fs::read_to_string(fixtures().join(format!("{name}.{side}.txt"))).unwrap();
            assert_eq!(
                segments(&text, kind, split),
                strings(&set[key]),
                "{name}.{side}"
            );
        }
    }
}

#[test]
fn scores_match_sacrebleu_and_rouge_score() {
    let exp = expected();
    let mut diffs = Diffs::default();
    for (name, set) in exp["sets"].as_object().expect("sets") {
        let hyps = strings(&set["hyps"]);
        let refs = strings(&set["refs"]);
        let corpus = score_corpus(&hyps, &refs, &Metrics::all()).unwrap();
        let document = score_document(&hyps, &refs, &Metrics::all()).unwrap();

        for (label, got, want) in [
            ("corpus", corpus.bleu.as_ref().unwrap(), &set["corpus_bleu"]),
            (
                "document",
                document.bleu.as_ref().unwrap(),
                &set["document_bleu"],
            ),
        ] {
            let what = format!("{name} {label} BLEU");
            diffs.check(&what, got.score, num(&want["score"]));
            diffs.check(&format!("{what} bp"), got.bp, num(&want["bp"]));
            for n in 0..4 {
                let p = &want["precisions"][n];
                diffs.check(&format!("{what} p{}", n + 1), got.precisions[n], num(p));
                assert_eq!(got.counts[n], want["counts"][n].as_u64().unwrap(), "{what}");
                assert_eq!(got.totals[n], want["totals"][n].as_u64().unwrap(), "{what}");
            }
            assert_eq!(got.hyp_len, want["hyp_len"].as_u64().unwrap(), "{what}");
            assert_eq!(got.ref_len, want["ref_len"].as_u64().unwrap(), "{what}");
            assert_eq!(got.signature, want["signature"].as_str().unwrap(), "{what}");
        }

        let c = corpus.chrf.as_ref().unwrap();
        diffs.check(
            &format!("{name} chrF"),
            c.score,
            num(&set["corpus_chrf"]["score"]),
        );
        assert_eq!(
            c.signature,
            set["corpus_chrf"]["signature"].as_str().unwrap()
        );

        let t = corpus.ter.as_ref().unwrap();
        let want_ter = &set["corpus_ter"];
        diffs.check(&format!("{name} TER"), t.score, num(&want_ter["score"]));
        assert_eq!(
            t.num_edits,
            want_ter["num_edits"].as_u64().unwrap(),
            "{name} TER edits"
        );
        diffs.check(
            &format!("{name} TER length"),
            t.ref_length,
            num(&want_ter["ref_length"]),
        );
        assert_eq!(t.signature, want_ter["signature"].as_str().unwrap());

        diffs.check_rouge(
            &format!("{name} mean"),
            corpus.rouge.as_ref().unwrap(),
            &set["rouge_mean"],
        );

        for (i, (h, r)) in hyps.iter().zip(&refs).enumerate() {
            let (fh, fr) = (h.replace('\n', " "), r.replace('\n', " "));
            let what = format!("{name}[{i}]");
            let sb = bleu::sentence_bleu(&fh, &fr);
            diffs.check(
                &format!("{what} sentence BLEU"),
                sb.score,
                num(&set["sentence_bleu"][i]),
            );
            let sc = chrf::compute(&chrf::segment_stats(&fh, &fr));
            diffs.check(
                &format!("{what} chrF"),
                sc.score,
                num(&set["sentence_chrf"][i]),
            );
            let st = ter::compute(&ter::segment_stats(&fh, &fr));
            diffs.check(
                &format!("{what} TER"),
                st.score,
                num(&set["sentence_ter"][i]),
            );
            diffs.check_rouge(&what, &rouge::score(r, h), &set["rouge"][i]);
        }
    }
    diffs.finish("metrics");
}

#[test]
fn porter_stems_match_nltk() {
    let exp = expected();
    let stems = exp["stems"].as_object().expect("stems");
    assert!(stems.len() > 300, "the fixture holds a real word list");
    let wrong: Vec<String> = stems
        .iter()
        .filter_map(|(word, want)| {
            let got = porter::stem(word);
            (got != want.as_str().unwrap()).then(|| format!("{word}: {got} (NLTK {want})"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} stems differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn args(hyp: &Path, reference: &Path) -> EvalArgs {
    EvalArgs {
        hyp: hyp.to_path_buf(),
        reference: reference.to_path_buf(),
        metrics: Metrics::all(),
        json: false,
        by_line: false,
        kind: None,
        min_bleu: None,
        min_chrf: None,
    }
}

/// Runs the command, returning its exit code, stdout and stderr.
fn run(args: &EvalArgs) -> (ExitCode, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(args, &mut out, &mut err).unwrap();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn eval_pairs_a_folder_by_name_and_scores_the_corpus() {
    let exp = expected();
    let dir = tempfile::tempdir().unwrap();
    // Outputs written beside their references, as in newstest-dev.
    for (from, to) in [
        ("paragraphs.hyp.txt", "doc.en.txt"),
        ("paragraphs.ref.txt", "doc.ref.en.txt"),
        ("news.ref.txt", "unscored.ref.en.txt"),
    ] {
        fs::copy(fixtures().join(from), dir.path().join(to)).unwrap();
    }
    let report = evaluate(&args(dir.path(), dir.path())).unwrap();
    assert_eq!(report.documents.len(), 1);
    assert_eq!(report.refs_without_output.len(), 1);
    let want = &exp["sets"]["paragraphs"];
    let got = &report.corpus;
    assert_eq!(got.segments, strings(&want["hyps"]).len());
    let mut diffs = Diffs::default();
    diffs.check(
        "folder BLEU",
        got.bleu.as_ref().unwrap().score,
        num(&want["corpus_bleu"]["score"]),
    );
    diffs.check(
        "folder chrF",
        got.chrf.as_ref().unwrap().score,
        num(&want["corpus_chrf"]["score"]),
    );
    diffs.check(
        "folder TER",
        got.ter.as_ref().unwrap().score,
        num(&want["corpus_ter"]["score"]),
    );
    let doc = &report.documents[0].scores;
    diffs.check(
        "doc BLEU",
        doc.bleu.as_ref().unwrap().score,
        num(&want["document_bleu"]["score"]),
    );
    diffs.finish("folder");

    let mut json_args = args(dir.path(), dir.path());
    json_args.json = true;
    let (code, out, _) = run(&json_args);
    assert_eq!(code, ExitCode::SUCCESS);
    let v: Value = serde_json::from_str(&out).unwrap();
    for key in [
        "bleu",
        "chrf",
        "ter",
        "rouge1",
        "rouge2",
        "rougeL",
        "rougeLsum",
    ] {
        assert!(v["corpus"][key].is_object(), "corpus.{key} in {out}");
        assert!(v["documents"][0][key].is_object(), "documents[0].{key}");
    }
    assert!(v["corpus"]["bleu"]["signature"]
        .as_str()
        .unwrap()
        .contains("eff:no"));
    assert!(v["documents"][0]["bleu"]["signature"]
        .as_str()
        .unwrap()
        .contains("eff:yes"));
}

#[test]
fn eval_scores_markdown_briefs_against_highlights() {
    let exp = expected();
    let dir = tempfile::tempdir().unwrap();
    let hyp = fs::read_to_string(fixtures().join("brief-1.hyp.txt")).unwrap();
    // The same brief as Markdown: a title line and bullets, which are stripped before scoring.
    let mut lines = hyp.lines();
    let mut md = format!("# {}\n\n", lines.next().unwrap());
    for line in lines {
        md.push_str(&format!("- {line}\n"));
    }
    fs::write(dir.path().join("x.brief.en.md"), md).unwrap();
    fs::copy(
        fixtures().join("brief-1.ref.txt"),
        dir.path().join("x.highlights.txt"),
    )
    .unwrap();
    let report = evaluate(&args(dir.path(), dir.path())).unwrap();
    assert_eq!(report.kind, Kind::Brief);
    let mut diffs = Diffs::default();
    let want = &exp["sets"]["brief-1"];
    diffs.check_rouge(
        "brief",
        report.corpus.rouge.as_ref().unwrap(),
        &want["rouge_mean"],
    );
    diffs.finish("brief");
}

#[test]
fn eval_exit_codes() {
    let f = fixtures();
    let news = |side: &str| f.join(format!("news.{side}.txt"));

    let mut a = args(&news("hyp"), &news("ref"));
    a.by_line = true;
    let (code, table, _) = run(&a);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        table.contains("CORPUS") && table.contains("version:2.6.0"),
        "{table}"
    );

    a.min_bleu = Some(99.0);
    let (code, _, err) = run(&a);
    assert_eq!(code, ExitCode::from(1));
    assert!(err.contains("below --min-bleu"), "{err}");

    a.min_bleu = Some(1.0);
    a.min_chrf = Some(1.0);
    assert_eq!(run(&a).0, ExitCode::SUCCESS);

    a.metrics = "bleu".parse().unwrap();
    let (code, _, err) = run(&a);
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("--min-chrf needs chrf"), "{err}");

    // Paragraph mode on line-aligned files with a blank hypothesis line: counts differ.
    let (code, _, err) = run(&args(&news("hyp"), &news("ref")));
    assert_eq!(code, ExitCode::from(2));
    assert!(
        err.contains("news.hyp.txt")
            && err.contains("news.ref.txt")
            && err.contains("has 2 paragraphs")
            && err.contains("has 1"),
        "{err}"
    );

    let (code, _, err) = run(&args(&news("hyp"), &f));
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("must be a file"), "{err}");

    assert!("bleu,meteor".parse::<Metrics>().is_err());
}

#[test]
fn eval_folder_needs_a_kind_when_mixed_and_a_reference_for_each_output() {
    let f = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let put = |from: &str, to: &str| fs::copy(f.join(from), dir.path().join(to)).unwrap();
    put("short.hyp.txt", "a.en.txt");
    put("short.ref.txt", "a.ref.en.txt");
    put("brief-2.hyp.txt", "b.brief.en.md");
    put("brief-2.ref.txt", "b.ref.brief.txt");

    let (code, _, err) = run(&args(dir.path(), dir.path()));
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("--kind"), "{err}");

    let mut a = args(dir.path(), dir.path());
    a.kind = Some(Kind::Brief);
    let report = evaluate(&a).unwrap();
    assert_eq!(report.documents.len(), 1);
    assert_eq!(report.documents[0].name, "b");
    a.kind = Some(Kind::Translation);
    a.by_line = true;
    let report = evaluate(&a).unwrap();
    assert_eq!(report.documents[0].name, "a");
    assert_eq!(report.corpus.segments, 3);

    put("short.hyp.txt", "c.en.md");
    let (code, _, err) = run(&a);
    assert_eq!(code, ExitCode::from(2));
    assert!(
        err.contains("no reference for 1 output(s): c.en.md (wanted c.ref.en.txt)"),
        "{err}"
    );
}
