//! Writing a brief: summarize an English text whole when it fits the model, or in chunks whose
//! partial summaries are then merged (never silently truncated), and shape the answer into the
//! brief's Markdown: a `# Title` line and 3 to 6 `- ` bullet points.
//!
//! Not for: the prompts (the catalog) or the model calls themselves (the `Summarizer`).

use crate::backends::{Output, Summarizer, SummaryInput, Usage};
use crate::checks::Finding;
use crate::{Error, Result};

/// Fewest and most bullet points in a brief.
pub const MIN_BULLETS: usize = 3;
pub const MAX_BULLETS: usize = 6;

/// Levels of chunk-then-merge before giving up (each level shrinks the text many times over).
const MAX_DEPTH: usize = 4;

/// The title a brief gets when the model gives none: the document's base name (up to its first
/// dot) with `-` and `_` as spaces; "Brief" for a document without a name (stdin).
pub fn fallback_title(input: Option<&std::path::Path>) -> String {
    let Some(name) = input.and_then(|p| p.file_name()) else {
        return "Brief".into();
    };
    let name = name.to_string_lossy();
    let base = name.split('.').next().unwrap_or(&name);
    base.replace(['-', '_'], " ")
}

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

/// A brief and what the brief check (`crate::checks::brief`) still finds in it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedBrief {
    pub markdown: String,
    /// What the brief check still finds after the retry (numbers or names the document does not
    /// have, copied sentences, no bullet point).
    pub findings: Vec<Finding>,
    /// Findings of the first brief that the retry got rid of.
    pub repaired: Vec<Finding>,
}

/// [`make_brief`], checked: a brief that fails the brief check (numbers or names the English
/// does not have, copied sentences, no bullet point) is made once more with the summarizer told
/// to keep to the text; the one with fewer findings is kept (the first on ties), and what it
/// still has is returned to be flagged.
pub fn make_checked_brief(
    summarizer: &dyn Summarizer,
    english: &str,
    fallback_title: &str,
) -> Result<Output<CheckedBrief>> {
    let mut usage = Usage::default();
    let first = make_brief(summarizer, english, fallback_title)?;
    usage += first.usage;
    let findings = usage.time_checks(|| crate::checks::brief::check(english, &first.value));
    if findings.is_empty() {
        let value = CheckedBrief {
            markdown: first.value,
            findings,
            repaired: Vec::new(),
        };
        return Ok(Output { value, usage });
    }
    let mut retry_usage = Usage::default();
    let raw = summarize_any(
        &Strictly(summarizer),
        english,
        SummaryInput::Document,
        0,
        &mut retry_usage,
    )?;
    retry_usage.retries += 1;
    retry_usage.retry_tokens += retry_usage.input_tokens + retry_usage.output_tokens;
    usage += retry_usage;
    let second = shape(&raw, fallback_title);
    let again = usage.time_checks(|| crate::checks::brief::check(english, &second));
    let value = if again.len() < findings.len() {
        let repaired = findings
            .into_iter()
            .filter(|f| !again.iter().any(|a| a.kind == f.kind))
            .collect();
        CheckedBrief {
            markdown: second,
            findings: again,
            repaired,
        }
    } else {
        CheckedBrief {
            markdown: first.value,
            findings,
            repaired: Vec::new(),
        }
    };
    Ok(Output { value, usage })
}

/// A summarizer whose every call is [`Summarizer::summarize_strictly`].
struct Strictly<'a>(&'a dyn Summarizer);

impl Summarizer for Strictly<'_> {
    fn max_input_tokens(&self) -> usize {
        self.0.max_input_tokens()
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        self.0.count_tokens(text)
    }

    fn summarize(&self, text: &str, input: SummaryInput) -> Result<Output<String>> {
        self.0.summarize_strictly(text, input)
    }
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
    let chunks = crate::text::chunk::chunk(text, max, &count);
    tracing::debug!(
        tokens = count(text),
        max,
        chunks = chunks.len(),
        depth,
        "summarizing in chunks"
    );
    for span in chunks {
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

/// Labels a model may put before its title line.
const TITLE_LABELS: [&str; 5] = ["Title:", "Title :", "Titre :", "Titre:", "Headline:"];

/// `t` without a leading title label, if it has one (case-insensitive).
fn strip_label(t: &str) -> Option<&str> {
    TITLE_LABELS.iter().find_map(|label| {
        let head = t.get(..label.len())?;
        head.eq_ignore_ascii_case(label)
            .then(|| t[label.len()..].trim())
    })
}

/// Whether `line` says it is a title: a Markdown heading or a labelled line ("Title: ...").
fn is_marked_title(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('#') || strip_label(t.trim_start_matches('*').trim_start()).is_some()
}

fn clean_title(line: &str) -> String {
    let mut t = line.trim().trim_start_matches('#').trim();
    for _ in 0..2 {
        t = t.trim_matches('*').trim();
        if let Some(rest) = strip_label(t) {
            t = rest;
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
    // The unmarked line taken as the title, in case it turns out to be the whole answer.
    let mut title_prose = None;
    let mut bullets: Vec<String> = Vec::new();
    for line in &lines {
        match bullet_body(line) {
            Some(body) if !body.is_empty() => bullets.push(body.to_string()),
            Some(_) => {}
            None if title.is_none() && bullets.is_empty() => {
                let t = clean_title(line);
                if !t.is_empty() {
                    title = Some(t);
                    title_prose = (!is_marked_title(line)).then_some(*line);
                }
            }
            // Prose after the title counts as points too.
            None => bullets.push(line.trim_start_matches('#').trim().to_string()),
        }
    }
    // An answer that is only prose (a seq2seq summary such as BART's or T5's) has no title: its
    // sentences are the points, under the fallback title.
    if let (true, Some(prose)) = (bullets.is_empty(), title_prose) {
        bullets.push(prose.to_string());
        title = None;
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
    fn a_prose_only_summary_becomes_points_under_the_fallback_title() {
        // distilbart-cnn writes one line of sentences, with spaces before the full stops.
        let md = shape(
            " The army entered Raqqa on Tuesday . Thousands of families fled north . The UN counted 500 people in the camps .",
            "raqqa report",
        );
        assert!(md.starts_with("# raqqa report\n\n"), "{md}");
        assert_eq!(md.matches("\n- ").count(), 3, "{md}");
        assert!(
            md.contains("- The army entered Raqqa on Tuesday .\n"),
            "{md}"
        );

        // One sentence is still a point, not a title.
        let md = shape("The army entered Raqqa.", "fallback");
        assert_eq!(md, "# fallback\n\n- The army entered Raqqa.\n");

        // A marked title alone stays a title.
        assert_eq!(shape("Title: Raqqa", "x"), "# Raqqa\n\n");
        assert_eq!(shape("## Raqqa", "x"), "# Raqqa\n\n");
        // A label-length prefix that ends inside a character is not a label (and no panic).
        assert!(shape("Titl€ rises", "f").starts_with("# f\n"));
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
            assert!(
                n <= self.max,
                "asked to summarize {n} > {} tokens",
                self.max
            );
            self.calls.lock().unwrap().push((input, n));
            let first: Vec<&str> = text.split_whitespace().take(2).collect();
            Ok(Output {
                value: format!("- {}", first.join(" ")),
                usage: Usage {
                    input_tokens: n as u64,
                    output_tokens: 2,
                    ..Usage::default()
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
}

#[cfg(test)]
mod checked_tests {
    use super::*;

    const ENGLISH: &str = "The Lyon city council voted on Tuesday a budget of 12 million euros \
                           to renovate three schools.";

    /// Answers with a brief that invents a figure, and (when it can be told to keep to the
    /// text, `strict_ok`) with a faithful one when asked strictly.
    struct Inventive {
        strict_ok: bool,
    }

    impl Summarizer for Inventive {
        fn max_input_tokens(&self) -> usize {
            1000
        }

        fn count_tokens(&self, text: &str) -> Result<usize> {
            Ok(text.split_whitespace().count())
        }

        fn summarize(&self, _text: &str, _input: SummaryInput) -> Result<Output<String>> {
            Ok(Output {
                value: "Title: Lyon schools\n- The council voted 15 million euros.\n".into(),
                usage: Usage::default(),
            })
        }

        fn summarize_strictly(&self, text: &str, input: SummaryInput) -> Result<Output<String>> {
            if !self.strict_ok {
                return self.summarize(text, input);
            }
            Ok(Output {
                value: "Title: Lyon schools\n- The council voted 12 million euros.\n".into(),
                usage: Usage::default(),
            })
        }
    }

    #[test]
    fn an_invented_figure_is_regenerated_once_then_flagged() {
        let out = make_checked_brief(&Inventive { strict_ok: true }, ENGLISH, "t").unwrap();
        assert!(out.value.markdown.contains("12 million"), "{:?}", out.value);
        assert!(out.value.findings.is_empty());
        assert_eq!(out.value.repaired.len(), 1);
        assert_eq!(out.usage.retries, 1);

        let out = make_checked_brief(&Inventive { strict_ok: false }, ENGLISH, "t").unwrap();
        assert!(out.value.markdown.contains("15 million"), "{:?}", out.value);
        assert_eq!(out.value.findings.len(), 1, "{:?}", out.value);
        assert!(out.value.findings[0].detail.contains("15"));
    }
}
