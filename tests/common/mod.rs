//! Shared set-up for the CLI tests: tiny GGUF models behind a local catalog file, and a small
//! folder of French documents.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};

/// Writes `tiny-<seed>.gguf` for each `(name, seed)` into `dir` and a catalog naming them, with
/// the settings the tests rely on (8 new tokens, 512 context: with more, the random English of a tiny model is too long to brief within its context). Returns the catalog path.
pub fn tiny_catalog(dir: &Path, models: &[(&str, u64)]) -> PathBuf {
    let mut toml = String::new();
    for (name, seed) in models {
        let file = format!("{name}.gguf");
        transbrief::testkit::write_tiny_qwen2_gguf(&dir.join(&file), *seed).expect("tiny gguf");
        toml.push_str(&format!(
            "[models.{name}]\ndescription = \"tiny test model, seed {seed}\"\n\
             family = \"gguf-chat\"\ntasks = [\"translate\", \"brief\"]\n\
             path = \"{}\"\nfiles = {{ model = \"{file}\" }}\nprompts = \"news-fr-en\"\n\
             [models.{name}.generation]\nmax_new_tokens = 8\ncontext = 512\n\n",
            dir.display()
        ));
    }
    let path = dir.join("catalog.toml");
    std::fs::write(&path, toml).expect("catalog");
    path
}

/// French documents, plain and Markdown, some with several paragraphs, one in a subfolder.
pub const DOCS: &[(&str, &str)] = &[
    ("a.fr.txt", "Le chat dort sur le canapé.\n\nIl fait beau aujourd'hui à Paris."),
    ("b.fr.txt", "Le gouvernement a annoncé une nouvelle loi sur l'énergie."),
    ("c.fr.md", "# Titre\n\nUn paragraphe en *Markdown* avec un lien.\n\n- un point\n- un autre point\n"),
    ("d.fr.txt", "Les prix ont augmenté de 3 % en mars.\n\nLa banque centrale réagit.\n\nLes marchés restent calmes."),
    ("sub/e.fr.txt", "Une phrase dans un sous-dossier."),
    ("sub/f.fr.txt", "Le train de 8 h 15 partira de la voie 4. Merci de votre patience."),
];

/// Writes [`DOCS`] under `dir`.
pub fn write_docs(dir: &Path, docs: &[(&str, &str)]) {
    for (name, text) in docs {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("joined path has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write doc");
    }
}

/// Every file under `dir` (records and hidden folders excluded), by relative path, with its
/// bytes, sorted.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
