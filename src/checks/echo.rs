//! The echo and loop checks: the English repeats what came before it (the previous segment's
//! English, which the model was shown as context) or repeats itself (a decoding loop).
//!
//! Echo: the output holds the opening of the previous segment's English, [`ECHO_WORDS`] words
//! in a row (all of it when it is shorter), compared as lowercase words without punctuation. A
//! previous English of fewer than [`MIN_ECHO_WORDS`] words (a title: the commonest echo, since a
//! document's title is the context of its first paragraph) is looked for only at the very start
//! of the output and as a sentence of its own, followed by a capitalised word: three words may
//! well recur by chance, but rarely open a paragraph and then stop.
//!
//! Loop: a run of [`LOOP_NGRAM`] words that occurs [`LOOP_REPEATS`] times or more in a row, each
//! within [`LOOP_GAP`] words of the last, when the French has no such repeat itself (a list or a
//! refrain in the source may be translated as one).
//!
//! Not for: repeats across documents, or a paraphrase of the previous segment (only its words in
//! order are looked for).

use super::{plain_words, CheckKind, Finding};
use std::collections::HashMap;

/// How many opening words of the previous English are looked for in the output.
pub const ECHO_WORDS: usize = 8;
/// Previous English shorter than this is not looked for.
pub const MIN_ECHO_WORDS: usize = 5;
/// Length of the word n-grams counted for loops.
pub const LOOP_NGRAM: usize = 4;
/// How many times one n-gram must occur, each within [`LOOP_GAP`] words of the previous, to be
/// a loop.
pub const LOOP_REPEATS: usize = 3;
/// Most words from one occurrence of a looping n-gram to the next: a decoding loop repeats
/// itself at once, a writer who repeats a phrase does it sentences apart.
pub const LOOP_GAP: usize = 12;

fn contains_run(hay: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn check_echo(output: &str, previous_output: Option<&str>) -> Option<Finding> {
    let previous = previous_output?;
    let prev = plain_words(previous);
    if prev.len() < MIN_ECHO_WORDS {
        return short_echo(output, previous, &prev);
    }
    let out = plain_words(output);
    let head = &prev[..prev.len().min(ECHO_WORDS)];
    let at = contains_run(&out, head)?;
    let where_ = if at == 0 { "starts with" } else { "contains" };
    Some(Finding::new(
        CheckKind::Echo,
        format!(
            "{where_} the previous segment's English: \"{}…\"",
            head.join(" ")
        ),
    ))
}

/// A short previous English (a title) echoed: the output opens with all of it, as a sentence of
/// its own: the next word starts with a capital ("Black Monday The markets fell…").
fn short_echo(output: &str, previous: &str, prev: &[String]) -> Option<Finding> {
    if prev.len() < 2 {
        return None;
    }
    let out = super::words(output);
    let (pos, next) = out.get(prev.len())?;
    let head: Vec<String> = out[..prev.len()]
        .iter()
        .map(|(_, w)| super::fold(w))
        .collect();
    if head != prev || !next.chars().next().is_some_and(char::is_uppercase) {
        return None;
    }
    // The words between the echo and the next word: a sentence ended, or nothing did (a title).
    let between = &output[out[prev.len() - 1].0 + out[prev.len() - 1].1.len()..*pos];
    if between.contains([',', ';', ':', '-', '(', '\'']) {
        return None;
    }
    Some(Finding::new(
        CheckKind::Echo,
        format!(
            "starts with the previous segment's English: \"{}\"",
            previous.trim()
        ),
    ))
}

/// The most repeated word n-gram of `text` and its count.
fn most_repeated(words: &[String], n: usize) -> Option<(Vec<String>, usize)> {
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    for w in words.windows(n) {
        *counts.entry(w).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(g, c)| (c, std::cmp::Reverse(g.to_vec())))
        .map(|(g, c)| (g.to_vec(), c))
}

/// The longest chain of occurrences of `gram` in `words` each within [`LOOP_GAP`] words of the
/// previous one.
fn tight_repeats(words: &[String], gram: &[String]) -> usize {
    let mut best = 0;
    let mut chain = 0;
    let mut last: Option<usize> = None;
    for (i, w) in words.windows(gram.len()).enumerate() {
        if w != gram {
            continue;
        }
        chain = match last {
            Some(l) if i - l <= LOOP_GAP => chain + 1,
            _ => 1,
        };
        best = best.max(chain);
        last = Some(i);
    }
    best
}

pub fn check_loop(source: &str, output: &str) -> Option<Finding> {
    let out = plain_words(output);
    let (gram, count) = most_repeated(&out, LOOP_NGRAM)?;
    if count < LOOP_REPEATS || tight_repeats(&out, &gram) < LOOP_REPEATS {
        return None;
    }
    let src = plain_words(source);
    let src_max = most_repeated(&src, LOOP_NGRAM).map_or(1, |(_, c)| c);
    if count <= src_max {
        return None;
    }
    Some(Finding::new(
        CheckKind::Loop,
        format!("\"{}\" repeated {count} times", gram.join(" ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_of_the_previous_english_is_flagged() {
        let prev = "Residents of Raqqa fled the city on Sunday, witnesses said.";
        let out = "Residents of Raqqa fled the city on Sunday, witnesses said. Al Manar reported \
                   that hundreds had deserted.";
        let f = check_echo(out, Some(prev)).expect("echo");
        assert!(f.detail.starts_with("starts with"));
        assert_eq!(
            check_echo("Al Manar reported that hundreds had deserted.", Some(prev)),
            None
        );
        assert_eq!(
            check_echo(
                "Black Monday in Paris as stocks fall.",
                Some("Black Monday")
            ),
            None,
            "a short title is looked for only as a sentence of its own"
        );
        assert!(check_echo("Black Monday. Stocks fell in Paris.", Some("Black Monday")).is_some());
        assert!(check_echo("Black Monday Stocks fell in Paris.", Some("Black Monday")).is_some());
        assert_eq!(
            check_echo("Black Monday, Paris said.", Some("Black Monday")),
            None
        );
        assert_eq!(check_echo("Anything.", None), None);
    }

    #[test]
    fn loops_are_flagged_unless_the_source_repeats_too() {
        let looped = "The army advanced. ".to_string() + &"and then the city fell ".repeat(5);
        let f = check_loop("L'armée a avancé, puis la ville est tombée.", &looped).expect("loop");
        assert!(f.detail.contains("repeated 5 times"), "{f:?}");
        let fr = "Non, non, non et non ! ".repeat(3);
        let en = "No, no, no and no! ".repeat(3);
        assert_eq!(check_loop(&fr, &en), None);
        assert_eq!(
            check_loop("x", "The United States and the United States of America."),
            None
        );
        let spaced = "The withdrawal of nursing care is debated. Doctors, patients and families \
                      all have a view on it, and so do the courts. "
            .repeat(3);
        assert_eq!(
            check_loop("x", &spaced),
            None,
            "a phrase repeated sentences apart"
        );
    }
}
