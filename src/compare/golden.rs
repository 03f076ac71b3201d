//! `transbrief run --check-golden DIR`: compares each output of a run with the committed file of
//! the same relative path under DIR, so other people's test suites can fail on any change.
//!
//! Relative paths are taken below `--out-dir` when one is given, else below the folder (or the
//! file's folder) that was passed on the command line. Not for: scoring (`eval`), running models.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::pipeline::report::Report;

/// How one output compares with its golden file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Golden {
    /// Byte-identical.
    Same,
    /// Differs; a unified diff from the golden file to the output.
    Differs(String),
    /// No golden file at that relative path.
    Missing,
    /// The output or the golden file could not be read.
    Unreadable(String),
}

/// One output and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenCheck {
    /// The output's path relative to its root (and so the golden file's path below DIR).
    pub relative: PathBuf,
    pub output: PathBuf,
    pub outcome: Golden,
}

/// The output's path below the first root that holds it; roots that are files stand for their
/// folder. `None` when no root holds it.
fn relative_to(output: &Path, roots: &[PathBuf]) -> Option<PathBuf> {
    roots.iter().find_map(|root| {
        let base = if root.is_file() {
            root.parent().unwrap_or(Path::new(""))
        } else {
            root.as_path()
        };
        output.strip_prefix(base).ok().map(Path::to_path_buf)
    })
}

/// Checks every output the report lists as written or up to date against `golden_dir`.
/// `roots` are the paths the run was given, or its `--out-dir` alone.
pub fn check(report: &Report, roots: &[PathBuf], golden_dir: &Path) -> Vec<GoldenCheck> {
    let mut checks: Vec<GoldenCheck> = report
        .documents
        .iter()
        .flat_map(|d| d.outputs.iter())
        .filter(|o| o.action == "written" || o.action == "up-to-date")
        .map(|o| {
            let relative = relative_to(&o.path, roots).unwrap_or_else(|| o.path.clone());
            let outcome = compare_file(&o.path, &golden_dir.join(&relative), &relative);
            GoldenCheck {
                relative,
                output: o.path.clone(),
                outcome,
            }
        })
        .collect();
    checks.sort_by(|a, b| a.relative.cmp(&b.relative));
    checks
}

fn compare_file(output: &Path, golden: &Path, relative: &Path) -> Golden {
    if !golden.exists() {
        return Golden::Missing;
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let (got, want) = match (read(output), read(golden)) {
        (Ok(g), Ok(w)) => (g, w),
        (Err(e), _) | (_, Err(e)) => return Golden::Unreadable(e),
    };
    if got == want {
        return Golden::Same;
    }
    let got = String::from_utf8_lossy(&got);
    let want = String::from_utf8_lossy(&want);
    let name = relative.display().to_string();
    let diff = TextDiff::from_lines(want.as_ref(), got.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("golden/{name}"), &format!("output/{name}"))
        .to_string();
    // Bytes that differ only where lossy decoding hides them still count as a difference.
    Golden::Differs(if diff.is_empty() {
        "(the files differ in bytes that are not valid UTF-8)\n".into()
    } else {
        diff
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::report::{DocReport, OutputReport};

    fn report_with(outputs: &[(&Path, &'static str)]) -> Report {
        let mut d = DocReport::new(PathBuf::from("x"));
        d.outputs = outputs
            .iter()
            .map(|(p, action)| OutputReport {
                kind: "translation",
                path: p.to_path_buf(),
                action,
                reason: None,
            })
            .collect();
        Report::new("cpu".into(), 1, vec![d], 0.0)
    }

    #[test]
    fn same_differs_missing_and_skips_unwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let golden = tmp.path().join("golden");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::create_dir_all(golden.join("sub")).unwrap();
        std::fs::write(out.join("a.en.txt"), "one\ntwo\n").unwrap();
        std::fs::write(golden.join("a.en.txt"), "one\ntwo\n").unwrap();
        std::fs::write(out.join("sub/b.en.txt"), "one\nthree\n").unwrap();
        std::fs::write(golden.join("sub/b.en.txt"), "one\ntwo\n").unwrap();
        std::fs::write(out.join("c.en.txt"), "new\n").unwrap();
        let a = out.join("a.en.txt");
        let b = out.join("sub/b.en.txt");
        let c = out.join("c.en.txt");
        let failed = out.join("d.en.txt");
        let report = report_with(&[
            (&a, "written"),
            (&b, "up-to-date"),
            (&c, "written"),
            (&failed, "not-written"),
        ]);
        let checks = check(&report, std::slice::from_ref(&out), &golden);
        assert_eq!(checks.len(), 3);
        assert_eq!(checks[0].relative, Path::new("a.en.txt"));
        assert_eq!(checks[0].outcome, Golden::Same);
        assert_eq!(checks[1].outcome, Golden::Missing);
        let Golden::Differs(diff) = &checks[2].outcome else {
            panic!("{:?}", checks[2].outcome);
        };
        assert!(diff.contains("--- golden/sub/b.en.txt"), "{diff}");
        assert!(
            diff.contains("-two\n") && diff.contains("+three\n"),
            "{diff}"
        );
    }

    #[test]
    fn file_roots_stand_for_their_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let doc = tmp.path().join("a.fr.txt");
        std::fs::write(&doc, "x").unwrap();
        let rel = relative_to(&tmp.path().join("a.en.txt"), &[doc]);
        assert_eq!(rel.as_deref(), Some(Path::new("a.en.txt")));
    }
}
