//! Fits text into a model's input budget: groups paragraphs (or, inside a paragraph that is too
//! long, sentences) into chunks that a model can take in one go, without ever dropping text.
//!
//! Not for: counting tokens (the caller passes its tokenizer as the `count` closure), nor for
//! deciding where sentences end (see [`super::segment`]).

use super::segment::{paragraphs, sentences, Span};

/// Groups consecutive units (paragraphs, or sentences inside a paragraph that is too long) into
/// chunks whose token count (by `count`) stays within `budget`. A unit longer than the budget is
/// split by sentences, then at whitespace, then at char boundaries (within pieces of 16 KiB, so a
/// chunk of unbroken text never straddles such a piece), so nothing is ever dropped or
/// truncated; only a single character that alone exceeds the budget is returned over budget.
///
/// Returns spans into `text`, in order and not overlapping, that cover every non-whitespace byte.
/// A chunk never crosses a paragraph boundary unless it holds whole paragraphs, and a chunk of
/// several paragraphs keeps the blank lines between them. Whitespace between chunks, around
/// paragraphs and at the edges of the text belongs to no chunk.
///
/// `count` is called a number of times logarithmic in the units per chunk (it first tries the size
/// of the previous chunk, then gallops and bisects), each time on at most about twice a chunk's
/// text, plus once on each unit too long to fit, so the work stays linear in the text's length
/// when `count` is.
pub fn chunk(text: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<Span> {
    let mut out = Vec::new();
    let units = paragraphs(text);
    pack(text, &units, Level::Paragraph, budget, count, &mut out);
    out
}

/// Size of the pieces a word without whitespace is cut into before cutting it into characters,
/// so that the per-character work list stays small even for megabytes of unbroken text.
const WINDOW_BYTES: usize = 16 * 1024;

/// How finely a unit is cut, from coarsest to finest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Paragraph,
    Sentence,
    Word,
    /// Up to [`WINDOW_BYTES`] of a word, cut on a char boundary.
    Window,
    Char,
}

impl Level {
    fn finer(self) -> Option<Level> {
        match self {
            Level::Paragraph => Some(Level::Sentence),
            Level::Sentence => Some(Level::Word),
            Level::Word => Some(Level::Window),
            Level::Window => Some(Level::Char),
            Level::Char => None,
        }
    }
}

/// The units of `level` inside `span`, trimmed of whitespace and never empty.
fn units_of(text: &str, span: Span, level: Level) -> Vec<Span> {
    let base = span.start;
    let inner = &text[span];
    match level {
        Level::Paragraph => paragraphs(inner)
            .into_iter()
            .map(|s| base + s.start..base + s.end)
            .collect(),
        Level::Sentence => sentences(inner)
            .into_iter()
            .filter_map(|s| {
                let piece = &inner[s.clone()];
                let trimmed = piece.trim();
                if trimmed.is_empty() {
                    return None;
                }
                let start = base + s.start + (piece.len() - piece.trim_start().len());
                Some(start..start + trimmed.len())
            })
            .collect(),
        Level::Word => {
            let mut words = Vec::new();
            let mut start = None;
            for (i, c) in inner.char_indices() {
                match (c.is_whitespace(), start) {
                    (true, Some(s)) => {
                        words.push(base + s..base + i);
                        start = None;
                    }
                    (false, None) => start = Some(i),
                    _ => {}
                }
            }
            if let Some(s) = start {
                words.push(base + s..base + inner.len());
            }
            words
        }
        Level::Window => {
            let mut windows = Vec::new();
            let mut start = 0;
            while start < inner.len() {
                let mut end = (start + WINDOW_BYTES).min(inner.len());
                // At most 3 steps back, and never back to `start`: a char is at most 4 bytes.
                while !inner.is_char_boundary(end) {
                    end -= 1;
                }
                windows.push(base + start..base + end);
                start = end;
            }
            windows
        }
        Level::Char => inner
            .char_indices()
            .map(|(i, c)| base + i..base + i + c.len_utf8())
            .collect(),
    }
}

/// Greedily packs `units` (all of one level) into chunks within `budget`, pushing them to `out`.
fn pack(
    text: &str,
    units: &[Span],
    level: Level,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
    out: &mut Vec<Span>,
) {
    let n = units.len();
    // Units per chunk last time: the first guess for the next chunk.
    let mut guess = 1;
    let mut i = 0;
    while i < n {
        let fits = |j: usize| count(&text[units[i].start..units[j].end]) <= budget;
        if !fits(i) {
            match level.finer() {
                Some(finer) => {
                    let parts = units_of(text, units[i].clone(), finer);
                    pack(text, &parts, finer, budget, count, out);
                }
                // A single character over budget: it cannot be cut, and must not be dropped.
                None => out.push(units[i].clone()),
            }
            i += 1;
            continue;
        }
        // Invariant: units i..=lo fit together; i..=hi do not, or hi == n.
        let (mut lo, mut hi) = (i, n);
        let estimate = (i + guess - 1).min(n - 1);
        if estimate > i {
            if fits(estimate) {
                lo = estimate;
            } else {
                hi = estimate;
            }
        }
        let mut step = 1;
        while hi == n && lo + step < n {
            if fits(lo + step) {
                lo += step;
                step *= 2;
            } else {
                hi = lo + step;
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        out.push(units[i].start..units[lo].end);
        guess = lo + 1 - i;
        i = lo + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::testgen::for_each_case;
    use std::cell::Cell;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    /// Checks the contract: ordered, disjoint, within budget (or a single char), and covering
    /// every non-whitespace byte exactly once.
    fn check(text: &str, budget: usize, count: &dyn Fn(&str) -> usize, spans: &[Span]) {
        let mut covered = vec![false; text.len()];
        let mut last = 0;
        for s in spans {
            assert!(s.start >= last && s.start < s.end, "{s:?} after {last}");
            let piece = &text[s.clone()];
            assert_eq!(piece, piece.trim(), "chunks are trimmed");
            assert!(
                count(piece) <= budget || piece.chars().count() == 1,
                "{piece:?} over budget {budget}"
            );
            covered[s.clone()].iter_mut().for_each(|c| *c = true);
            last = s.end;
        }
        for (i, c) in text.char_indices() {
            assert!(
                covered[i] || c.is_whitespace(),
                "{c:?} at {i} is in no chunk"
            );
        }
    }

    /// Chunks `text`, checks the contract, and returns the chunks' text.
    fn chunked<'a>(text: &'a str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<&'a str> {
        let spans = chunk(text, budget, count);
        check(text, budget, count, &spans);
        spans.iter().map(|s| &text[s.clone()]).collect()
    }

    #[test]
    fn whole_paragraphs_are_grouped() {
        let text = "Un deux trois.\n\nQuatre cinq.\n\nSix sept huit neuf.\n\nDix.";
        assert_eq!(
            chunked(text, 5, &words),
            [
                "Un deux trois.\n\nQuatre cinq.",
                "Six sept huit neuf.\n\nDix."
            ]
        );
    }

    #[test]
    fn everything_fits_in_one_chunk() {
        let text = "\n  Bonjour.\n\n\nAu revoir.  \n";
        assert_eq!(chunked(text, 100, &words), ["Bonjour.\n\n\nAu revoir."]);
    }

    #[test]
    fn long_paragraph_is_split_by_sentences() {
        let text =
            "Le ministre parle. Les députés écoutent en silence. M. Dupont proteste.\n\nFin.";
        assert_eq!(
            chunked(text, 6, &words),
            [
                "Le ministre parle.",
                "Les députés écoutent en silence.",
                "M. Dupont proteste.",
                "Fin."
            ]
        );
    }

    #[test]
    fn long_sentence_is_split_at_whitespace_then_chars() {
        let text = "aaaa bbbb cccccccccc dd";
        // The word cut at char boundaries stays on its own: its tail is not merged with "dd".
        assert_eq!(
            chunked(text, 9, &chars),
            ["aaaa bbbb", "ccccccccc", "c", "dd"]
        );
    }

    #[test]
    fn empty_and_blank_text_have_no_chunks() {
        assert!(chunk("", 10, &words).is_empty());
        assert!(chunk(" \n\n\t", 10, &words).is_empty());
    }

    #[test]
    fn zero_budget_still_returns_every_character() {
        let text = "é à\n\nœ";
        assert_eq!(chunked(text, 0, &chars), ["é", "à", "œ"]);
    }

    /// Chunks `text` while metering `count`, checks the contract and that the counting work stays
    /// linear, and returns the spans.
    fn chunk_metered(text: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> Vec<Span> {
        let (calls, bytes) = (Cell::new(0usize), Cell::new(0usize));
        let metered = |s: &str| {
            calls.set(calls.get() + 1);
            bytes.set(bytes.get() + s.len());
            count(s)
        };
        let spans = chunk(text, budget, &metered);
        check(text, budget, count, &spans);
        let (calls, bytes) = (calls.get(), bytes.get());
        eprintln!(
            "{} bytes: {} chunks, {calls} calls, {bytes} bytes counted",
            text.len(),
            spans.len()
        );
        // Packing greedily with one call per added unit would take a call per word or char
        // (25,000 or 50,000 here) and count ~100x the text; the bounds leave room for the
        // search, not for that.
        assert!(calls <= 8 * spans.len(), "{calls} calls");
        assert!(bytes <= 10 * text.len(), "{bytes} bytes counted");
        spans
    }

    #[test]
    fn hundred_kb_line_without_punctuation_splits_at_whitespace() {
        let text = "mot ".repeat(25_000);
        let spans = chunk_metered(&text, 100, &words);
        assert_eq!(spans.len(), 250);
        assert!(spans.iter().all(|s| words(&text[s.clone()]) == 100));
    }

    #[test]
    fn hundred_kb_without_whitespace_splits_at_char_boundaries() {
        let text = "é".repeat(50_000); // 100 kB, 2 bytes per char
        let spans = chunk_metered(&text, 300, &chars);
        // Full chunks, except one leftover at the end of each 16 KiB window (8,192 chars here).
        let window_chars = WINDOW_BYTES / 2;
        let windows: Vec<usize> = (0..50_000)
            .step_by(window_chars)
            .map(|start| (50_000 - start).min(window_chars))
            .collect();
        let expected: usize = windows.iter().map(|w| w.div_ceil(300)).sum();
        assert_eq!(spans.len(), expected);
        let short = spans.iter().filter(|s| chars(&text[(*s).clone()]) < 300);
        assert_eq!(short.count(), windows.len());
    }

    #[test]
    fn unbroken_text_under_budget_is_grouped_across_windows() {
        let text = "x".repeat(3 * WINDOW_BYTES + 10);
        let got = chunked(&text, 2 * WINDOW_BYTES, &chars);
        assert_eq!(
            got.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [2 * WINDOW_BYTES, WINDOW_BYTES + 10]
        );
    }

    #[test]
    fn uneven_units_stay_within_budget() {
        // Paragraph lengths vary wildly, so the previous chunk's size is a poor guess.
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&"x ".repeat(1 + (i * 37) % 23));
            text.push_str("\n\n");
        }
        let spans = chunk(&text, 40, &words);
        check(&text, 40, &words, &spans);
    }

    #[test]
    fn chunks_cover_all_text_within_budget() {
        for_each_case(
            1500,
            |g| (g.any_text(300), g.below(40)),
            |(text, budget)| {
                check(text, *budget, &chars, &chunk(text, *budget, &chars));
                check(text, *budget, &words, &chunk(text, *budget, &words));
            },
        );
    }
}
