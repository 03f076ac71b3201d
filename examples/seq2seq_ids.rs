//! Runs our generation engine on token ids and prints the generated ids, for comparing with
//! transformers (see `scripts/check-marian-real-size`).
//!
//! Usage: `cargo run --example seq2seq_ids -- MODEL_DIR REQUEST.json`
//! where REQUEST.json is `{"inputs": [[ids...], ...], "runs": {"name": {generation overrides}},
//! "batch": N}` (`batch` optional: inputs per generate call, default all);
//! prints `{"name": [[ids...], ...], ...}` and the time each run took on stderr.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use candle_nn::VarBuilder;
use transbrief::generate::{generate, GenerationConfig};
use transbrief::models::bart::{BartForConditionalGeneration, Config};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, request] = args.as_slice() else {
        bail!("usage: seq2seq_ids MODEL_DIR REQUEST.json");
    };
    let dir = std::path::Path::new(dir);
    let cfg: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let weights = dir.join("model.safetensors");
    // SAFETY: the weights file is not modified while this example runs.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(&[weights], candle_core::DType::F32, &Device::Cpu)?
    };
    let model = BartForConditionalGeneration::new(&cfg, vb)?;
    let request: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(request)?)?;
    let inputs: Vec<Vec<u32>> = serde_json::from_value(request["inputs"].clone())?;
    let base: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("generation_config.json"))
            .context("generation_config.json")?,
    )?;
    let mut out = serde_json::Map::new();
    for (name, overrides) in request["runs"].as_object().context("runs")? {
        let mut cfg = base.clone();
        for (k, v) in overrides.as_object().context("overrides")? {
            cfg.insert(k.clone(), v.clone());
        }
        let config = GenerationConfig::from_json(&serde_json::Value::Object(cfg).to_string())?;
        let start = Instant::now();
        let batch = request["batch"]
            .as_u64()
            .map_or(inputs.len(), |b| b as usize)
            .max(1);
        let mut ids = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(batch) {
            ids.extend(generate(&model, chunk, &config)?);
        }
        let tokens: usize = ids.iter().map(Vec::len).sum();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {tokens} tokens in {secs:.2}s ({:.1} tok/s)",
            tokens as f64 / secs
        );
        out.insert(name.clone(), serde_json::to_value(ids)?);
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
