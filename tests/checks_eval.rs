//! Measures the reference-free checks (`transbrief::checks`) on `../shared/eval`, issue 14's
//! "Detection" criterion: defects planted by `scripts/plant-defects` in clean English must be
//! flagged (at least 95% of them), and clean English must not be (at most 5% of paragraphs).
//!
//! The clean English is the human reference of newstest-dev by default, so the rates measure
//! the checks against a human translator's liberties (and a few errors: "53%" rendered "85%").
//! To measure on a model's translations instead, as the issue asks (the 1.5B model's outputs of
//! newstest-dev, kept by `scripts/eval-newstest ... --keep`), set
//! `TRANSBRIEF_CLEAN_DIR=/that/folder` (its `NAME.fr.txt` and `NAME.en.txt`; another English
//! suffix with `TRANSBRIEF_CLEAN_SUFFIX`). Model outputs are not committed, so CI measures on
//! the references.
//!
//! Prints the rates per kind (`cargo test --test checks_eval -- --nocapture`); asserts them only
//! on the data shipped in `../shared/eval`, and prints `SKIP: ...` and passes where it (or
//! python3) is absent. Does not use the models: it builds and runs with and without `engine`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use transbrief::checks::{check_document, CheckKind, DocFinding};
use transbrief::text::segment::paragraphs;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Seeds of the planted sets: three draws of about 137 defects each.
const SEEDS: [u64; 3] = [14, 15, 16];
const MIN_DETECTED: f64 = 0.95;
const MAX_CLEAN_FLAGGED: f64 = 0.05;
const MAX_CLEAN_FLAGGED_OTHER: f64 = 0.15;

/// `../shared/eval` beside the checkout, or two levels up from a worktree.
fn shared_eval() -> Option<PathBuf> {
    let root = Path::new(ROOT);
    [root.parent(), root.parent().and_then(Path::parent)]
        .into_iter()
        .flatten()
        .map(|b| b.join("shared").join("eval"))
        .find(|d| d.join("newstest-dev").is_dir())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (name, French, English) of every `NAME.fr.txt` in `dir` with a `NAME<suffix>`.
fn pairs(dir: &Path, suffix: &str) -> Vec<(String, String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().ok()?;
            n.strip_suffix(".fr.txt").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| dir.join(format!("{n}{suffix}")).is_file())
        .map(|n| {
            let fr = read(&dir.join(format!("{n}.fr.txt")));
            let en = read(&dir.join(format!("{n}{suffix}")));
            (n, fr, en)
        })
        .collect()
}

/// The segments a document is checked in: one per paragraph, or one per line where the
/// paragraph is checked line by line (same line count on both sides).
fn segments(fr: &str, en: &str) -> usize {
    let (sp, ep) = (paragraphs(fr), paragraphs(en));
    sp.iter()
        .zip(&ep)
        .map(|(s, e)| {
            let (sl, el) = (fr[s.clone()].lines().count(), en[e.clone()].lines().count());
            if sl > 1 && sl == el {
                sl
            } else {
                1
            }
        })
        .sum()
}

/// Clean-set false positives: segments flagged, per check kind and in all.
struct Clean {
    segments: usize,
    flagged: BTreeSet<(String, usize, Option<usize>)>,
    by_kind: BTreeMap<CheckKind, BTreeSet<(String, usize, Option<usize>)>>,
    examples: Vec<String>,
    micros: f64,
}

/// The clean English to measure on: (folder, English suffix, label).
fn clean_set(eval: &Path) -> (PathBuf, String, String) {
    match std::env::var_os("TRANSBRIEF_CLEAN_DIR") {
        Some(dir) => {
            let suffix =
                std::env::var("TRANSBRIEF_CLEAN_SUFFIX").unwrap_or_else(|_| ".en.txt".into());
            let dir = PathBuf::from(dir);
            let label = format!("{} ({suffix})", dir.display());
            (dir, suffix, label)
        }
        None => (
            eval.join("newstest-dev"),
            ".ref.en.txt".into(),
            "newstest-dev (human references)".into(),
        ),
    }
}

fn clean_rates(dir: &Path) -> Clean {
    clean_rates_of(dir, ".ref.en.txt")
}

fn clean_rates_of(dir: &Path, suffix: &str) -> Clean {
    let mut c = Clean {
        segments: 0,
        flagged: BTreeSet::new(),
        by_kind: BTreeMap::new(),
        examples: Vec::new(),
        micros: 0.0,
    };
    let docs = pairs(dir, suffix);
    let start = Instant::now();
    let results: Vec<Vec<DocFinding>> = docs
        .iter()
        .map(|(_, fr, en)| check_document(fr, en))
        .collect();
    let elapsed = start.elapsed();
    for ((name, fr, en), findings) in docs.iter().zip(results) {
        c.segments += segments(fr, en);
        for f in findings {
            let key = (name.clone(), f.paragraph, f.line);
            c.flagged.insert(key.clone());
            c.by_kind.entry(f.finding.kind).or_default().insert(key);
            c.examples.push(format!(
                "{name} ¶{}{}: {}: {}",
                f.paragraph,
                f.line.map_or(String::new(), |l| format!(" l{l}")),
                f.finding.kind,
                f.finding.detail
            ));
        }
    }
    c.micros = elapsed.as_secs_f64() * 1e6 / c.segments.max(1) as f64;
    c
}

fn report_clean(set: &str, c: &Clean) -> f64 {
    let rate = c.flagged.len() as f64 / c.segments as f64;
    println!(
        "{set}: clean segments flagged {}/{} = {:.1}%  ({:.0} µs per segment, all checks)",
        c.flagged.len(),
        c.segments,
        100.0 * rate,
        c.micros
    );
    for kind in CheckKind::ALL {
        let n = c.by_kind.get(&kind).map_or(0, BTreeSet::len);
        println!(
            "  {:<9} {:>3} = {:.1}%",
            kind.as_str(),
            n,
            100.0 * n as f64 / c.segments as f64
        );
    }
    rate
}

fn python() -> Option<&'static str> {
    ["python3", "python"].into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn planted_defects_are_flagged_and_clean_paragraphs_are_not() {
    let Some(eval) = shared_eval() else {
        println!("SKIP: ../shared/eval/newstest-dev not found");
        return;
    };
    let Some(python) = python() else {
        println!("SKIP: python3 not found (scripts/plant-defects needs it)");
        return;
    };
    let (src, suffix, label) = clean_set(&eval);

    let clean = clean_rates_of(&src, &suffix);
    let clean_rate = report_clean(&label, &clean);
    for e in &clean.examples {
        println!("    clean flagged: {e}");
    }

    // kind -> (planted, flagged, check kinds that flagged it)
    let mut detect: BTreeMap<String, (usize, usize, BTreeMap<CheckKind, usize>)> = BTreeMap::new();
    let mut missed = Vec::new();
    for seed in SEEDS {
        let tmp = tempfile::tempdir().unwrap();
        let status = Command::new(python)
            .arg(Path::new(ROOT).join("scripts/plant-defects"))
            .arg(&src)
            .arg(tmp.path())
            .args(["--seed", &seed.to_string(), "--english-suffix", &suffix])
            .status()
            .expect("run scripts/plant-defects");
        assert!(status.success(), "scripts/plant-defects failed");
        let manifest: serde_json::Value =
            serde_json::from_str(&read(&tmp.path().join("manifest.json"))).unwrap();
        let mut by_file: BTreeMap<String, Vec<(usize, String, String)>> = BTreeMap::new();
        for d in manifest["defects"].as_array().unwrap() {
            by_file
                .entry(d["file"].as_str().unwrap().to_string())
                .or_default()
                .push((
                    d["paragraph"].as_u64().unwrap() as usize,
                    d["defect"].as_str().unwrap().to_string(),
                    d["detail"].as_str().unwrap().to_string(),
                ));
        }
        for (file, defects) in by_file {
            let name = file.strip_suffix(".en.txt").unwrap();
            let fr = read(&tmp.path().join(format!("{name}.fr.txt")));
            let en = read(&tmp.path().join(&file));
            let findings = check_document(&fr, &en);
            for (paragraph, kind, detail) in defects {
                let hits: Vec<&DocFinding> = findings
                    .iter()
                    .filter(|f| f.paragraph == paragraph)
                    .collect();
                let entry = detect.entry(kind.clone()).or_default();
                entry.0 += 1;
                if hits.is_empty() {
                    missed.push(format!(
                        "seed {seed} {name} ¶{paragraph}: {kind} ({detail})"
                    ));
                } else {
                    entry.1 += 1;
                    let kinds: BTreeSet<CheckKind> = hits.iter().map(|f| f.finding.kind).collect();
                    for k in kinds {
                        *entry.2.entry(k).or_default() += 1;
                    }
                }
            }
        }
    }
    let (planted, flagged) = detect
        .values()
        .fold((0, 0), |(p, f), (pp, ff, _)| (p + pp, f + ff));
    let rate = flagged as f64 / planted as f64;
    println!(
        "planted defects flagged (seeds {SEEDS:?}): {flagged}/{planted} = {:.1}%",
        100.0 * rate
    );
    for (kind, (p, f, by)) in &detect {
        let by: Vec<String> = by.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "  {kind:<7} {f:>3}/{p:<3} = {:5.1}%   flagged by: {}",
            100.0 * *f as f64 / *p as f64,
            by.join(", ")
        );
    }
    for m in &missed {
        println!("    missed: {m}");
    }
    assert!(
        rate >= MIN_DETECTED,
        "{:.1}% of planted defects flagged, want at least {:.0}%",
        100.0 * rate,
        100.0 * MIN_DETECTED
    );
    assert!(
        clean_rate <= MAX_CLEAN_FLAGGED,
        "{:.1}% of clean paragraphs flagged, want at most {:.0}%",
        100.0 * clean_rate,
        100.0 * MAX_CLEAN_FLAGGED
    );
}

/// The other two layouts of the same documents, clean: paragraphs of 4 sentences, and whole
/// bodies as one block checked line by line.
#[test]
fn clean_references_of_other_layouts_are_rarely_flagged() {
    let Some(eval) = shared_eval() else {
        println!("SKIP: ../shared/eval/newstest-dev not found");
        return;
    };
    let mut rates = Vec::new();
    for set in ["newstest-dev-paras", "newstest-dev-blocks"] {
        let c = clean_rates(&eval.join(set));
        rates.push((set, report_clean(set, &c)));
        for e in &c.examples {
            println!("    clean flagged: {e}");
        }
    }
    for (set, rate) in rates {
        assert!(
            rate <= MAX_CLEAN_FLAGGED_OTHER,
            "{set}: {:.1}% of clean segments flagged",
            100.0 * rate
        );
    }
}

/// Prints the English/French length ratios that `checks::length`'s bands were derived from, over
/// the three layouts' aligned segments, and checks every band holds them all.
#[test]
fn length_bands_hold_the_references() {
    let Some(eval) = shared_eval() else {
        println!("SKIP: ../shared/eval/newstest-dev not found");
        return;
    };
    use transbrief::checks::length::{band, chars};
    let mut ratios: Vec<(usize, f64)> = Vec::new();
    for set in ["newstest-dev", "newstest-dev-paras", "newstest-dev-blocks"] {
        for (_, fr, en) in pairs(&eval.join(set), ".ref.en.txt") {
            let (sp, ep) = (paragraphs(&fr), paragraphs(&en));
            for (s, e) in sp.iter().zip(&ep) {
                let (sl, el): (Vec<&str>, Vec<&str>) = (
                    fr[s.clone()].lines().collect(),
                    en[e.clone()].lines().collect(),
                );
                let units: Vec<(String, String)> = if sl.len() > 1 && sl.len() == el.len() {
                    sl.iter()
                        .zip(&el)
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect()
                } else {
                    vec![(sl.join(" "), el.join(" "))]
                };
                for (a, b) in units {
                    let n = chars(&a);
                    if n > 0 {
                        ratios.push((n, chars(&b) as f64 / n as f64));
                    }
                }
            }
        }
    }
    println!("{} aligned segments", ratios.len());
    let groups = [(0, 30), (30, 120), (120, 250), (250, usize::MAX)];
    let mut outside = 0;
    for (lo, hi) in groups {
        let mut v: Vec<f64> = ratios
            .iter()
            .filter(|(n, _)| *n >= lo && *n < hi)
            .map(|&(_, r)| r)
            .collect();
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| v[((p / 100.0) * (v.len() - 1) as f64).round() as usize];
        println!(
            "  French chars {lo:>3}-{hi:<20} n={:>4} min {:.2} p0.5 {:.2} p10 {:.2} median {:.2} p99.5 {:.2} max {:.2}   band {:?}",
            v.len(),
            v[0],
            pct(0.5),
            pct(10.0),
            pct(50.0),
            pct(99.5),
            v[v.len() - 1],
            band(lo)
        );
    }
    for &(n, r) in &ratios {
        let (lo, hi) = band(n);
        if r < lo || r > hi {
            outside += 1;
        }
    }
    println!("  outside their band: {outside}");
    assert!(
        outside * 100 <= ratios.len(),
        "{outside} of {} reference segments outside the length band",
        ratios.len()
    );
}
