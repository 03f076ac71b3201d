//! The command line: flags (documented where they are defined), and one function per
//! subcommand that turns them into calls on the library.
//!
//! Exit codes: 0 when everything succeeded; 1 when any document (or the command) failed, the
//! others still being written; 2 for usage errors (bad flags, unknown model names, bad globs).
//! Not for: any of the work itself.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::catalog::{Catalog, Task, Weights};
use crate::device::DeviceChoice;
use crate::hub::{self, Access};
use crate::backends::gguf_info;
use crate::backends::load::{Loader, Selection};
use crate::pipeline::{self, PlanOptions, RunOptions};
use crate::text::{
    self,
    format::{Format, Source},
};

const EXAMPLES: &str = "\
Examples:
  transbrief run ./docs                      translate and brief every .txt/.md under ./docs
  transbrief run ./docs --dry-run            show what would be done, and why
  transbrief run ./docs --only translate --translate-model qwen2.5-coder-1.5b
  transbrief run ./docs --translate-model ./models/my-model-q4_k_m.gguf
  transbrief run ./docs --translate-model hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf
  transbrief run ./docs --out-dir ./english --report run.json
  transbrief translate article.fr.txt        one document to stdout
  cat article.fr.txt | transbrief brief -    a brief to stdout
  transbrief models list                     the catalog, and what is already downloaded
  transbrief models fetch qwen2.5-coder-0.5b download a model into the Hugging Face cache

Outputs are written beside each original: report.fr.txt gives report.en.txt and
report.brief.en.md. Up-to-date outputs are skipped; files transbrief did not write are never
overwritten.";

/// Translate folders of French documents into English, and write English briefs beside them.
#[derive(Debug, Parser)]
#[command(name = "transbrief", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Add the models of this catalog file (models.toml format); may be repeated. Entries
    /// override the built-in catalog and the one in your config directory.
    #[arg(long, global = true, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,

    /// Print only errors: no progress bar, no summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Say more (-v: what is loaded and written; -vv: debugging detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate and brief every document under the given files and folders.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Translate one document (or stdin) and print the English to stdout.
    Translate(OneArgs),
    /// Write the brief of one French document (or stdin) to stdout.
    Brief(OneArgs),
    /// List, inspect and download the models of the catalog.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Score translations or briefs against references: BLEU, chrF and TER as sacrebleu
    /// computes them, ROUGE as rouge-score does.
    Eval(crate::eval::cli::EvalArgs),
    /// Run several translation models on the same documents and write a side-by-side report
    /// (HTML or Markdown) with word differences, BLEU/chrF and speed.
    Compare(CompareArgs),
    /// Check a translation against its French source without a reference (length, language,
    /// numbers, dates, names, echo and loops, answers instead of translations): the checks `run`
    /// applies, on any pair of files, another tool's output included. Exit 1 when something is
    /// flagged.
    Check(CheckArgs),
    /// Work on reports: `report merge DIR` joins the per-shard reports of a job array.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Bench aid for scripts/bench: the engine on token ids with a fixed amount of work.
    #[command(subcommand, hide = true)]
    Bench(crate::bench::BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports that `run --shard K/N --report DIR/` wrote (shard-K-of-N.json) into
    /// one: the documents by status, the shards that never reported, the documents in no report
    /// (read from the plan listing the shards wrote beside their reports). Exit 1 when a shard
    /// or a document is missing, or a document failed or was interrupted.
    Merge {
        /// The folder of shard reports.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Write the merged JSON report here (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The folder of French documents. Each model's outputs are cached under
    /// DOCS/.transbrief/compare/MODEL/ and reused while up to date.
    #[arg(value_name = "DOCS")]
    pub docs: PathBuf,

    /// The translation models to compare, comma-separated (A,B[,C...]), each as
    /// --translate-model takes it: a catalog name, a GGUF file or hf:ORG/REPO/FILE.gguf.
    #[arg(long, required = true, value_delimiter = ',', value_name = "A,B")]
    pub models: Vec<String>,

    /// Folder of references (X.ref.en.txt for X.fr.txt, same subfolders); by default they are
    /// looked for beside each document.
    #[arg(long = "ref", value_name = "DIR")]
    pub reference: Option<PathBuf>,

    /// The report: Markdown when the name ends in .md, else one self-contained HTML page.
    #[arg(long, default_value = "compare.html", value_name = "FILE")]
    pub out: PathBuf,

    /// Refuse input files larger than this many bytes (default 8 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = text::read::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,

    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The French source (`.txt` or `.md`).
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// Its English translation, paragraph for paragraph (and line for line where the source has
    /// lines).
    #[arg(value_name = "TRANSLATION")]
    pub translation: PathBuf,
    /// Print the findings as JSON (a list of {check, paragraph, line, detail}).
    #[arg(long)]
    pub json: bool,
}

/// Which models translate and write briefs.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The translation model (default: the catalog's). One of: a catalog name (`transbrief
    /// models list`); a local GGUF file (a path ending in .gguf, or any existing file); or
    /// hf:ORG/REPO/FILE.gguf[@REVISION], found in the Hugging Face cache or downloaded (revision
    /// main by default). A file or hf: model runs as a gguf-chat model with the news-fr-en
    /// prompts and the catalog's [generation] settings.
    #[arg(long, value_name = "MODEL")]
    pub translate_model: Option<String>,

    /// The brief model (default: the catalog's), in the same forms as --translate-model. Briefs
    /// are made from the translation, so a brief needs both models.
    #[arg(long, value_name = "MODEL")]
    pub brief_model: Option<String>,
}

/// Where models run and how their files may be obtained.
#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// Where to run the models: auto (CUDA or Metal when built in and present, else CPU), cpu,
    /// cuda, cuda:N, metal.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    /// Never download: use only local paths and the Hugging Face cache (also set by
    /// HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,

    /// Documents processed at once (worker threads); 0 means one per CPU core, or, for a `run`
    /// whose models are all chat models that batch (`--batch`), the batch slots and one more,
    /// or, for a `run` that only translates with a Marian model that pools (`--pool-tokens`),
    /// 64.
    #[arg(short, long, default_value_t = 0, value_name = "N")]
    pub jobs: usize,

    /// Threads one tensor operation may use inside candle's kernels (matrix products,
    /// quantized kernels); 0 means one per CPU core (or RAYON_NUM_THREADS / CANDLE_NUM_THREADS
    /// when set). Kernels of concurrent documents take turns on these threads, so the default
    /// does not oversubscribe the cores; lower it to leave cores to other programs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// How seq2seq models (Marian, BART, T5) hold their weights: f32 as stored, or int8,
    /// quantized at load with one scale per row (about half the memory, and faster on CPUs with
    /// VNNI; a few tokens may differ from f32). Overrides the catalog entry's `weights`. GGUF
    /// models always run in the block types of their file.
    #[arg(long, value_name = "f32|int8")]
    pub weights: Option<Weights>,

    /// Conversations a chat (GGUF) model decodes together, from the documents in flight: one
    /// forward pass, one read of the weights, for all of them. 1 (the default) is off; 0
    /// chooses from the available memory and the model's cache size (at most 8). Outputs are
    /// the same either way; the report's `batching` says what was chosen. On the 2-core test
    /// machine a folder ran no faster batched (4 slots) than with one document per core (its
    /// time is mostly prompts), so it is not the default.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,

    /// Padded source tokens per batch of a Marian (opus-mt) model, whose batches pool the
    /// sentences of every document in flight, sorted by length (at most 64 sentences a
    /// batch). 0 turns pooling off: each document's sentences are batched alone, 16 at a time.
    /// Outputs are the same either way; the report's `pooling` says what the batches held.
    #[arg(long, default_value_t = 2048, value_name = "TOKENS")]
    pub pool_tokens: usize,
}

/// Which kind of output to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// Only the English translation (name.en.txt).
    Translate,
    /// Only the brief (name.brief.en.md); the translation is made in memory when needed.
    Brief,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Files and folders to process. Folders are walked; hidden files are skipped.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub models: ModelArgs,

    /// Produce only translations, or only briefs.
    #[arg(long, value_enum)]
    pub only: Option<Only>,

    /// Take only files matching this glob (by name, or by path below the folder given); may be
    /// repeated. Replaces the default: every format's extensions (*.txt, *.md, *.html, *.srt...).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Skip files and folders matching this glob; may be repeated.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Redo outputs even when they are up to date.
    #[arg(long)]
    pub force: bool,

    /// List what would be done and why, without loading models or writing anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Write a JSON report: per document, its status, outputs, timings, tokens, model and error.
    /// A folder (an existing one, or a path ending in /) gets one report per shard,
    /// shard-K-of-N.json, and the plan listing plan-DIGEST.json beside it, for `transbrief
    /// report merge DIR`.
    #[arg(long, value_name = "FILE.json|DIR/")]
    pub report: Option<PathBuf>,

    /// Process only shard K of N (0 <= K < N) of the documents: every task of a job array
    /// lists the same documents and keeps its own share, balanced by bytes and the same on
    /// every machine. Without it, a Slurm array task takes SLURM_ARRAY_TASK_ID of
    /// SLURM_ARRAY_TASK_COUNT (the array must be --array=0-(N-1)), and a Kubernetes Indexed Job
    /// pod JOB_COMPLETION_INDEX of TRANSBRIEF_SHARDS. --shard 0/1 processes everything whatever
    /// the environment says.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<pipeline::shard::Shard>,

    /// Write outputs under DIR, mirroring the input tree, instead of beside the originals.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Refuse input files larger than this many bytes (default 8 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = text::read::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,

    /// Count a document whose translation has paragraphs flagged by the checks (and not
    /// repaired) as failed: exit 1. Its outputs are still written, and their records say they
    /// are flagged, so a later --strict run fails on them too without translating again.
    #[arg(long)]
    pub strict: bool,

    /// After the run, compare each output with the file of the same relative path under DIR
    /// (below --out-dir, or below the folder given), print a unified diff for each difference,
    /// and exit 1 if any differs or is missing.
    #[arg(long, value_name = "DIR")]
    pub check_golden: Option<PathBuf>,

    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Debug, Args)]
pub struct OneArgs {
    /// The document; `-` or nothing reads stdin.
    #[arg(value_name = "FILE|-")]
    pub input: Option<PathBuf>,

    #[command(flatten)]
    pub models: ModelArgs,

    /// Treat the input as Markdown (default: by extension; stdin is plain text).
    #[arg(long)]
    pub markdown: bool,

    /// brief only: the input is already English, so brief it as it is instead of translating
    /// it first (for English sources, and for scoring briefs on English data sets).
    #[arg(long)]
    pub english: bool,

    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every model of the catalog, the tasks it serves, and whether its files are local.
    List,
    /// One model: its source, files, local paths and generation settings; for a local GGUF
    /// file, its architecture, size, quantization, chat template and context length.
    Info {
        /// A catalog name, a GGUF file, or hf:ORG/REPO/FILE.gguf[@REVISION].
        #[arg(value_name = "MODEL")]
        name: String,
        /// Also compute the sha256 of local files.
        #[arg(long)]
        hash: bool,
    },
    /// Download a model's files into the Hugging Face cache (with a progress bar), and verify
    /// their sha256.
    Fetch {
        /// A catalog name, or hf:ORG/REPO/FILE.gguf[@REVISION].
        #[arg(value_name = "MODEL")]
        name: String,
    },
}

/// An error in how transbrief was called: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// The version `--version` prints: the crate's, and the kernel set in use (which
/// `TRANSBRIEF_KERNELS` caps), e.g. `0.1.0 (kernels: avx512-vnni)`.
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let kernels = crate::kernels::cpu::kernel_set().name();
        format!("{} (kernels: {kernels})", env!("CARGO_PKG_VERSION"))
    })
}

/// The command line, with [`version`] for `--version`.
fn parse_args() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().version(version()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Parses the command line and runs it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = parse_args();
    crate::device::set_kernel_spin_limit();
    init_tracing(cli.quiet, cli.verbose);
    crate::kernels::cpu::log_kernel_set();
    if let Err(problem) = crate::device::check_cpu() {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
    install_signal_handler(cli.quiet);
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn init_tracing(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "transbrief=info,warn",
        (false, _) => "transbrief=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRANSBRIEF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: logs sent to a file or a pipe stay plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

/// First Ctrl-C (or SIGTERM): finish nothing new, write nothing half-done, report. Second:
/// leave at once (outputs are renamed into place whole, so none is ever partial).
fn install_signal_handler(quiet: bool) {
    let _ = ctrlc::set_handler(move || {
        if crate::cancel::requested() {
            std::process::exit(130);
        }
        crate::cancel::request();
        if !quiet {
            eprintln!(
                "\ninterrupted: abandoning the documents in flight (nothing partial is written); \
                 press Ctrl-C again to quit at once"
            );
        }
    });
}

fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Command::Eval(args) = &cli.command {
        return crate::eval::cli::run(args);
    }
    if let Command::Check(args) = &cli.command {
        return cmd_check(args);
    }
    if let Command::Report(ReportCommand::Merge { dir, out }) = &cli.command {
        return cmd_report_merge(cli, dir, out.as_deref());
    }
    if let Command::Bench(cmd) = &cli.command {
        crate::bench::run(cmd)?;
        return Ok(ExitCode::SUCCESS);
    }
    let catalog = Catalog::load(&cli.catalog).map_err(usage)?;
    match &cli.command {
        Command::Eval(_) | Command::Bench(_) => unreachable!("handled above"),
        Command::Run(args) => cmd_run(cli, catalog, args),
        Command::Translate(args) => cmd_one(catalog, args, false),
        Command::Brief(args) => cmd_one(catalog, args, true),
        Command::Models(cmd) => cmd_models(&catalog, cmd),
        Command::Compare(args) => cmd_compare(cli, catalog, args),
        Command::Check(_) | Command::Report(_) => unreachable!("handled above"),
    }
}

/// `transbrief check SOURCE TRANSLATION`: the pieces of both (as the source's format cuts
/// them), checked pair by pair as `run` checks a translation.
fn cmd_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let format = Format::of_document(&args.source);
    // Both read as the source's format: the translation of a DOCX is a DOCX.
    let pieces_of = |p: &Path| -> anyhow::Result<Vec<String>> {
        let doc = format
            .read(p, text::read::DEFAULT_MAX_BYTES)
            .map_err(|e| crate::Error::input(p, e))?;
        Ok(format
            .codec
            .pieces(&doc)
            .map_err(|e| crate::Error::input(p, e))?)
    };
    let (pieces, english) = (pieces_of(&args.source)?, pieces_of(&args.translation)?);
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let translated = english.len();
    let count_mismatch = (pieces.len() != translated).then(|| {
        format!(
            "{} has {} paragraphs, {} has {}: paired in order, the first ones only",
            args.source.display(),
            pieces.len(),
            args.translation.display(),
            translated
        )
    });
    let checked = crate::backends::check_pieces(&pieces, english);
    let findings: Vec<pipeline::report::CheckReport> = checked
        .into_iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.notes.into_iter().map(move |n| pipeline::report::CheckReport {
                output: "translation",
                check: n.kind.as_str(),
                paragraph: i + 1,
                line: n.line,
                detail: n.detail,
                repaired: false,
            })
        })
        .chain(count_mismatch.map(|detail| pipeline::report::CheckReport {
            output: "translation",
            check: "length",
            paragraph: pieces.len().min(translated) + 1,
            line: None,
            detail,
            repaired: false,
        }))
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &findings)?;
        writeln!(out)?;
    } else {
        for f in &findings {
            let line = f.line.map(|l| format!(", line {l}")).unwrap_or_default();
            writeln!(
                out,
                "{}: paragraph {}{line}: {}: {}",
                args.translation.display(),
                f.paragraph,
                f.check,
                f.detail
            )?;
        }
        let paragraphs: std::collections::BTreeSet<usize> =
            findings.iter().map(|f| f.paragraph).collect();
        writeln!(
            out,
            "{} finding{} in {} of {} paragraphs",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" },
            paragraphs.len(),
            pieces.len()
        )?;
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn jobs(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

fn loader(catalog: Catalog, args: &DeviceArgs) -> anyhow::Result<Loader> {
    if args.threads > 0 {
        // No model has run yet, and no other thread reads the environment.
        crate::device::set_kernel_threads(args.threads);
    }
    let device = args.device.open().map_err(usage)?;
    Ok(Loader::new(catalog, Access::from_flag(args.offline), device)
        .with_weights(args.weights)
        .with_batch(args.batch)
        .with_pool_tokens(args.pool_tokens))
}

/// The loader, and the models a command runs (`only`: the one task it needs a model for).
/// Unknown model names are usage errors, found before any work starts.
fn loader_and_models(
    catalog: Catalog,
    device: &DeviceArgs,
    models: &ModelArgs,
    only: Option<Task>,
) -> anyhow::Result<(Loader, Selection)> {
    let loader = loader(catalog, device)?;
    let selection = loader
        .select(
            models.translate_model.as_deref(),
            models.brief_model.as_deref(),
            only,
        )
        .map_err(usage)?;
    Ok((loader, selection))
}

fn cmd_run(cli: &Cli, catalog: Catalog, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let only = args.only.map(|o| match o {
        Only::Translate => Task::Translate,
        Only::Brief => Task::Brief,
    });
    let (loader, models) = loader_and_models(catalog, &args.device, &args.models, only)?;
    let (shard, source) = match args.shard {
        Some(s) => (Some(s), Some(pipeline::shard::Source::Flag)),
        None => match pipeline::shard::from_env(|k| std::env::var(k).ok()).map_err(usage)? {
            Some((s, source)) => (Some(s), Some(source)),
            None => (None, None),
        },
    };
    let report_dir = args.report.as_deref().filter(|p| is_folder_arg(p));
    // A report folder holds shard reports: an unsharded run is shard 0 of 1.
    let shard = shard.or_else(|| report_dir.and_then(|_| pipeline::shard::Shard::new(0, 1)));
    let opts = RunOptions {
        plan: PlanOptions {
            paths: args.paths.clone(),
            include: args.include.clone(),
            exclude: args.exclude.clone(),
            out_dir: args.out_dir.clone(),
        },
        only,
        force: args.force,
        dry_run: args.dry_run,
        // 0 lets the pipeline choose, by the models' batching.
        jobs: args.device.jobs,
        max_bytes: args.max_bytes,
        models,
        progress: !cli.quiet && std::io::stderr().is_terminal(),
        print_errors: true,
        strict: args.strict,
        shard,
    };
    let mut report = match pipeline::run(&opts, &loader) {
        Ok(r) => r,
        Err(e @ crate::Error::Msg(_)) => return Err(usage(e)),
        Err(e) => return Err(e.into()),
    };
    if let Some(s) = report.shard.as_mut() {
        s.source = source;
        s.task = scheduler_task(source);
    }
    if args.dry_run {
        print_dry_run(&report);
    }
    match (&args.report, report_dir) {
        (_, Some(dir)) => write_shard_report(&report, dir)?,
        (Some(path), None) => {
            let json = serde_json::to_vec_pretty(&report)?;
            pipeline::write::atomic_write(path, &json)
                .with_context(|| format!("writing the report {}", path.display()))?;
        }
        (None, None) => {}
    }
    if !cli.quiet {
        eprintln!("{}", report.summary_line());
    }
    let golden_ok = match &args.check_golden {
        Some(dir) if !args.dry_run => check_golden(&report, args, dir),
        _ => true,
    };
    Ok(if report.all_ok() && golden_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether `--report` names a folder: an existing one, or a path ending in `/`.
fn is_folder_arg(p: &Path) -> bool {
    p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/')
}

/// The scheduler's name for this task, for the shard report.
fn scheduler_task(source: Option<pipeline::shard::Source>) -> Option<String> {
    use pipeline::shard::Source;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match source? {
        Source::Slurm => Some(format!(
            "slurm job {}_{} (job id {})",
            var("SLURM_ARRAY_JOB_ID")?,
            var("SLURM_ARRAY_TASK_ID")?,
            var("SLURM_JOB_ID").unwrap_or_default()
        )),
        Source::Kubernetes => Some(format!("kubernetes pod {}", var("HOSTNAME")?)),
        Source::Flag => var("SLURM_JOB_ID").map(|j| format!("slurm job {j}")),
    }
}

/// Writes a shard's report into `dir` as shard-K-of-N.json, and the plan listing beside it
/// unless a task that saw the same plan already wrote it.
fn write_shard_report(report: &pipeline::report::Report, dir: &Path) -> anyhow::Result<()> {
    let shard = report
        .shard
        .as_ref()
        .context("a report folder needs a sharded run")?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the report folder {}", dir.display()))?;
    if let Some(listing) = &shard.listing {
        let path = dir.join(listing.file_name());
        if !path.is_file() {
            let json = serde_json::to_vec(listing)?;
            pipeline::write::atomic_write(&path, &json)
                .with_context(|| format!("writing the plan listing {}", path.display()))?;
        }
    }
    let name = pipeline::shard::Shard::new(shard.index, shard.count)
        .map(|s| s.report_name())
        .unwrap_or_else(|| "shard.json".into());
    let path = dir.join(name);
    let json = serde_json::to_vec_pretty(report)?;
    pipeline::write::atomic_write(&path, &json)
        .with_context(|| format!("writing the report {}", path.display()))
}

/// `transbrief report merge DIR [--out FILE]`.
fn cmd_report_merge(cli: &Cli, dir: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let merged = pipeline::merge::merge(dir).map_err(anyhow::Error::msg)?;
    let json = serde_json::to_vec_pretty(&merged.report)?;
    match out {
        Some(path) => pipeline::write::atomic_write(path, &json)
            .with_context(|| format!("writing the merged report {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&json)?;
            writeln!(stdout)?;
        }
    }
    if !cli.quiet {
        for line in &merged.summary {
            eprintln!("{line}");
        }
    }
    Ok(if merged.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints a diff for each output that differs from its golden file; whether all matched.
fn check_golden(report: &pipeline::report::Report, args: &RunArgs, dir: &Path) -> bool {
    use crate::compare::golden::{self, Golden};
    let roots = match &args.out_dir {
        Some(out) => vec![out.clone()],
        None => args.paths.clone(),
    };
    let checks = golden::check(report, &roots, dir);
    let mut out = std::io::stdout().lock();
    let mut bad = 0;
    for c in &checks {
        let rel = c.relative.display();
        match &c.outcome {
            Golden::Same => continue,
            Golden::Differs(diff) => {
                let _ = write!(out, "{diff}");
            }
            Golden::Missing => {
                let _ = writeln!(
                    out,
                    "golden file missing: {}",
                    dir.join(&c.relative).display()
                );
            }
            Golden::Unreadable(e) => {
                let _ = writeln!(out, "cannot compare {rel}: {e}");
            }
        }
        bad += 1;
    }
    eprintln!(
        "golden check: {} of {} outputs match {}",
        checks.len() - bad,
        checks.len(),
        dir.display()
    );
    bad == 0
}

fn cmd_compare(cli: &Cli, catalog: Catalog, args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let loader = loader(catalog, &args.device)?;
    let models = args
        .models
        .iter()
        .map(|m| loader.entry(Task::Translate, Some(m)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let opts = crate::compare::CompareOptions {
        docs: args.docs.clone(),
        models,
        reference: args.reference.clone(),
        jobs: args.device.jobs,
        max_bytes: args.max_bytes,
        progress: !cli.quiet && std::io::stderr().is_terminal(),
    };
    let comparison = crate::compare::compare(&opts, &loader)?;
    let title = format!("transbrief compare: {}", args.docs.display());
    let is_md = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"));
    let page = if is_md {
        crate::compare::render::markdown(&comparison, &title)
    } else {
        crate::compare::render::html(&comparison, &title)
    };
    pipeline::write::atomic_write(&args.out, page.as_bytes())
        .with_context(|| format!("writing the report {}", args.out.display()))?;
    if !cli.quiet {
        eprintln!(
            "{} documents, {} models: {}",
            comparison.documents.len(),
            comparison.models.len(),
            args.out.display()
        );
    }
    Ok(if comparison.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_dry_run(report: &pipeline::report::Report) {
    let mut out = std::io::stdout().lock();
    if let Some(s) = &report.shard {
        let _ = writeln!(
            out,
            "shard {}/{}: {} of {} documents, {} bytes",
            s.index, s.count, s.documents, s.plan_documents, s.bytes
        );
    }
    for d in &report.documents {
        if let Some(e) = &d.error {
            let _ = writeln!(out, "error  {e}");
            continue;
        }
        for o in &d.outputs {
            let what = match o.reason {
                Some(r) => format!("write ({r})"),
                None => "skip (up to date)".into(),
            };
            let _ = writeln!(
                out,
                "{what:<18} {} -> {}",
                d.input.display(),
                o.path.display()
            );
        }
    }
}

/// The document `translate` or `brief` reads (a file, or stdin for none or `-`), as `format`
/// reads it.
fn read_input(input: &Option<PathBuf>, format: &Format) -> anyhow::Result<Source> {
    match input.as_deref() {
        Some(p) if p != Path::new("-") => Ok(format
            .read(p, text::read::DEFAULT_MAX_BYTES)
            .map_err(|e| crate::Error::input(p, e))?),
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading stdin")?;
            Ok(format
                .codec
                .source(bytes)
                .map_err(|e| crate::Error::input("<stdin>", e))?)
        }
    }
}

fn cmd_one(catalog: Catalog, args: &OneArgs, brief: bool) -> anyhow::Result<ExitCode> {
    if args.english && !brief {
        return Err(usage(
            "--english applies to `brief` only: `translate` takes French input",
        ));
    }
    let only = (!brief).then_some(Task::Translate);
    let (loader, models) = loader_and_models(catalog, &args.device, &args.models, only)?;
    let (translate, brief_entry) = (models.translate, models.brief);
    let path = args.input.as_deref().filter(|p| *p != Path::new("-"));
    let format = match path {
        _ if args.markdown => &text::format::MARKDOWN,
        Some(p) => Format::of_document(p),
        None => &text::format::PLAIN,
    };
    let doc = read_input(&args.input, format)?;
    let name = path.unwrap_or(Path::new("<stdin>"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs(args.device.jobs))
        .build()?;
    let out = pool.install(|| -> anyhow::Result<Vec<u8>> {
        let english = if args.english && brief_entry.is_some() {
            match doc.text() {
                Some(text) => text.to_string(),
                None => (format.codec.plain_text(&doc)).map_err(|e| crate::Error::input(name, e))?,
            }
        } else {
            let out = pipeline::run::translate_document(&doc, format, &*loader.translator(&translate)?)
                .map_err(|e| match e {
                    crate::Error::Input { problem, .. } => crate::Error::input(name, problem),
                    e => e,
                })?
                .value;
            print_checks(path, &out.checks);
            if brief_entry.is_none() {
                return Ok(out.output);
            }
            (format.codec.brief_text(out.output)).map_err(|e| crate::Error::input(name, e))?
        };
        match &brief_entry {
            None => Ok(english.into_bytes()),
            Some(entry) => {
                let title = pipeline::brief::fallback_title(path);
                let summarizer = loader.summarizer(entry)?;
                let brief = pipeline::brief::make_checked_brief(&*summarizer, &english, &title)?;
                let checked = brief.value;
                let notes = (checked.repaired.iter().map(|f| (f, true)))
                    .chain(checked.findings.iter().map(|f| (f, false)))
                    .map(|(f, repaired)| pipeline::report::CheckReport {
                        output: "brief",
                        check: f.kind.as_str(),
                        paragraph: 1,
                        line: None,
                        detail: f.detail.clone(),
                        repaired,
                    })
                    .collect::<Vec<_>>();
                print_checks(path, &notes);
                Ok(checked.markdown.into_bytes())
            }
        }
    })?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The checks' findings on a translation, on stderr (stdout holds the translation).
fn print_checks(path: Option<&Path>, checks: &[pipeline::report::CheckReport]) {
    let name = path.map_or("<stdin>".to_string(), |p| p.display().to_string());
    for c in checks {
        let line = c.line.map(|l| format!(", line {l}")).unwrap_or_default();
        let state = if c.repaired { "repaired" } else { "flagged" };
        eprintln!(
            "{state}: {name}: {} paragraph {}{line}: {}: {}",
            c.output, c.paragraph, c.check, c.detail
        );
    }
}

fn cmd_models(catalog: &Catalog, cmd: &ModelsCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ModelsCommand::List => models_list(catalog, &mut out)?,
        ModelsCommand::Info { name, hash } => {
            let entry = catalog.resolve(name).map_err(usage)?;
            models_info(catalog, &entry, *hash, &mut out)?
        }
        ModelsCommand::Fetch { name } => {
            let e = catalog.resolve(name).map_err(usage)?;
            let files = hub::resolve(&e, Access::from_flag(false))?;
            for (role, path) in &files.paths {
                writeln!(out, "{role}: {}", path.display())?;
            }
            if !e.sha256.is_empty() {
                writeln!(out, "sha256 verified")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn task_list(e: &crate::catalog::Entry, sep: &str) -> String {
    e.tasks
        .iter()
        .map(Task::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// `models list`: one line per entry, defaults starred.
fn models_list(catalog: &Catalog, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<24} {:<10} {:<18} {:<6} description",
        "name", "family", "tasks", "local"
    )?;
    for e in catalog.entries() {
        let tasks = task_list(e, ",");
        let local = if hub::status(e).iter().all(|s| s.local.is_some()) {
            "yes"
        } else {
            "no"
        };
        let mut name = e.name.clone();
        for t in [Task::Translate, Task::Brief] {
            if catalog.default_for(t) == Some(e.name.as_str()) {
                name.push('*');
                break;
            }
        }
        writeln!(
            out,
            "{name:<24} {:<10} {tasks:<18} {local:<6} {}",
            e.family.to_string(),
            e.description
        )?;
    }
    writeln!(
        out,
        "\n* default model. Defaults: translate = {}, brief = {}. Catalogs: {}. HF cache: {}",
        catalog.default_for(Task::Translate).unwrap_or("-"),
        catalog.default_for(Task::Brief).unwrap_or("-"),
        catalog.sources.join(", "),
        hub::cache_dir().display()
    )?;
    Ok(())
}

/// `models info`: the entry, its files (local or not, hashed with `hash`; what the header of a
/// GGUF file says), its settings. A GGUF file that cannot be read is an error, after the rest is
/// printed.
fn models_info(
    catalog: &Catalog,
    e: &crate::catalog::Entry,
    hash: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut unreadable = None;
    writeln!(out, "name:        {}", e.name)?;
    writeln!(out, "description: {}", e.description)?;
    writeln!(out, "family:      {}", e.family)?;
    writeln!(out, "tasks:       {}", task_list(e, ", "))?;
    if let Some(r) = &e.source.repo {
        writeln!(
            out,
            "repo:        {r} @ {}",
            e.source.revision.as_deref().unwrap_or("main")
        )?;
    }
    if let Some(p) = &e.source.path {
        writeln!(out, "path:        {}", p.display())?;
    }
    for s in hub::status(e) {
        let expected = e
            .sha256
            .get(&s.file)
            .map(String::as_str)
            .unwrap_or("(not pinned)");
        writeln!(out, "file:        {} = {}", s.role, s.file)?;
        writeln!(out, "  sha256:    {expected}")?;
        match &s.local {
            Some(p) => {
                writeln!(out, "  local:     {}", p.display())?;
                if hash {
                    writeln!(out, "  actual:    {}", hub::sha256_file(p)?)?;
                }
                if s.file.to_ascii_lowercase().ends_with(".gguf") {
                    match gguf_info::inspect(p, e.template) {
                        Ok(info) => print_gguf_info(&info, out)?,
                        Err(err) => {
                            writeln!(out, "  gguf:          unreadable ({err})")?;
                            unreadable.get_or_insert(err);
                        }
                    }
                }
            }
            None => writeln!(
                out,
                "  local:     not downloaded (transbrief models fetch {})",
                e.name
            )?,
        }
    }
    let g = catalog.generation(e);
    writeln!(out, "generation:  {}", serde_json::to_string(&g)?)?;
    if let Some(w) = e.weights {
        writeln!(out, "weights:     {w}")?;
    }
    if let Some(p) = &e.prompts {
        writeln!(out, "prompts:     {p}")?;
    }
    match unreadable {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// The lines of `models info` on a GGUF file's header.
fn print_gguf_info(info: &gguf_info::GgufInfo, out: &mut impl Write) -> anyhow::Result<()> {
    let arch = if info.architecture.is_empty() {
        "(none)"
    } else {
        info.architecture.as_str()
    };
    match &info.supported {
        Ok(families) => writeln!(out, "  architecture:  {arch} (supported: {families})")?,
        Err(why) => writeln!(out, "  architecture:  {arch} (not supported: {why})")?,
    }
    if let Some(name) = &info.model_name {
        writeln!(out, "  model name:    {name}")?;
    }
    let size = match info.file_size as f64 {
        b if b >= 1e9 => format!("{:.2} GB", b / 1e9),
        b => format!("{:.1} MB", b / 1e6),
    };
    writeln!(out, "  size:          {size} ({} bytes)", info.file_size)?;
    writeln!(out, "  quantization:  {}", info.quantization())?;
    writeln!(out, "  tensors:       {}", info.tensor_type_counts())?;
    match info.chat_template {
        Some(len) => writeln!(out, "  chat template: yes ({len} bytes)")?,
        None => writeln!(out, "  chat template: no (tokenizer.chat_template is absent)")?,
    }
    match &info.template {
        Ok(source) => writeln!(out, "  template used: {source}")?,
        Err(why) => writeln!(out, "  template used: none ({why})")?,
    }
    match info.context_length {
        Some(n) => writeln!(out, "  context:       {n} tokens")?,
        None => writeln!(out, "  context:       not given ({arch}.context_length is absent)")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_version_names_the_kernel_set() {
        let v = Cli::command()
            .version(version())
            .try_get_matches_from(["transbrief", "--version"])
            .unwrap_err()
            .to_string();
        let set = crate::kernels::cpu::kernel_set().name();
        assert_eq!(v.trim(), format!("transbrief {} (kernels: {set})", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn jobs_zero_means_all_cores() {
        assert!(jobs(0) >= 1);
        assert_eq!(jobs(3), 3);
    }

    #[test]
    fn unbounded_failure_of_a_bad_flag_is_a_usage_error() {
        let e = Cli::try_parse_from(["transbrief", "run", "x", "--only", "both"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
