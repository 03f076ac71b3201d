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

use crate::catalog::{Entry, Task};
use crate::backends::load::{Loader, Selection};
use crate::backends::pool;
use crate::backends::{Output, Summarizer, Translator};
use crate::pipeline::brief;
use crate::pipeline::lock::{self, Lock};
use crate::pipeline::plan::{self, Job, PlanOptions};
use crate::pipeline::report::{
    CheckReport, DocReport, DocStatus, OutputReport, Report, ShardReport,
};
use crate::pipeline::shard::{self, Shard};
use crate::pipeline::write::{self, OutputState};
use crate::text::format::Source;
use crate::text::{self, format::Format};
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
    /// Worker threads: documents in flight. 0 chooses: one per core, or, when every model of
    /// the run batches (a chat model) or pools (Marian) on one engine thread, what feeds it
    /// (see [`documents_in_flight`]).
    pub jobs: usize,
    /// Largest input file accepted, in bytes.
    pub max_bytes: u64,
    /// The models, resolved by [`Loader::select`]. A brief needs a translation model too (it
    /// is made from the English); with no brief model, no briefs are made.
    pub models: Selection,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Print one line per failed document on stderr.
    pub print_errors: bool,
    /// A document whose translation has paragraphs flagged by the checks counts as failed.
    pub strict: bool,
    /// Process only this shard of the plan's documents (`shard`); `None`: all of them.
    pub shard: Option<Shard>,
}

/// The models of a run, resolved from the catalog but loaded on first use.
struct Models<'a> {
    loader: &'a Loader,
    translate: Option<(Entry, String)>,
    brief: Option<(Entry, String)>,
}

impl<'a> Models<'a> {
    fn new(opts: &RunOptions, loader: &'a Loader) -> Self {
        let wants_brief = opts.only.is_none() || opts.only == Some(Task::Brief);
        let identified = |e: &Entry| (e.clone(), loader.identity(e));
        Models {
            loader,
            translate: Some(identified(&opts.models.translate)),
            brief: opts
                .models
                .brief
                .as_ref()
                .filter(|_| wants_brief)
                .map(identified),
        }
    }

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

/// Texts kept from the settling pass for the documents that will run, so that they are not
/// read twice; past this many bytes in all, the rest are read again when they run.
const KEPT_TEXT_BYTES: usize = 256 << 20;

/// A document after the settling pass.
enum Settled {
    /// Nothing to do (its outputs are up to date): its final report.
    Skipped(Box<DocReport>),
    /// To run, with its text when it was kept.
    Pending(Option<Source>),
}

/// Plans and runs. Usage errors (bad globs) are `Err`; everything that goes wrong with one
/// document is in its [`DocReport`].
pub fn run(opts: &RunOptions, loader: &Loader) -> Result<Report> {
    let started = Instant::now();
    let plan = plan::plan(&opts.plan).map_err(Error::msg)?;
    let (plan, sharded) = match opts.shard {
        Some(s) => {
            let (listing, mine) = shard::split(plan, &opts.plan.paths, s);
            (mine, Some(ShardReport::new(s, &listing)))
        }
        None => (plan, None),
    };
    let models = Models::new(opts, loader);
    if !opts.dry_run {
        remove_stale_temps(&plan);
    }
    let (jobs, one_engine) = documents_in_flight(opts, loader);
    // A pool waits for the documents in flight, and there are no more than there are documents.
    loader.expect_concurrent_calls(jobs.min(plan.jobs.len().max(1)));
    let opts = &RunOptions {
        jobs,
        ..opts.clone()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::msg(format!("cannot start {jobs} worker threads: {e}")))?;
    let settled = settle(&plan, opts, &models, &pool);
    // Batched or pooled, one pass runs at a time and takes every core; otherwise the
    // documents' passes run side by side and share them.
    if !opts.dry_run && !one_engine {
        size_kernel_threads(&settled, jobs);
    }
    let bar = progress_bar(plan.jobs.len(), opts.progress);
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
    let done = pool.install(|| process_all(&plan.jobs, settled, opts, &models, &bar, started));
    bar.finish_and_clear();
    reports.extend(done);
    reports.sort_by(|a, b| a.input.cmp(&b.input));
    let device = crate::device::describe(loader.device());
    let mut report = Report::new(device, opts.jobs, reports, started.elapsed().as_secs_f64());
    report.shard = sharded;
    report.batching = loader.batching();
    report.pooling = loader.pooling();
    Ok(report)
}

/// The documents in flight (`--jobs`, or chosen), and whether every model of the run computes
/// on one engine thread that uses every core: a chat model that batches (`--batch`; its
/// documents in flight are its slots and one more, since a document between two conversations
/// frees its slot for another), or a Marian translator that pools (`--pool-tokens`, with
/// nothing else to run: [`pool::DOCUMENTS_IN_FLIGHT`] documents, whose workers mostly wait
/// for the engine). Otherwise the models' passes run on the workers themselves, and the
/// workers stay one per core.
fn documents_in_flight(opts: &RunOptions, loader: &Loader) -> (usize, bool) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let only_translation = |then: &dyn Fn(&Entry) -> bool| {
        opts.models.brief.as_ref().is_none_or(|b| opts.only == Some(Task::Translate) || then(b))
    };
    let chat = |e: &Entry| e.family == crate::catalog::Family::GgufChat;
    let batching = loader.batch() != 1 && chat(&opts.models.translate) && only_translation(&chat);
    let pooling = loader.pool_tokens() > 0
        && opts.models.translate.family == crate::catalog::Family::Marian
        && only_translation(&|_| false);
    let jobs = match opts.jobs {
        0 if batching => match loader.batch() {
            0 => crate::backends::batch::AUTO_MAX_SLOTS + 1,
            n => n + 1,
        },
        0 if pooling => pool::DOCUMENTS_IN_FLIGHT,
        0 => cores,
        n => n,
    };
    (jobs.max(1), batching || pooling)
}

/// Removes the temp files and stale locks an interrupted run left in the folders this run
/// writes to.
fn remove_stale_temps(plan: &plan::Plan) {
    let mut dirs: Vec<&Path> = plan
        .jobs
        .iter()
        .flat_map(|j| [j.translation.parent(), j.brief.parent()])
        .flatten()
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        write::remove_stale_temps(d);
        lock::remove_stale(d);
    }
}

/// Settles the documents whose outputs are up to date before any model runs (a dry pass: it
/// reads each input and checks its outputs' records, and loads no model), so that candle's kernel
/// threads are sized by the documents that will really run at once: a re-run after one file of
/// many changed gives that file every core, not one. With one worker (or one document) the
/// sizing cannot change, and the pass is skipped.
fn settle(
    plan: &plan::Plan,
    opts: &RunOptions,
    models: &Models,
    pool: &rayon::ThreadPool,
) -> Vec<Settled> {
    let sizing_matters = opts.jobs > 1 && plan.jobs.len() > 1;
    if opts.dry_run || !sizing_matters {
        return plan.jobs.iter().map(|_| Settled::Pending(None)).collect();
    }
    let dry = RunOptions {
        dry_run: true,
        ..opts.clone()
    };
    let kept = AtomicU64::new(0);
    pool.install(|| {
        plan.jobs
            .par_iter()
            .map(|job| {
                let mut text = None;
                let report = process(job, &dry, models, None, Some(&mut text));
                if report.status == DocStatus::Skipped {
                    return Settled::Skipped(Box::new(report));
                }
                let len = text.as_ref().map_or(0, |d: &Source| d.content().len()) as u64;
                let total = kept.fetch_add(len, Ordering::Relaxed) + len;
                Settled::Pending(text.filter(|_| total <= KEPT_TEXT_BYTES as u64))
            })
            .collect()
    })
}

/// Sizes candle's kernel threads by the documents that will run at once.
fn size_kernel_threads(settled: &[Settled], jobs: usize) {
    let to_run = settled
        .iter()
        .filter(|s| matches!(s, Settled::Pending(_)))
        .count();
    let in_flight = jobs.max(1).min(to_run.max(1));
    tracing::debug!(to_run, in_flight, "documents needing a model");
    if let Some(n) = crate::device::default_kernel_threads(in_flight) {
        tracing::debug!(threads = n, documents = in_flight, "kernel threads");
    }
}

/// Runs every document on the current rayon pool, in parallel, with progress.
fn process_all(
    jobs: &[Job],
    settled: Vec<Settled>,
    opts: &RunOptions,
    models: &Models,
    bar: &indicatif::ProgressBar,
    started: Instant,
) -> Vec<DocReport> {
    let generated = AtomicU64::new(0);
    jobs.par_iter()
        .zip(settled)
        .map(|(job, settled)| {
            let report = match settled {
                Settled::Skipped(report) => *report,
                Settled::Pending(_) if crate::cancel::requested() => {
                    let mut r = DocReport::new(job.input.clone());
                    r.status = DocStatus::Interrupted;
                    r
                }
                Settled::Pending(text) => process(job, opts, models, text, None),
            };
            let total = generated.fetch_add(report.tokens.output_tokens, Ordering::Relaxed)
                + report.tokens.output_tokens;
            let secs = started.elapsed().as_secs_f64();
            bar.set_message(format!("{:.1} tokens/s", total as f64 / secs.max(1e-3)));
            if opts.print_errors {
                if let Some(e) = &report.error {
                    print_line(bar, format!("error: {e}"));
                }
            }
            bar.inc(1);
            report
        })
        .collect()
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
/// `preread` is its text when the settling pass kept it; `keep` receives the text read here.
fn process(
    job: &Job,
    opts: &RunOptions,
    models: &Models,
    preread: Option<Source>,
    keep: Option<&mut Option<Source>>,
) -> DocReport {
    let started = Instant::now();
    let mut report = DocReport::new(job.input.clone());
    // A bug (a panic) on one document's content must cost only that document, not the run and
    // every other document in flight. `report` is only ever appended to, so after an unwind it
    // holds what was known so far and is safe to read.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process_inner(job, opts, models, preread, keep, &mut report)
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
    report.timings.check_ms = report.tokens.check_us as f64 / 1000.0;
    report
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The decisions for one document's outputs: `None` for an output not asked for.
struct Decisions {
    translation: Option<Decision>,
    brief: Option<Decision>,
}

fn process_inner(
    job: &Job,
    opts: &RunOptions,
    models: &Models,
    preread: Option<Source>,
    keep: Option<&mut Option<Source>>,
    report: &mut DocReport,
) -> Result<()> {
    let t = Instant::now();
    let doc = match preread {
        Some(doc) => doc,
        None => job
            .format
            .read(&job.input, opts.max_bytes)
            .map_err(|e| Error::input(&job.input, e))?,
    };
    report.timings.read_ms = ms(t);
    report.encoding = Some(doc.encoding().to_string());
    let mut decisions = decide_outputs(job, opts, models, doc.content())?;
    // Held until this document's outputs are written or given up.
    let mut _locks = Vec::new();
    let wanted = |d: &Option<Decision>| d.as_ref().is_some_and(|d| d.needed(opts.force));
    if !opts.dry_run && (wanted(&decisions.translation) || wanted(&decisions.brief)) {
        _locks = lock_outputs(job, opts, &decisions)?;
        // Another task may have finished them while we were deciding.
        decisions = decide_outputs(job, opts, models, doc.content())?;
    }
    let need_translation = plan_output(report, opts, "translation", job, &decisions.translation);
    let need_brief = plan_output(report, opts, "brief", job, &decisions.brief);
    if !need_translation && !need_brief {
        report.status = DocStatus::Skipped;
        if decisions.translation.is_some() {
            report.flagged_paragraphs = write::flagged_paragraphs(&job.translation);
        }
        if decisions.brief.is_some() {
            report.flagged_brief = write::flagged_paragraphs(&job.brief) > 0;
        }
        return strict_verdict(opts, report);
    }
    if opts.dry_run {
        report.status = DocStatus::Planned;
        if let Some(keep) = keep {
            *keep = Some(doc);
        }
        return Ok(());
    }

    let (translate_entry, _) = models
        .translate
        .as_ref()
        .ok_or_else(|| Error::msg("no translation model"))?;
    // The translation: freshly made, or the up-to-date one on disk.
    let fresh = need_translation
        || (need_brief
            && !matches!(&decisions.translation, Some(d) if d.state == OutputState::UpToDate));
    let translation = if fresh {
        report.model.translate = Some(translate_entry.name.clone());
        let t = Instant::now();
        let out = translate_document(&doc, job.format, &*models.translator()?)
            .map_err(|e| in_document(e, &job.input))?;
        report.timings.translate_ms = ms(t);
        report.tokens += out.usage;
        report.paragraphs = out.value.pieces;
        report.checks = out.value.checks;
        report.flagged_paragraphs = out.value.flagged_paragraphs;
        report.formatting_dropped = out.value.formatting_dropped;
        out.value.output
    } else {
        report.flagged_paragraphs = write::flagged_paragraphs(&job.translation);
        std::fs::read(&job.translation).map_err(|e| Error::input(&job.translation, e))?
    };
    if need_translation {
        crate::cancel::check()?;
        let fp = decisions.translation.as_ref().map(|d| d.fingerprint.as_str());
        commit(
            &job.translation,
            &translation,
            fp.unwrap_or_default(),
            job,
            &translate_entry.name,
            report.flagged_paragraphs,
        )?;
        mark_written(report, "translation");
    }
    if need_brief {
        // The English a brief reads, only when a brief is made (a package is parsed again).
        let english = (job.format.codec.brief_text(translation))
            .map_err(|e| Error::input(&job.translation, e))?;
        let fp = decisions.brief.as_ref().map(|d| d.fingerprint.as_str());
        write_brief(job, models, &english, fp.unwrap_or_default(), report)?;
    }
    report.status = DocStatus::Done;
    strict_verdict(opts, report)
}

/// Takes the lock of each output of `job` that needs writing (`lock`).
fn lock_outputs(job: &Job, opts: &RunOptions, decisions: &Decisions) -> Result<Vec<Lock>> {
    let me = lock::Holder::me(opts.shard.map(|s| s.to_string()));
    let mut locks = Vec::new();
    for (output, decision) in [
        (&job.translation, &decisions.translation),
        (&job.brief, &decisions.brief),
    ] {
        if decision.as_ref().is_some_and(|d| d.needed(opts.force)) {
            let lock = lock::acquire(output, &me).map_err(|e| {
                let advice = match &e {
                    lock::Refused::Io(_, io) => hint(io),
                    lock::Refused::Held { .. } => "",
                };
                Error::input(output, format!("{e}{advice}"))
            })?;
            locks.push(lock);
        }
    }
    Ok(locks)
}

/// Under `--strict`, a document whose translation has flagged paragraphs fails (its outputs
/// are still written, and their records say they are flagged).
fn strict_verdict(opts: &RunOptions, report: &DocReport) -> Result<()> {
    if !opts.strict || (report.flagged_paragraphs == 0 && !report.flagged_brief) {
        return Ok(());
    }
    let what = match (report.flagged_paragraphs, report.flagged_brief) {
        (0, _) => "the brief failed the checks".to_string(),
        (n, brief) => format!(
            "{n} paragraph{} of the translation failed the checks{}",
            if n == 1 { "" } else { "s" },
            if brief { ", and so did the brief" } else { "" }
        ),
    };
    Err(Error::input(
        &report.input,
        format!(
            "--strict: {what} (see the report's checks); the outputs were written and are \
             marked as flagged"
        ),
    ))
}

/// Fingerprints each output asked for and compares it with its record.
fn decide_outputs(
    job: &Job,
    opts: &RunOptions,
    models: &Models,
    content: &[u8],
) -> Result<Decisions> {
    let text_sha = write::sha256_hex(content);
    let wants = |t: Task| opts.only.is_none() || opts.only == Some(t);
    let (_, translate_id) = models
        .translate
        .as_ref()
        .ok_or_else(|| Error::msg("no translation model"))?;
    let translation_fp = fingerprint(json!({
        "tool": env!("CARGO_PKG_VERSION"), "task": "translate", "model": translate_id,
        "format": job.format.fingerprint, "input": text_sha,
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
    Ok(Decisions { translation, brief })
}

/// Adds an output to the report as planned; whether it needs writing.
fn plan_output(
    report: &mut DocReport,
    opts: &RunOptions,
    kind: &'static str,
    job: &Job,
    decision: &Option<Decision>,
) -> bool {
    let Some(d) = decision else {
        return false;
    };
    let path = if kind == "brief" {
        &job.brief
    } else {
        &job.translation
    };
    let needed = d.needed(opts.force);
    report.outputs.push(OutputReport {
        kind,
        path: path.to_path_buf(),
        action: if needed { "would-write" } else { "up-to-date" },
        reason: needed.then(|| d.reason(opts.force)),
    });
    needed
}

/// Briefs the English text and writes the brief.
fn write_brief(
    job: &Job,
    models: &Models,
    english: &str,
    fingerprint: &str,
    report: &mut DocReport,
) -> Result<()> {
    let (brief_entry, _) = models
        .brief
        .as_ref()
        .ok_or_else(|| Error::msg("no brief model"))?;
    report.model.brief = Some(brief_entry.name.clone());
    let t = Instant::now();
    let title = brief::fallback_title(Some(&job.input));
    let out = brief::make_checked_brief(&*models.summarizer()?, english, &title)?;
    report.timings.brief_ms = ms(t);
    report.tokens += out.usage;
    let checked = out.value;
    let notes = (checked.repaired.into_iter().map(|f| (f, true)))
        .chain(checked.findings.iter().cloned().map(|f| (f, false)));
    report.checks.extend(notes.map(|(f, repaired)| CheckReport {
        output: "brief",
        check: f.kind.as_str(),
        paragraph: 1,
        line: None,
        detail: f.detail,
        repaired,
    }));
    report.flagged_brief = !checked.findings.is_empty();
    crate::cancel::check()?;
    commit(
        &job.brief,
        checked.markdown.as_bytes(),
        fingerprint,
        job,
        &brief_entry.name,
        usize::from(report.flagged_brief),
    )?;
    mark_written(report, "brief");
    Ok(())
}

fn commit(
    output: &Path,
    content: &[u8],
    fp: &str,
    job: &Job,
    model: &str,
    flagged_paragraphs: usize,
) -> Result<()> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::input(dir, format!("cannot create output folder: {e}{}", hint(&e)))
        })?;
    }
    write::commit_flagged_output(output, content, fp, &job.input, model, flagged_paragraphs)
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

/// A document's English, with what the checks said about it.
#[derive(Debug, Clone, Default)]
pub struct Translated {
    /// The translation, as its format writes it (text, or a package's bytes); a brief reads it
    /// through `Codec::brief_text`.
    pub output: Vec<u8>,
    /// Pieces translated (paragraphs, Markdown blocks, a package's paragraphs and cells).
    pub pieces: usize,
    /// Findings of the checks, by piece (1-based) and line, repaired or not.
    pub checks: Vec<CheckReport>,
    /// Pieces left with a finding that was not repaired.
    pub flagged_paragraphs: usize,
    /// Pieces whose inline formatting (bold, italic, links) came back broken from the model and
    /// was dropped, their text kept (`text::inline`).
    pub formatting_dropped: usize,
}

/// Translates a whole document, keeping its layout as its format says (plain text paragraph
/// for paragraph, one blank line between output paragraphs; Markdown block for block, markup and
/// code untouched; a package's every part but its text byte for byte), and checks every piece's
/// English (`crate::checks`; the translator repairs what it can). Errors of the format (broken
/// XML, a refused package) are [`Error::Input`] without the file's name: callers add it.
pub fn translate_document(
    doc: &Source,
    format: &Format,
    translator: &dyn Translator,
) -> Result<Output<Translated>> {
    let pieces = format.codec.pieces(doc).map_err(format_error)?;
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let out = translator.translate_checked(&refs)?;
    check_count(pieces.len(), out.value.len())?;
    let mut checks = Vec::new();
    let mut flagged_paragraphs = 0;
    let mut english = Vec::with_capacity(out.value.len());
    for (i, piece) in out.value.into_iter().enumerate() {
        flagged_paragraphs += usize::from(piece.flagged());
        checks.extend(piece.notes.into_iter().map(|n| CheckReport {
            output: "translation",
            check: n.kind.as_str(),
            paragraph: i + 1,
            line: n.line,
            detail: n.detail,
            repaired: n.repaired,
        }));
        english.push(piece.text);
    }
    let formatting_dropped = text::inline::broken_count(&pieces, &english);
    let output = format.codec.rebuild(doc, &english).map_err(format_error)?;
    Ok(Output {
        value: Translated {
            output,
            pieces: pieces.len(),
            checks,
            flagged_paragraphs,
            formatting_dropped,
        },
        usage: out.usage,
    })
}

/// A format's error as an input error, named by the caller (`in_document`).
fn format_error(e: crate::text::format::FormatError) -> Error {
    Error::input("", e)
}

/// An input error of `translate_document`, named after the document.
fn in_document(e: Error, path: &Path) -> Error {
    match e {
        Error::Input { path: p, problem } if p.as_os_str().is_empty() => {
            Error::input(path, problem)
        }
        e => e,
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
