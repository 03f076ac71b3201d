//! Accuracy of whatlang and lingua (English + French only) on the segments of a newstest layout:
//! whole lines and their 2-, 4- and 10-word prefixes, by length bucket; "right" means French taken
//! for French and English for English (or, for the "if reliable"/"conf >= 0.9" rows, English not
//! taken for French). See src/checks/language.rs for the results and the choice.
//!
//! Not for: the main build (its own workspace; see Cargo.toml for how to run it).

use std::time::Instant;

fn segments(dir: &str, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        if !p.to_string_lossy().ends_with(suffix) {
            continue;
        }
        let t = std::fs::read_to_string(&p).unwrap();
        for l in t.lines() {
            let l = l.trim();
            if !l.is_empty() {
                out.push(l.to_string());
            }
        }
    }
    out
}

/// (bucket, text) pairs: whole lines in their natural bucket, plus prefixes of 2, 4 and 10 words.
fn cases(lines: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let b = |n: usize| {
        if n <= 5 {
            0
        } else if n <= 15 {
            1
        } else {
            2
        }
    };
    for l in lines {
        let w: Vec<&str> = l.split_whitespace().collect();
        out.push((b(w.len()), l.clone()));
        for k in [2usize, 4, 10] {
            if w.len() > k {
                out.push((b(k), w[..k].join(" ")));
            }
        }
    }
    out
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("../../../shared/eval/newstest-dev-blocks".into());
    let fr = cases(&segments(&dir, ".fr.txt"));
    let en = cases(&segments(&dir, ".ref.en.txt"));
    let mut detectors: Vec<(&str, Box<dyn Fn(&str) -> Option<bool>>)> = Vec::new(); // Some(true)=English
    #[cfg(feature = "wl")]
    {
        use whatlang::{Detector, Lang};
        detectors.push((
            "whatlang (all langs)",
            Box::new(|s: &str| whatlang::detect_lang(s).map(|l| l == Lang::Eng)),
        ));
        let d = Detector::with_allowlist(vec![Lang::Eng, Lang::Fra]);
        let d2 = d.clone();
        detectors.push((
            "whatlang (eng+fra allowlist)",
            Box::new(move |s: &str| d.detect_lang(s).map(|l| l == Lang::Eng)),
        ));
        detectors.push((
            "whatlang (eng+fra, French only if reliable)",
            Box::new(move |s: &str| {
                d2.detect(s)
                    .map(|i| !(i.lang() == Lang::Fra && i.is_reliable()))
            }),
        ));
    }
    #[cfg(feature = "li")]
    {
        use lingua::{Language, LanguageDetectorBuilder};
        let t = Instant::now();
        let d =
            LanguageDetectorBuilder::from_languages(&[Language::English, Language::French]).build();
        let _ = d.detect_language_of("warm up the lazy models please");
        eprintln!("lingua build+first call: {:?}", t.elapsed());
        detectors.push((
            "lingua (en+fr, high accuracy)",
            Box::new(move |s: &str| d.detect_language_of(s).map(|l| l == Language::English)),
        ));
        let d3 =
            LanguageDetectorBuilder::from_languages(&[Language::English, Language::French]).build();
        detectors.push((
            "lingua (en+fr, French only if confidence >= 0.9)",
            Box::new(move |s: &str| {
                Some(d3.compute_language_confidence(s, Language::French) < 0.9)
            }),
        ));
        let d2 = LanguageDetectorBuilder::from_languages(&[Language::English, Language::French])
            .with_low_accuracy_mode()
            .build();
        detectors.push((
            "lingua (en+fr, low accuracy)",
            Box::new(move |s: &str| d2.detect_language_of(s).map(|l| l == Language::English)),
        ));
    }
    let names = ["1-5 words", "6-15 words", "16+ words"];
    for (name, det) in &detectors {
        let t = Instant::now();
        let mut n = 0;
        println!("{name}");
        for (lang, set, want) in [("fr", &fr, false), ("en", &en, true)] {
            for bucket in 0..3 {
                let (mut ok, mut tot, mut none) = (0, 0, 0);
                for (b, s) in set.iter() {
                    if *b != bucket {
                        continue;
                    }
                    tot += 1;
                    n += 1;
                    match det(s) {
                        Some(x) if x == want => ok += 1,
                        None => none += 1,
                        _ => {}
                    }
                }
                println!(
                    "  {lang} {:<11} {:>5} segs  acc {:5.1}%  undecided {}",
                    names[bucket],
                    tot,
                    100.0 * ok as f64 / tot as f64,
                    none
                );
            }
        }
        println!(
            "  {:.1} us/segment",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
