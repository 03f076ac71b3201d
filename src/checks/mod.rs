//! Checks an English translation against its French source without a reference: cheap tests
//! that catch what a small model gets wrong in ways a batch user never sees, each on one pair of
//! (French segment, English segment):
//! - [`CheckKind::Length`]: the English is much shorter or longer than French text of that length
//!   gives, or has fewer sentences (see [`length`]);
//! - [`CheckKind::Language`]: a sentence of the English is French, or French words are left in it
//!   (see [`language`]);
//! - [`CheckKind::Numbers`]: a number of the source is missing, or one was added (see [`numbers`]);
//! - [`CheckKind::Dates`]: a day of the week or a month of the source is missing or changed
//!   (see [`dates`]);
//! - [`CheckKind::Names`]: a proper name or acronym of the source is missing (see [`names`]);
//! - [`CheckKind::Echo`] and [`CheckKind::Loop`]: the previous segment's English comes back, or
//!   the output repeats itself (see [`echo`]);
//! - [`CheckKind::Answer`]: the model answered or commented instead of translating (see
//!   [`answer`]).
//!
//! Each check errs on the side of silence: a finding means "look at this", and a check that
//! cries wolf on good translations would be switched off. The rates measured on the human
//! references of `../shared/eval` are in `tests/checks_eval.rs`.
//!
//! Every check is pure and costs microseconds per segment; whatever is expensive to build (the
//! language detector, word lists) is built once per process.
//!
//! Not for: scoring quality (BLEU, chrF: that needs a reference, see `eval`), repairing anything
//! (retrying is the pipeline's job; these only say what is wrong), nor Markdown structure (pass
//! the prose segments, not the markup).

pub mod answer;
pub mod brief;
pub mod dates;
pub mod echo;
pub mod language;
pub mod length;
pub mod names;
pub mod numbers;

use crate::text::segment::paragraphs;

/// Which check raised a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckKind {
    Length,
    Language,
    Numbers,
    Dates,
    Names,
    Echo,
    Loop,
    Answer,
}

impl CheckKind {
    /// Every kind, in the order the checks run.
    pub const ALL: [CheckKind; 8] = [
        CheckKind::Length,
        CheckKind::Language,
        CheckKind::Numbers,
        CheckKind::Dates,
        CheckKind::Names,
        CheckKind::Echo,
        CheckKind::Loop,
        CheckKind::Answer,
    ];

    /// The kind's name in reports: "length", "language", "numbers", "dates", "names", "echo",
    /// "loop", "answer".
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Length => "length",
            CheckKind::Language => "language",
            CheckKind::Numbers => "numbers",
            CheckKind::Dates => "dates",
            CheckKind::Names => "names",
            CheckKind::Echo => "echo",
            CheckKind::Loop => "loop",
            CheckKind::Answer => "answer",
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One doubt about one segment's English: which check, and what it saw, in words a user can act
/// on ("number 3,5 of the source is not in the English").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: CheckKind,
    pub detail: String,
}

impl Finding {
    fn new(kind: CheckKind, detail: impl Into<String>) -> Self {
        Finding {
            kind,
            detail: detail.into(),
        }
    }
}

/// The findings of a check that compares what the French and the English state: what is
/// `missing` from the English, then what is `added` to it (none for an empty list).
fn missing_and_added<M: AsRef<str>, A: AsRef<str>>(
    kind: CheckKind,
    missing: &[M],
    added: &[A],
) -> Vec<Finding> {
    fn join<S: AsRef<str>>(v: &[S]) -> String {
        v.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ")
    }
    let mut findings = Vec::new();
    if !missing.is_empty() {
        findings.push(Finding::new(
            kind,
            format!("not in the English: {}", join(missing)),
        ));
    }
    if !added.is_empty() {
        findings.push(Finding::new(
            kind,
            format!("not in the French: {}", join(added)),
        ));
    }
    findings
}

/// What the checks know beyond the pair itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The English of the segment translated just before this one (the context the model was
    /// shown), for [`CheckKind::Echo`]. `None` for a document's first segment.
    pub previous_output: Option<&'a str>,
    /// The French of that previous segment. When the French itself repeats it (a first sentence
    /// that restates the title), English that repeats the previous English is the translation,
    /// not an echo, and the echo check is skipped.
    pub previous_source: Option<&'a str>,
}

/// Whether `source` repeats the opening of `previous_source` (its first [`echo::ECHO_WORDS`]
/// words, or all of them when fewer), as lowercase words without accents or punctuation.
fn restates(source: &str, previous_source: Option<&str>) -> bool {
    let Some(previous) = previous_source else {
        return false;
    };
    let prev = plain_words(previous);
    let head = &prev[..prev.len().min(echo::ECHO_WORDS)];
    let src = plain_words(source);
    !head.is_empty() && src.windows(head.len()).any(|w| w == head)
}

/// Runs every check on one (French source, English output) pair. Empty when nothing looks wrong.
/// A source without a letter or digit (a rule, a lone bullet) is not checked.
pub fn check_segment(source: &str, output: &str, ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    if !source.chars().any(char::is_alphanumeric) {
        return out;
    }
    out.extend(length::check(source, output));
    out.extend(language::check(source, output));
    out.extend(numbers::check(source, output));
    out.extend(dates::check(source, output));
    out.extend(names::check(source, output));
    if !restates(source, ctx.previous_source) {
        out.extend(echo::check_echo(output, ctx.previous_output));
    }
    out.extend(echo::check_loop(source, output));
    out.extend(answer::check(source, output));
    out
}

/// A finding located in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocFinding {
    /// 1-based paragraph of the source (blank-line separated).
    pub paragraph: usize,
    /// 1-based line within the paragraph, when the paragraph was checked line by line.
    pub line: Option<usize>,
    pub finding: Finding,
}

/// Pairs a whole source document with its translation paragraph by paragraph (blank-line
/// separated, see [`crate::text::segment::paragraphs`]), and line by line where both paragraphs
/// have the same number of lines; reports paragraph-count mismatch as a finding.
///
/// A paragraph-count mismatch is reported once, as a [`CheckKind::Length`] finding on the first
/// paragraph that has no counterpart; the paragraphs before it are still paired in order (so the
/// first misaligned pair usually shows where a paragraph went missing). Lines of a paragraph are
/// checked one by one only when both sides have the same number of them, and more than one;
/// otherwise the paragraph's lines are joined and checked as one segment. The previous segment's
/// English (line or paragraph) is the echo context.
pub fn check_document(source: &str, translation: &str) -> Vec<DocFinding> {
    let src = paragraphs(source);
    let out = paragraphs(translation);
    let mut findings = Vec::new();
    let mut previous = None;
    for (i, (s, o)) in src.iter().zip(&out).enumerate() {
        let found = check_paragraph(&source[s.clone()], &translation[o.clone()], &mut previous);
        findings.extend(found.into_iter().map(|(line, finding)| DocFinding {
            paragraph: i + 1,
            line,
            finding,
        }));
    }
    if src.len() != out.len() {
        findings.push(DocFinding {
            paragraph: src.len().min(out.len()) + 1,
            line: None,
            finding: Finding::new(
                CheckKind::Length,
                format!(
                    "the source has {} paragraphs, the translation {}",
                    src.len(),
                    out.len()
                ),
            ),
        });
    }
    findings
}

/// Checks one paragraph's English against its French: line by line (with the line's 1-based
/// number) when both have the same number of lines, and more than one; otherwise joined and
/// checked as one segment. `previous` holds the (French, English) of the segment checked before,
/// the echo context, and is updated.
pub fn check_paragraph(
    source: &str,
    output: &str,
    previous: &mut Option<(String, String)>,
) -> Vec<(Option<usize>, Finding)> {
    let s_lines: Vec<&str> = source.lines().map(str::trim).collect();
    let o_lines: Vec<&str> = output.lines().map(str::trim).collect();
    let pairs: Vec<(Option<usize>, String, String)> =
        if s_lines.len() > 1 && s_lines.len() == o_lines.len() {
            (s_lines.iter().zip(&o_lines).enumerate())
                .map(|(j, (s, o))| (Some(j + 1), s.to_string(), o.to_string()))
                .collect()
        } else {
            vec![(None, s_lines.join(" "), o_lines.join(" "))]
        };
    let mut findings = Vec::new();
    for (line, s, o) in pairs {
        let ctx = Context {
            previous_source: previous.as_ref().map(|(s, _)| s.as_str()),
            previous_output: previous.as_ref().map(|(_, o)| o.as_str()),
        };
        findings.extend(check_segment(&s, &o, &ctx).into_iter().map(|f| (line, f)));
        *previous = Some((s, o));
    }
    findings
}

/// Lowercases and strips French accents and ligatures (é → e, œ → oe), so that "États" and
/// "Etats" compare equal. Other characters pass through lowercased.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'î' | 'ï' | 'í' | 'ì' => out.push('i'),
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => out.push('o'),
            'ù' | 'û' | 'ü' | 'ú' => out.push('u'),
            'ÿ' | 'ý' => out.push('y'),
            'ñ' => out.push('n'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            '’' | 'ʼ' | '`' => out.push('\''),
            _ => out.push(c),
        }
    }
    out
}

/// Words: maximal runs of letters, digits, inner apostrophes and inner hyphens, with their byte
/// offsets. "l'AIEA" is one word; so is "Jean-Pierre"; a trailing "'" or "-" is not kept.
pub(crate) fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let is_joiner = |c: char| matches!(c, '\'' | '’' | '-' | '‐');
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_alnum = chars.peek().is_some_and(|&(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || (start.is_some() && is_joiner(c) && next_alnum) {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((s, &text[s..i]));
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// Lowercase words without punctuation, for comparing texts word by word.
pub(crate) fn plain_words(text: &str) -> Vec<String> {
    words(text).into_iter().map(|(_, w)| fold(w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_names() {
        let names: Vec<_> = CheckKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["length", "language", "numbers", "dates", "names", "echo", "loop", "answer"]
        );
    }

    #[test]
    fn words_keep_elisions_and_hyphens() {
        let w: Vec<_> = words("l'AIEA, Jean-Pierre -- 3,5 « oui »")
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(w, ["l'AIEA", "Jean-Pierre", "3", "5", "oui"]);
        assert_eq!(fold("États-Unis Œuvre"), "etats-unis oeuvre");
    }

    #[test]
    fn a_faithful_segment_has_no_findings() {
        let src = "Un scientifique russe, Vycheslav Danilenko, a aidé l'Iran à développer un \
                   détonateur, a affirmé lundi une ONG américaine, citant un rapport de 2011.";
        let out = "A Russian scientist, Vycheslav Danilenko, helped Iran develop a detonator, \
                   an American NGO said on Monday, citing a 2011 report.";
        assert_eq!(check_segment(src, out, &Context::default()), vec![]);
    }

    /// Random pairs built from pieces that stress the parsers (multi-byte letters, French
    /// spaces, separators, elisions, times): no check may panic, and a pair of identical English
    /// texts must not be taken for an echo of itself unless it is long enough to be one.
    #[test]
    fn random_text_never_panics() {
        const PIECES: &[&str] = &[
            "é", "É", "œ", "\u{202F}", "\u{A0}", " ", "\n", "\n\n", "1", "23", "2011", ",", ".",
            "h", ":", "'", "’", "-", "%", "«", "»", "\"", "A", "ONU", "l'", "Les", "de", "the",
            "pm", "s", "XXe", "?", "…", "millions", "1er", "14h30", "3 000", "3,5", "Banane",
            "Here is",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
        };
        for _ in 0..2000 {
            let mut text = || {
                let n = next(40);
                (0..n)
                    .map(|_| PIECES[next(PIECES.len())])
                    .collect::<String>()
            };
            let (a, b, c) = (text(), text(), text());
            let _ = check_segment(
                &a,
                &b,
                &Context {
                    previous_output: Some(&c),
                    previous_source: None,
                },
            );
            let _ = check_document(&a, &b);
        }
    }

    #[test]
    fn document_pairs_paragraphs_and_lines() {
        let src = "Titre du document\n\nPremière phrase du corps, assez longue pour compter.\nDeuxième phrase, elle aussi assez longue, en 2011.\n";
        let good = "Title of the document\n\nFirst sentence of the body, long enough to count.\nSecond sentence, also long enough, in 2011.\n";
        assert_eq!(check_document(src, good), vec![]);
        let bad = "Title of the document\n\nFirst sentence of the body, long enough to count.\nSecond sentence, also long enough, in 2012.\n";
        let f = check_document(src, bad);
        assert!(!f.is_empty());
        assert!(f.iter().all(|d| d.paragraph == 2
            && d.line == Some(2)
            && d.finding.kind == CheckKind::Numbers));
        let short = "Title of the document\n";
        let f = check_document(src, short);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].paragraph, 2);
        assert_eq!(f[0].finding.kind, CheckKind::Length);
    }
}
