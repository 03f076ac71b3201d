//! Splitting one run over many tasks: `transbrief run --shard K/N` (or a Slurm job array, or a
//! Kubernetes Indexed Job) keeps shard K of the plan's documents, and only those.
//!
//! What it is for:
//! - [`Shard`]: `K/N`, from the flag or from the scheduler's environment ([`from_env`]): Slurm's
//!   `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT` (only for a dense `--array=0-(N-1)`: MIN 0,
//!   STEP 1, MAX N-1, else refused), or Kubernetes' `JOB_COMPLETION_INDEX` with
//!   `TRANSBRIEF_SHARDS` (a pod is not told the completion count);
//! - [`assign`]: which shard each document belongs to;
//! - [`PlanListing`]: the whole plan as every task saw it, written once beside the per-shard
//!   reports so that `transbrief report merge` can name the documents of shards that never
//!   reported.
//!
//! The assignment. Every task of an array walks the same folders and must reach the same split
//! without talking to the others, so it depends only on what every task sees alike: the input
//! paths relative to the paths the command line names (not where those are mounted, which may
//! differ between nodes) and the input files' sizes (never outputs, records or locks, which other shards are
//! writing meanwhile; `plan` does not take those as inputs). Documents are grouped by their
//! top-level folder under the path given (files directly in it form one group of their own, as
//! does a file named on the command line); within a group, in sorted path order, each
//! document goes to the shard with the fewest bytes so far (greedy list scheduling, loads
//! counted within the group), ties going to the first shard at or after a start that a fixed
//! hash (FNV-1a) of the group's name picks.
//!
//! Why groups: with one greedy pass over the whole sorted list, adding one file anywhere moves
//! every later document to another shard. Balancing within each top-level folder keeps a
//! folder's split unchanged when files are added to, or removed from, other folders (a new
//! month's folder of an archive leaves the old months where they were), and a folder's own
//! split changes only when that folder changes. The price is balance: within a group, the
//! shards' bytes differ by at most the group's largest document (the greedy invariant), and
//! over the whole run by at most the sum of the groups' largest documents; the hashed start
//! spreads small groups (fewer documents than shards) over different shards instead of piling
//! them on shard 0. A purely hashed assignment would be stable file by file, but balanced only
//! on average, with nothing to bound a shard's excess.
//!
//! Not for: running or writing (`run`, `write`); the per-output locks that keep two tasks with
//! overlapping shards off each other's files (`lock`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::plan::{Job, Plan, Problem};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`, with `0 <= K < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a shard: write K/N, 0 <= K < N (e.g. 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count).ok_or_else(bad)
    }
}

impl Shard {
    /// `None` unless `index < count`.
    pub fn new(index: usize, count: usize) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// The name of this shard's report in a report folder: `shard-K-of-N.json`.
    pub fn report_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

/// Where a shard came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `--shard K/N`.
    Flag,
    /// `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`.
    Slurm,
    /// `JOB_COMPLETION_INDEX` / `TRANSBRIEF_SHARDS`.
    Kubernetes,
}

/// The shard the scheduler's environment gives (`env` reads a variable), `None` when none is
/// set; an inconsistent or unusable environment is an error that says what to do.
pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<(Shard, Source)>, String> {
    let num = |name: &str| -> Result<Option<usize>, String> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={v} is not a number")),
        }
    };
    if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or(
            "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; give --shard K/N",
        )?;
        let min = num("SLURM_ARRAY_TASK_MIN")?;
        let step = num("SLURM_ARRAY_TASK_STEP")?;
        let max = num("SLURM_ARRAY_TASK_MAX")?;
        let dense = min.unwrap_or(0) == 0
            && step.unwrap_or(1) == 1
            && max.is_none_or(|m| m + 1 == count);
        if !dense {
            return Err(format!(
                "this Slurm array is not 0-{} with step 1 (SLURM_ARRAY_TASK_MIN={}, \
                 SLURM_ARRAY_TASK_MAX={}, SLURM_ARRAY_TASK_STEP={}, SLURM_ARRAY_TASK_COUNT={count}), \
                 so its task ids are not shard numbers: submit with --array=0-{} (a %LIMIT is \
                 fine), or give --shard K/N",
                count.saturating_sub(1),
                show(min),
                show(max),
                show(step),
                count.saturating_sub(1),
            ));
        }
        let shard = Shard::new(id, count).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID={id} is not below SLURM_ARRAY_TASK_COUNT={count}")
        })?;
        return Ok(Some((shard, Source::Slurm)));
    }
    let shards = num("TRANSBRIEF_SHARDS")?;
    match (num("JOB_COMPLETION_INDEX")?, shards) {
        (Some(index), Some(count)) => {
            let shard = Shard::new(index, count).ok_or_else(|| {
                format!(
                    "JOB_COMPLETION_INDEX={index} is not below TRANSBRIEF_SHARDS={count}: set \
                     TRANSBRIEF_SHARDS to the Job's completions"
                )
            })?;
            Ok(Some((shard, Source::Kubernetes)))
        }
        (Some(_), None) => Err("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but \
             TRANSBRIEF_SHARDS is not: set it to the Job's completions, or give --shard K/N"
            .into()),
        (None, Some(_)) => Err("TRANSBRIEF_SHARDS is set but JOB_COMPLETION_INDEX is not (nor \
             SLURM_ARRAY_TASK_ID): give --shard K/N"
            .into()),
        (None, None) => Ok(None),
    }
}

fn show(v: Option<usize>) -> String {
    v.map_or("unset".into(), |v| v.to_string())
}

/// FNV-1a, 64 bits: fixed on every machine and build (std's hashers are not).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One document to assign: its path as the plan names it, its group, its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: String,
    pub group: String,
    pub bytes: u64,
}

/// The shard of each item (same order), out of `count`: greedy on bytes within each group, in
/// key order (see the module doc). Every item gets exactly one shard.
pub fn assign(items: &[Item], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        groups.entry(item.group.as_str()).or_default().push(i);
    }
    let mut shard_of = vec![0; items.len()];
    for (group, mut members) in groups {
        members.sort_by(|&a, &b| items[a].key.cmp(&items[b].key));
        let start = (fnv1a(group.as_bytes()) % count as u64) as usize;
        let mut loads = vec![0u64; count];
        for i in members {
            let best = (0..count)
                .map(|r| (start + r) % count)
                .min_by_key(|&s| loads[s])
                .unwrap_or(0);
            loads[best] += items[i].bytes;
            shard_of[i] = best;
        }
    }
    shard_of
}

/// A path with `/` separators, whatever the platform.
fn slashed(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// The group of an input: which of the paths given on the command line holds it (by position,
/// so that the split does not depend on where the folder is mounted), and the first folder below
/// that path (empty for files directly in it, and for a file named on the command line).
fn group_of(input: &Path, roots: &[PathBuf]) -> String {
    let root = roots
        .iter()
        .enumerate()
        .filter(|(_, r)| input.starts_with(r))
        .max_by_key(|(_, r)| r.components().count());
    match root {
        Some((i, root)) => {
            let rel = input.strip_prefix(root).unwrap_or(input);
            let mut parts = rel.components();
            let first = parts.next();
            let top = match (first, parts.next()) {
                (Some(top), Some(_)) => slashed(Path::new(top.as_os_str())),
                _ => String::new(),
            };
            format!("{i}\u{0}{top}")
        }
        None => slashed(input),
    }
}

/// One document of the plan listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub input: PathBuf,
    pub bytes: u64,
    pub shard: usize,
}

/// The whole plan, as the tasks of an array see it: every document (and every path that could
/// not be planned) with its shard. Written once per distinct plan next to the shard reports
/// (`plan-DIGEST.json`), it is what `report merge` checks the reports against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanListing {
    pub count: usize,
    /// sha256 over every document's path, size and shard: equal in every task that saw the same
    /// folders.
    pub digest: String,
    pub documents: Vec<Listed>,
}

impl PlanListing {
    /// Its file name in a report folder.
    pub fn file_name(&self) -> String {
        plan_file_name(&self.digest)
    }
}

/// The file name of the listing with this digest.
pub fn plan_file_name(digest: &str) -> String {
    format!("plan-{}.json", &digest[..digest.len().min(16)])
}

/// Splits `plan` into `count` shards: the listing of all of it, and the plan of shard `index`
/// alone. Paths that could not be planned (missing, colliding) go to one shard each, by a hash
/// of the path, so that each is reported once.
pub fn split(plan: Plan, roots: &[PathBuf], shard: Shard) -> (PlanListing, Plan) {
    let items: Vec<Item> = plan
        .jobs
        .iter()
        .map(|j| Item {
            key: slashed(&j.input),
            group: group_of(&j.input, roots),
            bytes: std::fs::metadata(&j.input).map_or(0, |m| m.len()),
        })
        .collect();
    let shards = assign(&items, shard.count);
    let problem_shard =
        |p: &Problem| (fnv1a(slashed(&p.path).as_bytes()) % shard.count as u64) as usize;
    let mut documents: Vec<Listed> = plan
        .jobs
        .iter()
        .zip(&items)
        .zip(&shards)
        .map(|((j, item), &s)| Listed {
            input: j.input.clone(),
            bytes: item.bytes,
            shard: s,
        })
        .chain(plan.problems.iter().map(|p| Listed {
            input: p.path.clone(),
            bytes: 0,
            shard: problem_shard(p),
        }))
        .collect();
    documents.sort_by(|a, b| a.input.cmp(&b.input));
    documents.dedup_by(|a, b| a.input == b.input);
    let mut hashed = String::new();
    for d in &documents {
        hashed.push_str(&format!("{}\u{0}{}\u{0}{}\n", slashed(&d.input), d.bytes, d.shard));
    }
    let digest = crate::pipeline::write::sha256_hex(hashed.as_bytes());
    let mine = |s: usize| s == shard.index;
    let jobs: Vec<Job> = plan
        .jobs
        .into_iter()
        .zip(shards)
        .filter(|(_, s)| mine(*s))
        .map(|(j, _)| j)
        .collect();
    let problems: Vec<Problem> = plan
        .problems
        .into_iter()
        .filter(|p| mine(problem_shard(p)))
        .collect();
    let listing = PlanListing {
        count: shard.count,
        digest,
        documents,
    };
    (listing, Plan { jobs, problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn items(folders: &[(&str, usize)], seed: u64) -> Vec<Item> {
        let mut rng = Lcg(seed);
        let mut out = Vec::new();
        for (folder, n) in folders {
            for i in 0..*n {
                let key = format!("docs/{folder}/f{i:03}.fr.txt");
                out.push(Item {
                    group: group_of(Path::new(&key), &[PathBuf::from("docs")]),
                    key,
                    bytes: 1 + rng.next() % 50_000,
                });
            }
        }
        out
    }

    #[test]
    fn shards_parse_and_print() {
        assert_eq!("2/5".parse::<Shard>().unwrap(), Shard { index: 2, count: 5 });
        assert_eq!(Shard { index: 2, count: 5 }.to_string(), "2/5");
        assert_eq!(Shard::new(0, 3).unwrap().report_name(), "shard-0-of-3.json");
        for bad in ["5/5", "1/0", "x/2", "3", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_document_is_in_exactly_one_shard_for_1_to_16_shards() {
        let all = items(&[("a", 37), ("b", 5), ("c", 1), ("d", 120)], 1);
        for n in 1..=16 {
            let shards = assign(&all, n);
            let mut seen = vec![0usize; all.len()];
            // As the tasks do: each keeps its own share of the same list.
            for k in 0..n {
                for (i, _) in shards.iter().enumerate().filter(|(_, &s)| s == k) {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "n={n}: {seen:?}");
            assert!(shards.iter().all(|&s| s < n));
        }
    }

    #[test]
    fn balanced_within_the_largest_document() {
        for seed in 0..20 {
            // One folder: the whole run is one group.
            let all = items(&[("only", 200)], seed);
            let largest = all.iter().map(|i| i.bytes).max().unwrap();
            for n in 1..=16 {
                let mut loads = vec![0u64; n];
                for (item, s) in all.iter().zip(assign(&all, n)) {
                    loads[s] += item.bytes;
                }
                let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
                assert!(spread <= largest, "seed {seed} n={n}: {loads:?} > {largest}");
            }
        }
        // Several folders: each folder's split is balanced within its largest document, and the
        // whole within the sum of those.
        let all = items(&[("a", 40), ("b", 3), ("c", 90), ("d", 17)], 99);
        for n in 1..=16 {
            let shards = assign(&all, n);
            let mut total = vec![0u64; n];
            let mut bound = 0;
            for group in ["a", "b", "c", "d"] {
                let mut loads = vec![0u64; n];
                let mut largest = 0;
                for (item, &s) in all.iter().zip(&shards) {
                    if item.key.starts_with(&format!("docs/{group}/")) {
                        loads[s] += item.bytes;
                        total[s] += item.bytes;
                        largest = largest.max(item.bytes);
                    }
                }
                bound += largest;
                let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
                assert!(spread <= largest, "{group} n={n}: {loads:?}");
            }
            let spread = total.iter().max().unwrap() - total.iter().min().unwrap();
            assert!(spread <= bound, "n={n}: {total:?}");
        }
    }

    #[test]
    fn stable_when_files_are_added_to_other_folders() {
        let before = items(&[("2024-01", 30), ("2024-02", 25)], 5);
        // A new folder, and files added to an existing other folder (sorted in between).
        let mut after = before.clone();
        after.extend(items(&[("2024-03", 40)], 6));
        after.extend(
            items(&[("2024-02", 60)], 7)
                .into_iter()
                .filter(|i| !before.iter().any(|b| b.key == i.key)),
        );
        after.reverse(); // The order items come in does not matter either.
        for n in 1..=16 {
            let old = assign(&before, n);
            let new = assign(&after, n);
            for (item, s) in before.iter().zip(&old) {
                if item.key.starts_with("docs/2024-01/") {
                    let j = after.iter().position(|a| a.key == item.key).unwrap();
                    assert_eq!(new[j], *s, "n={n}: {} moved", item.key);
                }
            }
        }
    }

    #[test]
    fn files_directly_in_the_folder_form_their_own_group() {
        let roots = [PathBuf::from("docs"), PathBuf::from("one.txt")];
        assert_eq!(group_of(Path::new("docs/a.txt"), &roots), "0\u{0}");
        assert_eq!(group_of(Path::new("docs/x/y/a.txt"), &roots), "0\u{0}x");
        assert_eq!(group_of(Path::new("one.txt"), &roots), "1\u{0}");
        // The same folder mounted elsewhere splits the same way.
        let moved = [PathBuf::from("/mnt/nfs/docs")];
        assert_eq!(
            group_of(Path::new("/mnt/nfs/docs/x/y/a.txt"), &moved),
            group_of(Path::new("docs/x/y/a.txt"), &roots)
        );
        assert_eq!(group_of(Path::new("elsewhere/b.txt"), &roots), "elsewhere/b.txt");
    }

    #[test]
    fn small_groups_do_not_all_start_on_shard_zero() {
        let all: Vec<Item> = (0..32)
            .map(|i| Item {
                key: format!("docs/g{i}/only.txt"),
                group: format!("0\u{0}g{i}"),
                bytes: 100,
            })
            .collect();
        let shards = assign(&all, 8);
        let used: std::collections::BTreeSet<_> = shards.iter().collect();
        assert!(used.len() >= 5, "{shards:?}");
    }

    #[test]
    fn the_split_does_not_change_when_outputs_exist() {
        use crate::pipeline::plan::{plan, PlanOptions};
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("docs");
        for (i, f) in ["a.fr.txt", "x/b.fr.txt", "x/c.md", "y/d.txt", "y/z/e.txt"]
            .iter()
            .enumerate()
        {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "Bonjour. ".repeat(1 + i * 7)).unwrap();
        }
        let opts = PlanOptions {
            paths: vec![root.clone()],
            ..Default::default()
        };
        let split_now = |k| split(plan(&opts).unwrap(), &opts.paths, Shard::new(k, 3).unwrap());
        let (before, _) = split_now(0);
        // What other shards write meanwhile: outputs, records, locks, temp files.
        for f in [
            "a.en.txt",
            "a.brief.en.md",
            "x/c.en.md",
            ".transbrief/a.en.txt.json",
            ".transbrief/a.en.txt.lock",
            "y/.d.en.txt.transbrief-abc.tmp",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "output").unwrap();
        }
        let (after, _) = split_now(0);
        assert_eq!(before, after);
        let mut all: Vec<PathBuf> = (0..3).flat_map(|k| split_now(k).1.jobs).map(|j| j.input).collect();
        all.sort();
        assert_eq!(all.len(), 5);
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_environment_gives_the_shard_or_says_why_not() {
        assert_eq!(from_env(env(&[])).unwrap(), None);
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "2"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
        ];
        assert_eq!(
            from_env(env(&slurm)).unwrap(),
            Some((Shard { index: 2, count: 3 }, Source::Slurm))
        );
        // --array=1,5,7: not shard numbers.
        let sparse = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ];
        let e = from_env(env(&sparse)).unwrap_err();
        assert!(e.contains("--array=0-2") && e.contains("--shard"), "{e}");
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ];
        assert!(from_env(env(&stepped)).is_err());
        let k8s = [("JOB_COMPLETION_INDEX", "4"), ("TRANSBRIEF_SHARDS", "5")];
        assert_eq!(
            from_env(env(&k8s)).unwrap(),
            Some((Shard { index: 4, count: 5 }, Source::Kubernetes))
        );
        let e = from_env(env(&[("JOB_COMPLETION_INDEX", "4")])).unwrap_err();
        assert!(e.contains("TRANSBRIEF_SHARDS"), "{e}");
        let e = from_env(env(&[("JOB_COMPLETION_INDEX", "5"), ("TRANSBRIEF_SHARDS", "5")]))
            .unwrap_err();
        assert!(e.contains("not below"), "{e}");
    }
}
