//! Token-exact parity of our seq2seq models, generation engine and tokenizers with Python
//! transformers, on the tiny random-weight fixtures that `scripts/make-fixtures` builds (and whose
//! expected outputs it records from transformers itself).

use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarBuilder;
use serde::Deserialize;
use transbrief::generate::{generate, EncoderDecoder, GenerationConfig};
use transbrief::nn::linear::LinearKind;

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

/// The fixture's weights through the loader the pipeline uses.
fn var_builder(dir: &Path) -> VarBuilder<'static> {
    transbrief::nn::weights::var_builder_f32(&dir.join("model.safetensors")).expect("safetensors")
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
    use transbrief::tokenizers::marian::MarianTokenizer;
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

/// A case's inputs and transformers' decoded outputs, by case name.
fn case_texts(family: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let expected: serde_json::Value = read_json(&fixture(family).join("expected.json"));
    let case = expected["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    let strings =
        |key: &str| -> Vec<String> { serde_json::from_value(case[key].clone()).expect("strings") };
    (strings("texts"), strings("output_texts"))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn marian_translator_joins_sentence_translations_per_paragraph() {
    use transbrief::backends::seq2seq::{load_marian, Seq2SeqFiles};
    use transbrief::backends::Translator;
    let translator: std::sync::Arc<dyn Translator> = load_marian(
        &Seq2SeqFiles::from_dir(&fixture("marian")),
        LinearKind::F32,
        &Device::Cpu,
    )
    .expect("load");
    // The fixture's generation_config.json asks for beam 4, like opus-mt's.
    let (texts, outputs) = case_texts("marian", "beam4_batch");
    // Inputs 0, 1, 2 and 4 are one sentence each.
    let single = [0, 1, 2, 4];
    let paragraphs: Vec<String> = vec![
        texts[0].clone(),
        String::new(),
        format!("{}\n{}", texts[1], texts[2]),
        texts[4].clone(),
    ];
    let refs: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
    let out = translator.translate(&refs).expect("translate");
    assert_eq!(out.value.len(), 4);
    assert_eq!(out.value[0], one_line(&outputs[single[0]]));
    assert_eq!(out.value[1], "");
    assert_eq!(
        out.value[2],
        one_line(&format!("{} {}", outputs[single[1]], outputs[single[2]]))
    );
    assert_eq!(out.value[3], one_line(&outputs[single[3]]));
    assert!(out.value.iter().all(|p| !p.contains('\n')));
    assert!(out.usage.input_tokens > 0 && out.usage.output_tokens > 0);
}

#[test]
fn bart_and_t5_summarizers_match_transformers_text() {
    use transbrief::backends::seq2seq::{load_bart, load_t5, Seq2SeqFiles};
    use transbrief::backends::SummaryInput;
    let bart = load_bart(
        &Seq2SeqFiles::from_dir(&fixture("bart")),
        LinearKind::F32,
        &Device::Cpu,
    )
    .expect("bart");
    let (texts, outputs) = case_texts("bart", "beam4_batch");
    for (text, want) in texts.iter().zip(&outputs) {
        let got = bart
            .summarize(text, SummaryInput::Document)
            .expect("summarize");
        assert_eq!(got.value, want.trim());
    }
    assert_eq!(bart.max_input_tokens(), 64);

    let t5 = load_t5(
        &Seq2SeqFiles::from_dir(&fixture("flan-t5")),
        LinearKind::F32,
        &Device::Cpu,
    )
    .expect("t5");
    let (texts, outputs) = case_texts("flan-t5", "greedy_batch");
    let expected: Expected = read_json(&fixture("flan-t5").join("expected.json"));
    let input_ids = &expected
        .cases
        .iter()
        .find(|c| c.name == "greedy_batch")
        .expect("case")
        .input_ids;
    for ((text, want), ids) in texts.iter().zip(&outputs).zip(input_ids) {
        let text = text
            .strip_prefix("summarize: ")
            .expect("fixture texts carry the prompt");
        assert_eq!(t5.count_tokens(text).expect("count"), ids.len());
        let got = t5.summarize(text, SummaryInput::Chunk).expect("summarize");
        assert_eq!(got.value, want.trim());
    }
    assert_eq!(t5.max_input_tokens(), 512);
}

#[test]
fn mbart_pre_norm_matches_transformers() {
    check_family("mbart", &bart_like("mbart"));
}

#[test]
fn bart_tokenizer_from_vocab_and_merges_matches_transformers() {
    let dir = fixture("bart");
    let tok = transbrief::tokenizers::hf::bart_bpe_tokenizer(
        &dir.join("vocab.json"),
        &dir.join("merges.txt"),
    )
    .expect("tokenizer");
    let expected: TokenizerExpected = read_json(&dir.join("expected.json"));
    for case in &expected.tokenizer {
        let ids = tok
            .encode(case.text.as_str(), true)
            .expect("encode")
            .get_ids()
            .to_vec();
        assert_eq!(ids, case.ids, "encode {:?}", case.text);
    }
    for case in &expected.decode {
        assert_eq!(
            tok.decode(&case.ids, true).expect("decode"),
            case.text,
            "decode {:?}",
            case.ids
        );
    }
}

/// int8 weights (`--weights int8`) against transformers' f32 outputs on the Marian fixtures:
/// the share of output positions whose token is the same. Quantization moves the scores a
/// little, so a near-tie can flip and the sequence then drifts; most tokens must still agree,
/// and int8 outputs must not depend on the batch either.
#[test]
fn int8_marian_tracks_f32_on_the_parity_fixtures() {
    let (mut same, mut total) = (0usize, 0usize);
    for family in ["marian", "marian-big"] {
        let dir = fixture(family);
        let cfg: transbrief::models::bart::Config = read_json(&dir.join("config.json"));
        let model = transbrief::models::bart::BartForConditionalGeneration::new_with(
            &cfg,
            var_builder(&dir),
            LinearKind::Int8,
        )
        .expect("model");
        let expected: Expected = read_json(&dir.join("expected.json"));
        for case in &expected.cases {
            let config = case_config(&dir, case);
            let got = generate(&model, &case.input_ids, &config).expect("generate");
            for (g, want) in got.iter().zip(&case.output_ids) {
                same += g.iter().zip(want).filter(|(a, b)| a == b).count();
                total += g.len().max(want.len());
            }
            let alone = generate(&model, &case.input_ids[..1], &config).expect("generate");
            assert_eq!(
                alone[0], got[0],
                "{family}/{}: batch changed input 0",
                case.name
            );
        }
    }
    let agreement = same as f64 / total as f64;
    eprintln!(
        "int8 vs transformers f32: {same} of {total} output tokens agree ({:.1}%)",
        100.0 * agreement
    );
    assert!(total > 100, "too few tokens to measure: {total}");
    // 85.8% when written (x86-64-v3 build); a broken int8 path agrees on almost nothing.
    assert!(agreement >= 0.75, "int8 agreement {:.3}", agreement);
}
