//! The rich formats through the CLI, with the tiny seeded model (its English is noise, which is
//! the point: whatever the model writes, the structure must hold): a folder with one document of
//! each format is translated, each output has the paragraphs, tables, cells and cues of its
//! input, opens in LibreOffice and in python-docx or odfpy (where they are installed; CI installs
//! them, and there their absence is a failure), and each bad document costs only itself.
//!
//! Not for: where inline formatting lands, or what is kept byte for byte (the unit tests of
//! `text::docx`, `text::odt`, `text::html` and `text::subtitles` check those with translations
//! they control).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Env;
use transbrief::text::format::Format;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/docs")
        .join(name)
}

/// The good fixtures, as (fixture file, name in the folder).
const GOOD: &[(&str, &str)] = &[
    ("sample.docx", "word.fr.docx"),
    ("sample.odt", "writer.fr.odt"),
    ("sample.fr.html", "page.fr.html"),
    ("sample.fr.srt", "film.fr.srt"),
    ("sample.fr.vtt", "talk.fr.vtt"),
];

fn copy_into(docs: &Path, files: &[(&str, &str)]) {
    for (from, to) in files {
        std::fs::copy(fixture(from), docs.join(to)).unwrap_or_else(|e| panic!("{from}: {e}"));
    }
}

/// How many times each of `needles` occurs in the XML part `part` of the package at `path`
/// (`None` for a text file: then the whole file).
fn counts(path: &Path, part: Option<&str>, needles: &[&str]) -> Vec<usize> {
    let text = match part {
        Some(part) => {
            let file = std::fs::File::open(path).unwrap();
            let mut zip = zip::ZipArchive::new(file).unwrap();
            let mut entry = zip.by_name(part).unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut entry, &mut s).unwrap();
            s
        }
        None => std::fs::read_to_string(path).unwrap(),
    };
    needles.iter().map(|n| text.matches(n).count()).collect()
}

/// The structure that a translation must keep, per format: paragraphs, tables and cells of the
/// packages; blocks, cells and list items of the page; timing lines of the subtitles.
fn structure(path: &Path) -> Vec<usize> {
    let name = path.to_string_lossy();
    if name.ends_with(".docx") {
        counts(
            path,
            Some("word/document.xml"),
            &[
                "<w:p>",
                "<w:p ",
                "<w:tbl>",
                "<w:tc>",
                "<w:footnoteReference",
            ],
        )
    } else if name.ends_with(".odt") {
        counts(
            path,
            Some("content.xml"),
            &[
                "<text:p",
                "<text:h",
                "<table:table ",
                "<table:table-cell",
                "<text:note ",
            ],
        )
    } else if name.ends_with(".html") {
        counts(
            path,
            None,
            &["<p", "<h1", "<h2", "<li", "<td", "<table", "<img"],
        )
    } else {
        // One line per cue timing, identical.
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .filter(|l| l.contains("-->"))
            .map(|l| l.len())
            .collect()
    }
}

/// The line count of each cue of a subtitle file: the lines between a timing line and the next
/// blank line.
fn cue_lines(path: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains("-->") {
            out.push(lines.by_ref().take_while(|l| !l.trim().is_empty()).count());
        }
    }
    out
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Opens each DOCX or ODT in LibreOffice (through scripts/render-docs, to PDF and PNG) and in
/// python-docx or odfpy (the venv of scripts/make-doc-fixtures). Absent tools are a skip,
/// said, except in CI.
fn opens_in_office(files: &[PathBuf], out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let soffice = Command::new("soffice").arg("--version").output().is_ok();
    if soffice {
        let status = Command::new(root.join("scripts/render-docs"))
            .arg(out)
            .args(files)
            .status()
            .expect("scripts/render-docs");
        assert!(status.success(), "LibreOffice could not open an output");
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy();
            assert!(
                out.join(format!("{name}-1.png")).is_file(),
                "no page for {name}"
            );
        }
    } else {
        assert!(
            !in_ci(),
            "CI must have LibreOffice (scripts/render-docs --install)"
        );
        eprintln!("SKIP: LibreOffice (soffice) is not installed: outputs not opened in it");
    }
    let python = root.join("target/doc-fixtures-venv/bin/python");
    if python.is_file() {
        let script = "import sys, docx\nfrom odf.opendocument import load\n\
                      for p in sys.argv[1:]:\n    \
                      d = docx.Document(p) if p.endswith('.docx') else load(p)\n";
        let status = Command::new(&python)
            .arg("-c")
            .arg(script)
            .args(files)
            .status()
            .expect("python");
        assert!(
            status.success(),
            "python-docx or odfpy could not open an output"
        );
    } else {
        assert!(
            !in_ci(),
            "CI must have the venv of scripts/make-doc-fixtures"
        );
        eprintln!(
            "SKIP: {} is missing (scripts/make-doc-fixtures makes it): outputs not opened \
             in python-docx and odfpy",
            python.display()
        );
    }
}

#[test]
fn one_document_of_each_format_keeps_its_structure_and_opens() {
    let env = Env::new(24);
    let docs = env.folder("docs");
    copy_into(&docs, GOOD);
    let run = env.run(&[docs.to_str().unwrap(), "--only", "translate"]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let mut packages = Vec::new();
    for (_, name) in GOOD {
        let input = docs.join(name);
        let format = Format::of_document(&input);
        let base = name.split(".fr.").next().unwrap();
        let output = docs.join(format.translation_name(base));
        assert!(
            output.is_file(),
            "{} not written: {}",
            output.display(),
            run.describe()
        );
        assert_eq!(run.doc(name)["status"], "done", "{}", run.describe());
        assert_eq!(
            structure(&input),
            structure(&output),
            "{name}: paragraphs, tables, cells or cues changed"
        );
        if name.ends_with(".srt") || name.ends_with(".vtt") {
            assert_eq!(
                cue_lines(&input),
                cue_lines(&output),
                "{name}: lines per cue"
            );
        }
        if name.ends_with(".docx") || name.ends_with(".odt") {
            packages.push(output.clone());
        }
        // Every piece of the output can be read back as its format: nothing half-written.
        let out = format.read(&output, 1 << 24).expect("output reads back");
        format.codec.pieces(&out).expect("output cuts into pieces");
    }
    opens_in_office(&packages, &env.folder("pages"));

    // `eval` reads every format's text: each output against its own text as the reference
    // scores 100.
    for (_, name) in GOOD {
        let base = name.split(".fr.").next().unwrap();
        let format = Format::of_document(&docs.join(name));
        let output = format.read(&docs.join(format.translation_name(base)), 1 << 24);
        let text = format.codec.plain_text(&output.unwrap()).unwrap();
        std::fs::write(docs.join(format!("{base}.ref.en.txt")), text).unwrap();
    }
    let eval = std::process::Command::new(assert_cmd::cargo::cargo_bin("transbrief"))
        .args(["eval", "--json", "--metrics", "bleu", "--hyp"])
        .arg(&docs)
        .arg("--ref")
        .arg(&docs)
        .output()
        .expect("transbrief eval");
    let stdout = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let scores: serde_json::Value = serde_json::from_str(&stdout).expect("eval JSON");
    assert_eq!(
        scores["documents"].as_array().map(Vec::len),
        Some(GOOD.len()),
        "{scores}"
    );
    let bleu = scores["corpus"]["bleu"]["score"]
        .as_f64()
        .expect("corpus BLEU");
    assert!((bleu - 100.0).abs() < 1e-6, "{scores}");
}

/// Each bad document is its own failure, named with its problem; the good one beside it is
/// translated; nothing is written for the bad ones.
#[test]
fn each_bad_document_fails_alone() {
    let env = Env::new(16);
    let docs = env.folder("docs");
    std::fs::write(docs.join("good.fr.txt"), "Le chat dort. Il fait beau.\n").unwrap();
    // (fixture, name in the folder, what the error must say)
    let bad: &[(&str, &str, &str)] = &[
        ("encrypted.docx", "encrypted-w.fr.docx", "encrypted"),
        ("encrypted.odt", "encrypted-o.fr.odt", "encrypted"),
        ("macros.docm", "macros.fr.docm", "macro"),
        ("bomb.docx", "bomb.fr.docx", "limit"),
        ("doctype.docx", "doctype-w.fr.docx", "DOCTYPE"),
        ("doctype.odt", "doctype-o.fr.odt", "DOCTYPE"),
        ("broken.docx", "broken-w.fr.docx", "XML"),
        ("broken.odt", "broken-o.fr.odt", "XML"),
        ("text.docx", "lies.fr.docx", "not a"),
        ("pdf.docx", "pdf.fr.docx", "not a"),
        ("bad-timestamps.fr.srt", "bad.fr.srt", "cue"),
    ];
    for (from, to, _) in bad {
        std::fs::copy(fixture(from), docs.join(to)).unwrap_or_else(|e| panic!("{from}: {e}"));
    }
    // An HTML page over the size limit (--max-bytes), refused before it is read.
    let big = format!(
        "<html><body>{}</body></html>",
        "<p>Bonjour.</p>".repeat(20_000)
    );
    std::fs::write(docs.join("big.fr.html"), big).unwrap();
    let run = env.run(&[
        docs.to_str().unwrap(),
        "--only",
        "translate",
        "--max-bytes",
        "100000",
    ]);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    assert_eq!(
        run.doc("good.fr.txt")["status"],
        "done",
        "{}",
        run.describe()
    );
    assert!(docs.join("good.en.txt").is_file());
    let cases = bad
        .iter()
        .map(|(_, to, problem)| (*to, *problem))
        .chain([("big.fr.html", "over the limit")]);
    for (name, problem) in cases {
        let doc = run.doc(name);
        assert_eq!(doc["status"], "failed", "{name}: {}", run.describe());
        let error = doc["error"].as_str().expect("error");
        assert!(
            error.contains(name),
            "{name}: the error does not name it: {error}"
        );
        assert!(
            error.to_lowercase().contains(&problem.to_lowercase()),
            "{name}: the error does not say '{problem}': {error}"
        );
    }
    // Nothing but the good document's outputs, the inputs and the records.
    let mut written: Vec<String> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".en.") || n.starts_with('.') && n != ".transbrief")
        .collect();
    written.sort();
    assert_eq!(written, ["good.en.txt"], "{}", run.describe());
}
