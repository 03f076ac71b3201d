//! The properties the fuzz targets check, one function per target, shared by the libFuzzer
//! targets (`fuzz_targets/`, run with `cargo +nightly fuzz run NAME`), the stable driver
//! (`src/bin/stable.rs`) and, by `#[path]`, the root crate's `tests/fuzz_stable.rs`. Each function panics when a property fails, which is what a fuzzer reports.
//!
//! Not for: the library's own unit and property tests (they live beside the code).

use transbrief::text::format::{Format, Source, DOCX, HTML, ODT, SRT, VTT};
use transbrief::text::inline::shout;
use transbrief::text::{chunk, markdown, package, read, segment, subtitles};

/// The check of a target by name, taking the fuzzer's bytes: decode, segment, markdown, chunk,
/// docx, odt, html, srt (SRT and WebVTT).
pub fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "decode" => check_decode,
        "segment" => |d| {
            if let Ok(t) = std::str::from_utf8(d) {
                check_segment(t)
            }
        },
        "markdown" => |d| {
            if let Ok(t) = std::str::from_utf8(d) {
                check_markdown(t)
            }
        },
        "chunk" => check_chunk,
        "docx" => check_docx,
        "odt" => check_odt,
        "html" => check_html,
        "srt" => check_subtitles,
        _ => return None,
    })
}

/// `read::decode` never panics; what it accepts is text without BOM or `\r`, not blank.
pub fn check_decode(data: &[u8]) {
    if let Ok(d) = read::decode(data) {
        assert!(!d.text.contains('\r'), "a \\r survived: {:?}", d.text);
        assert!(!d.text.starts_with('\u{feff}'), "a BOM survived");
        assert!(!d.text.trim().is_empty(), "blank text accepted");
        assert!(
            ["utf-8", "utf-8-bom", "utf-16le", "utf-16be", "windows-1252"].contains(&d.encoding),
            "unknown encoding {}",
            d.encoding
        );
    }
}

/// Spans are on char boundaries, in order and not overlapping.
fn check_spans(text: &str, spans: &[std::ops::Range<usize>]) {
    let mut end = 0;
    for s in spans {
        assert!(
            s.start >= end && s.start <= s.end && s.end <= text.len(),
            "{spans:?}"
        );
        assert!(
            text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
            "{s:?}"
        );
        end = s.end;
    }
}

/// Whether every non-whitespace char of `text` lies in one of `spans`.
fn covers_non_whitespace(text: &str, spans: &[std::ops::Range<usize>]) -> bool {
    let mut spans = spans.iter().peekable();
    text.char_indices().all(|(i, c)| {
        while spans.peek().is_some_and(|s| s.end <= i) {
            spans.next();
        }
        c.is_whitespace() || spans.peek().is_some_and(|s| s.start <= i)
    })
}

/// Sentences rebuild the text exactly; paragraphs are trimmed, non-empty and miss no text.
pub fn check_segment(text: &str) {
    let sentences = segment::sentences(text);
    check_spans(text, &sentences);
    let rebuilt: String = sentences.iter().map(|s| &text[s.clone()]).collect();
    assert_eq!(rebuilt, text, "sentences do not rebuild the text");

    let paragraphs = segment::paragraphs(text);
    check_spans(text, &paragraphs);
    for p in &paragraphs {
        let body = &text[p.clone()];
        assert!(
            !body.is_empty() && body.trim() == body,
            "untrimmed paragraph {body:?}"
        );
    }
    assert!(
        covers_non_whitespace(text, &paragraphs),
        "paragraphs drop text"
    );
}

/// Blocks rebuild the Markdown exactly; every prose body is non-empty and trimmed.
pub fn check_markdown(md: &str) {
    let blocks = markdown::blocks(md);
    let mut rebuilt = String::with_capacity(md.len());
    for b in &blocks {
        match b {
            markdown::Block::Text {
                prefix,
                body,
                suffix,
            } => {
                assert!(!body.is_empty() && body.trim() == *body, "body {body:?}");
                rebuilt.push_str(prefix);
                rebuilt.push_str(body);
                rebuilt.push_str(suffix);
            }
            markdown::Block::Verbatim(v) => rebuilt.push_str(v),
        }
    }
    assert_eq!(rebuilt, md, "blocks do not rebuild the Markdown");
}

/// Chunks are in order, drop no text, and stay within the budget unless one char exceeds it.
/// The first byte picks the budget; tokens are counted as chars.
pub fn check_chunk(data: &[u8]) {
    let Some((&b, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let budget = usize::from(b % 64) + 1;
    let count = |t: &str| t.chars().count();
    let spans = chunk::chunk(text, budget, &count);
    check_spans(text, &spans);
    assert!(covers_non_whitespace(text, &spans), "chunks drop text");
    for s in &spans {
        let n = count(&text[s.clone()]);
        assert!(n <= budget || n == 1, "chunk of {n} > {budget}: {s:?}");
    }
}

/// A package format's codec on `bytes`: nothing panics; a document whose pieces cannot be read
/// cannot be rebuilt either; the pieces are not blank; the pieces translated as themselves
/// rebuild a package whose pieces are the same; a translation that changes the text (and may
/// break the markers) rebuilds a package that opens again.
fn check_package(format: &Format, bytes: Vec<u8>) {
    let codec = format.codec;
    let Ok(doc) = codec.source(bytes) else {
        return;
    };
    let pieces = match codec.pieces(&doc) {
        Ok(p) => p,
        Err(_) => {
            assert!(
                codec.rebuild(&doc, &[]).is_err(),
                "rebuilt what has no pieces"
            );
            return;
        }
    };
    assert!(pieces.iter().all(|p| !p.trim().is_empty()), "a blank piece");
    codec
        .plain_text(&doc)
        .expect("plain text of a document with pieces");
    let out = codec
        .rebuild(&doc, &pieces)
        .expect("rebuild from its own pieces");
    let again = codec.source(out).expect("the rebuilt package reads");
    let again = codec
        .pieces(&again)
        .expect("the rebuilt package has pieces");
    assert_eq!(again, pieces, "pieces changed by an identity rebuild");

    let changed: Vec<String> = pieces
        .iter()
        .map(|p| format!("{} <a>x", p.to_uppercase()))
        .collect();
    let out = codec
        .rebuild(&doc, &changed)
        .expect("rebuild from a translation");
    let again = codec.source(out).expect("the translated package reads");
    codec
        .pieces(&again)
        .expect("the translated package has pieces");
}

/// The fuzzer's bytes as XML between an opening and a closing tag, in a package with the
/// other `entries`.
fn wrapped(entries: &[(&str, &[u8])], part: &str, open: &str, data: &[u8], close: &str) -> Vec<u8> {
    let xml = [open.as_bytes(), data, close.as_bytes()].concat();
    let mut all = entries.to_vec();
    all.push((part, &xml));
    package::package_of(&all)
}

/// `DOCX` on the bytes as a package, then as the body of a minimal document (so that the
/// XML handling is reached by inputs that are no zip).
pub fn check_docx(data: &[u8]) {
    check_package(&DOCX, data.to_vec());
    let open =
        "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" \
                xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"><w:body>";
    let doc = wrapped(
        &[],
        "word/document.xml",
        open,
        data,
        "</w:body></w:document>",
    );
    check_package(&DOCX, doc);
}

/// `ODT` on the bytes as a package, then as the text of a minimal document.
pub fn check_odt(data: &[u8]) {
    check_package(&ODT, data.to_vec());
    let open = "<office:document-content \
                xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
                xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
                xmlns:xlink=\"http://www.w3.org/1999/xlink\"><office:body><office:text>";
    let mimetype: &[u8] = b"application/vnd.oasis.opendocument.text";
    let doc = wrapped(
        &[("mimetype", mimetype)],
        "content.xml",
        open,
        data,
        "</office:text></office:body></office:document-content>",
    );
    check_package(&ODT, doc);
}

/// What a codec makes of `text` translated by `f`, if it reads it.
fn translated(
    format: &Format,
    text: &str,
    f: impl Fn(&str) -> String,
) -> Option<(Vec<String>, String)> {
    let doc = Source::from_text(text);
    let pieces = format.codec.pieces(&doc).ok()?;
    let english: Vec<String> = pieces.iter().map(|p| f(p)).collect();
    let out = format
        .codec
        .rebuild(&doc, &english)
        .unwrap_or_else(|e| panic!("pieces but no rebuild: {e}"));
    Some((pieces, String::from_utf8(out).expect("UTF-8 out")))
}

/// HTML (UTF-8): never panics, whatever the page or the translation; the pieces translated as
/// themselves give the page back (but for `lang` and `charset`, so exactly when it has no
/// `<html` or `<meta`), and that page has the same pieces and is its own rebuild.
pub fn check_html(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((pieces, same)) = translated(&HTML, text, str::to_string) else {
        return;
    };
    let lower = text.to_ascii_lowercase();
    if !lower.contains("<html") && !lower.contains("<meta") {
        assert_eq!(same, text, "the identity translation changed the page");
    }
    let (again, twice) = translated(&HTML, &same, str::to_string).expect("its own output read");
    assert_eq!(again, pieces, "the rebuilt page has other pieces");
    assert_eq!(twice, same, "the rebuild is not a fixed point");
    let _ = translated(&HTML, text, shout);
    // Broken markers, stray "<" and "&", line breaks: never a panic.
    let _ = translated(&HTML, text, |p| format!("<b>{p} & <a>x</c>\n<"));
    let _ = HTML.codec.plain_text(&Source::from_text(text));
}

/// SRT and WebVTT (UTF-8): never panic; the pieces translated as themselves give the file back
/// byte for byte; a translation keeps every byte outside the cues' text, and no cue gains lines
/// or loses all of them. The input is checked as a file of each dialect, and its lines (blank
/// ones dropped) as the text of one cue of each, so that most inputs reach the cue code.
pub fn check_subtitles(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let body: Vec<&str> = text
        .split('\n')
        .filter(|l| !l.trim_matches(|c: char| c.is_ascii_whitespace()).is_empty())
        .collect();
    let body = body.join("\n");
    let srt = format!("1\n00:00:01,000 --> 00:00:02,000\n{body}\n");
    let vtt = format!("WEBVTT\n\n00:01.000 --> 00:02.000\n{body}\n");
    for (format, dialect, file) in [
        (&SRT, subtitles::Dialect::Srt, text),
        (&VTT, subtitles::Dialect::Vtt, text),
        (&SRT, subtitles::Dialect::Srt, &srt),
        (&VTT, subtitles::Dialect::Vtt, &vtt),
    ] {
        check_subtitle_file(format, dialect, file);
    }
}

fn check_subtitle_file(format: &Format, dialect: subtitles::Dialect, text: &str) {
    let Some((_, same)) = translated(format, text, str::to_string) else {
        return;
    };
    assert_eq!(
        same, text,
        "{}: the identity translation changed the file",
        format.name
    );
    let frame = |t: &str| {
        let cues = subtitles::cues(t, dialect).expect("a rebuilt file parses");
        let mut out = Vec::new();
        let mut at = 0;
        for c in &cues {
            out.push((t[at..c.text.start].to_string(), c.lines));
            at = c.text.end;
        }
        out.push((t[at..].to_string(), 0));
        out
    };
    let before = frame(text);
    for f in [shout as fn(&str) -> String, |p: &str| {
        format!("{p} <a>x\n\ny</b>")
    }] {
        let (_, out) = translated(format, text, f).expect("read once, read again");
        let after = frame(&out);
        assert_eq!(
            after.len(),
            before.len(),
            "{}: cues gained or lost",
            format.name
        );
        for ((b, bn), (a, an)) in before.iter().zip(&after) {
            assert_eq!(a, b, "{}: bytes outside the cues changed", format.name);
            assert!(
                an <= bn && (*bn == 0 || *an > 0),
                "{}: {bn} lines became {an}",
                format.name
            );
        }
    }
    let _ = format.codec.plain_text(&Source::from_text(text));
}
