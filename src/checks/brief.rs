//! The brief check: a number or a proper name in a brief that the document does not have was
//! made up (or misread) by the model. Numbers are compared by value (3,5 = 3.5; 12 millions =
//! 12 million), names as lowercase words without accents.
//!
//! Not for: whether the brief is a good summary, or whether it copies sentences; only what it
//! states that the document does not.

use super::numbers::numbers;
use super::{fold, names, CheckKind, Finding};

/// What `brief` (English Markdown) states that `document` (the English it summarizes, or its
/// French source) does not: numbers, then names.
pub fn check(document: &str, brief: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let known: Vec<f64> = numbers(document)
        .into_iter()
        .flat_map(|n| n.values)
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let mut invented: Vec<String> = Vec::new();
    for n in numbers(brief) {
        let found = n.values.iter().any(|v| known.iter().any(|k| close(*k, *v)));
        if !found && !invented.contains(&n.text) {
            invented.push(n.text);
        }
    }
    if !invented.is_empty() {
        out.push(Finding {
            kind: CheckKind::Numbers,
            detail: format!("in the brief, not in the document: {}", invented.join(", ")),
        });
    }
    let text = fold(document);
    // English possessives ("Lyon's") name what the document names without them.
    // The title is left out: English titles capitalise every word.
    let bullets: Vec<&str> = brief.lines().filter(|l| !l.starts_with('#')).collect();
    let missing: Vec<String> = names::names(&bullets.join("\n"))
        .into_iter()
        .map(|n| n.trim_end_matches("'s").trim_end_matches("’s").to_string())
        .filter(|n| !text.contains(&fold(n)))
        .collect();
    if !missing.is_empty() {
        out.push(Finding {
            kind: CheckKind::Names,
            detail: format!("in the brief, not in the document: {}", missing.join(", ")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "The Lyon city council voted on Tuesday a budget of 12 million euros \
                       to renovate three schools, said mayor Grégory Doucet.";

    #[test]
    fn a_faithful_brief_passes() {
        let brief = "# Lyon renovates schools\n\n- Lyon's council voted 12 million euros.\n\
                     - Mayor Grégory Doucet announced it on Tuesday.\n";
        assert_eq!(check(DOC, brief), vec![]);
    }

    #[test]
    fn invented_numbers_and_names_are_found() {
        let brief = "# Lyon renovates schools\n\n- The council voted 15 million euros.\n\
                     - Mayor Martine Aubry announced it.\n";
        let f = check(DOC, brief);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].kind, CheckKind::Numbers);
        assert!(f[0].detail.contains("15"), "{f:?}");
        assert_eq!(f[1].kind, CheckKind::Names);
        assert!(f[1].detail.contains("Aubry"), "{f:?}");
    }
}
