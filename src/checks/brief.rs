//! The brief check: a number or a proper name in a brief that the document does not have was
//! made up (or misread) by the model. Numbers are compared by value (3,5 = 3.5; 12 millions =
//! 12 million), names as lowercase words without accents.
//!
//! It also finds a brief that is not one: when at least half of its bullet points are copied
//! from the document ([`copied_bullets`]), the "brief" is the article's opening sentences, which
//! a reader of the brief would read in the translation anyway ([`CheckKind::Echo`]).
//!
//! A brief without a bullet point (a title alone) is not one either ([`CheckKind::Length`]).
//!
//! Not for: whether the brief is a good summary (ROUGE against references is `eval`'s).

use super::numbers::numbers;
use super::{fold, names, plain_words, CheckKind, Finding};

/// Bullets shorter than this (in words) are not counted as copies: a short fact may well be
/// worded as the article words it.
pub const MIN_COPY_WORDS: usize = 8;
/// A bullet whose longest run of words found as it is in the document covers this share of its
/// words is a copy.
pub const COPY_SHARE: f64 = 0.8;

/// How many of the bullet points of `brief` are copied from `document`, and how many bullet
/// points it has. A bullet is copied when it has at least [`MIN_COPY_WORDS`] words and one run
/// of consecutive words of the document (lowercase, punctuation dropped) covers at least
/// [`COPY_SHARE`] of them.
pub fn copied_bullets(document: &str, brief: &str) -> (usize, usize) {
    let doc = plain_words(document);
    let bullets: Vec<Vec<String>> = brief
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .map(plain_words)
        .collect();
    let copied = bullets
        .iter()
        .filter(|b| {
            b.len() >= MIN_COPY_WORDS
                && longest_common_run(b, &doc) as f64 >= COPY_SHARE * b.len() as f64
        })
        .count();
    (copied, bullets.len())
}

/// The length of the longest run of consecutive words of `a` found consecutively in `b`.
fn longest_common_run(a: &[String], b: &[String]) -> usize {
    let mut best = 0;
    let (mut prev, mut cur) = (vec![0usize; b.len() + 1], vec![0usize; b.len() + 1]);
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { 0 };
            best = best.max(cur[j + 1]);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best
}

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
    let (copied, total) = copied_bullets(document, brief);
    if total == 0 {
        out.push(Finding {
            kind: CheckKind::Length,
            detail: "the brief has no bullet points".to_string(),
        });
    } else if 2 * copied >= total {
        out.push(Finding {
            kind: CheckKind::Echo,
            detail: format!(
                "{copied} of {total} bullet points copied from the document: sentences, not a brief"
            ),
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
    fn a_brief_of_copied_sentences_is_found() {
        let doc = "The Lyon city council voted on Tuesday a budget of 12 million euros to \
                   renovate three schools. The works will start in September and end in two \
                   years, the mayor said at a press conference.";
        let copy = "# Lyon\n\n- The Lyon city council voted on Tuesday a budget of 12 million \
                    euros to renovate three schools.\n- The works will start in September and \
                    end in two years, the mayor said.\n";
        assert_eq!(copied_bullets(doc, copy), (2, 2));
        let f = check(doc, copy);
        assert!(f.iter().any(|f| f.kind == CheckKind::Echo), "{f:?}");
        let brief = "# Lyon\n\n- Lyon spends 12 million euros on three schools.\n\
                     - Works run from September for two years.\n";
        assert_eq!(copied_bullets(doc, brief), (0, 2));
        assert!(check(doc, brief).is_empty());
        // A title alone copies nothing, and is no brief either.
        let f = check(doc, "# Lyon, Schools, Budget, Works, September, Mayor\n");
        assert!(f.iter().any(|f| f.kind == CheckKind::Length), "{f:?}");
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
