//! Running a plan: each document is read, translated, briefed and written, in parallel over a
//! rayon pool, with a progress bar and a report.
//!
//! One document, start to finish ([`process`]):
//! 1. read and decode it (`text::read`), hash its text;
//! 2. fingerprint each output (input text, model, settings, tool version) and compare with the
//!    output's record: up to date, stale, absent, or foreign (never overwritten);
//! 3. translate its paragraphs (Markdown: the prose of each block) with the [`Translator`];
//! 4. brief the English with the [`Summarizer`] (`brief`);
//! 5. write each output atomically with its record (`write`).
//!
//! A failure costs only its own document: it is reported and the run goes on. Models are loaded
//! only when some document needs them, once, and shared by all workers.
//!
//! Not for: walking and naming (`plan`), the JSON shape (`report`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::catalog::Task;
use crate::models::load::Loader;
use crate::models::{Output, Summarizer, Translator};
use crate::pipeline::brief;
use crate::pipeline::plan::{self, Job, PlanOptions};
use crate::pipeline::report::{DocReport, DocStatus, OutputReport, Report};
use crate::pipeline::write::{self, OutputState};
use crate::text::{self, Format};
use crate::{Error, Result};

/// Everything `transbrief run` was asked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub plan: PlanOptions,
    /// Produce only this kind of output.
    pub only: Option<Task>,
    /// Redo outputs that are up to date.
    pub force: bool,
    /// Say what would be done, touch nothing, load no model.
    pub dry_run: bool,
    /// Worker threads (documents in flight, and the threads their tensor operations share).
    pub jobs: usize,
    /// Largest input file accepted, in bytes.
    pub max_bytes: u64,
    pub translate_model: Option<String>,
    pub brief_model: Option<String>,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Print one line per failed document on stderr.
    pub print_errors: bool,
}

/// The models of a run, resolved from the catalog but loaded on first use.
struct Models<'a> {
    loader: &'a Loader,
    translate: Option<(crate::catalog::Entry, String)>,
    brief: Option<(crate::catalog::Entry, String)>,
}

impl Models<'_> {
    fn translator(&self) -> Result<Arc<dyn Translator>> {
        let (entry, _) = self
            .translate
            .as_ref()
            .ok_or_else(|| Error::msg("no translation model"))?;
        self.loader.translator(entry)
    }

    fn summarizer(&self) -> Result<Arc<dyn Summarizer>> {
        let (entry, _) = self
            .brief
            .as_ref()
            .ok_or_else(|| Error::msg("no brief model"))?;
        self.loader.summarizer(entry)
    }
}

fn fingerprint(parts: serde_json::Value) -> String {
    write::sha256_hex(parts.to_string().as_bytes())
}

/// Plans and runs. Usage errors (bad globs, unknown models) are `Err`; everything that goes
/// wrong with one document is in its [`DocReport`].
pub fn run(opts: &RunOptions, loader: &Loader) -> Result<Report> {
    let started = Instant::now();
    let plan = plan::plan(&opts.plan).map_err(Error::msg)?;
    let wants = |t: Task| opts.only.is_none() || opts.only == Some(t);

    // The brief is made from the English translation, so both models are needed for briefs.
    let translate = loader.entry(Task::Translate, opts.translate_model.as_deref())?;
    let translate = Some((translate.clone(), loader.identity(translate)));
    let brief = if wants(Task::Brief) {
        let e = loader.entry(Task::Brief, opts.brief_model.as_deref())?;
        Some((e.clone(), loader.identity(e)))
    } else {
        None
    };
    let models = Models {
        loader,
        translate,
        brief,
    };

    let mut dirs: Vec<&Path> = plan
        .jobs
        .iter()
        .flat_map(|j| [j.translation.parent(), j.brief.parent()])
        .flatten()
        .collect();
    dirs.sort();
    dirs.dedup();
    if !opts.dry_run {
        for d in dirs {
            write::remove_stale_temps(d);
        }
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| Error::msg(format!("cannot start {} worker threads: {e}", opts.jobs)))?;
    // Documents whose outputs are up to date are settled first by a dry pass (it reads each
    // input and checks its outputs' records, and loads no model), so that candle's kernel
    // threads are sized by the documents that will really run at once: a re-run after one file
    // of many changed gives that file every core, not one.
    // With one worker (or one document) the sizing cannot change, and the pass is skipped.
    let sizing_matters = opts.jobs > 1 && plan.jobs.len() > 1;
    let settled: Vec<Option<DocReport>> = if opts.dry_run || !sizing_matters {
        plan.jobs.iter().map(|_| None).collect()
    } else {
        let dry = RunOptions {
            dry_run: true,
            ..opts.clone()
        };
        pool.install(|| {
            plan.jobs
                .par_iter()
                .map(|job| Some(process(job, &dry, &models)).filter(|r| r.status == DocStatus::Skipped))
                .collect()
        })
    };
    if !opts.dry_run {
        let to_run = settled.iter().filter(|s| s.is_none()).count();
        let in_flight = opts.jobs.max(1).min(to_run.max(1));
        tracing::debug!(to_run, in_flight, "documents needing a model");
        if let Some(n) = crate::device::default_kernel_threads(in_flight) {
            tracing::debug!(threads = n, documents = in_flight, "kernel threads");
        }
    }
    let bar = progress_bar(plan.jobs.len(), opts.progress);
    let generated = AtomicU64::new(0);
    // Each error names its file, in the report as on stderr.
    let mut reports: Vec<DocReport> = plan
        .problems
        .iter()
        .map(|p| {
            DocReport::failed(
                p.path.clone(),
                format!("{}: {}", p.path.display(), p.message),
            )
        })
        .collect();
    if opts.print_errors {
        for r in &reports {
            if let Some(e) = &r.error {
                print_line(&bar, format!("error: {e}"));
            }
        }
    }
    let done: Vec<DocReport> = pool.install(|| {
        plan.jobs
            .par_iter()
            .zip(settled)
            .map(|(job, settled)| {
                let report = if let Some(report) = settled {
                    report
                } else if crate::cancel::requested() {
                    let mut r = DocReport::new(job.input.clone());
                    r.status = DocStatus::Interrupted;
                    r
                } else {
                    process(job, opts, &models)
                };
                let total = generated.fetch_add(report.tokens.output_tokens, Ordering::Relaxed)
                    + report.tokens.output_tokens;
                let secs = started.elapsed().as_secs_f64();
                bar.set_message(format!("{:.1} tokens/s", total as f64 / secs.max(1e-3)));
                if opts.print_errors {
                    if let Some(e) = &report.error {
                        print_line(&bar, format!("error: {e}"));
                    }
                }
                bar.inc(1);
                report
            })
            .collect()
    });
    bar.finish_and_clear();
    reports.extend(done);
    reports.sort_by(|a, b| a.input.cmp(&b.input));
    let device = crate::device::describe(loader.device());
    Ok(Report::new(
        device,
        opts.jobs,
        reports,
        started.elapsed().as_secs_f64(),
    ))
}

/// Prints a line on stderr above the progress bar, or plainly when there is none (a hidden
/// bar drops what it is asked to print, and errors must never be lost).
fn print_line(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress_bar(len: usize, enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} documents  {msg}  ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// What to do with one output.
struct Decision {
    state: OutputState,
    fingerprint: String,
}

impl Decision {
    fn needed(&self, force: bool) -> bool {
        force || self.state != OutputState::UpToDate
    }

    fn reason(&self, force: bool) -> &'static str {
        match self.state {
            OutputState::Absent => "new",
            OutputState::Stale => "changed",
            _ if force => "forced",
            _ => "up-to-date",
        }
    }
}

fn decide(output: &Path, fingerprint: String) -> Result<Decision> {
    let state = write::output_state(output, &fingerprint).map_err(|e| {
        let problem = if e.kind() == std::io::ErrorKind::NotADirectory {
            "cannot be written: a file stands where one of its folders should be; move that \
             file away, or choose another --out-dir"
                .to_string()
        } else {
            format!("cannot read the existing output ({e}); check its permissions")
        };
        Error::input(output, problem)
    })?;
    if state == OutputState::Foreign {
        return Err(Error::input(
            output,
            "exists and was not written by transbrief (or was edited since); it is never \
             overwritten. Move it away, or use --out-dir",
        ));
    }
    Ok(Decision { state, fingerprint })
}

/// Processes one document; never panics on its content, never touches another's files.
fn process(job: &Job, opts: &RunOptions, models: &Models) -> DocReport {
    let started = Instant::now();
    let mut report = DocReport::new(job.input.clone());
    // A bug (a panic) on one document's content must cost only that document, not the run and
    // every other document in flight. `report` is only ever appended to, so after an unwind it
    // holds what was known so far and is safe to read.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process_inner(job, opts, models, &mut report)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::msg(format!(
            "internal error, this is a bug in transbrief ({what}); the other documents are \
             unaffected. Please report it with this document"
        )))
    });
    if let Err(e) = outcome {
        report.status = match e {
            Error::Interrupted => DocStatus::Interrupted,
            _ => DocStatus::Failed,
        };
        report.error = Some(match &e {
            // Input errors already name their file.
            Error::Input { .. } => e.to_string(),
            _ => format!("{}: {e}", job.input.display()),
        });
        for o in &mut report.outputs {
            if o.action == "would-write" && !opts.dry_run {
                o.action = "not-written";
            }
        }
    }
    report.timings.total_ms = ms(started);
    report
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn process_inner(
    job: &Job,
    opts: &RunOptions,
    models: &Models,
    report: &mut DocReport,
) -> Result<()> {
    let t = Instant::now();
    let doc = text::read::read_document(&job.input, opts.max_bytes)
        .map_err(|e| Error::input(&job.input, e))?;
    report.timings.read_ms = ms(t);
    report.encoding = Some(doc.encoding.to_string());
    let text_sha = write::sha256_hex(doc.text.as_bytes());
    let wants = |t: Task| opts.only.is_none() || opts.only == Some(t);

    let (translate_entry, translate_id) = models
        .translate
        .as_ref()
        .ok_or_else(|| Error::msg("no translation model"))?;
    let translation_fp = fingerprint(json!({
        "tool": env!("CARGO_PKG_VERSION"), "task": "translate", "model": translate_id,
        "format": format!("{:?}", job.format), "input": text_sha,
    }));
    let translation = if wants(Task::Translate) {
        Some(decide(&job.translation, translation_fp.clone())?)
    } else {
        None
    };
    let brief = match &models.brief {
        Some((_, brief_id)) => Some(decide(
            &job.brief,
            fingerprint(json!({
                "tool": env!("CARGO_PKG_VERSION"), "task": "brief", "model": brief_id,
                "english": translation_fp, "input": text_sha,
            })),
        )?),
        None => None,
    };

    let mut plan_output = |kind, path: &Path, d: &Decision| {
        let needed = d.needed(opts.force);
        report.outputs.push(OutputReport {
            kind,
            path: path.to_path_buf(),
            action: if needed { "would-write" } else { "up-to-date" },
            reason: needed.then(|| d.reason(opts.force)),
        });
        needed
    };
    let need_translation = translation
        .as_ref()
        .is_some_and(|d| plan_output("translation", &job.translation, d));
    let need_brief = brief
        .as_ref()
        .is_some_and(|d| plan_output("brief", &job.brief, d));

    if opts.dry_run {
        report.status = if need_translation || need_brief {
            DocStatus::Planned
        } else {
            DocStatus::Skipped
        };
        return Ok(());
    }
    if !need_translation && !need_brief {
        report.status = DocStatus::Skipped;
        return Ok(());
    }

    // The English text: freshly translated, or the up-to-date translation on disk.
    let english = if need_translation
        || (need_brief && !matches!(&translation, Some(d) if d.state == OutputState::UpToDate))
    {
        report.model.translate = Some(translate_entry.name.clone());
        let t = Instant::now();
        let out = translate_document(&doc.text, job.format, &*models.translator()?)?;
        report.timings.translate_ms = ms(t);
        report.tokens += out.usage;
        report.paragraphs = out.value.1;
        out.value.0
    } else {
        std::fs::read_to_string(&job.translation).map_err(|e| Error::input(&job.translation, e))?
    };
    if need_translation {
        crate::cancel::check()?;
        let d = translation.as_ref().map(|d| d.fingerprint.as_str());
        commit(
            &job.translation,
            english.as_bytes(),
            d.unwrap_or_default(),
            job,
            &translate_entry.name,
        )?;
        mark_written(report, "translation");
    }

    if need_brief {
        let (brief_entry, _) = models
            .brief
            .as_ref()
            .ok_or_else(|| Error::msg("no brief model"))?;
        report.model.brief = Some(brief_entry.name.clone());
        let t = Instant::now();
        let title = fallback_title(&job.input);
        let out = brief::make_brief(&*models.summarizer()?, &english, &title)?;
        report.timings.brief_ms = ms(t);
        report.tokens += out.usage;
        crate::cancel::check()?;
        let fp = brief.as_ref().map(|d| d.fingerprint.as_str());
        commit(
            &job.brief,
            out.value.as_bytes(),
            fp.unwrap_or_default(),
            job,
            &brief_entry.name,
        )?;
        mark_written(report, "brief");
    }
    report.status = DocStatus::Done;
    Ok(())
}

fn commit(output: &Path, content: &[u8], fp: &str, job: &Job, model: &str) -> Result<()> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::input(dir, format!("cannot create output folder: {e}{}", hint(&e)))
        })?;
    }
    write::commit_output(output, content, fp, &job.input, model)
        .map_err(|e| Error::input(output, format!("cannot write: {e}{}", hint(&e))))
}

/// What to do about a write that the file system refused, if there is something to say.
fn hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    match e.kind() {
        PermissionDenied | ReadOnlyFilesystem => {
            "; make the folder writable, or write elsewhere with --out-dir"
        }
        _ => "",
    }
}

fn mark_written(report: &mut DocReport, kind: &str) {
    for o in &mut report.outputs {
        if o.kind == kind {
            o.action = "written";
        }
    }
}

/// A title for a brief when the model gives none: the document's base name.
fn fallback_title(input: &Path) -> String {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.split('.').next().unwrap_or(&name);
    base.replace(['-', '_'], " ")
}

/// Translates a whole document, keeping its layout: plain text paragraph for paragraph (one
/// blank line between output paragraphs); Markdown block for block, markup and code untouched.
/// Returns the English text and the number of paragraphs translated.
pub fn translate_document(
    text: &str,
    format: Format,
    translator: &dyn Translator,
) -> Result<Output<(String, usize)>> {
    match format {
        Format::Plain => {
            let spans = text::segment::paragraphs(text);
            let paragraphs: Vec<&str> = spans.iter().map(|s| &text[s.clone()]).collect();
            let out = translator.translate(&paragraphs)?;
            check_count(paragraphs.len(), out.value.len())?;
            let mut english = out.value.join("\n\n");
            english.push('\n');
            Ok(Output {
                value: (english, paragraphs.len()),
                usage: out.usage,
            })
        }
        Format::Markdown => {
            let blocks = text::markdown::blocks(text);
            let bodies: Vec<&str> = blocks
                .iter()
                .filter_map(|b| match b {
                    text::markdown::Block::Text { body, .. } if !body.trim().is_empty() => {
                        Some(*body)
                    }
                    _ => None,
                })
                .collect();
            let out = translator.translate(&bodies)?;
            check_count(bodies.len(), out.value.len())?;
            let mut translated = out.value.iter();
            let mut english = String::with_capacity(text.len());
            for b in &blocks {
                match b {
                    text::markdown::Block::Text {
                        prefix,
                        body,
                        suffix,
                    } => {
                        english.push_str(prefix);
                        if body.trim().is_empty() {
                            english.push_str(body);
                        } else {
                            english.push_str(translated.next().map_or("", String::as_str));
                        }
                        english.push_str(suffix);
                    }
                    text::markdown::Block::Verbatim(v) => english.push_str(v),
                }
            }
            Ok(Output {
                value: (english, bodies.len()),
                usage: out.usage,
            })
        }
    }
}

fn check_count(sent: usize, got: usize) -> Result<()> {
    if sent != got {
        return Err(Error::msg(format!(
            "the translator returned {got} paragraphs for {sent}"
        )));
    }
    Ok(())
}
