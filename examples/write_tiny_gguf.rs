//! Writes the test kit's tiny GGUF files, for tools outside Rust (llama.cpp) to check.
//!
//! Usage: cargo run --example write_tiny_gguf -- OUT.gguf [SEED [PRE]]  (the tiny qwen2 model)
//!        cargo run --example write_tiny_gguf -- --spm-vocab OUT.gguf   (SentencePiece vocabulary)

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, out] if flag == "--spm-vocab" => {
            transbrief::testkit::write_tiny_spm_vocab_gguf(Path::new(out))?;
            println!("{out}: tiny SentencePiece vocabulary GGUF");
        }
        [out, rest @ ..] if rest.len() <= 2 => {
            let seed = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(42);
            let pre = rest.get(1).map_or("qwen2", String::as_str);
            transbrief::testkit::write_tiny_qwen2_gguf_with_pre(Path::new(out), seed, pre)?;
            println!("{out}: tiny qwen2 GGUF, seed {seed}, pre {pre}");
        }
        _ => anyhow::bail!(
            "usage: write_tiny_gguf OUT.gguf [SEED [PRE]] | write_tiny_gguf --spm-vocab OUT.gguf"
        ),
    }
    Ok(())
}
