//! Runs our generation engine on token ids and prints the generated ids, for comparing with
//! transformers (see `scripts/check-marian-real-size`).
//!
//! Usage: `cargo run --example seq2seq_ids -- MODEL_DIR REQUEST.json`
//! where REQUEST.json is `{"inputs": [[ids...], ...], "runs": {"name": {generation overrides}},
//! "batch": N, "first_logits": PATH}` (`batch` optional: inputs per generate call, default all;
//! `first_logits` optional: write the first decoder step's logits there, f32 little-endian,
//! row-major `(inputs, vocab)`);
//! prints `{"name": [[ids...], ...], ...}` and the time each run took on stderr.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use transbrief::generate::{generate, pad_batch, EncoderDecoder, GenerationConfig};
use transbrief::models::bart::{BartForConditionalGeneration, Config};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, request] = args.as_slice() else {
        bail!("usage: seq2seq_ids MODEL_DIR REQUEST.json");
    };
    let dir = std::path::Path::new(dir);
    let cfg: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let weights = dir.join("model.safetensors");
    let vb = transbrief::nn::weights::var_builder_f32(&weights)?;
    let model = BartForConditionalGeneration::new(&cfg, vb)?;
    let request: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(request)?)?;
    let inputs: Vec<Vec<u32>> = serde_json::from_value(request["inputs"].clone())?;
    let base: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("generation_config.json"))
            .context("generation_config.json")?,
    )?;
    if let Some(path) = request["first_logits"].as_str() {
        let start =
            GenerationConfig::from_json(&serde_json::Value::Object(base.clone()).to_string())?
                .decoder_start()?;
        let (ids, mask) = pad_batch(&inputs, start, &Device::Cpu)?;
        let mut state = model.encode(&ids, &mask)?;
        let tokens = candle_core::Tensor::from_vec(
            vec![start; inputs.len()],
            (inputs.len(), 1),
            &Device::Cpu,
        )?;
        let logits = model
            .decode_step(&tokens, &mut state)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(path, bytes)?;
    }
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
