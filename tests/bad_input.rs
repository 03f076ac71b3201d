//! Bad inputs through the CLI, with the tiny seeded model: every bad file costs only itself
//! (a `failed` line in the report naming the file and the problem, and an `error:` line on
//! stderr), a good document in the same run is still written, and the exit status is 1. The
//! odd-but-valid encodings (windows-1252, UTF-16 with and without BOM) succeed, and the report
//! says how each was read.
//!
//! Not for: interruption (tests/interrupt.rs) or model files (tests/model_integrity.rs).

mod common;

use std::path::{Path, PathBuf};

use common::{Env, Run};

const GOOD: &str = "Le chat dort sur le canapé. Il fait beau aujourd'hui à Paris.\n";

/// A folder `docs` holding `good.fr.txt` and `name` with `bytes`.
fn docs_with(env: &Env, name: &str, bytes: &[u8]) -> PathBuf {
    let docs = env.folder("docs");
    std::fs::write(docs.join("good.fr.txt"), GOOD).unwrap();
    let path = docs.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    docs
}

fn assert_good_written(run: &Run, docs: &Path) {
    assert_eq!(
        run.doc("good.fr.txt")["status"],
        "done",
        "{}",
        run.describe()
    );
    assert!(docs.join("good.en.txt").is_file(), "{}", run.describe());
    assert!(
        docs.join("good.brief.en.md").is_file(),
        "{}",
        run.describe()
    );
}

/// `name` failed with an error naming it and containing `problem`, on stderr and in the
/// report; the good document was written; exit status 1.
fn assert_fails_alone(run: &Run, docs: &Path, name: &str, problem: &str) {
    assert_doc_fails(run, docs, name, name, problem);
}

/// Document `doc` failed with an error naming `named` and containing `problem`; see
/// [`assert_fails_alone`].
fn assert_doc_fails(run: &Run, docs: &Path, doc: &str, name: &str, problem: &str) {
    let doc = run.doc(doc);
    assert_eq!(doc["status"], "failed", "{}", run.describe());
    let error = doc["error"].as_str().expect("an error message");
    assert!(
        error.contains(name),
        "error does not name the file: {error}"
    );
    assert!(
        error.contains(problem),
        "error does not say '{problem}': {error}"
    );
    let line = run
        .stderr()
        .lines()
        .find(|l| l.starts_with("error:") && l.contains(name))
        .map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("no error line for {name}: {}", run.describe()));
    assert!(line.contains(problem), "{line}");
    assert_good_written(run, docs);
    assert_eq!(run.code(), Some(1), "{}", run.describe());
}

/// A document that must succeed, read with `encoding`.
fn assert_reads_as(name: &str, bytes: &[u8], encoding: &str) {
    let env = Env::new(8);
    let docs = docs_with(&env, name, bytes);
    let run = env.run(&[docs.to_str().unwrap()]);
    let doc = run.doc(name);
    assert_eq!(doc["status"], "done", "{}", run.describe());
    assert_eq!(doc["encoding"], encoding, "{}", run.describe());
    let stem = name.split('.').next().unwrap();
    assert!(docs.join(format!("{stem}.en.txt")).is_file());
    assert_good_written(&run, &docs);
    assert_eq!(run.code(), Some(0), "{}", run.describe());
}

/// A run over `good.fr.txt` and `name` holding `bytes`, in which `name` fails with `problem`.
fn assert_refused(name: &str, bytes: &[u8], problem: &str) -> (Env, PathBuf) {
    let env = Env::new(8);
    let docs = docs_with(&env, name, bytes);
    let run = env.run(&[docs.to_str().unwrap()]);
    assert_fails_alone(&run, &docs, name, problem);
    (env, docs)
}

#[test]
fn nul_bytes_are_a_binary_file() {
    let bytes = b"Bonjour\x00\x01\x02 le monde\x00\x00\x00 et \x00 encore \x07\x00\x00";
    let (_env, docs) = assert_refused("data.txt", bytes, "binary file");
    assert!(!docs.join("data.en.txt").exists());
}

#[test]
fn a_png_renamed_txt_is_a_binary_file() {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend((0u8..=255).cycle().take(2000));
    assert_refused("photo.txt", &png, "PNG image");
}

#[test]
fn invalid_utf8_is_read_as_windows_1252() {
    // "Café à l'été, tête-à-tête." in windows-1252: not valid UTF-8.
    assert_reads_as(
        "latin.txt",
        b"Caf\xe9 \xe0 l'\xe9t\xe9, t\xeate-\xe0-t\xeate.\n",
        "windows-1252",
    );
}

#[test]
fn windows_1252_curly_quotes_and_oe_ligature_succeed() {
    // “Le cœur a ses raisons…” with curly quotes (0x93, 0x94), œ (0x9C) and the ellipsis (0x85).
    assert_reads_as(
        "coeur.txt",
        b"\x93Le c\x9cur a ses raisons\x85\x94 dit-il. L\x92\x9cuvre est finie.\n",
        "windows-1252",
    );
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
    for u in units {
        out.extend(if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_with_bom_succeeds() {
    let text = "Le président a parlé à l'Assemblée. Les députés ont voté.\n";
    assert_reads_as("le.txt", &utf16(text, false, true), "utf-16le");
    assert_reads_as("be.txt", &utf16(text, true, true), "utf-16be");
}

#[test]
fn utf16_without_bom_succeeds() {
    let text = "Le président a parlé à l'Assemblée nationale. Les députés ont voté la loi.\n";
    assert_reads_as("le.txt", &utf16(text, false, false), "utf-16le");
    assert_reads_as("be.txt", &utf16(text, true, false), "utf-16be");
}

#[test]
fn an_empty_file_is_refused() {
    assert_refused("empty.txt", b"", "empty file");
}

#[test]
fn a_whitespace_only_file_is_refused() {
    assert_refused("blank.txt", b"  \n\t\n\r\n   \n", "only whitespace");
}

/// Peak resident memory (KiB) of `transbrief run <args>`, from wait4's rusage for that child.
// The child is reaped by wait4 below, which std's `wait` cannot do while returning the rusage.
#[allow(clippy::zombie_processes)]
fn peak_rss_kib(env: &Env, args: &[&str]) -> (i64, i32) {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("transbrief"))
        .arg("run")
        .args(args)
        .args(env.model_args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which std has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4 failed");
    (usage.ru_maxrss, libc::WEXITSTATUS(status))
}

#[test]
fn a_50_mb_file_is_refused_before_reading() {
    let env = Env::new(8);
    let docs = docs_with(&env, "huge.txt", b"");
    // Sparse: 50 MB of file that costs no disk; read whole, it would cost 50 MB of memory.
    let huge = docs.join("huge.txt");
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(50 * 1000 * 1000)
        .unwrap();
    let run = env.run(&[docs.to_str().unwrap()]);
    assert_fails_alone(&run, &docs, "huge.txt", "--max-bytes");
    let error = run.doc("huge.txt")["error"].as_str().unwrap().to_string();
    let limit = transbrief::text::read::DEFAULT_MAX_BYTES.to_string();
    assert!(error.contains(&limit), "the limit is not named: {error}");

    // Memory: refusing the huge file costs no more than refusing an empty one.
    let alone = env.folder("alone");
    std::fs::rename(&huge, alone.join("huge.txt")).unwrap();
    let empty = env.folder("empty");
    std::fs::write(empty.join("e.txt"), b"").unwrap();
    let (huge_kib, code) = peak_rss_kib(&env, &[alone.to_str().unwrap()]);
    assert_eq!(code, 1);
    let (empty_kib, code) = peak_rss_kib(&env, &[empty.to_str().unwrap()]);
    assert_eq!(code, 1);
    eprintln!("peak RSS: huge file refused {huge_kib} KiB, empty file refused {empty_kib} KiB");
    assert!(
        huge_kib < empty_kib + 16 * 1024,
        "refusing a 50 MB file took {huge_kib} KiB, an empty one {empty_kib} KiB"
    );

    // And the flag raises the limit: then the file is read (and refused for what it holds).
    let raised = env.run(&[alone.to_str().unwrap(), "--max-bytes", "60000000"]);
    let error = raised.doc("huge.txt")["error"].as_str().unwrap();
    assert!(error.contains("binary"), "{}", raised.describe());
}

#[test]
fn a_50_mb_html_page_is_refused_before_reading() {
    let env = Env::new(8);
    let docs = docs_with(&env, "huge.fr.html", b"");
    std::fs::File::options()
        .write(true)
        .open(docs.join("huge.fr.html"))
        .unwrap()
        .set_len(50 * 1000 * 1000)
        .unwrap();
    let run = env.run(&[docs.to_str().unwrap()]);
    assert_fails_alone(&run, &docs, "huge.fr.html", "--max-bytes");
    assert!(!docs.join("huge.en.html").exists());
}

#[test]
fn subtitles_with_bad_timestamps_are_refused_naming_the_cue() {
    let bad = include_bytes!("fixtures/docs/bad-timestamps.fr.srt");
    let (_env, docs) = assert_refused("bad-timestamps.fr.srt", bad, "cue 2 (line 6)");
    assert!(!docs.join("bad-timestamps.en.srt").exists());
    assert!(!docs.join("bad-timestamps.brief.en.md").exists());
}

#[test]
fn one_100_kb_line_without_punctuation_is_chunked_and_translated() {
    let env = Env::new(2);
    let words = [
        "chat", "maison", "rivière", "soleil", "jardin", "école", "pain",
    ];
    let mut line = String::new();
    let mut i = 0usize;
    while line.len() < 100_000 {
        line.push_str(words[i % words.len()]);
        line.push(' ');
        i = i.wrapping_mul(31).wrapping_add(7) % 1009;
    }
    let docs = docs_with(&env, "line.txt", line.trim_end().as_bytes());
    let run = env.run(&[docs.to_str().unwrap()]);
    let doc = run.doc("line.txt");
    assert_eq!(doc["status"], "done", "{}", run.describe());
    // Chunked: many model calls for one paragraph, so far more prompt tokens than one context.
    let prompt = doc["tokens"]["input_tokens"].as_u64().unwrap_or(0);
    assert!(prompt > 10 * 512, "{}", run.describe());
    assert!(docs.join("line.en.txt").is_file());
    assert!(docs.join("line.brief.en.md").is_file());
    assert_eq!(run.code(), Some(0), "{}", run.describe());
}

/// Runs on `docs` so that file permissions hold: as this user, or as `nobody` when this process
/// reads through them (root). `None`, with a SKIP line, when neither is possible.
fn run_honouring_permissions(env: &Env, docs: &Path) -> Option<Run> {
    if !common::permissions_are_bypassed(docs) {
        return Some(env.run(&[docs.to_str().unwrap()]));
    }
    let run = env.run_as_nobody(&[docs.to_str().unwrap()]);
    if run.is_none() {
        eprintln!("SKIP: permissions are bypassed here (root) and `nobody` cannot be used");
    }
    run
}

#[test]
fn an_unreadable_file_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(8);
    let docs = docs_with(&env, "secret.txt", b"Ceci est secret.\n");
    std::fs::set_permissions(
        docs.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let Some(run) = run_honouring_permissions(&env, &docs) else {
        return;
    };
    assert_fails_alone(&run, &docs, "secret.txt", "ermission denied");
}

#[test]
fn a_symlink_loop_is_reported_and_the_rest_goes_on() {
    let env = Env::new(8);
    let docs = docs_with(&env, "ok.txt", b"Bonjour.\n");
    std::os::unix::fs::symlink(&docs, docs.join("loop")).unwrap();
    // And a link to itself: reading it fails with ELOOP.
    std::os::unix::fs::symlink("self.txt", docs.join("self.txt")).unwrap();
    let run = env.run(&[
        docs.to_str().unwrap(),
        docs.join("self.txt").to_str().unwrap(),
    ]);
    assert_fails_alone(&run, &docs, "loop", "symbolic link loop");
    let error = run.doc("self.txt")["error"].as_str().unwrap();
    assert!(error.contains("self.txt"), "{error}");
    assert_eq!(run.doc("ok.txt")["status"], "done");
}

#[test]
fn ten_thousand_files_are_planned_by_a_dry_run() {
    let env = Env::new(8);
    let docs = env.folder("many");
    for i in 0..10_000 {
        let sub = docs.join(format!("d{:02}", i % 50));
        if i < 50 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("n{i:05}.fr.txt")), format!("Note {i}.\n")).unwrap();
    }
    let run = env.run(&[docs.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let report = run.report.as_ref().unwrap();
    assert_eq!(report["totals"]["planned"], 10_000);
    let lines = run
        .stdout()
        .lines()
        .filter(|l| l.starts_with("write (new)"))
        .count();
    assert_eq!(lines, 20_000, "a translation and a brief for each");
    // Nothing written by a dry run.
    assert!(!docs.join("d00/n00000.en.txt").exists());
    assert!(!docs.join("d00/.transbrief").exists());
}

#[test]
fn a_foreign_file_in_the_way_is_never_overwritten() {
    let env = Env::new(8);
    let docs = docs_with(&env, "mine.fr.txt", b"Mon texte.\n");
    let foreign = docs.join("mine.en.txt");
    let original = b"my own careful translation\n";
    std::fs::write(&foreign, original).unwrap();
    let run = env.run(&[docs.to_str().unwrap()]);
    assert_doc_fails(
        &run,
        &docs,
        "mine.fr.txt",
        "mine.en.txt",
        "never overwritten",
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), original);
    assert!(
        !docs.join("mine.brief.en.md").exists(),
        "nothing of it is written"
    );
    // --force does not overwrite it either.
    let run = env.run(&[docs.to_str().unwrap(), "--force"]);
    assert_eq!(run.doc("mine.fr.txt")["status"], "failed");
    assert_eq!(std::fs::read(&foreign).unwrap(), original);
}

#[test]
fn two_originals_with_one_output_name_keep_one_and_report_the_other() {
    let env = Env::new(8);
    let docs = docs_with(&env, "a.fr.txt", b"Premier.\n");
    std::fs::write(docs.join("a.txt"), b"Second.\n").unwrap();
    let run = env.run(&[docs.to_str().unwrap()]);
    assert_fails_alone(&run, &docs, "a.txt", "also the output of");
    assert_eq!(run.doc("a.fr.txt")["status"], "done");
}

#[test]
fn an_output_folder_that_cannot_be_made_costs_only_its_documents() {
    let env = Env::new(8);
    let docs = docs_with(&env, "sub/x.fr.txt", b"Un texte.\n");
    let out = env.folder("out");
    // Where out/sub should be made there is a regular file: no write can go there, root or not.
    std::fs::write(out.join("sub"), b"in the way\n").unwrap();
    let run = env.run(&[docs.to_str().unwrap(), "--out-dir", out.to_str().unwrap()]);
    let doc = run.doc("x.fr.txt");
    assert_eq!(doc["status"], "failed", "{}", run.describe());
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("sub/x.en.txt"), "{error}");
    assert!(error.contains("--out-dir"), "{error}");
    assert_eq!(
        run.doc("good.fr.txt")["status"],
        "done",
        "{}",
        run.describe()
    );
    assert!(out.join("good.en.txt").is_file());
    assert_eq!(std::fs::read(out.join("sub")).unwrap(), b"in the way\n");
    assert_eq!(run.code(), Some(1));
}

#[test]
fn a_read_only_output_folder_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(8);
    let docs = docs_with(&env, "ro/x.fr.txt", b"Un texte.\n");
    let ro = docs.join("ro");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let run = run_honouring_permissions(&env, &docs);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(run) = run else {
        return;
    };
    // The document fails, naming the output that cannot be written there, and what to do.
    assert_doc_fails(&run, &docs, "x.fr.txt", "ro/x.en.txt", "ermission denied");
    let error = run.doc("x.fr.txt")["error"].as_str().unwrap_or_default();
    assert!(error.contains("--out-dir"), "{error}");
}
