//! Pairing outputs with references for `transbrief eval`: which file is scored against which,
//! and how each is cut into aligned segments.
//!
//! Two files are paired directly. Two folders (or one folder holding both) are paired by name:
//! - a translation `X.en.EXT` (any format's: `.txt`, `.md`, `.html`, `.docx`...) against
//!   `X.ref.en.txt` (or a reference in any format), segment by segment: by
//!   paragraph (blocks separated by blank lines) or, with [`Split::Lines`], by line;
//! - a brief `X.brief.en.md` against `X.highlights.txt` or else `X.ref.brief.txt`, the whole
//!   document as one segment whose lines are its sentences or bullets.
//!
//! Every file is reduced to its text before scoring, as its format reads it (`Codec::plain_text`):
//! for Markdown (`.md`), heading marks (`# `), bullet marks (`- `), emphasis and link syntax go,
//! and each heading, paragraph or list item becomes a line of its own, so a brief's title and
//! bullets are scored as plain sentences; HTML loses its markup, a DOCX or ODT gives its
//! paragraphs, subtitles their cues. Not for:
//! computing scores (see [`super::score_document`]) or finding outputs to generate.

use std::fs;
use std::path::{Path, PathBuf};


use super::is_py_space;
use crate::text::format::{Format, Source, BRIEF_SUFFIX, FORMATS};
use crate::{Error, Result};

/// How a translation and its reference are cut into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// Blocks of non-blank lines separated by blank lines (the layout of newstest-dev).
    #[default]
    Paragraphs,
    /// Every line, blank lines included, as sacrebleu reads a file.
    Lines,
}

/// What kind of output a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A translation, scored segment by segment.
    Translation,
    /// A brief (summary), scored as one segment against highlights.
    Brief,
}

/// One output paired with its reference, cut into aligned segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The shared name stem (`X`), or the output's file name when two files were paired.
    pub name: String,
    pub kind: Kind,
    pub hyp_path: PathBuf,
    pub ref_path: PathBuf,
    pub hyps: Vec<String>,
    pub refs: Vec<String>,
}

/// The documents to score, and the references that had no output beside them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pairing {
    pub documents: Vec<Document>,
    pub refs_without_output: Vec<PathBuf>,
}

/// Pairs `hyp` with `reference`: two files, or two folders (possibly the same one). `kind`
/// forces translations or briefs; without it, a file named `*.brief.en.md` is a brief, and a
/// folder must not hold both kinds of outputs.
pub fn pair(hyp: &Path, reference: &Path, split: Split, kind: Option<Kind>) -> Result<Pairing> {
    match (hyp.is_dir(), reference.is_dir()) {
        (false, false) => {
            let kind = kind.unwrap_or_else(|| kind_of_file(hyp));
            let name = hyp
                .file_name()
                .map_or_else(|| hyp.display().to_string(), |n| n.to_string_lossy().into());
            let document = load(name, kind, hyp, reference, split)?;
            Ok(Pairing {
                documents: vec![document],
                refs_without_output: Vec::new(),
            })
        }
        (true, true) => pair_folders(hyp, reference, split, kind),
        (true, false) => Err(Error::input(
            reference,
            "the outputs are a folder, so the references must be a folder too",
        )),
        (false, true) => Err(Error::input(
            reference,
            "the output is a file, so the reference must be a file too",
        )),
    }
}

fn kind_of_file(path: &Path) -> Kind {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    if name.is_some_and(|n| n.ends_with(BRIEF_SUFFIX)) {
        Kind::Brief
    } else {
        Kind::Translation
    }
}

/// An output file's kind and name stem, if its name is one `transbrief` writes.
fn classify_output(file_name: &str) -> Option<(Kind, &str)> {
    if let Some(stem) = file_name.strip_suffix(BRIEF_SUFFIX) {
        return Some((Kind::Brief, stem));
    }
    let (stem, _) = Format::translation_base(file_name)?;
    (!stem.ends_with(".ref") && !stem.is_empty()).then_some((Kind::Translation, stem))
}

/// The reference file names to look for, in order of preference.
fn reference_names(kind: Kind, stem: &str) -> Vec<String> {
    match kind {
        Kind::Translation => vec![format!("{stem}.ref.en.txt")],
        Kind::Brief => vec![
            format!("{stem}.highlights.txt"),
            format!("{stem}.ref.brief.txt"),
        ],
    }
}

/// The stem of a reference file of `kind`, if `file_name` is one.
fn reference_stem(kind: Kind, file_name: &str) -> Option<&str> {
    match kind {
        Kind::Translation => file_name.strip_suffix(".ref.en.txt"),
        Kind::Brief => file_name
            .strip_suffix(".highlights.txt")
            .or_else(|| file_name.strip_suffix(".ref.brief.txt")),
    }
}

/// File names in `dir`, sorted so that reports come out in a stable order.
fn file_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::input(dir, e))? {
        let entry = entry.map_err(|e| Error::input(dir, e))?;
        if entry.path().is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn pair_folders(
    hyp_dir: &Path,
    ref_dir: &Path,
    split: Split,
    kind: Option<Kind>,
) -> Result<Pairing> {
    let outputs: Vec<(Kind, String, String)> = file_names(hyp_dir)?
        .iter()
        .filter_map(|n| classify_output(n).map(|(k, stem)| (k, stem.to_string(), n.clone())))
        .collect();
    let kind = match kind {
        Some(k) => k,
        None => {
            let has = |k: Kind| outputs.iter().any(|(o, _, _)| *o == k);
            match (has(Kind::Translation), has(Kind::Brief)) {
                (true, true) => {
                    return Err(Error::input(
                        hyp_dir,
                        "holds both translations (*.en.txt) and briefs (*.brief.en.md); \
                         choose one with --kind translation or --kind brief",
                    ))
                }
                (false, true) => Kind::Brief,
                (true, false) => Kind::Translation,
                (false, false) => {
                    return Err(Error::input(
                        hyp_dir,
                        format!(
                            "no outputs to score (looked for {} and *{BRIEF_SUFFIX})",
                            translation_globs()
                        ),
                    ))
                }
            }
        }
    };
    let ref_names = file_names(ref_dir)?;
    let mut documents = Vec::new();
    let mut missing = Vec::new();
    for (_, stem, file_name) in outputs.iter().filter(|(k, _, _)| *k == kind) {
        let wanted = reference_names(kind, stem);
        match wanted.iter().find(|w| ref_names.contains(w)) {
            Some(ref_name) => documents.push(load(
                stem.clone(),
                kind,
                &hyp_dir.join(file_name),
                &ref_dir.join(ref_name),
                split,
            )?),
            None => missing.push(format!("{file_name} (wanted {})", wanted.join(" or "))),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        let more = missing.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(Error::input(
            ref_dir,
            format!(
                "no reference for {} output(s): {}{more}",
                missing.len(),
                shown.join(", ")
            ),
        ));
    }
    if documents.is_empty() {
        let what = match kind {
            Kind::Translation => format!("translations ({})", translation_globs()),
            Kind::Brief => format!("briefs (*{BRIEF_SUFFIX})"),
        };
        return Err(Error::input(hyp_dir, format!("no {what} to score")));
    }
    let refs_without_output = ref_names
        .iter()
        .filter_map(|n| reference_stem(kind, n).map(|stem| (stem, n)))
        .filter(|(stem, _)| !documents.iter().any(|d| d.name == *stem))
        .map(|(_, n)| ref_dir.join(n))
        .collect();
    Ok(Pairing {
        documents,
        refs_without_output,
    })
}

/// Reads both files of a document and cuts them into segments, checking they align.
fn load(name: String, kind: Kind, hyp: &Path, reference: &Path, split: Split) -> Result<Document> {
    let hyps = segments(&read_plain(hyp)?, kind, split);
    let refs = segments(&read_plain(reference)?, kind, split);
    if hyps.len() != refs.len() {
        let unit = match (kind, split) {
            (Kind::Brief, _) => "segments",
            (_, Split::Paragraphs) => "paragraphs",
            (_, Split::Lines) => "lines",
        };
        return Err(Error::input(
            hyp,
            format!(
                "has {} {unit} but its reference {} has {}; outputs and references must align",
                hyps.len(),
                reference.display(),
                refs.len()
            ),
        ));
    }
    Ok(Document {
        name,
        kind,
        hyp_path: hyp.to_path_buf(),
        ref_path: reference.to_path_buf(),
        hyps,
        refs,
    })
}

/// Reads a text file: UTF-8 (with or without BOM), or UTF-16 with a BOM.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| Error::input(path, e))?;
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(&bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        if had_errors {
            return Err(Error::input(
                path,
                format!("is not valid {} text", encoding.name()),
            ));
        }
        return Ok(text.into_owned());
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::input(
            path,
            format!(
                "is not UTF-8 text (invalid byte at offset {}); convert it to UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// `*.en.txt, *.en.md, ...`: the names of translations, one per format.
fn translation_globs() -> String {
    let mut globs: Vec<String> = FORMATS
        .iter()
        .map(|f| format!("*.en.{}", f.output_extension))
        .collect();
    globs.dedup();
    globs.join(", ")
}

/// The text a scorer reads from a document, as its format says (`Codec::plain_text`): a
/// text format's file read strictly as UTF-8 ([`read_text`]), markup dropped; a package's text.
pub fn read_plain(path: &Path) -> Result<String> {
    let format = Format::of_document(path);
    let doc = if format.codec.is_text() {
        Source::from_text(read_text(path)?)
    } else {
        format
            .read(path, crate::text::read::DEFAULT_MAX_BYTES)
            .map_err(|e| Error::input(path, e))?
    };
    format
        .codec
        .plain_text(&doc)
        .map_err(|e| Error::input(path, e))
}

/// Cuts a document's plain text ([`read_plain`]) into segments as described in the module
/// documentation.
pub fn segments(text: &str, kind: Kind, split: Split) -> Vec<String> {
    match (kind, split) {
        (Kind::Brief, _) => {
            let lines: Vec<&str> = text
                .lines()
                .map(py_strip)
                .filter(|l| !l.is_empty())
                .collect();
            vec![lines.join("\n")]
        }
        (Kind::Translation, Split::Lines) => {
            text.lines().map(|l| py_strip(l).to_string()).collect()
        }
        (Kind::Translation, Split::Paragraphs) => paragraphs(text),
    }
}

/// A line without leading or trailing white space, as Python's `str.strip()` (which the fixture
/// and parity scripts use) trims it.
fn py_strip(line: &str) -> &str {
    line.trim_matches(is_py_space)
}

/// Blocks of non-blank lines (each line trimmed, joined by `\n`); blank lines separate blocks.
pub fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines().map(py_strip) {
        if line.is_empty() {
            if !block.is_empty() {
                out.push(block.join("\n"));
                block.clear();
            }
        } else {
            block.push(line);
        }
    }
    if !block.is_empty() {
        out.push(block.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_blank_line_blocks() {
        let text = "  One.\nStill one.\n\n\n Two. \r\n\r\nThree.";
        assert_eq!(paragraphs(text), ["One.\nStill one.", "Two.", "Three."]);
        assert!(paragraphs("\n \n").is_empty());
    }

    #[test]
    fn brief_markdown_loses_its_marks() {
        let md = "# A *big* title\n\n- First point.\n- Second `point`,\n  continued.\n";
        let plain = crate::text::markdown::to_text(md);
        let segs = segments(&plain, Kind::Brief, Split::Paragraphs);
        assert_eq!(
            segs,
            ["A big title\nFirst point.\nSecond point,\ncontinued."]
        );
    }

    #[test]
    fn lines_keep_empty_lines() {
        let segs = segments("a\n\nb\n", Kind::Translation, Split::Lines);
        assert_eq!(segs, ["a", "", "b"]);
    }

    #[test]
    fn output_names() {
        assert_eq!(classify_output("x.en.txt"), Some((Kind::Translation, "x")));
        assert_eq!(classify_output("x.ref.en.txt"), None);
        assert_eq!(classify_output("x.brief.en.md"), Some((Kind::Brief, "x")));
        assert_eq!(classify_output("x.fr.txt"), None);
    }
}
