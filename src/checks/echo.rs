//! The echo and loop checks: the English repeats what came before it (the previous segment's
//! English, which the model was shown as context) or repeats itself (a decoding loop).
//!
//! Echo: the output holds the opening of the previous segment's English, [`ECHO_WORDS`] words
//! in a row (all of it when it is shorter), compared as lowercase words without punctuation. A
//! previous English of fewer than [`MIN_ECHO_WORDS`] words (a title) is not looked for: three
//! words may well recur by chance.
//!
//! Loop: a run of [`LOOP_NGRAM`] words that occurs [`LOOP_REPEATS`] times or more, when the French
//! has no such repeat itself (a list or a refrain in the source may be translated as one).
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
/// How many times one n-gram must occur to be a loop.
pub const LOOP_REPEATS: usize = 3;

fn contains_run(hay: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn check_echo(output: &str, previous_output: Option<&str>) -> Option<Finding> {
    let prev = plain_words(previous_output?);
    if prev.len() < MIN_ECHO_WORDS {
        return None;
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

pub fn check_loop(source: &str, output: &str) -> Option<Finding> {
    let out = plain_words(output);
    let (gram, count) = most_repeated(&out, LOOP_NGRAM)?;
    if count < LOOP_REPEATS {
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
        assert_eq!(check_echo("Al Manar reported that hundreds had deserted.", Some(prev)), None);
        assert_eq!(
            check_echo("Black Monday in Paris as stocks fall.", Some("Black Monday")),
            None,
            "a short title is not looked for"
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
    }
}
