//! Subtitles, SubRip (`.srt`) and WebVTT (`.vtt`): each cue's text is one piece; numbers, timing
//! lines (with VTT cue settings), cue identifiers, blank lines, the VTT header and its NOTE,
//! STYLE and REGION blocks are kept byte for byte, and each cue keeps its number of lines.
//!
//! A cue's lines are joined with spaces (a sentence cut over two lines reads as one), or with
//! line breaks when every line opens a speaker's turn (`- Oui.` / `- Non.`). The English is cut
//! back into as many lines as the cue had: where the model kept that many lines, at its breaks;
//! otherwise at the spaces that balance the lines' lengths (fewer lines only when the English
//! has too few words). The inline tags of a cue (`<i>`, `<b>`, `<u>`, `<font ...>` in SRT;
//! those and `<c.class>`, `<v Speaker>`, `<lang xx>`, `<ruby>`, `<rt>` in VTT) travel as
//! [`super::inline`] markers and are put back around the English words; a leading `{\an8}`
//! position code is kept in front. VTT's inner timestamps (`<00:01.500>`, karaoke) are dropped
//! from a translated cue: word timings cannot follow the words into another language. Text is
//! decoded (`&amp;`) in VTT, where it is escaped, and taken as it is in SRT, where players do
//! not unescape.
//!
//! A timing line that does not parse (`00:00:61,000`, no `-->`, an end before the start,
//! garbage where a cue should start) is a [`FormatError`] naming the cue and the line.
//!
//! A small parser of our own rather than a crate: the maintained subtitle crates parse into
//! their own structures and write them back in their own layout, which loses the bytes we must
//! keep (numbering as written, cue settings, comments, blank lines), and none carries inline
//! tags as runs. The fuzz targets (`fuzz/fuzz_targets/srt.rs`) check that it never panics and
//! that a document's pieces translated as themselves give it back.
//!
//! Not for: timing (re-timing, frame rates), other subtitle formats (ASS/SSA, SBV, TTML), or
//! reading text out of video files.

use std::ops::Range;

use super::format::{Format, FormatError, TextCodec};
use super::html::common_len;
use super::inline::{self, Marked};

/// SubRip subtitles.
pub static SRT: Format = Format {
    name: "srt",
    fingerprint: "Srt",
    extensions: &["srt"],
    output_extension: "srt",
    codec: &Subtitles(Dialect::Srt),
};

/// WebVTT subtitles.
pub static VTT: Format = Format {
    name: "vtt",
    fingerprint: "Vtt",
    extensions: &["vtt"],
    output_extension: "vtt",
    codec: &Subtitles(Dialect::Vtt),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Srt,
    Vtt,
}

/// The codec of both dialects.
pub struct Subtitles(pub Dialect);

/// One cue: where its text lines are, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// 1-based, in document order.
    pub number: usize,
    /// The text lines, from the first's start to the last's end (its line break excluded);
    /// empty for a cue with no text.
    pub text: Range<usize>,
    pub lines: usize,
}

fn error(cue: usize, line: usize, what: impl std::fmt::Display) -> FormatError {
    FormatError::new(format!("cue {cue} (line {line}): {what}"))
}

/// The cues of a subtitle document, or why its structure is broken.
pub fn cues(text: &str, dialect: Dialect) -> Result<Vec<Cue>, FormatError> {
    // Lines with their start offsets; blocks are runs of non-blank lines.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        lines.push((at, l.strip_suffix('\n').unwrap_or(l)));
        at += l.len();
    }
    // Blank as a translation's lines can never be (their words are cut at ASCII spaces only).
    let blank = |l: &str| l.trim_matches(|c: char| c.is_ascii_whitespace()).is_empty();
    let mut cues = Vec::new();
    let mut i = 0;
    let mut first_block = true;
    while i < lines.len() {
        if blank(lines[i].1) {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !blank(lines[i].1) {
            i += 1;
        }
        let block = &lines[start..i];
        let line_no = start + 1;
        let number = cues.len() + 1;
        if dialect == Dialect::Vtt && first_block {
            first_block = false;
            let head = block[0].1.trim_start_matches('\u{feff}');
            let ok = head
                .strip_prefix("WEBVTT")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
            if !ok || start != 0 {
                return Err(FormatError::new(
                    "line 1: a WebVTT file starts with WEBVTT".to_string(),
                ));
            }
            continue;
        }
        first_block = false;
        if dialect == Dialect::Vtt {
            let first = block[0].1;
            let is_block = |kw: &str| {
                first
                    .strip_prefix(kw)
                    .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
            };
            if (is_block("NOTE") || is_block("STYLE") || is_block("REGION"))
                && !first.contains("-->")
            {
                continue;
            }
        }
        // Where the timing line is: first, or after a cue number (SRT) or identifier (VTT).
        let timing_at = if block[0].1.contains("-->") {
            0
        } else {
            if dialect == Dialect::Srt && !is_number(block[0].1) {
                return Err(error(
                    number,
                    line_no,
                    format!(
                        "expected a cue number or a timing line, found {:?}",
                        clip(block[0].1)
                    ),
                ));
            }
            1
        };
        let Some(&(_, timing)) = block.get(timing_at) else {
            return Err(error(number, line_no, "a cue number with no timing line"));
        };
        parse_timing(timing, dialect).map_err(|e| {
            error(
                number,
                line_no + timing_at,
                format!("{e} in {:?}", clip(timing)),
            )
        })?;
        let text_lines = &block[timing_at + 1..];
        let range = match (text_lines.first(), text_lines.last()) {
            (Some(&(s, _)), Some(&(e, l))) => s..e + l.len(),
            _ => {
                let end = block[timing_at].0 + timing.len();
                end..end
            }
        };
        cues.push(Cue {
            number,
            text: range,
            lines: text_lines.len(),
        });
    }
    Ok(cues)
}

fn is_number(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// A line as an error message quotes it: at most 60 characters.
fn clip(line: &str) -> String {
    let mut s: String = line.chars().take(60).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

/// Checks a timing line `START --> END [settings]`; the error says what is wrong.
fn parse_timing(line: &str, dialect: Dialect) -> Result<(u64, u64), String> {
    let (left, right) = line
        .split_once("-->")
        .ok_or_else(|| "no \"-->\"".to_string())?;
    let start = timestamp(left.trim(), dialect)?;
    let right = right.trim_start();
    let end_text = right.split([' ', '\t']).next().unwrap_or("");
    let end = timestamp(end_text, dialect)?;
    if end < start {
        return Err("the cue ends before it starts".into());
    }
    Ok((start, end))
}

/// A timestamp in milliseconds: `HH:MM:SS,mmm` in SRT (`.` accepted too, hours of any
/// width), `[HH:]MM:SS.mmm` in VTT.
fn timestamp(s: &str, dialect: Dialect) -> Result<u64, String> {
    let bad = |why: &str| format!("bad timestamp {:?}: {why}", clip(s));
    let (clock, millis) = match dialect {
        Dialect::Srt => s.rsplit_once([',', '.']),
        Dialect::Vtt => s.rsplit_once('.'),
    }
    .ok_or_else(|| bad("no milliseconds"))?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let ms_ok = match dialect {
        Dialect::Srt => (1..=3).contains(&millis.len()),
        Dialect::Vtt => millis.len() == 3,
    };
    if !digits(millis) || !ms_ok {
        return Err(bad("milliseconds are three digits"));
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match (dialect, parts.as_slice()) {
        (_, [h, m, sec]) => (*h, *m, *sec),
        (Dialect::Vtt, [m, sec]) => ("0", *m, *sec),
        _ => return Err(bad("expected hours:minutes:seconds")),
    };
    if !digits(h) || h.len() > 9 || !digits(m) || m.len() != 2 || !digits(sec) || sec.len() != 2 {
        return Err(bad("expected hours:minutes:seconds"));
    }
    let (h, m, sec): (u64, u64, u64) = (
        h.parse().unwrap_or(0),
        m.parse().unwrap_or(0),
        sec.parse().unwrap_or(0),
    );
    if m >= 60 {
        return Err(bad("minutes must be below 60"));
    }
    if sec >= 60 {
        return Err(bad("seconds must be below 60"));
    }
    let ms: u64 = format!("{millis:0<3}").parse().unwrap_or(0);
    Ok(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

// ---------------------------------------------------------------------------------------------
// A cue's text as runs

/// A cue's text cut for the model.
#[derive(Debug)]
struct CueText {
    /// A leading `{\an8}`-style position code, kept in front.
    prefix: String,
    marked: Marked,
    /// The open tags (their source, outermost first) of each style.
    styles: Vec<Vec<String>>,
}

/// The name of a cue tag: `i`, `font`, `c` (of `c.yellow`), `v` (of `v Roger`)...
fn tag_name(tag: &str) -> &str {
    let inner = tag.trim_start_matches('<').trim_start_matches('/');
    let end = inner
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(inner.len());
    &inner[..end]
}

fn is_cue_tag(name: &str, dialect: Dialect) -> bool {
    let name = name.to_ascii_lowercase();
    match dialect {
        Dialect::Srt => matches!(name.as_str(), "i" | "b" | "u" | "s" | "font"),
        Dialect::Vtt => matches!(
            name.as_str(),
            "i" | "b" | "u" | "c" | "v" | "lang" | "ruby" | "rt"
        ),
    }
}

/// The most formattings a cue's text is cut into.
const MAX_STYLES: usize = 32;

fn cue_text(source: &str, lines: usize, dialect: Dialect) -> CueText {
    let mut body = source;
    let mut prefix = String::new();
    // `{\an8}` and the like, SSA position codes some SRT files carry.
    while body.starts_with("{\\") {
        let first_line = body.split('\n').next().unwrap_or("");
        match first_line.find('}') {
            Some(e) => {
                prefix.push_str(&body[..=e]);
                body = &body[e + 1..];
            }
            None => break,
        }
    }
    let turns = lines > 1
        && body
            .split('\n')
            .all(|l| l.trim_start().starts_with('-') || l.trim_start().starts_with('–'));
    let joined = if turns {
        body.to_string()
    } else {
        body.split('\n')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut styles: Vec<Vec<String>> = vec![Vec::new()];
    let mut open: Vec<String> = Vec::new();
    let mut runs: Vec<(String, usize)> = Vec::new();
    let mut text = String::new();
    let style_of = |open: &Vec<String>, styles: &mut Vec<Vec<String>>| -> usize {
        match styles.iter().position(|s| s == open) {
            Some(k) => k,
            None => {
                styles.push(open.clone());
                styles.len() - 1
            }
        }
    };
    let mut rest = joined.as_str();
    while let Some(i) = rest.find('<') {
        text.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest
            .find('>')
            .filter(|&e| !rest[1..e].contains(['<', '\n']))
        else {
            text.push('<');
            rest = &rest[1..];
            continue;
        };
        let tag = &rest[..=end];
        let name = tag_name(tag);
        let closing = tag.starts_with("</");
        let timestamp =
            dialect == Dialect::Vtt && tag[1..].starts_with(|c: char| c.is_ascii_digit());
        if timestamp {
            rest = &rest[end + 1..];
            continue;
        }
        // Past a few dozen formattings (never in real cues), tags are text.
        if !is_cue_tag(name, dialect) || styles.len() >= MAX_STYLES {
            text.push('<');
            rest = &rest[1..];
            continue;
        }
        if !text.is_empty() {
            let k = style_of(&open, &mut styles);
            runs.push((std::mem::take(&mut text), k));
        }
        if closing {
            if let Some(at) = open
                .iter()
                .rposition(|t| tag_name(t).eq_ignore_ascii_case(name))
            {
                open.truncate(at);
            }
        } else if open.len() < 16 {
            open.push(tag.to_string());
        }
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        let k = style_of(&open, &mut styles);
        runs.push((text, k));
    }
    if dialect == Dialect::Vtt {
        for (t, _) in &mut runs {
            *t = super::html::decode(t, false);
        }
    }
    CueText {
        prefix,
        marked: inline::mark(&runs),
        styles,
    }
}

/// The cue's English as `lines` lines: the model's own line breaks when it kept as many,
/// otherwise breaks at the spaces that balance the lines.
fn render(cue: &CueText, english: &str, lines: usize, dialect: Dialect) -> String {
    // A carriage return would read as a line break when the file is read again.
    let english = english.replace('\r', " ");
    let runs = inline::unmark(&english, &cue.marked).runs().to_vec();
    let plain: String = runs.iter().map(|(t, _)| t.as_str()).collect();
    let kept_breaks =
        plain.split('\n').count() == lines && plain.split('\n').all(|l| !l.trim().is_empty());
    // The runs with line breaks as spaces, whitespace collapsed, trimmed.
    let runs: Vec<(String, usize)> = if kept_breaks {
        runs
    } else {
        super::html::normalise(runs, false)
    };
    let plain: String = runs.iter().map(|(t, _)| t.as_str()).collect();
    let breaks = if kept_breaks {
        Vec::new()
    } else {
        balanced_breaks(&plain, lines)
    };
    let mut out = cue.prefix.clone();
    let mut chain: &[String] = &[];
    let mut at = 0;
    let mut next_break = 0;
    for (n, (text, k)) in runs.iter().enumerate() {
        let mut style: &[String] = &cue.styles[*k];
        if text.trim().is_empty() {
            // Spaces between two runs stay inside the tags both are in.
            if let Some((_, next)) = runs[n + 1..].iter().find(|(t, _)| !t.trim().is_empty()) {
                style = &chain[..common_len(chain, &cue.styles[*next])];
            }
        }
        let common = common_len(chain, style);
        for t in chain[common..].iter().rev() {
            out.push_str(&format!("</{}>", tag_name(t)));
        }
        for t in &style[common..] {
            out.push_str(t);
        }
        chain = style;
        for ch in text.chars() {
            if next_break < breaks.len() && breaks[next_break] == at {
                next_break += 1;
                out.push('\n');
            } else {
                match (dialect, ch) {
                    (Dialect::Vtt, '&') => out.push_str("&amp;"),
                    (Dialect::Vtt, '<') => out.push_str("&lt;"),
                    (Dialect::Vtt, '>') => out.push_str("&gt;"),
                    _ => out.push(ch),
                }
            }
            at += ch.len_utf8();
        }
    }
    for t in chain.iter().rev() {
        out.push_str(&format!("</{}>", tag_name(t)));
    }
    if kept_breaks {
        // The model's lines, without spaces around its breaks.
        out = out
            .split('\n')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n");
    }
    out
}

/// The byte offsets of the spaces of `text` where it is cut into `lines` lines of balanced
/// length (as many as there are spaces, at most `lines - 1`).
pub fn balanced_breaks(text: &str, lines: usize) -> Vec<usize> {
    // (byte offset, chars before it) of each space: lengths count characters, not bytes.
    let spaces: Vec<(usize, usize)> = text
        .char_indices()
        .enumerate()
        .filter(|(_, (_, c))| *c == ' ')
        .map(|(n, (i, _))| (i, n))
        .collect();
    let want = lines.saturating_sub(1).min(spaces.len());
    if want == 0 {
        return Vec::new();
    }
    let total = text.chars().count();
    let mut breaks = Vec::with_capacity(want);
    let mut j = 0; // the candidate space
    for k in 1..=want {
        let target = total * k / (want + 1);
        // Leave enough spaces for the breaks still to come; the distance to the target falls,
        // then rises, along the spaces.
        let last = spaces.len() - (want - k) - 1;
        let dist = |j: usize| spaces[j].1.abs_diff(target);
        while j < last && dist(j + 1) <= dist(j) {
            j += 1;
        }
        breaks.push(spaces[j].0);
        j += 1;
    }
    breaks
}

// ---------------------------------------------------------------------------------------------
// The codec

impl Subtitles {
    /// The cues with words, each with its text cut for the model.
    fn translatable(&self, text: &str) -> Result<Vec<(Cue, CueText)>, FormatError> {
        Ok(cues(text, self.0)?
            .into_iter()
            .map(|c| {
                let cut = cue_text(&text[c.text.clone()], c.lines, self.0);
                (c, cut)
            })
            .filter(|(_, cut)| !cut.marked.text.trim().is_empty())
            .collect())
    }
}

impl TextCodec for Subtitles {
    fn pieces(&self, text: &str) -> Result<Vec<String>, FormatError> {
        Ok(self
            .translatable(text)?
            .into_iter()
            .map(|(_, cut)| cut.marked.text)
            .collect())
    }

    fn rebuild(&self, text: &str, translations: &[String]) -> Result<String, FormatError> {
        let cues = self.translatable(text)?;
        if cues.len() != translations.len() {
            return Err(FormatError::new(format!(
                "{} translations for {} cues",
                translations.len(),
                cues.len()
            )));
        }
        let mut out = String::with_capacity(text.len() + text.len() / 4);
        let mut at = 0;
        for ((cue, cut), english) in cues.iter().zip(translations) {
            out.push_str(&text[at..cue.text.start]);
            if *english == cut.marked.text {
                out.push_str(&text[cue.text.clone()]);
            } else {
                out.push_str(&render(cut, english, cue.lines, self.0));
            }
            at = cue.text.end;
        }
        out.push_str(&text[at..]);
        Ok(out)
    }

    /// The cues' text, tags dropped: one cue a paragraph, its lines joined by spaces.
    fn plain_text(&self, text: &str) -> Result<String, FormatError> {
        let paragraphs: Vec<String> = self
            .translatable(text)?
            .into_iter()
            .map(|(_, cut)| {
                let t = inline::strip(&cut.marked.text, &cut.marked);
                t.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        Ok(paragraphs.join("\n\n"))
    }

    fn brief_text(&self, translation: &str) -> Result<String, FormatError> {
        self.plain_text(translation)
    }
}

#[cfg(test)]
mod tests;
