//! Prompt and decode speed of the quantized Qwen2 forward pass, ours beside candle-transformers'
//! stock `quantized_qwen2`, on the same ids: a bench aid for `scripts/bench`.
//!
//! Usage: cargo run --release --example qwen_speed -- MODEL.gguf [PROMPT_TOKENS] [DECODE_STEPS]

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: qwen_speed MODEL.gguf [N] [STEPS]"))?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let dev = Device::Cpu;
    let ids: Vec<u32> = (0..n as u32).map(|i| 1000 + (i * 7919) % 20000).collect();

    let mut f = std::fs::File::open(&path)?;
    let ct = gguf_file::Content::read(&mut f)?;
    let ours = transbrief::models::qwen2::from_gguf(&ct, &mut f, n + steps + 1, &dev)?;
    let mut cache = ours.new_cache();
    let t = Instant::now();
    let mut logits = ours.forward(&ids, &mut cache)?;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut out = Vec::new();
    for _ in 0..steps {
        let next = logits.argmax(0)?.to_scalar::<u32>()?;
        out.push(next);
        logits = ours.forward(&[next], &mut cache)?;
    }
    let decode = t.elapsed().as_secs_f64();
    println!(
        "transbrief qwen2: prompt {:.1} tok/s, decode {:.1} tok/s, first ids {:?}",
        n as f64 / prefill,
        steps as f64 / decode,
        &out[..8.min(out.len())]
    );

    let mut f = std::fs::File::open(&path)?;
    let ct = gguf_file::Content::read(&mut f)?;
    let mut stock =
        candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, &dev)?;
    let t = Instant::now();
    let mut logits = stock
        .forward(&Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?, 0)?
        .squeeze(0)?;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut out = Vec::new();
    for i in 0..steps {
        let next = logits.argmax(0)?.to_scalar::<u32>()?;
        out.push(next);
        logits = stock
            .forward(&Tensor::new(&[next], &dev)?.unsqueeze(0)?, n + i)?
            .squeeze(0)?;
    }
    let decode = t.elapsed().as_secs_f64();
    println!(
        "candle stock qwen2: prompt {:.1} tok/s, decode {:.1} tok/s, first ids {:?}",
        n as f64 / prefill,
        steps as f64 / decode,
        &out[..8.min(out.len())]
    );
    Ok(())
}
