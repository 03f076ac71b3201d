//! Greedy token ids of any supported GGUF model, for checking an architecture against llama.cpp
//! by hand (the tests in tests/gguf_parity.rs do it against committed references).
//!
//! Usage: cargo run --release --example gguf_greedy -- MODEL.gguf STEPS (TEXT | ids:[1,2,3])
//! Prints the top 3 logits after the prompt, the prompt ids (BOS added when the file says so) and the STEPS greedy ids after them,
//! end-of-sequence ignored. With GGUF_GREEDY_DUMP=FILE, also writes the logits after the prompt
//! there (raw little-endian f32).

use candle_core::quantized::gguf_file;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, steps, text] = args.as_slice() else {
        anyhow::bail!("usage: gguf_greedy MODEL.gguf STEPS TEXT|ids:[1,2,3]");
    };
    let steps: usize = steps.parse()?;
    let mut f = std::fs::File::open(path)?;
    let ct = gguf_file::Content::read(&mut f)?;
    let tok = transbrief::tokenizers::gguf::GgufTokenizer::from_gguf(&ct)?;
    let ids: Vec<u32> = match text.strip_prefix("ids:") {
        Some(list) => serde_json::from_str(list)?,
        None => {
            let mut ids = Vec::new();
            if tok.add_bos() {
                ids.extend(tok.bos_id());
            }
            ids.extend(tok.encode(text)?);
            ids
        }
    };
    let arch = transbrief::models::architecture_of(&ct).map_err(anyhow::Error::msg)?;
    let model = (arch.load)(&ct, &mut f, ids.len() + steps + 1, &Device::Cpu)?;
    let mut cache = model.new_cache();
    let mut logits = model.forward(&ids, &mut cache)?;
    let first = logits.to_vec1::<f32>()?;
    if let Ok(dump) = std::env::var("GGUF_GREEDY_DUMP") {
        // The logits after the prompt, raw little-endian f32, for numpy.fromfile.
        let bytes: Vec<u8> = first.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dump, bytes)?;
    }
    let mut order: Vec<usize> = (0..first.len()).collect();
    order.sort_by(|&a, &b| first[b].total_cmp(&first[a]));
    let top: Vec<String> = order[..3]
        .iter()
        .map(|&i| format!("{i}: {:.4}", first[i]))
        .collect();
    println!("top after the prompt {}", top.join(", "));
    let mut out = Vec::new();
    for _ in 0..steps {
        let next = logits.argmax(0)?.to_scalar::<u32>()?;
        out.push(next);
        logits = model.forward(&[next], &mut cache)?;
    }
    println!("prompt {ids:?}");
    println!("greedy {out:?}");
    println!("text {:?}", tok.decode(&out)?);
    Ok(())
}
