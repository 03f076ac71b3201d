//! One report from the per-shard reports of a job array: `transbrief report merge DIR`.
//!
//! What it is for: reading every `shard-K-of-N.json` in a folder (written by `run --shard K/N
//! --report DIR/`) and the plan listing they name (`plan-DIGEST.json`, written beside them by
//! the first shard that got there), and saying, in one JSON report: each document with its
//! status (done, skipped, failed, ...), the shards that never reported, the documents in no
//! report (those of a dead task, or of a folder that changed while the array ran), documents
//! reported by more than one shard, and whether every shard planned the same documents. It
//! works on the reports' JSON as other scripts read it, so it needs neither the documents nor a
//! model, and runs anywhere the report folder is.
//!
//! Not for: running shards (`run`) or deciding them (`shard`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::pipeline::shard::{plan_file_name, PlanListing};

/// The merged report, and whether it is all good.
#[derive(Debug, Clone)]
pub struct Merged {
    pub report: Value,
    /// Every shard reported, every planned document is in a report (once), none failed or was
    /// interrupted, and every shard planned the same documents.
    pub ok: bool,
    /// A few lines for the terminal.
    pub summary: Vec<String>,
}

/// `shard-K-of-N.json` → (K, N).
fn parse_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("shard-")?.strip_suffix(".json")?;
    let (k, n) = rest.split_once("-of-")?;
    Some((k.parse().ok()?, n.parse().ok()?))
}

/// Merges the shard reports in `dir`. Errors: an unreadable folder or report, no report at
/// all, or reports of different shard counts (an older array's reports left in the folder).
pub fn merge(dir: &Path) -> Result<Merged, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut reports: BTreeMap<usize, (usize, Value)> = BTreeMap::new();
    let mut counts = BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((k, n)) = parse_name(&name) else {
            continue;
        };
        let path = entry.path();
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a transbrief report: {e}", path.display()))?;
        counts.insert(n);
        reports.insert(k, (n, value));
    }
    let count = match counts.len() {
        0 => {
            return Err(format!(
                "no shard reports (shard-K-of-N.json) in {}",
                dir.display()
            ))
        }
        1 => *counts.iter().next().unwrap_or(&1),
        _ => {
            return Err(format!(
                "{} holds reports of arrays of {} shards: remove the older ones (or give each \
                 array its own report folder)",
                dir.display(),
                counts
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ))
        }
    };

    // The plans the shards saw.
    let digests: BTreeSet<String> = reports
        .values()
        .filter_map(|(_, r)| r["shard"]["plan_digest"].as_str().map(String::from))
        .collect();
    let mut expected: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut unreadable_plans = Vec::new();
    for digest in &digests {
        let path = dir.join(plan_file_name(digest));
        match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<PlanListing>(&b).ok())
        {
            Some(listing) => {
                for d in listing.documents {
                    expected.entry(d.input).or_insert(d.shard);
                }
            }
            None => unreadable_plans.push(path.display().to_string()),
        }
    }

    let mut documents: Vec<Value> = Vec::new();
    let mut seen: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (k, (_, report)) in &reports {
        for doc in report["documents"].as_array().into_iter().flatten() {
            let mut doc = doc.clone();
            let input = PathBuf::from(doc["input"].as_str().unwrap_or_default());
            seen.entry(input).or_default().push(*k);
            doc["shard"] = json!(k);
            documents.push(doc);
        }
    }
    documents.sort_by(|a, b| {
        let key = |v: &Value| v["input"].as_str().unwrap_or_default().to_string();
        key(a).cmp(&key(b))
    });

    let mut by_status: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut failed = Vec::new();
    let (mut flagged, mut tokens) = (0u64, 0u64);
    for d in &documents {
        let status = d["status"].as_str().unwrap_or("unknown").to_string();
        if matches!(status.as_str(), "failed" | "interrupted") {
            failed.push(json!({"input": d["input"], "shard": d["shard"], "status": status,
                               "error": d["error"]}));
        }
        flagged += d["flagged_paragraphs"].as_u64().unwrap_or(0);
        tokens += d["tokens"]["output_tokens"].as_u64().unwrap_or(0);
        by_status.entry(status).or_default().push(d["input"].clone());
    }
    let reported: Vec<usize> = reports.keys().copied().collect();
    let missing_shards: Vec<usize> = (0..count).filter(|k| !reports.contains_key(k)).collect();
    let missing_documents: Vec<Value> = expected
        .iter()
        .filter(|(input, _)| !seen.contains_key(*input))
        .map(|(input, shard)| json!({"input": input, "shard": shard}))
        .collect();
    let duplicates: Vec<Value> = seen
        .iter()
        .filter(|(_, shards)| shards.len() > 1)
        .map(|(input, shards)| json!({"input": input, "shards": shards}))
        .collect();
    let plans_agree = digests.len() <= 1 && unreadable_plans.is_empty();
    let n = |s: &str| by_status.get(s).map_or(0, Vec::len);
    let ok = missing_shards.is_empty()
        && missing_documents.is_empty()
        && duplicates.is_empty()
        && failed.is_empty()
        && plans_agree
        && !digests.is_empty();

    let mut summary = vec![format!(
        "{} of {count} shards reported{}",
        reported.len(),
        if missing_shards.is_empty() {
            String::new()
        } else {
            format!("; never reported: {}", join(&missing_shards))
        }
    )];
    summary.push(format!(
        "{} documents: {} done, {} skipped, {} failed, {} interrupted; {} in no report; {} in \
         more than one",
        seen.len() + missing_documents.len(),
        n("done"),
        n("skipped"),
        n("failed"),
        n("interrupted"),
        missing_documents.len(),
        duplicates.len()
    ));
    for f in &failed {
        summary.push(format!(
            "{}: {}",
            f["status"].as_str().unwrap_or_default(),
            f["error"]
                .as_str()
                .or(f["input"].as_str())
                .unwrap_or_default()
        ));
    }
    for m in missing_documents.iter().take(20) {
        summary.push(format!(
            "in no report: {} (shard {})",
            m["input"].as_str().unwrap_or_default(),
            m["shard"]
        ));
    }
    if missing_documents.len() > 20 {
        summary.push(format!("... and {} more", missing_documents.len() - 20));
    }
    if digests.len() > 1 {
        summary.push(format!(
            "the shards planned different documents ({} plans): the folders changed while the \
             array ran; run the array again",
            digests.len()
        ));
    }
    for p in &unreadable_plans {
        summary.push(format!(
            "plan listing {p} is missing or unreadable: documents in no report cannot be named"
        ));
    }

    let report = json!({
        "tool": "transbrief",
        "version": env!("CARGO_PKG_VERSION"),
        "ok": ok,
        "shards": {
            "count": count,
            "reported": reported,
            "missing": missing_shards,
            "plan_digests": digests,
            "plans_agree": plans_agree,
            "tasks": reports.iter().map(|(k, (_, r))| json!({
                "index": k, "task": r["shard"]["task"], "host": r["shard"]["host"],
                "documents": r["shard"]["documents"], "bytes": r["shard"]["bytes"],
                "elapsed_s": r["elapsed_s"],
            })).collect::<Vec<_>>(),
        },
        "totals": {
            "documents": expected.len().max(seen.len()),
            "reported": seen.len(),
            "done": n("done"),
            "skipped": n("skipped"),
            "planned": n("planned"),
            "failed": n("failed"),
            "interrupted": n("interrupted"),
            "missing": missing_documents.len(),
            "duplicated": duplicates.len(),
            "flagged_paragraphs": flagged,
            "output_tokens": tokens,
        },
        "by_status": by_status,
        "failed": failed,
        "missing_documents": missing_documents,
        "duplicates": duplicates,
        "documents": documents,
    });
    Ok(Merged {
        report,
        ok,
        summary,
    })
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::shard::Listed;

    fn doc(input: &str, status: &str) -> Value {
        json!({"input": input, "status": status, "tokens": {"output_tokens": 3},
               "flagged_paragraphs": 0})
    }

    fn write_shard(dir: &Path, k: usize, n: usize, digest: &str, docs: Vec<Value>) {
        let r = json!({"shard": {"index": k, "count": n, "plan_digest": digest,
                                 "host": "h", "documents": docs.len(), "bytes": 1},
                       "documents": docs, "elapsed_s": 1.0});
        std::fs::write(
            dir.join(format!("shard-{k}-of-{n}.json")),
            serde_json::to_vec(&r).unwrap(),
        )
        .unwrap();
    }

    fn write_plan(dir: &Path, digest: &str, docs: &[(&str, usize)]) {
        let listing = PlanListing {
            count: 3,
            digest: digest.into(),
            documents: docs
                .iter()
                .map(|(i, s)| Listed {
                    input: i.into(),
                    bytes: 1,
                    shard: *s,
                })
                .collect(),
        };
        std::fs::write(
            dir.join(listing.file_name()),
            serde_json::to_vec(&listing).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn all_shards_and_documents_make_a_good_merge() {
        let d = tempfile::tempdir().unwrap();
        let digest = "ab".repeat(32);
        write_plan(d.path(), &digest, &[("a", 0), ("b", 1), ("c", 2)]);
        write_shard(d.path(), 0, 3, &digest, vec![doc("a", "done")]);
        write_shard(d.path(), 1, 3, &digest, vec![doc("b", "skipped")]);
        write_shard(d.path(), 2, 3, &digest, vec![doc("c", "done")]);
        let m = merge(d.path()).unwrap();
        assert!(m.ok, "{:#}", m.report);
        assert_eq!(m.report["by_status"]["done"], json!(["a", "c"]));
        assert_eq!(m.report["totals"]["documents"], 3);
        assert_eq!(m.report["totals"]["output_tokens"], 9);
    }

    #[test]
    fn a_missing_shard_names_its_documents_and_fails() {
        let d = tempfile::tempdir().unwrap();
        let digest = "cd".repeat(32);
        write_plan(d.path(), &digest, &[("a", 0), ("b", 1), ("c", 2), ("d", 1)]);
        write_shard(d.path(), 0, 3, &digest, vec![doc("a", "done")]);
        write_shard(d.path(), 2, 3, &digest, vec![doc("c", "failed")]);
        let m = merge(d.path()).unwrap();
        assert!(!m.ok);
        assert_eq!(m.report["shards"]["missing"], json!([1]));
        assert_eq!(
            m.report["missing_documents"],
            json!([{"input": "b", "shard": 1}, {"input": "d", "shard": 1}])
        );
        assert_eq!(m.report["failed"][0]["input"], "c");
        assert!(m.summary[0].contains("never reported: 1"), "{:?}", m.summary);
    }

    #[test]
    fn mixed_arrays_and_empty_folders_are_errors() {
        let d = tempfile::tempdir().unwrap();
        assert!(merge(d.path()).unwrap_err().contains("no shard reports"));
        write_shard(d.path(), 0, 2, "x", vec![]);
        write_shard(d.path(), 0, 3, "x", vec![]);
        assert!(merge(d.path()).unwrap_err().contains("2 and 3"));
    }
}
