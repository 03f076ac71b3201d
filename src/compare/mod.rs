//! `transbrief compare`: runs several translation models on the same documents and lays their
//! outputs side by side, paragraph by paragraph, with the reference when there is one, word
//! differences marked, BLEU/chrF per document and over the corpus, and each model's speed.
//!
//! Each model's outputs are cached under `DOCS/.transbrief/compare/<model>/` (an ordinary
//! `--out-dir` run, so up-to-date outputs are not redone); [`render`] writes the report as one
//! self-contained HTML file or as Markdown. [`golden`] is the `run --check-golden` gate.
//!
//! Not for: the metrics themselves (`eval`), running documents (`pipeline`).

pub mod golden;
pub mod render;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backends::load::Selection;
use crate::catalog::{Entry, Task};
use crate::text::format::Format;
use crate::eval::{self, Metrics, Scores};
use crate::backends::load::Loader;
use crate::pipeline::report::DocStatus;
use crate::pipeline::{self, plan, PlanOptions, RunOptions};
use crate::{Error, Result};

/// What `transbrief compare` was asked.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The folder of French documents.
    pub docs: PathBuf,
    /// The translation models, in report order (resolved by `Loader::select`).
    pub models: Vec<Entry>,
    /// A folder of references (`X.ref.en.txt`, same relative folders as the documents); by
    /// default references are looked for beside each document.
    pub reference: Option<PathBuf>,
    /// Documents in flight (0: the pipeline chooses, see `pipeline::run::RunOptions::jobs`).
    pub jobs: usize,
    pub max_bytes: u64,
    pub progress: bool,
}

/// One model's speed, from the run that produced its outputs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Speed {
    pub output_tokens: u64,
    pub output_tokens_per_s: f64,
    pub elapsed_s: f64,
    /// The outputs were all up to date in this comparison: these numbers are from the run that
    /// wrote them.
    pub cached: bool,
}

/// One model over the corpus.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub name: String,
    pub speed: Speed,
    /// BLEU and chrF over every paragraph of every document that has a reference.
    pub scores: Option<Scores>,
    /// Documents this model failed on (their errors).
    pub failures: Vec<String>,
}

/// One paragraph across models.
#[derive(Debug, Clone)]
pub struct Row {
    pub source: String,
    /// One per model, in model order; empty when the model gave nothing for this paragraph.
    pub outputs: Vec<String>,
    pub reference: Option<String>,
}

/// One document across models.
#[derive(Debug, Clone)]
pub struct DocComparison {
    /// The document's path below the documents folder.
    pub name: String,
    pub rows: Vec<Row>,
    /// Per model, when the document has a reference.
    pub scores: Vec<Option<Scores>>,
    /// Set when paragraphs could not be aligned one to one (the scores then treat the
    /// document as one segment).
    pub note: Option<String>,
}

/// The whole comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub models: Vec<ModelSummary>,
    pub documents: Vec<DocComparison>,
}

impl Comparison {
    /// Whether every model produced every document.
    pub fn all_ok(&self) -> bool {
        self.models.iter().all(|m| m.failures.is_empty())
    }
}

const METRICS: Metrics = Metrics {
    bleu: true,
    chrf: true,
    ter: false,
    rouge: false,
};

/// The cache folder of one model's outputs. A catalog name is the folder's name; a model
/// named by a file path or an `hf:` reference (slashes, colons) gets a folder name of the safe
/// characters of its name and a hash of the whole, so that it stays one folder under
/// `compare/` and two references do not share one.
pub fn cache_dir(docs: &Path, model: &str) -> PathBuf {
    let safe: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let folder = if safe == model && model != "." && model != ".." {
        safe
    } else {
        let hash = pipeline::write::sha256_hex(model.as_bytes());
        format!("{}-{}", safe.trim_start_matches(['_', '.']), &hash[..12])
    };
    docs.join(".transbrief").join("compare").join(folder)
}

/// Runs each model (reusing up-to-date outputs) and gathers the comparison.
pub fn compare(opts: &CompareOptions, loader: &Loader) -> Result<Comparison> {
    if !opts.docs.is_dir() {
        return Err(Error::input(&opts.docs, "is not a folder of documents"));
    }
    if opts.models.is_empty() {
        return Err(Error::msg("no model to compare"));
    }
    let plan = plan::plan(&PlanOptions {
        paths: vec![opts.docs.clone()],
        ..Default::default()
    })
    .map_err(Error::msg)?;

    let mut models = Vec::new();
    for entry in &opts.models {
        models.push(run_model(opts, loader, entry)?);
    }

    let mut documents = Vec::new();
    for job in &plan.jobs {
        let rel = job.input.strip_prefix(&opts.docs).unwrap_or(&job.input);
        let source = job
            .format
            .read(&job.input, opts.max_bytes)
            .map_err(|e| Error::input(&job.input, e))?;
        // As a person reads it: plain text and Markdown as they are, markup and packages as
        // their text (`Codec::brief_text`).
        let source = (job.format.codec.brief_text(source.content().to_vec()))
            .map_err(|e| Error::input(&job.input, e))?;
        let source = eval::pairing::paragraphs(&source);
        let out_rel = job
            .translation
            .strip_prefix(&opts.docs)
            .unwrap_or(&job.translation);
        let outputs: Vec<Vec<String>> = opts
            .models
            .iter()
            .map(|m| {
                let path = cache_dir(&opts.docs, &m.name).join(out_rel);
                reader_text(&path)
                    .map(|t| eval::pairing::paragraphs(&t))
                    .unwrap_or_default()
            })
            .collect();
        let reference = find_reference(opts, &job.input, rel)
            .map(|p| reader_text(&p).map(|t| eval::pairing::paragraphs(&t)))
            .transpose()?;
        documents.push(align(rel, source, outputs, reference)?);
    }

    for (i, m) in models.iter_mut().enumerate() {
        let (mut hyps, mut refs) = (Vec::new(), Vec::new());
        for d in &documents {
            if d.scores[i].is_some() {
                let (h, r) = segments(d, i);
                hyps.extend(h);
                refs.extend(r);
            }
        }
        if !refs.is_empty() {
            m.scores = Some(eval::score_corpus(&hyps, &refs, &METRICS)?);
        }
    }
    Ok(Comparison { models, documents })
}

/// The aligned segments of a document for model `i`: its paragraphs, or the whole document as
/// one segment when they do not align.
fn segments(d: &DocComparison, i: usize) -> (Vec<String>, Vec<String>) {
    let pairs = d.rows.iter().filter_map(|r| {
        r.reference
            .as_ref()
            .map(|reference| (r.outputs[i].clone(), reference.clone()))
    });
    let (h, r): (Vec<String>, Vec<String>) = pairs.unzip();
    if d.note.is_some() {
        (vec![h.join(" ")], vec![r.join(" ")])
    } else {
        (h, r)
    }
}

fn align(
    rel: &Path,
    source: Vec<String>,
    outputs: Vec<Vec<String>>,
    reference: Option<Vec<String>>,
) -> Result<DocComparison> {
    let n = std::iter::once(source.len())
        .chain(outputs.iter().map(Vec::len))
        .chain(reference.iter().map(Vec::len))
        .max()
        .unwrap_or(0);
    let aligned = reference
        .as_ref()
        .is_none_or(|r| outputs.iter().all(|o| o.len() == r.len() || o.is_empty()));
    let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
    let rows = (0..n)
        .map(|i| Row {
            source: at(&source, i),
            outputs: outputs.iter().map(|o| at(o, i)).collect(),
            reference: reference.as_ref().map(|r| at(r, i)),
        })
        .collect();
    let mut d = DocComparison {
        name: rel.display().to_string(),
        rows,
        scores: Vec::new(),
        note: (!aligned).then(|| {
            "paragraph counts differ from the reference; scored as one segment".to_string()
        }),
    };
    for (i, o) in outputs.iter().enumerate() {
        let score = if reference.is_some() && !o.is_empty() {
            let (h, r) = segments(&d, i);
            Some(eval::score_document(&h, &r, &METRICS)?)
        } else {
            None
        };
        d.scores.push(score);
    }
    Ok(d)
}

/// `X.ref.en.txt` (or `.md`) for document `X.fr.txt`: under `--ref` at the same relative folder,
/// else beside the document.
/// A file's text as a person reads it (`Codec::brief_text`): plain text and Markdown as they
/// are, HTML, subtitles and packages as their text. Text is read strictly as UTF-8, as `eval`
/// reads it.
fn reader_text(path: &Path) -> Result<String> {
    let format = Format::of_document(path);
    let bytes = if format.codec.is_text() {
        eval::pairing::read_text(path)?.into_bytes()
    } else {
        std::fs::read(path).map_err(|e| Error::input(path, e))?
    };
    (format.codec.brief_text(bytes)).map_err(|e| Error::input(path, e))
}

fn find_reference(opts: &CompareOptions, input: &Path, rel: &Path) -> Option<PathBuf> {
    let name = input.file_name()?.to_string_lossy().into_owned();
    let (stem, _) = name.rsplit_once('.')?;
    let base = stem.strip_suffix(".fr").unwrap_or(stem);
    let dir = match &opts.reference {
        Some(r) => r.join(rel.parent().unwrap_or(Path::new(""))),
        None => input.parent()?.to_path_buf(),
    };
    Format::reference_names(base)
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn run_model(opts: &CompareOptions, loader: &Loader, entry: &Entry) -> Result<ModelSummary> {
    let name = entry.name.as_str();
    let out_dir = cache_dir(&opts.docs, name);
    let run = RunOptions {
        plan: PlanOptions {
            paths: vec![opts.docs.clone()],
            out_dir: Some(out_dir.clone()),
            ..Default::default()
        },
        only: Some(Task::Translate),
        force: false,
        dry_run: false,
        jobs: opts.jobs,
        max_bytes: opts.max_bytes,
        models: Selection {
            translate: entry.clone(),
            brief: None,
        },
        progress: opts.progress,
        print_errors: true,
        strict: false,
        shard: None,
    };
    let report = pipeline::run(&run, loader)?;
    let failures = report
        .documents
        .iter()
        .filter(|d| matches!(d.status, DocStatus::Failed | DocStatus::Interrupted))
        .map(|d| {
            d.error
                .clone()
                .unwrap_or_else(|| format!("{}: interrupted", d.input.display()))
        })
        .collect();
    // The speed of the run that wrote the outputs is kept beside them, for cached comparisons.
    let speed_file = out_dir.join(".transbrief-speed.json");
    let speed = if report.totals.done > 0 {
        let speed = Speed {
            output_tokens: report.totals.tokens.output_tokens,
            output_tokens_per_s: report.totals.output_tokens_per_s,
            elapsed_s: report.elapsed_s,
            cached: false,
        };
        if let Ok(json) = serde_json::to_vec_pretty(&speed) {
            // A lost speed record only costs the next cached report its speed column.
            let _ = pipeline::write::atomic_write(&speed_file, &json);
        }
        speed
    } else {
        std::fs::read(&speed_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Speed>(&b).ok())
            .map(|s| Speed { cached: true, ..s })
            .unwrap_or(Speed {
                cached: true,
                ..Speed::default()
            })
    };
    Ok(ModelSummary {
        name: name.to_string(),
        speed,
        scores: None,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_folder_is_one_folder_under_compare_whatever_the_model_is_called() {
        let docs = Path::new("/docs");
        let base = docs.join(".transbrief").join("compare");
        assert_eq!(
            cache_dir(docs, "qwen2.5-coder-0.5b"),
            base.join("qwen2.5-coder-0.5b")
        );
        let names = [
            "/models/q.gguf",
            "/other/q.gguf",
            "hf:Qwen/Repo/q.gguf",
            "hf:Qwen/Repo/q.gguf@abc",
            "..",
        ];
        let dirs: Vec<PathBuf> = names.iter().map(|n| cache_dir(docs, n)).collect();
        for (name, dir) in names.iter().zip(&dirs) {
            assert_eq!(dir.parent(), Some(base.as_path()), "{name}: {}", dir.display());
            let folder = dir.file_name().unwrap().to_str().unwrap();
            assert!(!folder.starts_with('.'), "{name}: {folder}");
        }
        let mut unique = dirs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), dirs.len(), "{dirs:?}");
    }
}
