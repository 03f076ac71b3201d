//! Inline formatting through a model. A paragraph of a rich document is a sequence of runs,
//! each with its formatting (bold, italic, a link, a span...). It is translated as one piece, so
//! that a bold word does not cut its sentence in two: the runs that differ from the paragraph's
//! main formatting are wrapped in markers, `<a>`…`</a>`, `<b>`…`</b>` (one letter per stretch, in
//! order; letters, because digits would meet the number checks), and after translation the
//! markers say which English words take which formatting.
//!
//! When the markers come back broken (a pair opened twice, nested, unclosed, closed out of
//! order), the formatting is dropped and the text kept: the whole paragraph takes its main
//! formatting. A pair the model dropped entirely only loses its own formatting. Either way the
//! run's report counts the paragraph ([`broken_count`]).
//!
//! Not for: reading runs out of a format (`super::docx`, `super::odt`, `super::html` do, and give
//! each distinct formatting a number), or checking the translation (`crate::checks`).

/// How many stretches can carry a marker: `a` to `z`. Further stretches of a paragraph take its
/// main formatting.
const MAX_MARKERS: usize = 26;

/// A paragraph with its formatting in markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// The paragraph's text with markers, what the model translates.
    pub text: String,
    /// The style (the caller's number) of the unmarked text.
    pub base: usize,
    /// The style of each marker: `spans[0]` is `<a>`, `spans[1]` is `<b>`...
    pub spans: Vec<usize>,
}

/// Wraps in markers the runs of a paragraph (text, style) whose style is not the paragraph's
/// main one: the style with the most non-blank characters (the first such on a tie). A stretch
/// of consecutive runs with the same style takes one marker; its leading and trailing
/// whitespace stay outside it. A paragraph whose text already holds something that reads as a
/// marker gets none (its formatting would be ambiguous), and neither does one with a single
/// style.
pub fn mark<S: AsRef<str>>(runs: &[(S, usize)]) -> Marked {
    mark_preferring(runs, |_| true)
}

/// [`mark`], with the main style chosen among the styles for which `eligible` holds, when any of
/// them has a run (an empty one will do): a format whose runs carry more than formatting (HTML's
/// inline code or images, kept verbatim and put back once) keeps those out of the unmarked text.
pub fn mark_preferring<S: AsRef<str>>(
    runs: &[(S, usize)],
    eligible: impl Fn(usize) -> bool,
) -> Marked {
    let base = main_style(runs, eligible);
    let plain: String = runs.iter().map(|(t, _)| t.as_ref()).collect();
    if plain.is_empty() || has_marker_like(&plain) {
        return Marked {
            text: plain,
            base,
            spans: Vec::new(),
        };
    }
    // Consecutive runs of one style merged.
    let mut stretches: Vec<(String, usize)> = Vec::new();
    for (text, style) in runs {
        match stretches.last_mut() {
            Some((t, s)) if *s == *style => t.push_str(text.as_ref()),
            _ => stretches.push((text.as_ref().to_string(), *style)),
        }
    }
    let mut text = String::with_capacity(plain.len() + 8 * stretches.len());
    let mut spans = Vec::new();
    for (t, style) in stretches {
        let core = t.trim();
        if style == base || core.is_empty() || spans.len() == MAX_MARKERS {
            text.push_str(&t);
            continue;
        }
        let letter = (b'a' + spans.len() as u8) as char;
        let lead = &t[..t.len() - t.trim_start().len()];
        let trail = &t[t.trim_end().len()..];
        text.push_str(lead);
        text.push_str(&format!("<{letter}>{core}</{letter}>"));
        text.push_str(trail);
        spans.push(style);
    }
    Marked { text, base, spans }
}

fn main_style<S: AsRef<str>>(runs: &[(S, usize)], eligible: impl Fn(usize) -> bool) -> usize {
    let mut totals: Vec<(usize, usize)> = Vec::new();
    for (text, style) in runs {
        let n = text.as_ref().chars().filter(|c| !c.is_whitespace()).count();
        match totals.iter_mut().find(|(s, _)| s == style) {
            Some((_, total)) => *total += n,
            None => totals.push((*style, n)),
        }
    }
    if totals.iter().any(|&(s, _)| eligible(s)) {
        totals.retain(|&(s, _)| eligible(s));
    }
    // max_by_key keeps the last maximum: reversed, the first.
    totals
        .iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map_or(0, |(s, _)| *s)
}

/// A marker's letter, and whether it closes, if `s` starts with one (`<a>` or `</a>`, any
/// lowercase letter).
fn marker_at(s: &str) -> Option<(usize, bool, usize)> {
    let b = s.as_bytes();
    let (close, at) = match b.get(1) {
        Some(b'/') => (true, 2),
        _ => (false, 1),
    };
    if b.first() != Some(&b'<') {
        return None;
    }
    match (b.get(at), b.get(at + 1)) {
        (Some(c @ b'a'..=b'z'), Some(b'>')) => Some(((c - b'a') as usize, close, at + 2)),
        _ => None,
    }
}

fn has_marker_like(text: &str) -> bool {
    text.char_indices()
        .any(|(i, c)| c == '<' && marker_at(&text[i..]).is_some())
}

/// The translation of a [`Marked`] paragraph as runs (text, style), in order, none empty; the
/// text between markers takes `marked.base`. When the markers are broken, one run of the text
/// without them, in the base style: [`Unmarked::Broken`] says so.
pub fn unmark(translation: &str, marked: &Marked) -> Unmarked {
    match parse(translation, marked) {
        Some(runs) => Unmarked::Kept(runs),
        None => Unmarked::Broken(vec![(strip(translation, marked), marked.base)]),
    }
}

/// What [`unmark`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmarked {
    /// Markers well formed (some may be missing): the runs with their styles.
    Kept(Vec<(String, usize)>),
    /// Markers broken: the text without them, in the paragraph's main style.
    Broken(Vec<(String, usize)>),
}

impl Unmarked {
    pub fn runs(&self) -> &[(String, usize)] {
        match self {
            Unmarked::Kept(r) | Unmarked::Broken(r) => r,
        }
    }
}

fn parse(translation: &str, marked: &Marked) -> Option<Vec<(String, usize)>> {
    let mut runs: Vec<(String, usize)> = Vec::new();
    let mut seen = vec![false; marked.spans.len()];
    let mut open: Option<usize> = None;
    let mut current = String::new();
    let mut rest = translation;
    let flush = |runs: &mut Vec<(String, usize)>, current: &mut String, style: usize| {
        if !current.is_empty() {
            runs.push((std::mem::take(current), style));
        }
    };
    while let Some(i) = rest.find('<') {
        current.push_str(&rest[..i]);
        rest = &rest[i..];
        match marker_at(rest) {
            Some((letter, close, len)) if letter < marked.spans.len() => {
                match (close, open) {
                    (false, None) if !seen[letter] => {
                        flush(&mut runs, &mut current, marked.base);
                        seen[letter] = true;
                        open = Some(letter);
                    }
                    (true, Some(o)) if o == letter => {
                        flush(&mut runs, &mut current, marked.spans[letter]);
                        open = None;
                    }
                    _ => return None,
                }
                rest = &rest[len..];
            }
            _ => {
                current.push('<');
                rest = &rest[1..];
            }
        }
    }
    if open.is_some() {
        return None;
    }
    current.push_str(rest);
    flush(&mut runs, &mut current, marked.base);
    Some(runs)
}

/// `translation` without any of `marked`'s markers, spaces around a dropped marker collapsed.
pub fn strip(translation: &str, marked: &Marked) -> String {
    let mut out = String::with_capacity(translation.len());
    let mut rest = translation;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match marker_at(rest) {
            Some((letter, _, len)) if letter < marked.spans.len() => {
                if out.ends_with(' ') && rest[len..].starts_with(' ') {
                    out.pop();
                }
                rest = &rest[len..];
            }
            _ => {
                out.push('<');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A stand-in translation for tests and the fuzz targets: upper case outside anything that reads
/// as a tag, so markers (and any `<...>`) come back as they were.
pub fn shout(piece: &str) -> String {
    let mut out = String::new();
    let mut rest = piece;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i].to_uppercase());
        let end = rest[i..].find('>').map_or(rest.len(), |e| i + e + 1);
        out.push_str(&rest[i..end]);
        rest = &rest[end..];
    }
    out.push_str(&rest.to_uppercase());
    out
}

/// How many marker pairs `text` holds, when they are well formed (`None` when they are not).
fn pairs_in(text: &str) -> Option<usize> {
    let opened = text
        .char_indices()
        .filter(|&(i, c)| c == '<' && matches!(marker_at(&text[i..]), Some((_, false, _))))
        .count();
    let any = Marked {
        text: String::new(),
        base: 0,
        spans: vec![1; MAX_MARKERS],
    };
    parse(text, &any).map(|_| opened)
}

/// Whether `text` carries formatting in well-formed markers: what a translator is told to keep.
pub fn has_markers(text: &str) -> bool {
    pairs_in(text).is_some_and(|n| n > 0)
}

/// The byte ranges of `text` that marker pairs span (from `<a>` to the end of `</a>`), in
/// order, when its markers are well formed (none otherwise): where a text must not be cut, so
/// that each part keeps whole pairs.
pub fn pair_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    if !has_markers(text) {
        return Vec::new();
    }
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c != '<' {
            continue;
        }
        match (marker_at(&text[i..]), start) {
            (Some((_, false, _)), None) => start = Some(i),
            (Some((_, true, len)), Some(s)) => {
                spans.push(s..i + len);
                start = None;
            }
            _ => {}
        }
    }
    spans
}

/// How many of `english` (the translations of `pieces`, in order) lost formatting: pieces with
/// well-formed markers whose translation has broken markers (all its formatting dropped) or
/// fewer pairs (the missing ones dropped).
pub fn broken_count(pieces: &[String], english: &[String]) -> usize {
    pieces
        .iter()
        .zip(english)
        .filter(|(piece, english)| match pairs_in(piece) {
            Some(n) if n > 0 => pairs_in(english).is_none_or(|m| m < n),
            _ => false,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_runs_that_differ_from_the_main_style() {
        let m = mark(&[("Mon nom ", 0), ("est", 1), (" Michel.", 0)]);
        assert_eq!(m.text, "Mon nom <a>est</a> Michel.");
        assert_eq!((m.base, m.spans.clone()), (0, vec![1]));

        // Whitespace stays outside; a style seen twice gets two markers; runs of one style merge.
        let m = mark(&[
            ("Un ", 0),
            ("lien ", 2),
            ("ici", 2),
            (" et ", 0),
            (" gras ", 1),
            ("fin", 0),
        ]);
        assert_eq!(m.text, "Un <a>lien ici</a> et  <b>gras</b> fin");
        assert_eq!(m.spans, [2, 1]);

        // The main style is the one with the most characters, wherever it is.
        let m = mark(&[("Tout en gras", 1), (" sauf", 0)]);
        assert_eq!(m.text, "Tout en gras <a>sauf</a>");
        assert_eq!(m.base, 1);
    }

    #[test]
    fn the_main_style_can_be_kept_to_eligible_styles() {
        // Style 1 (inline code, say) has the most text but may not be the main style.
        let runs = [("--max-bytes N", 1), (" : ", 0), ("limite", 2)];
        let m = mark_preferring(&runs, |s| s != 1);
        assert_eq!(m.text, "<a>--max-bytes N</a> <b>:</b> limite");
        assert_eq!(m.base, 2);
        // No eligible style: as mark. An empty run of one is enough.
        let m = mark_preferring(&[("tout", 1)], |s| s != 1);
        assert_eq!((m.text.as_str(), m.base), ("tout", 1));
        let m = mark_preferring(&[("tout", 1), ("", 0)], |s| s != 1);
        assert_eq!((m.text.as_str(), m.base), ("<a>tout</a>", 0));
    }

    #[test]
    fn text_that_reads_as_markers_gets_none() {
        let m = mark(&[("si x <b> y", 0), ("gras", 1)]);
        assert_eq!(m.text, "si x <b> ygras");
        assert!(m.spans.is_empty());
        assert_eq!(
            unmark("if x <b> y bold", &m).runs(),
            [("if x <b> y bold".to_string(), m.base)]
        );
    }

    #[test]
    fn well_formed_markers_put_the_formatting_on_the_english_words() {
        let m = mark(&[
            ("Mon nom ", 0),
            ("est", 1),
            (" Michel, ", 0),
            ("voir", 2),
            (".", 0),
        ]);
        let out = unmark("<b>See</b>: my name <a>is</a> Michel.", &m);
        assert_eq!(
            out,
            Unmarked::Kept(vec![
                ("See".into(), 2),
                (": my name ".into(), 0),
                ("is".into(), 1),
                (" Michel.".into(), 0),
            ])
        );
        // A pair dropped entirely loses its formatting only.
        let out = unmark("My name <a>is</a> Michel, see.", &m);
        assert!(matches!(out, Unmarked::Kept(_)));
        // A literal "<" that is no marker is text.
        assert_eq!(
            unmark("a < b <a>c</a>", &m).runs(),
            [("a < b ".to_string(), 0), ("c".to_string(), 1)]
        );
    }

    #[test]
    fn broken_markers_drop_the_formatting_and_keep_the_text() {
        let m = mark(&[
            ("Mon nom ", 0),
            ("est", 1),
            (" Michel, ", 0),
            ("voir", 2),
            (".", 0),
        ]);
        for bad in [
            "My name <a>is Michel, see.",            // unclosed
            "My name <a>is</a> <a>Michel</a>, see.", // twice
            "My <a>name <b>is</b></a> Michel, see.", // nested
            "My name </a>is<a> Michel, see.",        // closed before opened
            "My name <a>is</b> Michel, <b>see</a>.", // crossed
        ] {
            match unmark(bad, &m) {
                Unmarked::Broken(runs) => {
                    assert_eq!(runs.len(), 1, "{bad}");
                    assert!(
                        !runs[0].0.contains("<a>") && !runs[0].0.contains("</b>"),
                        "{bad}"
                    );
                    assert!(runs[0].0.contains("Michel"), "{bad}");
                }
                kept => panic!("{bad}: {kept:?}"),
            }
        }
        assert_eq!(strip("My name <a>is Michel", &m), "My name is Michel");
        assert_eq!(strip("x <c>y</c>", &m), "x <c>y</c>", "not one of ours");

        let pieces = [m.text.clone(), "Rien.".into(), "si <b> x".into()];
        let english = |first: &str| [first.to_string(), "Nothing.".into(), "if <b> x".into()];
        assert_eq!(
            broken_count(&pieces, &english("<b>See</b>: my <a>name</a> is.")),
            0
        );
        assert_eq!(
            broken_count(&pieces, &english("My <a>name</a> is, see.")),
            1,
            "a pair left out"
        );
        assert_eq!(broken_count(&pieces, &english("My <a>name is, see.")), 1);
        assert_eq!(
            broken_count(&pieces, &english("My name is, see.")),
            1,
            "dropped"
        );
        assert!(has_markers(&pieces[0]) && !has_markers("si <b> x") && !has_markers("Rien."));

        let t = "Un <a>lien. Ici</a> et <b>là</b>.";
        let spans: Vec<&str> = pair_spans(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(spans, ["<a>lien. Ici</a>", "<b>là</b>"]);
        assert!(
            pair_spans("Un <a>lien. Ici et là.").is_empty(),
            "unclosed: not well formed"
        );
    }
}
