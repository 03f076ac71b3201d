//! The `transbrief eval` command: pairs outputs with references ([`super::pairing`]), scores each
//! document and the whole corpus, prints a table or JSON, and fails when a score is below a
//! threshold given on the command line.
//!
//! Exit codes: 0 scored (and every threshold met), 1 a threshold not met, 2 nothing scored
//! (usage error, unreadable or misaligned files). Not for: parsing the rest of the command line
//! (the main `Command` in `cli` embeds [`EvalArgs`] as the `eval` subcommand).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::pairing::{self, Kind, Split};
use super::{score_corpus, score_document, Metrics, Scores};

/// Arguments of `transbrief eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Outputs to score: one file, or a folder of translations (`X.en.txt`, `X.en.md`, and the
    /// other formats' `X.en.html`, `X.en.docx`, `X.en.odt`, `X.en.srt`, `X.en.vtt`, read as their
    /// text) or briefs (`X.brief.en.md`).
    #[arg(long, value_name = "PATH")]
    pub hyp: PathBuf,

    /// References: one file, or a folder of `X.ref.en.txt` (translations) or `X.highlights.txt` /
    /// `X.ref.brief.txt` (briefs). May be the same folder as --hyp.
    #[arg(long = "ref", value_name = "PATH")]
    pub reference: PathBuf,

    /// Metrics to compute, comma-separated: bleu, chrf, ter, rouge (ROUGE-1/2/L/Lsum).
    #[arg(long, value_name = "LIST", default_value = "bleu,chrf,ter,rouge",
          value_parser = parse_metrics)]
    pub metrics: Metrics,

    /// Print the scores as JSON (fields `corpus`, `documents`, `bleu`, `chrf`, `ter`, `rouge1`,
    /// `rouge2`, `rougeL`, `rougeLsum`, `signature`...) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Align translations line by line (as sacrebleu reads files) instead of paragraph by
    /// paragraph (blocks separated by blank lines).
    #[arg(long)]
    pub by_line: bool,

    /// Which outputs of a folder to score; needed only when it holds both kinds.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<Kind>,

    /// Exit with status 1 if the corpus BLEU is below this value (0-100).
    #[arg(long, value_name = "X")]
    pub min_bleu: Option<f64>,

    /// Exit with status 1 if the corpus chrF is below this value (0-100).
    #[arg(long, value_name = "Y")]
    pub min_chrf: Option<f64>,
}

fn parse_metrics(s: &str) -> Result<Metrics, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    match s.to_ascii_lowercase().as_str() {
        "translation" | "translations" => Ok(Kind::Translation),
        "brief" | "briefs" => Ok(Kind::Brief),
        _ => Err(format!("unknown kind '{s}' (known: translation, brief)")),
    }
}

/// One document's scores in the report.
#[derive(Debug, Serialize)]
pub struct DocumentReport {
    pub name: String,
    pub hyp: PathBuf,
    #[serde(rename = "ref")]
    pub reference: PathBuf,
    #[serde(flatten)]
    pub scores: Scores,
}

/// Everything `eval` reports; this is the JSON printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub kind: Kind,
    /// All segments of all documents together (BLEU without effective order, as
    /// `sacrebleu.corpus_bleu`).
    pub corpus: Scores,
    /// Each document on its own (BLEU with effective order, as `sacrebleu.sentence_bleu`).
    pub documents: Vec<DocumentReport>,
    /// References in the reference folder with no output beside them (not scored).
    pub refs_without_output: Vec<PathBuf>,
}

/// Scores the outputs named by `args` against their references.
pub fn evaluate(args: &EvalArgs) -> crate::Result<Report> {
    let split = if args.by_line {
        Split::Lines
    } else {
        Split::Paragraphs
    };
    let pairing = pairing::pair(&args.hyp, &args.reference, split, args.kind)?;
    let mut documents = Vec::with_capacity(pairing.documents.len());
    let (mut all_hyps, mut all_refs) = (Vec::new(), Vec::new());
    let mut kind = args.kind.unwrap_or(Kind::Translation);
    for doc in pairing.documents {
        kind = doc.kind;
        let scores = score_document(&doc.hyps, &doc.refs, &args.metrics)?;
        all_hyps.extend(doc.hyps);
        all_refs.extend(doc.refs);
        documents.push(DocumentReport {
            name: doc.name,
            hyp: doc.hyp_path,
            reference: doc.ref_path,
            scores,
        });
    }
    Ok(Report {
        kind,
        corpus: score_corpus(&all_hyps, &all_refs, &args.metrics)?,
        documents,
        refs_without_output: pairing.refs_without_output,
    })
}

/// Runs `transbrief eval`, printing to stdout and stderr. Returns the exit code; an `Err` only
/// when the report could not be written.
pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    run_with(args, &mut io::stdout().lock(), &mut io::stderr().lock())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let kind = e
        .downcast_ref::<io::Error>()
        .map(io::Error::kind)
        .or_else(|| e.downcast_ref::<serde_json::Error>()?.io_error_kind());
    kind == Some(io::ErrorKind::BrokenPipe)
}

/// [`run`], writing the report to `out` and messages to `err`.
pub fn run_with(
    args: &EvalArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let thresholds = [
        ("--min-bleu", args.min_bleu, args.metrics.bleu, "bleu"),
        ("--min-chrf", args.min_chrf, args.metrics.chrf, "chrf"),
    ];
    for (flag, value, computed, metric) in thresholds {
        let Some(value) = value else { continue };
        if !computed {
            writeln!(err, "error: {flag} needs {metric} in --metrics")?;
            return Ok(ExitCode::from(2));
        }
        if !value.is_finite() {
            writeln!(err, "error: {flag} must be a number, not {value}")?;
            return Ok(ExitCode::from(2));
        }
    }
    let report = match evaluate(args) {
        Ok(report) => report,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let written = if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(writeln!(out)?))
    } else {
        write_table(out, &report).map_err(anyhow::Error::from)
    };
    match written {
        // The reader went away (`transbrief eval ... | head`): the thresholds still decide.
        Err(e) if !is_broken_pipe(&e) => return Err(e),
        _ => {}
    }
    let mut failed = false;
    let checks = [
        (
            "BLEU",
            "--min-bleu",
            args.min_bleu,
            report.corpus.bleu.as_ref().map(|s| s.score),
        ),
        (
            "chrF",
            "--min-chrf",
            args.min_chrf,
            report.corpus.chrf.as_ref().map(|s| s.score),
        ),
    ];
    for (name, flag, min, score) in checks {
        if let (Some(min), Some(score)) = (min, score) {
            if score < min {
                writeln!(err, "corpus {name} {score:.2} is below {flag} {min}")?;
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The table's cells for one row: a name, the segment count, then one number per metric.
fn row(name: &str, s: &Scores) -> Vec<String> {
    let mut cells = vec![name.to_string(), s.segments.to_string()];
    let fmt = |x: f64| format!("{x:.2}");
    cells.extend(s.bleu.as_ref().map(|b| fmt(b.score)));
    cells.extend(s.chrf.as_ref().map(|c| fmt(c.score)));
    cells.extend(s.ter.as_ref().map(|t| fmt(t.score)));
    if let Some(r) = &s.rouge {
        for prf in [r.rouge1, r.rouge2, r.rouge_l, r.rouge_lsum] {
            cells.push(fmt(100.0 * prf.fmeasure));
        }
    }
    cells
}

fn header(s: &Scores) -> Vec<String> {
    let mut cells = vec!["document".to_string(), "segs".to_string()];
    let mut add = |on: bool, names: &[&str]| {
        if on {
            cells.extend(names.iter().map(|n| n.to_string()));
        }
    };
    add(s.bleu.is_some(), &["BLEU"]);
    add(s.chrf.is_some(), &["chrF2"]);
    add(s.ter.is_some(), &["TER"]);
    add(s.rouge.is_some(), &["R-1", "R-2", "R-L", "R-Lsum"]);
    cells
}

fn write_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mut rows = vec![header(&report.corpus), row("CORPUS", &report.corpus)];
    rows.extend(report.documents.iter().map(|d| row(&d.name, &d.scores)));
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let mut line = format!("{:<w$}", r[0], w = widths[0]);
        for (cell, w) in r.iter().zip(&widths).skip(1) {
            line.push_str(&format!("  {cell:>w$}"));
        }
        writeln!(out, "{}", line.trim_end())?;
        if i == 0 {
            writeln!(out, "{}", "-".repeat(line.trim_end().chars().count()))?;
        }
    }
    writeln!(out)?;
    let c = &report.corpus;
    if let Some(b) = &c.bleu {
        writeln!(out, "BLEU   corpus {}", b.signature)?;
        writeln!(out, "BLEU   per document {}", super::bleu::signature(true))?;
    }
    if let Some(s) = &c.chrf {
        writeln!(out, "chrF2  {}", s.signature)?;
    }
    if let Some(t) = &c.ter {
        writeln!(out, "TER    {}", t.signature)?;
    }
    if c.rouge.is_some() {
        writeln!(
            out,
            "ROUGE  F1 x 100, rouge-score use_stemmer=True, mean over segments; R-Lsum splits sentences at line breaks"
        )?;
    }
    if !report.refs_without_output.is_empty() {
        writeln!(
            out,
            "{} reference(s) had no output and were not scored, e.g. {}",
            report.refs_without_output.len(),
            display_name(&report.refs_without_output[0])
        )?;
    }
    Ok(())
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}
