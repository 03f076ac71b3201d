//! The rooms of the crate and what each may import (ARCHITECTURE.md, "Rooms"), checked on the
//! source: a `crate::ROOM` path in a room that must not see ROOM fails this test, with the file
//! and line. Test modules (from `#[cfg(test)]` to the end of a file) are not checked: tests may
//! build fixtures with anything.

use std::path::{Path, PathBuf};

/// (room, rooms it must not import). A room is a top-level module of the crate.
const RULES: &[(&str, &[&str])] = &[
    // The lowest rooms: only errors (`crate::Error`, `crate::Result`, `crate::error`).
    ("kernels", &["*"]),
    ("tokenizers", &["*"]),
    (
        "nn",
        &[
            "backends",
            "pipeline",
            "hub",
            "catalog",
            "models",
            "tokenizers",
            "cli",
            "compare",
            "eval",
        ],
    ),
    (
        "models",
        &[
            "backends", "pipeline", "hub", "catalog", "cli", "compare", "eval",
        ],
    ),
    (
        "generate",
        &[
            "models", "backends", "pipeline", "hub", "catalog", "cli", "compare", "eval",
        ],
    ),
    ("text", &["*"]),
    // Built without `engine` too, beside `text`, which is all it may use.
    (
        "checks",
        &[
            "kernels",
            "tokenizers",
            "nn",
            "models",
            "generate",
            "backends",
            "pipeline",
            "hub",
            "catalog",
            "cli",
            "compare",
            "eval",
            "bench",
            "device",
            "cancel",
            "atomic",
        ],
    ),
];

/// What every room may import, even those marked `*`.
const ALWAYS: &[&str] = &["Error", "Result", "error"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::NAME` in `line` (outside comments), as NAME.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(list) = after.strip_prefix('{') {
            // `crate::{Error, Result}`: every name up to the closing brace.
            let inner = list.split('}').next().unwrap_or("");
            out.extend(
                inner
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").to_string())
                    .filter(|s| !s.is_empty()),
            );
        } else {
            out.push(
                after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
        rest = after;
    }
    out
}

/// The imports that break the rules, as "file:line: room imports NAME".
fn violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (room, forbidden) in RULES {
        let dir = src.join(room);
        let mut files = Vec::new();
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        let single = src.join(format!("{room}.rs"));
        if single.is_file() {
            files.push(single);
        }
        assert!(
            !files.is_empty(),
            "room {room} has no files under {}",
            src.display()
        );
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let body = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in body.lines().enumerate() {
                for name in crate_paths(line) {
                    if name == *room || ALWAYS.contains(&name.as_str()) {
                        continue;
                    }
                    if forbidden.contains(&"*") || forbidden.contains(&name.as_str()) {
                        found.push(format!(
                            "{}:{}: {room} imports crate::{name}",
                            file.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_room_imports_upward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against ARCHITECTURE.md's rules:\n{}",
        found.join("\n")
    );
}

/// The checker itself finds what it must: a planted upward import is reported, a test module
/// and a comment are not.
#[test]
fn the_checker_sees_a_planted_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    for (room, _) in RULES {
        std::fs::create_dir_all(src.join(room)).unwrap();
        std::fs::write(src.join(room).join("mod.rs"), "use crate::Result;\n").unwrap();
    }
    std::fs::write(
        src.join("models/qwen2.rs"),
        "use crate::{Error, Result};\n// crate::catalog in a comment\nuse crate::hub::x;\n\
         #[cfg(test)]\nmod tests { use crate::pipeline; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("kernels/cpu.rs"),
        "fn f() { crate::kernels::cpu::g(); crate::models::x(); }\n",
    )
    .unwrap();
    let found = violations(src);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].ends_with("cpu.rs:1: kernels imports crate::models"),
        "{found:?}"
    );
    assert!(
        found[1].ends_with("qwen2.rs:3: models imports crate::hub"),
        "{found:?}"
    );
}
