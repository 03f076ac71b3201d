//! Token-exact parity of our seq2seq models, generation engine and tokenizers with Python
//! transformers, on the tiny random-weight fixtures that `scripts/make-fixtures` builds (and whose
//! expected outputs it records from transformers itself).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;
use transbrief::generate::{generate, EncoderDecoder, GenerationConfig};

#[derive(Deserialize)]
struct Case {
    name: String,
    input_ids: Vec<Vec<u32>>,
    generation: serde_json::Map<String, serde_json::Value>,
    output_ids: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct Expected {
    cases: Vec<Case>,
}

fn fixture(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seq2seq")
        .join(family)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn var_builder(dir: &Path) -> VarBuilder<'static> {
    // SAFETY: the fixture file is not modified while the test runs.
    unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
        .expect("safetensors")
    }
}

/// The model's generation config with a case's overrides, as `model.generate(**overrides)`.
fn case_config(dir: &Path, case: &Case) -> GenerationConfig {
    let mut base: serde_json::Map<String, serde_json::Value> =
        read_json(&dir.join("generation_config.json"));
    for (k, v) in &case.generation {
        base.insert(k.clone(), v.clone());
    }
    GenerationConfig::from_json(&serde_json::Value::Object(base).to_string()).expect("config")
}

/// Runs every case of a fixture, each input both in its batch and alone, and requires the ids
/// transformers produced.
fn check_family(family: &str, model: &dyn EncoderDecoder) {
    let dir = fixture(family);
    let expected: Expected = read_json(&dir.join("expected.json"));
    let mut failures = Vec::new();
    for case in &expected.cases {
        let config = case_config(&dir, case);
        let got = generate(model, &case.input_ids, &config).expect("generate");
        for (i, (g, want)) in got.iter().zip(&case.output_ids).enumerate() {
            if g != want {
                failures.push(format!(
                    "{family}/{} input {i}:\n  ours {g:?}\n  want {want:?}",
                    case.name
                ));
            }
        }
        assert_eq!(got.len(), case.output_ids.len());
        // The output for an input must not depend on the rest of the batch.
        let alone = generate(model, &case.input_ids[..1], &config).expect("generate");
        assert_eq!(
            alone[0], got[0],
            "{family}/{}: batch changed input 0",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn bart_like(family: &str) -> transbrief::models::bart::BartForConditionalGeneration {
    let dir = fixture(family);
    let cfg: transbrief::models::bart::Config = read_json(&dir.join("config.json"));
    transbrief::models::bart::BartForConditionalGeneration::new(&cfg, var_builder(&dir))
        .expect("model")
}

#[test]
fn marian_matches_transformers() {
    check_family("marian", &bart_like("marian"));
}

#[test]
fn marian_big_shape_matches_transformers() {
    check_family("marian-big", &bart_like("marian-big"));
}

#[test]
fn bart_matches_transformers() {
    check_family("bart", &bart_like("bart"));
}

#[derive(Deserialize)]
struct TokenizerCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct DecodeCase {
    ids: Vec<u32>,
    text: String,
}

#[derive(Deserialize)]
struct TokenizerExpected {
    tokenizer: Vec<TokenizerCase>,
    decode: Vec<DecodeCase>,
}

#[test]
fn marian_tokenizer_from_spm_matches_marian_tokenizer() {
    use transbrief::models::marian::MarianTokenizer;
    for family in ["marian", "marian-big"] {
        let dir = fixture(family);
        let tok = MarianTokenizer::from_files(&dir.join("source.spm"), &dir.join("vocab.json"))
            .expect("tokenizer");
        let expected: TokenizerExpected = read_json(&dir.join("expected.json"));
        for case in &expected.tokenizer {
            assert_eq!(
                tok.encode(&case.text).unwrap(),
                case.ids,
                "encode {:?}",
                case.text
            );
        }
        for case in &expected.decode {
            assert_eq!(tok.decode(&case.ids), case.text, "decode {:?}", case.ids);
        }
        // The fixture inputs of every case were tokenized by MarianTokenizer too.
        let cases: serde_json::Value = read_json(&dir.join("expected.json"));
        for case in cases["cases"].as_array().expect("cases") {
            let texts = case["texts"].as_array().expect("texts");
            let ids = case["input_ids"].as_array().expect("ids");
            for (text, ids) in texts.iter().zip(ids) {
                let want: Vec<u32> = serde_json::from_value(ids.clone()).expect("ids");
                assert_eq!(tok.encode(text.as_str().expect("text")).unwrap(), want);
            }
            let outputs = case["output_ids"].as_array().expect("outputs");
            let texts = case["output_texts"].as_array().expect("output texts");
            for (ids, text) in outputs.iter().zip(texts) {
                let ids: Vec<u32> = serde_json::from_value(ids.clone()).expect("ids");
                assert_eq!(
                    tok.decode(&ids),
                    text.as_str().expect("text"),
                    "decode {ids:?}"
                );
            }
        }
    }
}

#[test]
fn flan_t5_matches_transformers() {
    let dir = fixture("flan-t5");
    let cfg: transbrief::models::t5::Config = read_json(&dir.join("config.json"));
    let model = transbrief::models::t5::T5ForConditionalGeneration::new(&cfg, var_builder(&dir))
        .expect("model");
    check_family("flan-t5", &model);
}
