//! Broken model files and catalogs, through the CLI: a truncated or corrupted GGUF, a file whose
//! sha256 is not the catalog's, a GGUF without tokenizer metadata, a malformed catalog and an
//! unknown model name. Each gives a clear error naming the file (or the line and column, or the
//! nearest name), never a panic.
//!
//! Not for: documents (tests/bad_input.rs).

mod common;

use std::path::Path;

use candle_core::quantized::gguf_file;
use common::{Env, Run};

/// Runs on one good document; the model is broken, so the document fails.
fn run_one(env: &Env) -> (Run, std::path::PathBuf) {
    let docs = env.folder("docs");
    std::fs::write(docs.join("a.fr.txt"), "Bonjour à tous.\n").unwrap();
    (env.run(&[docs.to_str().unwrap()]), docs)
}

fn assert_clean_failure(run: &Run, needles: &[&str]) {
    let stderr = run.stderr();
    assert!(!stderr.contains("panicked"), "{}", run.describe());
    assert_eq!(run.code(), Some(1), "{}", run.describe());
    let error = run.doc("a.fr.txt")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for n in needles {
        assert!(error.contains(n), "error lacks '{n}': {error}");
        assert!(stderr.contains(n), "stderr lacks '{n}': {stderr}");
    }
}

#[test]
fn a_truncated_gguf_is_a_clear_error() {
    let env = Env::new(4);
    let bytes = std::fs::read(&env.model).unwrap();
    std::fs::write(&env.model, &bytes[..bytes.len() / 2]).unwrap();
    let (run, docs) = run_one(&env);
    assert_clean_failure(&run, &["tiny.gguf"]);
    assert!(!docs.join("a.en.txt").exists());
}

#[test]
fn corrupted_gguf_headers_are_clear_errors() {
    let env = Env::new(4);
    let good = std::fs::read(&env.model).unwrap();
    // Offsets 8.., 16.. and 24..: tensor count, metadata count, first key's length. Then bytes
    // of the first key's text, then a spread of header bytes.
    let offsets: Vec<usize> = [8, 16, 24, 32, 40, 64, 100, 200, 400]
        .into_iter()
        .filter(|&o| o + 8 <= good.len())
        .collect();
    for offset in offsets {
        for garbage in [[0xFFu8; 8], [0x7F, 0, 0, 0, 0, 0, 0, 0x10]] {
            let mut bad = good.clone();
            bad[offset..offset + 8].copy_from_slice(&garbage);
            std::fs::write(&env.model, &bad).unwrap();
            let (run, _) = run_one(&env);
            let what = format!("bytes {offset}..{} = {garbage:02x?}", offset + 8);
            assert!(
                !run.stderr().contains("panicked"),
                "{what}: {}",
                run.describe()
            );
            if run.code() != Some(0) {
                assert_eq!(run.code(), Some(1), "{what}: {}", run.describe());
                let error = run.doc("a.fr.txt")["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains("tiny.gguf") || error.contains("model 'tiny'"),
                    "{what}: {error}"
                );
            }
        }
    }
}

#[test]
fn a_wrong_sha256_names_the_file_and_the_expected_hash() {
    let expected = "0".repeat(64);
    let env = Env::with_catalog_extra(4, &format!("sha256 = {{ \"tiny.gguf\" = \"{expected}\" }}"));
    let (run, docs) = run_one(&env);
    assert_clean_failure(&run, &["tiny.gguf", &expected]);
    assert!(!docs.join("a.en.txt").exists());
}

/// Rewrites the GGUF at `path` without the metadata keys starting with `prefix`.
fn drop_metadata(path: &Path, prefix: &str) {
    let mut f = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let device = candle_core::Device::Cpu;
    let tensors: Vec<(String, _)> = content
        .tensor_infos
        .keys()
        .map(|n| (n.clone(), content.tensor(&mut f, n, &device).unwrap()))
        .collect();
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with(prefix))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, _)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut out, &metadata, &tensor_refs).unwrap();
}

#[test]
fn a_gguf_without_tokenizer_metadata_is_a_clear_error() {
    let env = Env::new(4);
    drop_metadata(&env.model, "tokenizer.");
    let (run, _) = run_one(&env);
    assert_clean_failure(&run, &["tiny.gguf", "tokenizer"]);
}

/// A model whose context cannot hold one translation window (here the catalog caps it at 64
/// tokens) fails each document with an error naming the file and the context, at load.
#[test]
fn a_context_smaller_than_a_window_is_a_clear_error() {
    let env = Env::new(4);
    let text = std::fs::read_to_string(&env.catalog).unwrap();
    std::fs::write(&env.catalog, text.replace("context = 512", "context = 64")).unwrap();
    let (run, _) = run_one(&env);
    assert_clean_failure(&run, &["tiny.gguf", "a context of 64 tokens cannot hold"]);
}

#[test]
fn a_malformed_catalog_gives_line_and_column() {
    let env = Env::new(4);
    let text = std::fs::read_to_string(&env.catalog).unwrap();
    std::fs::write(
        &env.catalog,
        text.replace("context = 512", "context = = 512"),
    )
    .unwrap();
    let (run, _) = run_one(&env);
    assert_eq!(run.code(), Some(2), "{}", run.describe());
    let stderr = run.stderr();
    assert!(stderr.contains("catalog.toml"), "{stderr}");
    let line = text
        .lines()
        .position(|l| l.starts_with("context = 512"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("line {line}, column")),
        "no line {line}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unknown_model_name_gets_a_did_you_mean() {
    let env = Env::new(4);
    let docs = env.folder("docs");
    std::fs::write(docs.join("a.fr.txt"), "Bonjour.\n").unwrap();
    let out = assert_cmd::Command::cargo_bin("transbrief")
        .unwrap()
        .args(["run", docs.to_str().unwrap(), "--offline", "--catalog"])
        .arg(&env.catalog)
        .args(["--translate-model", "tinny"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tinny"), "{stderr}");
    assert!(stderr.contains("did you mean 'tiny'"), "{stderr}");
    assert!(!docs.join("a.en.txt").exists());
}
