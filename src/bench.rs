//! Bench aids: the hidden `transbrief bench …` subcommands that `scripts/bench` runs beside
//! CTranslate2, transformers and llama.cpp. Each one runs the same engine as `transbrief run`
//! on token ids with a fixed amount of work (a forced output length, EOS ignored), so that the
//! peers and transbrief do identical work whatever the weights say, and prints one JSON line:
//! load time, token counts, seconds and tokens/s.
//!
//! Not for: users' documents (use `run`), or correctness checks (the parity tests do that).
//! These commands are hidden from `--help` and their flags may change with the bench.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, Subcommand};
use serde_json::json;

use rayon::prelude::*;

use crate::backends::pool::{Budget, Seq2seqPool};
use crate::generate::{generate, GenerationConfig};
use crate::models::bart::{BartForConditionalGeneration, Config, LinearKind};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encoder-decoder (Marian/BART) generation on token ids, forced to a fixed output length.
    Seq2seq(Seq2seqArgs),
    /// GGUF chat model: one prompt of given ids, then greedy decode steps.
    Gguf(GgufArgs),
}

#[derive(Debug, Args)]
pub struct Seq2seqArgs {
    /// Model folder with config.json and model.safetensors (a Marian or BART model).
    pub model: PathBuf,
    /// JSON file: a list of source sentences, each a list of token ids (EOS included).
    #[arg(long, required_unless_present = "docs")]
    pub ids: Option<PathBuf>,
    /// JSON file: a list of documents, each a list of source sentences (token ids, EOS
    /// included): the folder workload, run as `transbrief run` runs a Marian model's
    /// documents: `--jobs` documents in flight, their sentences pooled (`--pool-tokens`) or
    /// each document's batched alone (`--pool-tokens 0`, `--batch` at a time, the kernel
    /// threads split among the documents in flight). Instead of --ids.
    #[arg(long, conflicts_with = "ids")]
    pub docs: Option<PathBuf>,
    /// With --docs: documents in flight.
    #[arg(long, default_value_t = crate::backends::pool::DOCUMENTS_IN_FLIGHT)]
    pub jobs: usize,
    /// With --docs: padded source tokens per pooled batch (as `run --pool-tokens`); 0: no
    /// pooling.
    #[arg(long, default_value_t = 2048)]
    pub pool_tokens: usize,
    #[arg(long, default_value_t = 4)]
    pub beams: usize,
    /// Sentences per generate call.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Every output is exactly this many tokens (EOS banned before, as `min_new_tokens` =
    /// `max_new_tokens`).
    #[arg(long, default_value_t = 32)]
    pub new_tokens: usize,
    /// Weights of the linear layers: f32, or int8 (as `LinearKind::Int8`: one scale per weight
    /// row on AVX2 CPUs, Q8_0 blocks elsewhere; a tied embedding table reads the LM head's int8
    /// rows; norms and attention arithmetic stay f32).
    #[arg(long, default_value = "f32")]
    pub weights: String,
    /// Threads for the tensor operations (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also write the generated ids to this JSON file (for agreement checks between weights).
    #[arg(long)]
    pub out_ids: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GgufArgs {
    /// The .gguf file (Qwen2 architecture).
    pub model: PathBuf,
    /// Text file of whitespace-separated prompt token ids.
    #[arg(long)]
    pub ids: PathBuf,
    /// Tokens generated after the prompt; the first comes from the prompt's logits, so
    /// `decode - 1` decoder steps are timed.
    #[arg(long, default_value_t = 129)]
    pub decode: usize,
    /// Threads for the tensor operations (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where the model runs: cpu, cuda, cuda:N, metal, auto.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: crate::device::DeviceChoice,
    /// Batched decoding: widths to run, as a comma list (`1,4,16,64`). Sequence `i` of a width
    /// is the prompt rotated left by `i` ids; each width prints one JSON line with the prompt
    /// and decode throughput of all its sequences decoded together through `forward_batch`,
    /// and `identical`: whether every sequence's greedy ids equal those of a run of it alone
    /// (run first, once per sequence, and reused across widths).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub parallel: Option<Vec<usize>>,
}

/// Runs one bench subcommand.
pub fn run(cmd: &BenchCommand) -> Result<()> {
    if let BenchCommand::Seq2seq(a @ Seq2seqArgs { docs: Some(_), .. }) = cmd {
        return seq2seq_docs(a);
    }
    let threads = match cmd {
        BenchCommand::Seq2seq(a) => a.threads,
        BenchCommand::Gguf(a) => a.threads,
    };
    if threads > 0 {
        crate::device::set_kernel_threads(threads);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("thread pool")?;
    pool.install(|| match cmd {
        BenchCommand::Seq2seq(a) => seq2seq(a),
        BenchCommand::Gguf(a) => gguf(a),
    })
}

fn seq2seq(a: &Seq2seqArgs) -> Result<()> {
    let kind = weights_kind(a)?;
    let ids = a.ids.as_ref().context("--ids")?;
    let inputs: Vec<Vec<u32>> =
        serde_json::from_str(&std::fs::read_to_string(ids).with_context(|| ids.display().to_string())?)?;
    let t = Instant::now();
    let model = load_seq2seq(&a.model, kind)?;
    let load_s = t.elapsed().as_secs_f64();
    let load_peak = peak_rss_mib();
    let config = forced_config(a)?;

    let t = Instant::now();
    let mut out = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(a.batch.max(1)) {
        out.extend(generate(&model, chunk, &config)?);
    }
    let seconds = t.elapsed().as_secs_f64();
    let tokens: usize = out.iter().map(Vec::len).sum();
    if let Some(path) = &a.out_ids {
        std::fs::write(path, serde_json::to_string(&out)?)?;
    }
    println!(
        "{}",
        json!({
            "system": "transbrief",
            "workload": "seq2seq",
            "weights": a.weights,
            "beams": a.beams,
            "batch": a.batch,
            "sentences": inputs.len(),
            "tokens": tokens,
            "seconds": seconds,
            "tok_s": tokens as f64 / seconds,
            "load_s": load_s,
            "load_peak_rss_mib": load_peak,
        })
    );
    Ok(())
}

fn weights_kind(a: &Seq2seqArgs) -> Result<LinearKind> {
    Ok(match a.weights.as_str() {
        "f32" => LinearKind::F32,
        "int8" => LinearKind::Int8,
        other => bail!("--weights must be f32 or int8, not {other:?}"),
    })
}

/// The model's generation settings with `--beams`, and exactly `--new-tokens` tokens per
/// output (EOS banned before), no other constraint: every system does the same work.
fn forced_config(a: &Seq2seqArgs) -> Result<GenerationConfig> {
    let generation_config = a.model.join("generation_config.json");
    let mut config = GenerationConfig::from_files(
        Some(generation_config.as_path()).filter(|p| p.exists()),
        &a.model.join("config.json"),
    )?;
    config.num_beams = a.beams;
    config.set_max_new_tokens(a.new_tokens);
    config.min_length = config.max_length;
    config.forced_eos_token_id.clear();
    config.no_repeat_ngram_size = 0;
    config.repetition_penalty = 1.0;
    config.bad_words_ids = None;
    Ok(config)
}

/// `bench seq2seq --docs`: the folder workload, pooled or not, as `run` does it.
fn seq2seq_docs(a: &Seq2seqArgs) -> Result<()> {
    let kind = weights_kind(a)?;
    let path = a.docs.as_ref().context("--docs")?;
    let docs: Vec<Vec<Vec<u32>>> =
        serde_json::from_str(&std::fs::read_to_string(path).with_context(|| path.display().to_string())?)?;
    let jobs = a.jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if a.threads > 0 { a.threads } else { cores };
    // As `run`: pooled, one engine thread computes with every kernel thread; otherwise each
    // document in flight computes on its worker with its share of them.
    crate::device::set_kernel_threads(if a.pool_tokens > 0 {
        threads
    } else {
        (threads / jobs).max(1)
    });
    let t = Instant::now();
    let model = Arc::new(load_seq2seq(&a.model, kind)?);
    let load_s = t.elapsed().as_secs_f64();
    let config = forced_config(a)?;
    let pool = (a.pool_tokens > 0)
        .then(|| {
            let budget = Budget {
                tokens: a.pool_tokens,
                callers: jobs,
                ..Budget::default()
            };
            Seq2seqPool::new(model.clone(), config.clone(), budget)
        })
        .transpose()?;
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("thread pool")?;
    let t = Instant::now();
    let outs: Vec<Vec<Vec<u32>>> = workers.install(|| {
        docs.par_iter()
            .with_max_len(1)
            .map(|doc| -> Result<Vec<Vec<u32>>> {
                Ok(match &pool {
                    Some(pool) => pool.generate(doc.clone())?,
                    None => {
                        let mut out = Vec::with_capacity(doc.len());
                        for chunk in doc.chunks(a.batch.max(1)) {
                            out.extend(generate(model.as_ref(), chunk, &config)?);
                        }
                        out
                    }
                })
            })
            .collect::<Result<_>>()
    })?;
    let seconds = t.elapsed().as_secs_f64();
    let tokens: usize = outs.iter().flatten().map(Vec::len).sum();
    if let Some(path) = &a.out_ids {
        std::fs::write(path, serde_json::to_string(&outs)?)?;
    }
    let stats = pool.as_ref().map(|p| p.stats());
    println!(
        "{}",
        json!({
            "system": "transbrief",
            "workload": "seq2seq-docs",
            "weights": a.weights,
            "beams": a.beams,
            "documents": docs.len(),
            "sentences": docs.iter().map(Vec::len).sum::<usize>(),
            "jobs": jobs,
            "pool_tokens": a.pool_tokens,
            "batches": stats.map(|s| s.batches),
            "widest": stats.map(|s| s.widest),
            "tokens": tokens,
            "seconds": seconds,
            "tok_s": tokens as f64 / seconds,
            "load_s": load_s,
        })
    );
    Ok(())
}

/// The process' peak resident memory so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn load_seq2seq(dir: &Path, kind: LinearKind) -> Result<BartForConditionalGeneration> {
    let cfg: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)
        .context("config.json")?;
    let vb = crate::nn::weights::var_builder_f32(&dir.join("model.safetensors"))?;
    Ok(BartForConditionalGeneration::new_with(&cfg, vb, kind)?)
}

fn gguf(a: &GgufArgs) -> Result<()> {
    let ids: Vec<u32> = std::fs::read_to_string(&a.ids)
        .with_context(|| a.ids.display().to_string())?
        .split_whitespace()
        .map(|s| s.parse().context("token id"))
        .collect::<Result<_>>()?;
    if ids.is_empty() || a.decode == 0 {
        bail!("need at least one prompt id and one decode step");
    }
    let device = a.device.open()?;
    let t = Instant::now();
    let mut f = std::fs::File::open(&a.model).with_context(|| a.model.display().to_string())?;
    let ct = candle_core::quantized::gguf_file::Content::read(&mut f)?;
    let architecture = crate::models::architecture_of(&ct).map_err(anyhow::Error::msg)?;
    let model = (architecture.load)(&ct, &mut f, ids.len() + a.decode + 1, &device)?;
    let load_s = t.elapsed().as_secs_f64();
    let load_peak = peak_rss_mib();
    if let Some(widths) = &a.parallel {
        return gguf_parallel(a, model.as_ref(), &device, &ids, widths, load_s);
    }

    let Alone {
        ids: out,
        prompt_s,
        decode_s,
        ..
    } = greedy_alone(model.as_ref(), &ids, a.decode)?;
    let steps = a.decode - 1;
    println!(
        "{}",
        json!({
            "system": "transbrief",
            "workload": "gguf",
            "device": crate::device::describe(&device),
            "prompt_tokens": ids.len(),
            "prompt_s": prompt_s,
            "prompt_tok_s": ids.len() as f64 / prompt_s,
            "decode_steps": steps,
            "decode_s": decode_s,
            "decode_tok_s": steps as f64 / decode_s,
            "load_s": load_s,
            "load_peak_rss_mib": load_peak,
            "first_ids": &out[..out.len().min(16)],
        })
    );
    Ok(())
}

/// What a run of one sequence alone gave: its greedy ids, the logits of its last pass, and the
/// seconds of its prompt's pass and of its decode steps.
struct Alone {
    ids: Vec<u32>,
    last_logits: Vec<f32>,
    prompt_s: f64,
    decode_s: f64,
}

/// `prompt` alone: the prompt's pass, then `decode - 1` one-token passes.
fn greedy_alone(
    model: &dyn crate::models::CausalLm,
    prompt: &[u32],
    decode: usize,
) -> Result<Alone> {
    let mut cache = model.new_cache();
    let t = Instant::now();
    let mut logits = model.forward(prompt, &mut cache)?;
    let mut out = vec![logits.argmax(0)?.to_scalar::<u32>()?];
    let prompt_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    while out.len() < decode {
        logits = model.forward(&out[out.len() - 1..], &mut cache)?;
        out.push(logits.argmax(0)?.to_scalar::<u32>()?);
    }
    let decode_s = t.elapsed().as_secs_f64();
    Ok(Alone {
        ids: out,
        last_logits: logits.to_vec1::<f32>()?,
        prompt_s,
        decode_s,
    })
}

/// `bench gguf --parallel`: for each width, that many sequences (the prompt rotated by the
/// sequence's index) through `CausalLm::forward_batch`, the prompts in one pass, then the
/// decode steps, one row per sequence a pass. Each sequence's ids are compared with those of
/// a run of it alone, and so are the logits of its last pass, bit for bit: a sequence whose
/// numbers drifted anywhere carries the drift in its cache to the end (`alone_*`: the
/// throughput of those runs, over every sequence run alone so far).
fn gguf_parallel(
    a: &GgufArgs,
    model: &dyn crate::models::CausalLm,
    device: &Device,
    ids: &[u32],
    widths: &[usize],
    load_s: f64,
) -> Result<()> {
    let prompt = |i: usize| -> Vec<u32> {
        let r = i % ids.len();
        ids[r..].iter().chain(&ids[..r]).copied().collect()
    };
    // The runs alone, each sequence's once, before the first width that has it (so that a
    // width's line is out before the wider ones' work starts).
    let mut alone: Vec<Alone> = Vec::new();
    let (mut alone_prompt_s, mut alone_decode_s) = (0.0, 0.0);
    let steps = a.decode - 1;
    for &width in widths {
        if width == 0 {
            bail!("--parallel widths must be at least 1");
        }
        while alone.len() < width {
            let run = greedy_alone(model, &prompt(alone.len()), a.decode)?;
            alone_prompt_s += run.prompt_s;
            alone_decode_s += run.decode_s;
            alone.push(run);
        }
        let most = alone.len();
        let prompts: Vec<Vec<u32>> = (0..width).map(prompt).collect();
        let mut caches: Vec<crate::nn::kv_cache::KvCache> = (0..width).map(|_| model.new_cache()).collect();
        let t = Instant::now();
        let mut batch: Vec<(&[u32], &mut crate::nn::kv_cache::KvCache)> = prompts
            .iter()
            .zip(caches.iter_mut())
            .map(|(p, c)| (p.as_slice(), c))
            .collect();
        let mut logits = model.forward_batch(&mut batch)?;
        let mut outs: Vec<Vec<u32>> = argmax_rows(&logits)?.into_iter().map(|id| vec![id]).collect();
        let prompt_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..steps {
            let last: Vec<[u32; 1]> = outs.iter().map(|o| [o[o.len() - 1]]).collect();
            let mut batch: Vec<(&[u32], &mut crate::nn::kv_cache::KvCache)> = last
                .iter()
                .zip(caches.iter_mut())
                .map(|(id, c)| (&id[..], c))
                .collect();
            logits = model.forward_batch(&mut batch)?;
            for (o, id) in outs.iter_mut().zip(argmax_rows(&logits)?) {
                o.push(id);
            }
        }
        let decode_s = t.elapsed().as_secs_f64();
        let last_logits = logits.to_vec2::<f32>()?;
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let differ: Vec<usize> = (0..width)
            .filter(|&i| {
                outs[i] != alone[i].ids || bits(&last_logits[i]) != bits(&alone[i].last_logits)
            })
            .collect();
        let max_logit_diff = (0..width)
            .flat_map(|i| {
                (last_logits[i].iter().zip(&alone[i].last_logits)).map(|(a, b)| (a - b).abs())
            })
            .fold(0f32, f32::max);
        let prompt_tokens = width * ids.len();
        println!(
            "{}",
            json!({
                "system": "transbrief",
                "workload": "gguf-parallel",
                "device": crate::device::describe(device),
                "width": width,
                "prompt_tokens": prompt_tokens,
                "prompt_s": prompt_s,
                "prompt_tok_s": prompt_tokens as f64 / prompt_s,
                "decode_steps": steps,
                "decode_tokens": width * steps,
                "decode_s": decode_s,
                "decode_tok_s": (width * steps) as f64 / decode_s,
                "identical": differ.is_empty(),
                "differing_sequences": differ,
                "max_abs_logit_diff": max_logit_diff,
                "alone_sequences": most,
                "alone_prompt_tok_s": (most * ids.len()) as f64 / alone_prompt_s,
                "alone_decode_tok_s": (most * steps) as f64 / alone_decode_s,
                "load_s": load_s,
                "first_ids": &outs[0][..outs[0].len().min(16)],
            })
        );
    }
    Ok(())
}

/// The greedy id of each row of `logits` (sequences, vocabulary).
fn argmax_rows(logits: &candle_core::Tensor) -> Result<Vec<u32>> {
    Ok(logits.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?)
}
