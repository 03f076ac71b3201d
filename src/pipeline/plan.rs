//! Planning a run: which files are documents, and which output files each one gets.
//!
//! What it is for: walking the paths the user gave (files or folders, `ignore` crate, hidden
//! files and `.transbrief` records skipped, symlinks followed with loop detection), applying
//! `--include`/`--exclude`, naming outputs, and catching collisions before any model runs.
//!
//! Naming: `name.fr.txt` and `name.txt` give `name.en.txt` and `name.brief.en.md`; Markdown
//! keeps `.md` (`name.fr.md` gives `name.en.md`). Files that look like our outputs or like
//! references (`*.en.*`, `*.brief.*`, `*.ref.*`) are never taken as inputs.
//!
//! Not for: up-to-date checks and writing (`write`, `run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::text::format::{Format, BRIEF_SUFFIX};


/// What to walk and where outputs go.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub paths: Vec<PathBuf>,
    /// Globs a file must match (its name or its path below the walked folder); empty means
    /// every format's extensions ([`Format::default_globs`]).
    pub include: Vec<String>,
    /// Globs that exclude files or whole folders.
    pub exclude: Vec<String>,
    /// Write outputs under this folder, mirroring the input tree, instead of beside inputs.
    pub out_dir: Option<PathBuf>,
}

/// One document and its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub format: &'static Format,
    pub translation: PathBuf,
    pub brief: PathBuf,
}

/// A path that could not be planned, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
}

/// The documents to process, in a stable order, and the paths that failed.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub problems: Vec<Problem>,
}

/// Output file names for an input file name (the translation's as its format says, and the
/// brief's), or `None` when the name is not a document's (no stem, or one of our outputs or a
/// reference).
pub fn output_names(file_name: &str) -> Option<(String, String)> {
    if is_output_or_reference(file_name) {
        return None;
    }
    let (stem, ext) = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext),
        _ => (file_name, ""),
    };
    let base = stem.strip_suffix(".fr").unwrap_or(stem);
    if base.is_empty() {
        return None;
    }
    let format = Format::by_extension(ext).unwrap_or(&crate::text::format::PLAIN);
    Some((format.translation_name(base), format!("{base}{BRIEF_SUFFIX}")))
}

/// Whether a file name is one transbrief writes, or a reference to score against.
pub fn is_output_or_reference(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('.').collect();
    // Every dotted part but the first (the base name) and the last (the extension).
    let inner = if parts.len() > 2 {
        &parts[1..parts.len() - 1]
    } else {
        &[][..]
    };
    inner
        .iter()
        .any(|p| matches!(*p, "en" | "brief" | "ref" | "highlights"))
        || lower.ends_with(".highlights.txt")
}

fn globset(globs: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).map_err(|e| format!("bad glob '{g}': {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

/// Matches a glob set against a file's name and its path below the walk root.
fn matches(set: &GlobSet, rel: &Path) -> bool {
    set.is_match(rel) || rel.file_name().is_some_and(|n| set.is_match(Path::new(n)))
}

/// Walks `opts.paths` and names every output. Errors in `include`/`exclude` are usage errors.
pub fn plan(opts: &PlanOptions) -> Result<Plan, String> {
    let include = if opts.include.is_empty() {
        globset(&Format::default_globs())?
    } else {
        globset(&opts.include)?
    };
    let exclude = globset(&opts.exclude)?;
    let mut plan = Plan::default();
    // (input, output dir)
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    for root in &opts.paths {
        match std::fs::metadata(root) {
            Err(e) => plan.problems.push(Problem {
                path: root.clone(),
                message: format!("cannot read: {e}"),
            }),
            Ok(meta) if meta.is_file() => {
                // A file named on the command line is taken whatever its extension.
                let out = match &opts.out_dir {
                    Some(d) => d.clone(),
                    None => root.parent().unwrap_or(Path::new("")).to_path_buf(),
                };
                found.push((root.clone(), out));
            }
            Ok(_) => walk_folder(root, opts, &include, &exclude, &mut found, &mut plan.problems),
        }
    }
    let mut jobs = name_outputs(found);
    resolve_collisions(&mut jobs, &mut plan.problems);
    plan.jobs = jobs;
    Ok(plan)
}

/// Walks one folder, adding every file `include` takes (with its output folder) to `found`.
/// Excluded folders are pruned, not walked.
fn walk_folder(
    root: &Path,
    opts: &PlanOptions,
    include: &GlobSet,
    exclude: &GlobSet,
    found: &mut Vec<(PathBuf, PathBuf)>,
    problems: &mut Vec<Problem>,
) {
    let prune_root = root.to_path_buf();
    let prune = exclude.clone();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(true)
        .follow_links(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| {
            let rel = e.path().strip_prefix(&prune_root).unwrap_or(e.path());
            rel.as_os_str().is_empty() || !matches(&prune, rel)
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem {
                    path: error_path(&e).unwrap_or_else(|| root.to_path_buf()),
                    message: walk_message(&e),
                });
                continue;
            }
        };
        let path = entry.path();
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(path);
        if !matches(include, rel) {
            continue;
        }
        let out = match &opts.out_dir {
            Some(d) => d.join(rel.parent().unwrap_or(Path::new(""))),
            None => path.parent().unwrap_or(Path::new("")).to_path_buf(),
        };
        found.push((path.to_path_buf(), out));
    }
}

/// The job of each `(input, output folder)`, in path order; an input may have been found twice
/// (a folder and a file in it), and names that are not documents' are dropped.
fn name_outputs(mut found: Vec<(PathBuf, PathBuf)>) -> Vec<Job> {
    found.sort();
    found.dedup();
    let mut jobs: Vec<Job> = Vec::new();
    for (input, out_dir) in found {
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((t, b)) = output_names(&name) else {
            continue;
        };
        let format = Format::of_document(&input);
        jobs.push(Job {
            input,
            format,
            translation: out_dir.join(t),
            brief: out_dir.join(b),
        });
    }
    jobs
}

/// Priority of an input for an output name two inputs share: an explicit `.fr.` tag first, then
/// plain text, then the path order.
fn priority(job: &Job) -> (u8, u8, PathBuf) {
    let name = job
        .input
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let tagged = if name.contains(".fr.") { 0 } else { 1 };
    let plain = if *job.format == crate::text::format::PLAIN {
        0
    } else {
        1
    };
    (tagged, plain, job.input.clone())
}

/// Drops jobs whose outputs another job (of higher priority) writes, or whose outputs are
/// another job's input, recording each as a problem.
fn resolve_collisions(jobs: &mut Vec<Job>, problems: &mut Vec<Problem>) {
    jobs.sort_by_key(priority);
    let inputs: BTreeMap<PathBuf, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.input.clone(), i))
        .collect();
    let mut owner: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut keep = Vec::with_capacity(jobs.len());
    for job in jobs.drain(..) {
        let mut clash = None;
        for out in [&job.translation, &job.brief] {
            if inputs.contains_key(out) {
                clash = Some(format!(
                    "its output {} would overwrite an input document; rename one of them",
                    out.display()
                ));
                break;
            }
            if let Some(other) = owner.get(out) {
                clash = Some(format!(
                    "its output {} is also the output of {}; rename one of them",
                    out.display(),
                    other.display()
                ));
                break;
            }
        }
        match clash {
            Some(message) => problems.push(Problem {
                path: job.input.clone(),
                message,
            }),
            None => {
                owner.insert(job.translation.clone(), job.input.clone());
                owner.insert(job.brief.clone(), job.input.clone());
                keep.push(job);
            }
        }
    }
    keep.sort_by(|a, b| a.input.cmp(&b.input));
    *jobs = keep;
}

fn error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } => error_path(err),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

fn walk_message(e: &ignore::Error) -> String {
    match e {
        ignore::Error::Loop { ancestor, .. } => format!(
            "symbolic link loop (points back to {}); not followed",
            ancestor.display()
        ),
        ignore::Error::WithPath { err, .. } | ignore::Error::WithDepth { err, .. } => {
            walk_message(err)
        }
        other => format!("cannot read: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let n = |s: &str| output_names(s).unwrap();
        assert_eq!(
            n("report.fr.txt"),
            ("report.en.txt".into(), "report.brief.en.md".into())
        );
        assert_eq!(
            n("report.txt"),
            ("report.en.txt".into(), "report.brief.en.md".into())
        );
        assert_eq!(
            n("notes.fr.md"),
            ("notes.en.md".into(), "notes.brief.en.md".into())
        );
        assert_eq!(n("a.b.fr.txt").0, "a.b.en.txt");
        for own in [
            "report.en.txt",
            "report.brief.en.md",
            "x.ref.en.txt",
            "notes.en.md",
            "id.highlights.txt",
            "R.EN.TXT",
        ] {
            assert_eq!(output_names(own), None, "{own}");
        }
        assert_eq!(output_names(".fr.txt"), None);
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "Bonjour.").unwrap();
    }

    #[test]
    fn walks_folders_skipping_outputs_hidden_and_excluded() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in [
            "a.fr.txt",
            "a.en.txt",
            "a.brief.en.md",
            "sub/b.md",
            "sub/skip/c.txt",
            ".hidden/d.txt",
            "e.pdf",
            ".transbrief/a.en.txt.json",
        ] {
            touch(&r.join(f));
        }
        let plan = plan(&PlanOptions {
            paths: vec![r.to_path_buf()],
            exclude: vec!["skip".into()],
            ..Default::default()
        })
        .unwrap();
        let inputs: Vec<_> = plan.jobs.iter().map(|j| j.input.clone()).collect();
        assert_eq!(inputs, vec![r.join("a.fr.txt"), r.join("sub/b.md")]);
        assert_eq!(plan.jobs[1].translation, r.join("sub/b.en.md"));
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    }

    #[test]
    fn out_dir_mirrors_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("in");
        touch(&r.join("x/y.fr.txt"));
        let out = d.path().join("out");
        let plan = plan(&PlanOptions {
            paths: vec![r.clone()],
            out_dir: Some(out.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plan.jobs[0].translation, out.join("x/y.en.txt"));
        assert_eq!(plan.jobs[0].brief, out.join("x/y.brief.en.md"));
    }

    #[test]
    fn two_inputs_with_one_output_name_keep_the_tagged_one() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("a.fr.txt"));
        touch(&r.join("a.txt"));
        touch(&r.join("a.md")); // its translation is a.en.md, but the brief collides
        let plan = plan(&PlanOptions {
            paths: vec![r.to_path_buf()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.jobs[0].input, r.join("a.fr.txt"));
        assert_eq!(plan.problems.len(), 2);
        for p in &plan.problems {
            assert!(p.message.contains("a.fr.txt"), "{p:?}");
        }
    }

    #[test]
    fn includes_replace_the_default_and_named_files_are_always_taken() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("a.txt"));
        touch(&r.join("b.text"));
        let p = plan(&PlanOptions {
            paths: vec![r.to_path_buf()],
            include: vec!["*.text".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.jobs.len(), 1);
        assert_eq!(p.jobs[0].translation, r.join("b.en.txt"));
        let p = plan(&PlanOptions {
            paths: vec![r.join("b.text")],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.jobs.len(), 1);
        assert!(plan(&PlanOptions {
            paths: vec![r.to_path_buf()],
            include: vec!["[".into()],
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn missing_paths_and_symlink_loops_are_problems_not_failures() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("ok.txt"));
        #[cfg(unix)]
        std::os::unix::fs::symlink(r, r.join("loop")).unwrap();
        let p = plan(&PlanOptions {
            paths: vec![r.to_path_buf(), r.join("missing")],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.jobs.len(), 1);
        assert!(p.problems.iter().any(|x| x.path.ends_with("missing")));
        #[cfg(unix)]
        assert!(
            p.problems.iter().any(|x| x.message.contains("loop")),
            "{:?}",
            p.problems
        );
    }
}
