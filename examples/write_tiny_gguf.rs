//! Writes the test kit's tiny Qwen2 GGUF to a file, for tools outside Rust (llama.cpp) to check.
//!
//! Usage: cargo run --example write_tiny_gguf -- OUT.gguf [SEED]

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: write_tiny_gguf OUT.gguf [SEED]"))?;
    let seed = match args.next() {
        Some(s) => s.parse()?,
        None => 42,
    };
    transbrief::testkit::write_tiny_qwen2_gguf(std::path::Path::new(&out), seed)?;
    println!("{out}: tiny qwen2 GGUF, seed {seed}");
    Ok(())
}
