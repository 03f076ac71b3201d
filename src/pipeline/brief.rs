//! Writing a brief: summarize an English text whole when it fits the model, or in chunks whose
//! partial summaries are then merged (never silently truncated), and shape the answer into the
//! brief's Markdown: a `# Title` line and 3 to 6 `- ` bullet points.
//!
//! Not for: the prompts (the catalog) or the model calls themselves (the `Summarizer`).

use crate::models::{Output, Summarizer, SummaryInput, Usage};
use crate::{Error, Result};

/// Fewest and most bullet points in a brief.
pub const MIN_BULLETS: usize = 3;
pub const MAX_BULLETS: usize = 6;

/// Levels of chunk-then-merge before giving up (each level shrinks the text many times over).
const MAX_DEPTH: usize = 4;

/// Summarizes `english` and returns the brief's Markdown. `fallback_title` is used when the
/// model gives no title line.
pub fn make_brief(
    summarizer: &dyn Summarizer,
    english: &str,
    fallback_title: &str,
) -> Result<Output<String>> {
    let mut usage = Usage::default();
    let raw = summarize_any(summarizer, english, SummaryInput::Document, 0, &mut usage)?;
    Ok(Output {
        value: shape(&raw, fallback_title),
        usage,
    })
}

fn summarize_any(
    s: &dyn Summarizer,
    text: &str,
    kind: SummaryInput,
    depth: usize,
    usage: &mut Usage,
) -> Result<String> {
    crate::cancel::check()?;
    let max = s.max_input_tokens();
    if s.count_tokens(text)? <= max {
        let out = s.summarize(text, kind)?;
        *usage += out.usage;
        return Ok(out.value);
    }
    if depth >= MAX_DEPTH {
        return Err(Error::msg(
            "the text is too long to summarize even in chunks; raise the model's context",
        ));
    }
    let count = |t: &str| s.count_tokens(t).unwrap_or(t.len());
    let mut partials = Vec::new();
    for span in crate::text::chunk::chunk(text, max, &count) {
        crate::cancel::check()?;
        let out = s.summarize(&text[span], SummaryInput::Chunk)?;
        *usage += out.usage;
        partials.push(out.value.trim().to_string());
    }
    let notes = partials.join("\n");
    summarize_any(s, &notes, SummaryInput::Partials, depth + 1, usage)
}

/// Strips a leading list marker (`-`, `*`, `•`, `1.`, `2)`), if any.
fn bullet_body(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for marker in ["- ", "* ", "• ", "– ", "— "] {
        if let Some(rest) = t.strip_prefix(marker) {
            return Some(rest.trim());
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 3 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(r.trim());
        }
    }
    None
}

fn clean_title(line: &str) -> String {
    let mut t = line.trim().trim_start_matches('#').trim();
    for _ in 0..2 {
        t = t.trim_matches('*').trim();
        for label in ["Title:", "Title :", "Titre :", "Titre:", "Headline:"] {
            // `get` is None when the label's length falls inside a multi-byte character.
            if t.get(..label.len()).is_some_and(|p| p.eq_ignore_ascii_case(label)) {
                t = t[label.len()..].trim();
            }
        }
    }
    t.trim_matches(|c| c == '"' || c == '*' || c == '“' || c == '”')
        .trim()
        .to_string()
}

/// Lines that only introduce the answer ("Here is the brief:").
fn is_preamble(line: &str) -> bool {
    let l = line.trim().to_ascii_lowercase();
    (l.starts_with("here is") || l.starts_with("here's") || l.starts_with("brief"))
        && l.ends_with(':')
}

/// Splits prose into sentences for bullets, at ". " followed by an uppercase letter.
fn sentences(text: &str) -> Vec<String> {
    let spans = crate::text::segment::sentences(text);
    spans
        .into_iter()
        .map(|s| text[s].trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Shapes a model's answer into the brief's Markdown.
pub fn shape(raw: &str, fallback_title: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_preamble(l))
        .collect();
    let mut title = None;
    let mut bullets: Vec<String> = Vec::new();
    for line in &lines {
        match bullet_body(line) {
            Some(body) if !body.is_empty() => bullets.push(body.to_string()),
            Some(_) => {}
            None if title.is_none() && bullets.is_empty() => {
                let t = clean_title(line);
                if !t.is_empty() {
                    title = Some(t);
                }
            }
            // Prose after the title counts as points too.
            None => bullets.push(line.trim_start_matches('#').trim().to_string()),
        }
    }
    if bullets.len() < MIN_BULLETS {
        let split: Vec<String> = bullets.iter().flat_map(|b| sentences(b)).collect();
        if split.len() > bullets.len() {
            bullets = split;
        }
    }
    bullets.truncate(MAX_BULLETS);
    let title = title.unwrap_or_else(|| fallback_title.to_string());
    let mut md = format!("# {title}\n\n");
    for b in &bullets {
        md.push_str("- ");
        md.push_str(&b.replace('\n', " "));
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn shapes_the_usual_answer() {
        let raw = "Here is the brief:\nTitle: **Families flee Raqqa**\n- One.\n* Two.\n• Three.\n1. Four.\n";
        assert_eq!(
            shape(raw, "x"),
            "# Families flee Raqqa\n\n- One.\n- Two.\n- Three.\n- Four.\n"
        );
    }

    #[test]
    fn caps_bullets_and_splits_prose() {
        let raw = (1..=9).map(|i| format!("- P{i}.\n")).collect::<String>();
        let md = shape(&raw, "Fallback");
        assert!(md.starts_with("# Fallback\n\n"));
        assert_eq!(md.matches("\n- ").count(), MAX_BULLETS);

        let md = shape(
            "## A title\nThe army entered the city. Families fled to the north. The UN counted 500 people.",
            "x",
        );
        assert_eq!(md.matches("\n- ").count(), 3, "{md}");
        assert!(md.starts_with("# A title\n"));
    }

    /// Counts words as tokens; summarizing returns the first two words of each line, so the
    /// output is smaller than the input, and records every call.
    struct Words {
        max: usize,
        calls: Mutex<Vec<(SummaryInput, usize)>>,
    }

    impl Summarizer for Words {
        fn max_input_tokens(&self) -> usize {
            self.max
        }
        fn count_tokens(&self, text: &str) -> Result<usize> {
            Ok(text.split_whitespace().count())
        }
        fn summarize(&self, text: &str, input: SummaryInput) -> Result<Output<String>> {
            let n = self.count_tokens(text)?;
            assert!(n <= self.max, "asked to summarize {n} > {} tokens", self.max);
            self.calls.lock().unwrap().push((input, n));
            let first: Vec<&str> = text.split_whitespace().take(2).collect();
            Ok(Output {
                value: format!("- {}", first.join(" ")),
                usage: Usage {
                    input_tokens: n as u64,
                    output_tokens: 2,
                },
            })
        }
    }

    #[test]
    fn long_texts_are_chunked_then_merged_never_truncated() {
        let s = Words {
            max: 50,
            calls: Mutex::new(Vec::new()),
        };
        let text = (0..40)
            .map(|i| format!("Paragraph {i} has exactly seven words here."))
            .collect::<Vec<_>>()
            .join("\n\n");
        let out = make_brief(&s, &text, "T").unwrap();
        let calls = s.calls.lock().unwrap();
        let chunk_tokens: usize = calls
            .iter()
            .filter(|c| c.0 == SummaryInput::Chunk)
            .map(|c| c.1)
            .sum();
        assert!(chunk_tokens >= 280, "every word went to some chunk");
        assert_eq!(calls.last().unwrap().0, SummaryInput::Partials);
        assert!(out.value.starts_with("# T\n"));

        let short = Words {
            max: 50,
            calls: Mutex::new(Vec::new()),
        };
        make_brief(&short, "Short text.", "T").unwrap();
        assert_eq!(short.calls.lock().unwrap()[0].0, SummaryInput::Document);
    }

    #[test]
    fn title_with_multibyte_text_near_a_label_length_does_not_panic() {
        // Byte 9 ("Headline:".len()) falls inside the 3-byte character.
        assert_eq!(clean_title("abcdefg\u{2019}xyz"), "abcdefg\u{2019}xyz");
        assert_eq!(clean_title("Titre : Le chat"), "Le chat");
    }
}
