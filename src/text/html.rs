//! HTML documents: which text of a page is translated, and the page put back together around the
//! English with everything else kept byte for byte.
//!
//! `lol_html` tokenizes the page (tags, text with its kind, comments, doctype, each with its byte
//! range in the source); this module walks the tokens and cuts the text into pieces:
//!
//! - the text of a block (a `p`, `h1`, `li`, `td`, `title`, the loose text of a `div`...) is ONE
//!   piece, its inline elements (`b`, `em`, `a`, `span`...) carried as markers by
//!   [`super::inline`]; inline `code`, `kbd`, `samp` (and inline elements marked
//!   `translate="no"`) are markers whose content is put back verbatim, not the model's; images,
//!   comments and other text-less inline things in the middle of a block are put back before the
//!   English words that followed them, `<br>` is a line break in the piece;
//! - the attributes `alt`, `title`, `placeholder`, `aria-label` (and the `content` of a
//!   `<meta name="description">`) are pieces of their own;
//! - `script`, `style`, `pre`, `code`, `kbd`, `samp`, `textarea`, `svg`, `math`, comments and
//!   elements with `translate="no"` (or the class `notranslate`) are left alone.
//!
//! Pieces hold decoded text (`&eacute;` is `é`; runs of whitespace are one space) and the English
//! is escaped when written back. A piece whose translation is itself is left as it was in the
//! source, so translating every piece as itself gives the page back byte for byte, but for
//! `<html lang>`, which becomes `en`, and a `<meta charset>` that is not UTF-8, which becomes
//! `utf-8` (the translation is written in UTF-8).
//!
//! The walk keeps no tree: a tag that is not inline (or is unknown, or an end tag it cannot place)
//! ends the current piece, so that malformed markup costs a sentence cut in two, never text or
//! tags lost. A block has at most [`MAX_STYLES`] formattings, [`MAX_STRETCHES`] stretches of
//! them and [`MAX_INLINE_DEPTH`] nested inline elements; beyond, it is cut too. So a deep or huge page is walked in linear time and
//! constant stack.
//!
//! Not for: rendering, sanitizing or repairing HTML; HTML inside other formats (Markdown keeps
//! its HTML verbatim); the named character references of HTML5 beyond HTML 4's set (those are
//! left as written, see [`decode`]).

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use lol_html::html_content::{Comment, Doctype, Element, EndTag, TextChunk, TextType};
use lol_html::{doc_comments, doc_text, doctype, element, HtmlRewriter, Settings};

use super::format::{Format, FormatError, TextCodec};
use super::inline::{self, Marked};

/// `.html` and `.htm`, translated as `.html`.
pub static HTML: Format = Format {
    name: "html",
    fingerprint: "Html",
    extensions: &["html", "htm"],
    output_extension: "html",
    codec: &Html,
};

/// The most formattings (styles) one piece carries; a block with more is cut into pieces, so
/// that [`inline`]'s 26 marker letters suffice.
pub const MAX_STYLES: usize = 24;

/// The most stretches of one formatting between others in one piece, for the same reason.
pub const MAX_STRETCHES: usize = 40;

/// The most inline elements open at once inside one piece; a deeper one ends the piece.
pub const MAX_INLINE_DEPTH: usize = 32;

/// HTML pages: see the module's documentation.
struct Html;

impl TextCodec for Html {
    fn pieces(&self, text: &str) -> Result<Vec<String>, FormatError> {
        Ok(analyse(text)?.units.into_iter().map(|u| u.piece).collect())
    }

    fn rebuild(&self, text: &str, translations: &[String]) -> Result<String, FormatError> {
        let page = analyse(text)?;
        if translations.len() != page.units.len() {
            return Err(FormatError::new(format!(
                "{} translations for {} pieces",
                translations.len(),
                page.units.len()
            )));
        }
        Ok(page.rebuild(text, translations))
    }

    /// The text of the blocks (not the attributes), markers dropped, one block a paragraph.
    fn plain_text(&self, text: &str) -> Result<String, FormatError> {
        let page = analyse(text)?;
        let blocks: Vec<String> = page
            .units
            .iter()
            .filter_map(|u| match &u.kind {
                UnitKind::Block(b) => Some(inline::strip(&u.piece, &b.marked)),
                UnitKind::Attribute { .. } => None,
            })
            .collect();
        Ok(blocks.join("\n\n"))
    }

    fn brief_text(&self, translation: &str) -> Result<String, FormatError> {
        self.plain_text(translation)
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// One token of the source, with its byte range.
#[derive(Debug)]
struct Token {
    range: Range<usize>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Start {
        name: String,
        attrs: Vec<Attr>,
        self_closing: bool,
    },
    End {
        name: String,
    },
    /// Text; `data` when it may hold character references and is prose (not script, style...).
    Text {
        data: bool,
    },
    Comment,
    Doctype,
    /// Bytes no token covers (an end tag that closes nothing, for one): kept, and end a piece.
    Gap,
}

#[derive(Debug)]
struct Attr {
    name: String,
    /// The value's range in the source, quotes excluded; `None` for `<x hidden>`.
    value: Option<Range<usize>>,
}

/// The tokens of `html`, in order, covering it (uncovered bytes are [`Kind::Gap`]s).
fn tokenize(html: &str) -> Result<Vec<Token>, FormatError> {
    let tokens: Rc<RefCell<Vec<Token>>> = Rc::default();
    {
        let (t_el, t_text, t_comment, t_doctype) = (
            tokens.clone(),
            tokens.clone(),
            tokens.clone(),
            tokens.clone(),
        );
        let settings = Settings::new()
            .with_strict(false)
            .append_element_content_handler(element!("*", move |el: &mut Element| {
                let attrs = el
                    .attributes()
                    .iter()
                    .map(|a| Attr {
                        name: a.name(),
                        value: a.value_source_location().map(|l| l.bytes()),
                    })
                    .collect();
                t_el.borrow_mut().push(Token {
                    range: el.source_location().bytes(),
                    kind: Kind::Start {
                        name: el.tag_name(),
                        attrs,
                        self_closing: el.is_self_closing(),
                    },
                });
                if let Some(handlers) = el.end_tag_handlers() {
                    let t_end = t_el.clone();
                    handlers.push(Box::new(move |end: &mut EndTag| {
                        t_end.borrow_mut().push(Token {
                            range: end.source_location().bytes(),
                            kind: Kind::End { name: end.name() },
                        });
                        Ok(())
                    }));
                }
                Ok(())
            }))
            .append_document_content_handler(doc_text!(move |t: &mut TextChunk| {
                let range = t.source_location().bytes();
                if range.is_empty() {
                    return Ok(());
                }
                let data = matches!(t.text_type(), TextType::Data | TextType::RCData);
                let mut tokens = t_text.borrow_mut();
                match tokens.last_mut() {
                    // One text node may come in several chunks.
                    Some(Token {
                        range: last,
                        kind: Kind::Text { data: d },
                    }) if last.end == range.start && *d == data => last.end = range.end,
                    _ => tokens.push(Token {
                        range,
                        kind: Kind::Text { data },
                    }),
                }
                Ok(())
            }))
            .append_document_content_handler(doc_comments!(move |c: &mut Comment| {
                t_comment.borrow_mut().push(Token {
                    range: c.source_location().bytes(),
                    kind: Kind::Comment,
                });
                Ok(())
            }))
            .append_document_content_handler(doctype!(move |d: &mut Doctype| {
                t_doctype.borrow_mut().push(Token {
                    range: d.source_location().bytes(),
                    kind: Kind::Doctype,
                });
                Ok(())
            }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        rewriter
            .write(html.as_bytes())
            .and_then(|()| rewriter.end())
            .map_err(|e| FormatError::new(format!("cannot parse the HTML: {e}")))?;
    }
    let mut raw = Rc::try_unwrap(tokens)
        .map_err(|_| FormatError::new("the HTML tokenizer kept its handlers"))?
        .into_inner();
    // Handlers run in document order; sorting is only a guard. An end tag that closes several
    // elements is reported once per element: kept once.
    raw.sort_by_key(|t| (t.range.start, t.range.end));
    let mut out = Vec::with_capacity(raw.len() + 8);
    let mut at = 0;
    for t in raw {
        if t.range.start < at || t.range.end > html.len() {
            continue;
        }
        if t.range.start > at {
            out.push(Token {
                range: at..t.range.start,
                kind: Kind::Gap,
            });
        }
        at = t.range.end;
        out.push(t);
    }
    if at < html.len() {
        out.push(Token {
            range: at..html.len(),
            kind: Kind::Gap,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Kinds of elements

/// Inline elements: their text belongs to the block around them, their tags become markers.
const INLINE: &[&str] = &[
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "blink", "button", "cite", "data", "del",
    "dfn", "em", "font", "i", "ins", "label", "mark", "nobr", "output", "q", "rb", "rp", "rt",
    "rtc", "ruby", "s", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u",
];

/// Inline elements whose text is kept as it is, not translated.
const VERBATIM_INLINE: &[&str] = &["code", "kbd", "samp"];

/// Elements kept whole, with no text to translate, inline with the text around them.
const OPAQUE_INLINE: &[&str] = &[
    "area", "audio", "canvas", "embed", "iframe", "img", "input", "map", "math", "meter",
    "noscript", "object", "param", "picture", "progress", "script", "select", "source", "style",
    "svg", "template", "textarea", "track", "video", "wbr",
];

/// Elements whose whole content is left alone wherever they are.
const SKIPPED: &[&str] = &[
    "code",
    "kbd",
    "math",
    "noscript",
    "plaintext",
    "pre",
    "samp",
    "script",
    "select",
    "style",
    "svg",
    "textarea",
    "xmp",
];

/// Elements that have no end tag.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Attributes whose value is a piece of its own.
const TRANSLATED_ATTRIBUTES: &[&str] = &["alt", "title", "placeholder", "aria-label"];

/// `<meta name=...>` (or `property=`) whose `content` is a piece.
const TRANSLATED_META: &[&str] = &[
    "description",
    "og:title",
    "og:description",
    "twitter:title",
    "twitter:description",
];

fn is(list: &[&str], name: &str) -> bool {
    list.contains(&name)
}

fn attr_value<'a>(html: &'a str, attrs: &[Attr], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.clone())
        .and_then(|r| html.get(r))
}

/// Whether an element asks not to be translated: `translate="no"` or the class `notranslate`.
fn says_no(html: &str, attrs: &[Attr]) -> bool {
    attr_value(html, attrs, "translate").is_some_and(|v| v.trim().eq_ignore_ascii_case("no"))
        || attr_value(html, attrs, "class")
            .is_some_and(|v| v.split_ascii_whitespace().any(|c| c == "notranslate"))
}

// ---------------------------------------------------------------------------------------------
// The walk

/// What a page is cut into: its pieces in order, and the edits made whatever the translation.
struct Page {
    units: Vec<Unit>,
    /// `lang` and `charset` edits: (range replaced, new text), sorted.
    fixed: Vec<(Range<usize>, String)>,
}

struct Unit {
    piece: String,
    kind: UnitKind,
}

enum UnitKind {
    /// An attribute's value: its range in the source and its quote (`None`: unquoted).
    Attribute {
        range: Range<usize>,
        quote: Option<char>,
    },
    Block(Box<Block>),
}

/// A block's piece and what it takes to write its translation back.
struct Block {
    /// The source bytes the block's rendering replaces.
    range: Range<usize>,
    /// Whitespace before and after the text, kept.
    lead_ws: String,
    trail_ws: String,
    /// Things with no text before the first words and after the last, put back there.
    lead: Vec<Range<usize>>,
    trail: Vec<Range<usize>>,
    marked: Marked,
    styles: Vec<Style>,
    elements: Vec<InlineElement>,
    /// The source of the block's first `<br>`, which a line break of the English becomes.
    br: Option<Range<usize>>,
}

/// The formatting of a run of a block: the inline elements around it (outermost first, indexes
/// into `Block::elements`), what is put back before its words, or the source put back instead
/// of its words (inline code).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Style {
    chain: Vec<usize>,
    before: Vec<Range<usize>>,
    verbatim: Option<Range<usize>>,
}

impl Style {
    fn special(&self) -> bool {
        !self.before.is_empty() || self.verbatim.is_some()
    }
}

struct InlineElement {
    name: String,
    start: Range<usize>,
    end: Option<Range<usize>>,
}

/// An inline element open in the current block.
struct Open {
    element: usize,
    has_text: bool,
    /// Lengths of `runs`, `lead` and `pending` when it opened.
    marks: (usize, usize, usize),
}

/// The block being gathered.
#[derive(Default)]
struct Current {
    range: Option<Range<usize>>,
    runs: Vec<(String, usize)>,
    styles: Vec<Style>,
    elements: Vec<InlineElement>,
    open: Vec<Open>,
    lead: Vec<Range<usize>>,
    pending: Vec<Range<usize>>,
    /// Whether a run with words was seen.
    words: bool,
    /// Stretches of one style among the runs with words, and the style of the last one.
    stretches: usize,
    last_style: Option<usize>,
    br: Option<Range<usize>>,
    first_text: Option<Range<usize>>,
    last_text: Option<Range<usize>>,
}

struct Walker<'a> {
    html: &'a str,
    tokens: &'a [Token],
    units: Vec<(usize, Unit)>,
    fixed: Vec<(Range<usize>, String)>,
    current: Current,
    html_seen: bool,
}

fn analyse(html: &str) -> Result<Page, FormatError> {
    let tokens = tokenize(html)?;
    let mut w = Walker {
        html,
        tokens: &tokens,
        units: Vec::new(),
        fixed: Vec::new(),
        current: Current::default(),
        html_seen: false,
    };
    w.walk();
    w.units.sort_by_key(|(at, _)| *at);
    w.fixed.sort_by_key(|(r, _)| (r.start, r.end));
    Ok(Page {
        units: w.units.into_iter().map(|(_, u)| u).collect(),
        fixed: w.fixed,
    })
}

impl Walker<'_> {
    fn walk(&mut self) {
        let mut i = 0;
        while i < self.tokens.len() {
            i = self.step(i);
        }
        self.flush();
    }

    /// Handles token `i`; returns the index of the next token to handle.
    fn step(&mut self, i: usize) -> usize {
        let tokens = self.tokens;
        let t = &tokens[i];
        match &t.kind {
            Kind::Doctype | Kind::Gap => self.flush(),
            Kind::Comment => self.opaque(t.range.clone()),
            Kind::Text { data: false } => self.opaque(t.range.clone()),
            Kind::Text { data: true } => self.text(t.range.clone()),
            Kind::End { name } => self.end_tag(name, t.range.clone()),
            Kind::Start {
                name,
                attrs,
                self_closing,
            } => {
                let name = name.as_str();
                self.special_attributes(name, attrs, t.range.clone());
                let no = says_no(self.html, attrs);
                let skipped = is(SKIPPED, name) || no;
                if !skipped {
                    self.attributes(name, attrs);
                }
                let void = is(VOID, name) || (*self_closing && matches!(name, "svg" | "math"));
                if skipped {
                    let end = if void { i + 1 } else { self.skip_end(i, name) };
                    let range = t.range.start..tokens[end - 1].range.end;
                    let inline =
                        is(INLINE, name) || is(VERBATIM_INLINE, name) || is(OPAQUE_INLINE, name);
                    if !inline {
                        self.flush();
                    } else if is(VERBATIM_INLINE, name) || (no && is(INLINE, name)) {
                        let text = self.text_of(&tokens[i..end]);
                        self.verbatim(range, text);
                    } else {
                        self.opaque(range);
                    }
                    return end;
                }
                if name == "br" {
                    self.br(t.range.clone());
                } else if is(OPAQUE_INLINE, name) {
                    let end = if void { i + 1 } else { self.skip_end(i, name) };
                    // An image in a <picture>, a <video>'s fallback: their attributes still are
                    // pieces.
                    for inner in &tokens[i + 1..end] {
                        if let Kind::Start { name, attrs, .. } = &inner.kind {
                            if !says_no(self.html, attrs) && !is(SKIPPED, name) {
                                self.attributes(name, attrs);
                            }
                        }
                    }
                    self.opaque(t.range.start..tokens[end - 1].range.end);
                    return end;
                } else if is(INLINE, name) && !void {
                    self.open(name, t.range.clone());
                } else {
                    self.flush();
                }
            }
        }
        i + 1
    }

    /// The index after the end tag closing the element opened at token `i` (same-name elements
    /// nested in it counted), or the end of the page.
    fn skip_end(&self, i: usize, name: &str) -> usize {
        let mut depth = 0usize;
        for (k, t) in self.tokens.iter().enumerate().skip(i) {
            match &t.kind {
                Kind::Start {
                    name: n,
                    self_closing,
                    ..
                } if n == name && !(*self_closing && matches!(name, "svg" | "math")) => depth += 1,
                Kind::End { name: n } if n == name => {
                    depth -= 1;
                    if depth == 0 {
                        return k + 1;
                    }
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// The decoded text of tokens, whitespace collapsed, trimmed (no-break spaces too).
    fn text_of(&self, tokens: &[Token]) -> String {
        let mut s = String::new();
        for t in tokens {
            if let Kind::Text { data: true } = t.kind {
                s.push_str(&decode(&self.html[t.range.clone()], false));
            }
        }
        collapse(&s).trim().to_string()
    }

    /// `lang` on `<html>`, and a `<meta>` charset that is not UTF-8.
    fn special_attributes(&mut self, name: &str, attrs: &[Attr], tag: Range<usize>) {
        let html = self.html;
        if name == "html" && !self.html_seen {
            self.html_seen = true;
            let mut has_lang = false;
            for a in attrs {
                if a.name == "lang" || a.name == "xml:lang" {
                    has_lang |= a.name == "lang";
                    match &a.value {
                        Some(r) if &html[r.clone()] != "en" => {
                            self.fixed.push((r.clone(), value_text(html, r, "en")))
                        }
                        Some(_) => {}
                        // `<html lang>`: a value added after the name.
                        None => {
                            if let Some(at) = attr_name_end(html, &tag, &a.name) {
                                self.fixed.push((at..at, "=\"en\"".into()));
                            }
                        }
                    }
                }
            }
            if !has_lang {
                let at = tag.start + 1 + "html".len();
                if html.get(tag.start + 1..at).is_some() {
                    self.fixed.push((at..at, " lang=\"en\"".into()));
                }
            }
        }
        if name == "meta" {
            let utf8 = |v: &str| {
                let v = v.trim().to_ascii_lowercase();
                v == "utf-8" || v == "utf8"
            };
            if let Some(a) = attrs.iter().find(|a| a.name == "charset") {
                if let Some(r) = &a.value {
                    if !utf8(&html[r.clone()]) {
                        self.fixed.push((r.clone(), value_text(html, r, "utf-8")));
                    }
                }
            }
            let equiv = attr_value(html, attrs, "http-equiv")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("content-type"));
            if equiv {
                if let Some(r) = attrs
                    .iter()
                    .find(|a| a.name == "content")
                    .and_then(|a| a.value.clone())
                {
                    let v = html[r.clone()].to_ascii_lowercase();
                    if let Some(at) = v.find("charset=") {
                        if !utf8(v[at + 8..].trim_matches(|c| c == '"' || c == '\'')) {
                            let text = value_text(html, &r, "text/html; charset=utf-8");
                            self.fixed.push((r, text));
                        }
                    }
                }
            }
        }
    }

    /// The translatable attributes of a tag outside skipped content, as units.
    fn attributes(&mut self, name: &str, attrs: &[Attr]) {
        let html = self.html;
        let meta = name == "meta"
            && ["name", "property"].iter().any(|n| {
                attr_value(html, attrs, n).is_some_and(|v| {
                    TRANSLATED_META.contains(&v.trim().to_ascii_lowercase().as_str())
                })
            });
        for a in attrs {
            let wanted = is(TRANSLATED_ATTRIBUTES, &a.name) || (meta && a.name == "content");
            let Some(r) = a.value.clone().filter(|_| wanted) else {
                continue;
            };
            let piece = collapse(&decode(&html[r.clone()], true));
            if piece.trim().is_empty() {
                continue;
            }
            let quote = html[..r.start]
                .chars()
                .next_back()
                .filter(|c| *c == '"' || *c == '\'');
            self.units.push((
                r.start,
                Unit {
                    piece,
                    kind: UnitKind::Attribute { range: r, quote },
                },
            ));
        }
    }

    fn touch(&mut self, range: &Range<usize>) {
        let c = &mut self.current;
        c.range = Some(match c.range.take() {
            Some(r) => r.start..range.end,
            None => range.clone(),
        });
    }

    /// A style's number in the current block.
    fn style(&mut self, style: Style) -> usize {
        let c = &mut self.current;
        if !style.special() {
            if let Some(k) = c.styles.iter().position(|s| *s == style) {
                return k;
            }
        }
        c.styles.push(style);
        c.styles.len() - 1
    }

    /// Cuts the block before a token that adds a run when the block is full.
    fn make_room(&mut self) {
        let c = &self.current;
        if c.styles.len() >= MAX_STYLES || c.stretches >= MAX_STRETCHES {
            self.flush();
        }
    }

    fn chain(&self) -> Vec<usize> {
        self.current.open.iter().map(|o| o.element).collect()
    }

    /// Adds a run of text (already decoded) in the current formatting; `verbatim` for inline
    /// code. Cuts the block first when it has no room for the run's style.
    fn run(&mut self, text: String, verbatim: Option<Range<usize>>) {
        let words = text.chars().any(|c| !c.is_whitespace());
        let chain = self.chain();
        let c = &mut self.current;
        let before = if words && c.words {
            std::mem::take(&mut c.pending)
        } else {
            Vec::new()
        };
        let k = self.style(Style {
            chain,
            before,
            verbatim,
        });
        let c = &mut self.current;
        if words {
            if !c.words {
                c.lead.append(&mut c.pending);
            }
            c.words = true;
            for o in &mut c.open {
                o.has_text = true;
            }
            if c.last_style != Some(k) {
                c.stretches += 1;
                c.last_style = Some(k);
            }
        }
        c.runs.push((text, k));
    }

    fn text(&mut self, range: Range<usize>) {
        let raw = &self.html[range.clone()];
        let blank = raw.trim_start_matches(is_html_space).is_empty();
        if !blank {
            self.make_room();
        }
        self.touch(&range);
        let c = &mut self.current;
        if c.first_text.is_none() {
            c.first_text = Some(range.clone());
        }
        c.last_text = Some(range);
        let text = if blank {
            " ".to_string()
        } else {
            decode(raw, false)
        };
        self.run(text, None);
    }

    fn verbatim(&mut self, range: Range<usize>, text: String) {
        self.make_room();
        self.touch(&range);
        // No words (nothing, or spaces): kept whole like an image, since a marker needs words.
        if text.trim().is_empty() {
            self.current.pending.push(range);
        } else {
            self.run(text, Some(range));
        }
    }

    /// Something with no text, kept where it is among the words.
    fn opaque(&mut self, range: Range<usize>) {
        self.touch(&range);
        self.current.pending.push(range);
    }

    fn br(&mut self, range: Range<usize>) {
        self.make_room();
        self.touch(&range);
        if !self.current.words {
            self.current.pending.push(range);
            return;
        }
        if self.current.br.is_none() {
            self.current.br = Some(range);
        }
        self.run("\n".into(), None);
    }

    fn open(&mut self, name: &str, range: Range<usize>) {
        if self.current.open.len() >= MAX_INLINE_DEPTH {
            self.flush();
            return;
        }
        self.touch(&range);
        let c = &mut self.current;
        c.elements.push(InlineElement {
            name: name.to_string(),
            start: range,
            end: None,
        });
        c.open.push(Open {
            element: c.elements.len() - 1,
            has_text: false,
            marks: (c.runs.len(), c.lead.len(), c.pending.len()),
        });
    }

    fn end_tag(&mut self, name: &str, range: Range<usize>) {
        let c = &self.current;
        let Some(at) = c
            .open
            .iter()
            .rposition(|o| c.elements[o.element].name == name)
        else {
            // A block's end, or an inline element opened before this block: a cut.
            self.flush();
            return;
        };
        self.touch(&range);
        let c = &mut self.current;
        let closed: Vec<Open> = c.open.drain(at..).collect();
        let outer = &closed[0];
        c.elements[outer.element].end = Some(range.clone());
        if !outer.has_text {
            // No words inside: the element (an anchor, an icon) is kept whole, like an image.
            let (runs, lead, pending) = outer.marks;
            c.runs.truncate(runs);
            c.lead.truncate(lead);
            c.pending.truncate(pending);
            let start = c.elements[outer.element].start.start;
            c.pending.push(start..range.end);
        }
    }

    /// Ends the current block: a unit if it has words to translate.
    fn flush(&mut self) {
        let mut c = std::mem::take(&mut self.current);
        let Some(range) = c.range.clone() else {
            return;
        };
        // Inline elements still open with no words in them (`<p>mot <b></p>`): kept whole, from
        // the outermost one's start tag to the end of the block.
        if let Some(o) = c.open.iter().find(|o| !o.has_text) {
            let (runs, lead, pending) = o.marks;
            c.runs.truncate(runs);
            c.lead.truncate(lead);
            c.pending.truncate(pending);
            c.pending.push(c.elements[o.element].start.start..range.end);
            c.last_text = None;
        }
        let translatable = c.runs.iter().any(|(t, k)| {
            c.styles[*k].verbatim.is_none() && t.chars().any(|ch| !ch.is_whitespace())
        });
        if !translatable {
            return;
        }
        let mut runs = normalise(c.runs, true);
        let mut styles = c.styles;
        // A plain style, so that the unmarked text is never inline code or an image's anchor.
        let plain = Style {
            chain: Vec::new(),
            before: Vec::new(),
            verbatim: None,
        };
        let k = styles.iter().position(|s| *s == plain).unwrap_or_else(|| {
            styles.push(plain);
            styles.len() - 1
        });
        runs.push((String::new(), k));
        let marked = inline::mark_preferring(&runs, |k| !styles[k].special());
        let html = self.html;
        let lead_ws = c
            .first_text
            .filter(|r| r.start == range.start)
            .map(|r| {
                html[r]
                    .chars()
                    .take_while(|&ch| is_html_space(ch))
                    .collect()
            })
            .unwrap_or_default();
        let trail_ws = c
            .last_text
            .filter(|r| r.end == range.end)
            .map(|r| {
                let s = &html[r];
                s[s.trim_end_matches(is_html_space).len()..].to_string()
            })
            .unwrap_or_default();
        let at = range.start;
        self.units.push((
            at,
            Unit {
                piece: marked.text.clone(),
                kind: UnitKind::Block(Box::new(Block {
                    range,
                    lead_ws,
                    trail_ws,
                    lead: c.lead,
                    trail: c.pending,
                    marked,
                    styles,
                    elements: c.elements,
                    br: c.br,
                })),
            },
        ));
    }
}

/// HTML's whitespace (not the no-break space).
fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Runs of HTML whitespace as one space, trimmed.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(is_html_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The runs of a block as the model sees them: runs of whitespace one space, none at the start
/// or end, empty runs dropped. With `br`, a run that is a line break alone (a `<br>`) stays one,
/// and takes the spaces around it. Subtitles use it too.
pub(super) fn normalise(runs: Vec<(String, usize)>, br: bool) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::with_capacity(runs.len());
    // Whether the text so far ends with a space or a line break (true at the start).
    let mut space = true;
    for (text, k) in runs {
        let mut t = String::with_capacity(text.len());
        for ch in text.chars() {
            if br && ch == '\n' && text == "\n" {
                // A <br>: the space before it goes.
                if t.ends_with(' ') {
                    t.pop();
                } else if t.is_empty() {
                    if let Some((prev, _)) = out.iter_mut().rev().find(|(p, _)| !p.is_empty()) {
                        if prev.ends_with(' ') {
                            prev.pop();
                        }
                    }
                }
                t.push('\n');
                space = true;
            } else if is_html_space(ch) {
                if !space {
                    t.push(' ');
                    space = true;
                }
            } else {
                t.push(ch);
                space = false;
            }
        }
        out.push((t, k));
    }
    // Trailing spaces and line breaks.
    for (t, _) in out.iter_mut().rev() {
        let trimmed = t.trim_end_matches([' ', '\n']).len();
        let all = trimmed == 0;
        t.truncate(trimmed);
        if !all {
            break;
        }
    }
    // Leading line breaks (a <br> before any words is kept as a thing, but be safe).
    for (t, _) in out.iter_mut() {
        let rest = t.trim_start_matches([' ', '\n']).to_string();
        let all = rest.is_empty();
        *t = rest;
        if !all {
            break;
        }
    }
    out.retain(|(t, _)| !t.is_empty());
    out
}

/// The text that replaces an attribute's value: `value` as it is when the attribute is quoted,
/// in double quotes when it is not.
fn value_text(html: &str, range: &Range<usize>, value: &str) -> String {
    let quoted = html[..range.start].ends_with(['"', '\'']);
    if quoted {
        value.to_string()
    } else {
        format!("\"{value}\"")
    }
}

/// Where an attribute's name ends in a start tag, for `<html lang>`.
fn attr_name_end(html: &str, tag: &Range<usize>, name: &str) -> Option<usize> {
    let src = html.get(tag.clone())?;
    let lower = src.to_ascii_lowercase();
    let mut from = 1;
    while let Some(p) = lower[from..].find(name) {
        let at = from + p;
        let before = lower.as_bytes()[at - 1];
        let after = lower
            .as_bytes()
            .get(at + name.len())
            .copied()
            .unwrap_or(b'>');
        if before.is_ascii_whitespace() && !after.is_ascii_alphanumeric() && after != b'-' {
            return Some(tag.start + at + name.len());
        }
        from = at + 1;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Rebuilding

impl Page {
    fn rebuild(&self, html: &str, translations: &[String]) -> String {
        // Attribute edits, and the fixed ones: applied wherever their range is written.
        let mut edits = self.fixed.clone();
        for (u, english) in self.units.iter().zip(translations) {
            if let UnitKind::Attribute { range, quote } = &u.kind {
                if *english != u.piece {
                    let text = match quote {
                        Some(q) => escape_attr(english, *q),
                        None => format!("\"{}\"", escape_attr(english, '"')),
                    };
                    edits.push((range.clone(), text));
                }
            }
        }
        edits.sort_by_key(|(r, _)| (r.start, r.end));
        let mut top: Vec<(Range<usize>, String)> = Vec::new();
        for (u, english) in self.units.iter().zip(translations) {
            if let UnitKind::Block(b) = &u.kind {
                if *english != u.piece {
                    top.push((b.range.clone(), b.render(html, english, &edits)));
                }
            }
        }
        // Edits outside the blocks rendered anew (both lists are in document order).
        let mut loose: Vec<(Range<usize>, String)> = Vec::with_capacity(edits.len() + top.len());
        let mut j = 0;
        for (r, text) in &edits {
            while j < top.len() && top[j].0.end < r.start {
                j += 1;
            }
            let inside = top[j..]
                .iter()
                .take(2)
                .any(|(b, _)| b.start <= r.start && r.end <= b.end && !b.is_empty());
            if !inside {
                loose.push((r.clone(), text.clone()));
            }
        }
        loose.extend(top);
        loose.sort_by_key(|(r, _)| (r.start, r.end));
        splice(html, 0..html.len(), &loose)
    }
}

/// How many elements (or tags) two chains open alike, outermost first.
pub(super) fn common_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `html[range]` with `edits` (sorted, not overlapping) that lie inside it applied.
fn splice(html: &str, range: Range<usize>, edits: &[(Range<usize>, String)]) -> String {
    let mut out = String::with_capacity(range.len());
    let mut at = range.start;
    let first = edits.partition_point(|(r, _)| r.start < range.start);
    for (r, text) in &edits[first..] {
        if r.start > range.end || (r.start == range.end && !r.is_empty()) {
            break;
        }
        if r.end > range.end || r.start < at {
            continue;
        }
        out.push_str(&html[at..r.start]);
        out.push_str(text);
        at = r.end;
    }
    out.push_str(&html[at..range.end]);
    out
}

impl Block {
    /// The block's source range written anew around `english`.
    fn render(&self, html: &str, english: &str, edits: &[(Range<usize>, String)]) -> String {
        let emit =
            |out: &mut String, r: &Range<usize>| out.push_str(&splice(html, r.clone(), edits));
        // Things with no text keep a space that was around them in the source.
        let ws_before = |r: &Range<usize>| html[..r.start].ends_with(is_html_space);
        let ws_after = |r: &Range<usize>| html[r.end..].starts_with(is_html_space);
        let mut space_after = false;
        let thing = |out: &mut String, r: &Range<usize>, space_after: &mut bool| {
            if ws_before(r) && !out.is_empty() && !out.ends_with(is_html_space) {
                out.push(' ');
            }
            emit(out, r);
            *space_after = ws_after(r);
        };
        let mut out = String::with_capacity(self.range.len() + english.len());
        out.push_str(&self.lead_ws);
        for r in &self.lead {
            thing(&mut out, r, &mut space_after);
        }
        let unmarked = inline::unmark(english, &self.marked);
        let mut done = vec![false; self.styles.len()];
        let mut chain: &[usize] = &[];
        let runs = unmarked.runs();
        for (n, (text, k)) in runs.iter().enumerate() {
            let style = &self.styles[*k];
            let mut target: &[usize] = &style.chain;
            if text.trim().is_empty() && !style.special() {
                // Spaces between two runs stay inside the elements both are in.
                if let Some((_, next)) = runs[n + 1..].iter().find(|(t, _)| !t.trim().is_empty()) {
                    target = &chain[..common_len(chain, &self.styles[*next].chain)];
                }
            }
            let common = common_len(chain, target);
            for &e in chain[common..].iter().rev() {
                out.push_str(&format!("</{}>", self.elements[e].name));
            }
            for &e in &target[common..] {
                emit(&mut out, &self.elements[e].start);
            }
            chain = target;
            if !done[*k] {
                done[*k] = true;
                for r in &style.before {
                    thing(&mut out, r, &mut space_after);
                }
                if let Some(r) = &style.verbatim {
                    emit(&mut out, r);
                    space_after = false;
                    continue;
                }
            }
            if std::mem::take(&mut space_after) && !text.starts_with(is_html_space) {
                out.push(' ');
            }
            out.push_str(&escape_text(
                text,
                self.br.as_ref().map(|r| &html[r.clone()]),
            ));
        }
        for &e in chain.iter().rev() {
            // Closed as in the source: by its own end tag, or implied.
            match &self.elements[e].end {
                Some(r) if r.end <= self.range.end => out.push_str(&html[r.clone()]),
                _ => {}
            }
        }
        // Things the model's markers lost are put back at the end rather than dropped.
        for (k, style) in self.styles.iter().enumerate() {
            if !done[k] {
                for r in &style.before {
                    thing(&mut out, r, &mut space_after);
                }
            }
        }
        for r in &self.trail {
            thing(&mut out, r, &mut space_after);
        }
        out.push_str(&self.trail_ws);
        out
    }
}

/// Text escaped for HTML: `&`, `<`, `>`, the no-break space as `&nbsp;`; line breaks as `br`
/// (the block's own `<br>`) or spaces. An `&name;` that [`decode`] left as it was stays so.
fn escape_text(text: &str, br: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, ch) in text.char_indices() {
        match ch {
            '&' if !kept_reference(&text[i..]) => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            '\n' => out.push_str(br.unwrap_or(" ")),
            c => out.push(c),
        }
    }
    out
}

fn escape_attr(text: &str, quote: char) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, ch) in text.char_indices() {
        match ch {
            '&' if !kept_reference(&text[i..]) => out.push_str("&amp;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Whether `s` (starting with `&`) is a named reference `&name;` that [`decode`] does not know,
/// and so left in the text as it was.
fn kept_reference(s: &str) -> bool {
    let b = &s.as_bytes()[1..];
    let len = b
        .iter()
        .take(40)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    len > 0
        && b[0].is_ascii_alphabetic()
        && b.get(len) == Some(&b';')
        && entity(&s[1..1 + len]).is_none()
}

// ---------------------------------------------------------------------------------------------
// Character references

/// HTML 4's Latin-1 references, U+00A0 to U+00FF in order. They are also the legacy ones a
/// browser reads without their `;`.
#[rustfmt::skip]
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave",
    "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve",
    "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml",
    "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig",
    "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth",
    "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
    "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
];

/// The other references of HTML 4 (and `apos`), with their code points.
#[rustfmt::skip]
const OTHERS: &[(&str, u32)] = &[
    ("quot", 34), ("amp", 38), ("apos", 39), ("lt", 60), ("gt", 62), ("QUOT", 34), ("AMP", 38),
    ("LT", 60), ("GT", 62), ("COPY", 169), ("REG", 174), ("OElig", 338), ("oelig", 339),
    ("Scaron", 352), ("scaron", 353), ("Yuml", 376), ("fnof", 402), ("circ", 710),
    ("tilde", 732), ("Alpha", 913), ("Beta", 914), ("Gamma", 915), ("Delta", 916),
    ("Epsilon", 917), ("Zeta", 918), ("Eta", 919), ("Theta", 920), ("Iota", 921),
    ("Kappa", 922), ("Lambda", 923), ("Mu", 924), ("Nu", 925), ("Xi", 926), ("Omicron", 927),
    ("Pi", 928), ("Rho", 929), ("Sigma", 931), ("Tau", 932), ("Upsilon", 933), ("Phi", 934),
    ("Chi", 935), ("Psi", 936), ("Omega", 937), ("alpha", 945), ("beta", 946), ("gamma", 947),
    ("delta", 948), ("epsilon", 949), ("zeta", 950), ("eta", 951), ("theta", 952),
    ("iota", 953), ("kappa", 954), ("lambda", 955), ("mu", 956), ("nu", 957), ("xi", 958),
    ("omicron", 959), ("pi", 960), ("rho", 961), ("sigmaf", 962), ("sigma", 963), ("tau", 964),
    ("upsilon", 965), ("phi", 966), ("chi", 967), ("psi", 968), ("omega", 969),
    ("thetasym", 977), ("upsih", 978), ("piv", 982), ("ensp", 8194), ("emsp", 8195),
    ("thinsp", 8201), ("zwnj", 8204), ("zwj", 8205), ("lrm", 8206), ("rlm", 8207),
    ("ndash", 8211), ("mdash", 8212), ("lsquo", 8216), ("rsquo", 8217), ("sbquo", 8218),
    ("ldquo", 8220), ("rdquo", 8221), ("bdquo", 8222), ("dagger", 8224), ("Dagger", 8225),
    ("bull", 8226), ("hellip", 8230), ("permil", 8240), ("prime", 8242), ("Prime", 8243),
    ("lsaquo", 8249), ("rsaquo", 8250), ("oline", 8254), ("frasl", 8260), ("euro", 8364),
    ("image", 8465), ("weierp", 8472), ("real", 8476), ("trade", 8482), ("alefsym", 8501),
    ("larr", 8592), ("uarr", 8593), ("rarr", 8594), ("darr", 8595), ("harr", 8596),
    ("crarr", 8629), ("lArr", 8656), ("uArr", 8657), ("rArr", 8658), ("dArr", 8659),
    ("hArr", 8660), ("forall", 8704), ("part", 8706), ("exist", 8707), ("empty", 8709),
    ("nabla", 8711), ("isin", 8712), ("notin", 8713), ("ni", 8715), ("prod", 8719),
    ("sum", 8721), ("minus", 8722), ("lowast", 8727), ("radic", 8730), ("prop", 8733),
    ("infin", 8734), ("ang", 8736), ("and", 8743), ("or", 8744), ("cap", 8745), ("cup", 8746),
    ("int", 8747), ("there4", 8756), ("sim", 8764), ("cong", 8773), ("asymp", 8776),
    ("ne", 8800), ("equiv", 8801), ("le", 8804), ("ge", 8805), ("sub", 8834), ("sup", 8835),
    ("nsub", 8836), ("sube", 8838), ("supe", 8839), ("oplus", 8853), ("otimes", 8855),
    ("perp", 8869), ("sdot", 8901), ("lceil", 8968), ("rceil", 8969), ("lfloor", 8970),
    ("rfloor", 8971), ("lang", 10216), ("rang", 10217), ("loz", 9674), ("spades", 9824),
    ("clubs", 9827), ("hearts", 9829), ("diams", 9830),
];

/// The character of a named reference, if this module knows it.
fn entity(name: &str) -> Option<char> {
    if let Some(k) = LATIN1.iter().position(|n| *n == name) {
        return char::from_u32(0xa0 + k as u32);
    }
    OTHERS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, c)| char::from_u32(*c))
}

/// Whether a browser reads the reference without its `;`.
fn legacy(name: &str) -> bool {
    LATIN1.contains(&name)
        || matches!(
            name,
            "amp" | "lt" | "gt" | "quot" | "AMP" | "LT" | "GT" | "QUOT" | "COPY" | "REG"
        )
}

/// Text (or an attribute's value, `in_attr`) with its character references decoded as a browser
/// does: numeric ones, HTML 4's named ones (and `apos`), and the legacy ones without `;`. Other
/// named references of HTML5 are left as written (and [`escape_text`] keeps them so).
pub fn decode(raw: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match reference(rest, in_attr) {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference at the start of `s` (which starts with `&`) stands for, and its
/// length.
fn reference(s: &str, in_attr: bool) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let (hex, digits_at) = match b.get(2) {
            Some(b'x' | b'X') => (true, 3),
            _ => (false, 2),
        };
        let digits = b[digits_at..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let text = &s[digits_at..digits_at + digits];
        let value = u32::from_str_radix(text, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        let mut len = digits_at + digits;
        if b.get(len) == Some(&b';') {
            len += 1;
        }
        return Some((numeric(value), len));
    }
    let name_len = b[1..]
        .iter()
        .take(40)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    let name = &s[1..1 + name_len];
    if b.get(1 + name_len) == Some(&b';') {
        if let Some(ch) = entity(name) {
            return Some((ch, name_len + 2));
        }
    }
    // The longest legacy name the text starts with.
    let k = (2..=name_len.min(6)).rev().find(|&k| legacy(&name[..k]))?;
    let next = b.get(1 + k).copied();
    if in_attr && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'=') {
        return None;
    }
    entity(&name[..k]).map(|ch| (ch, k + 1))
}

/// A numeric reference's character, as a browser reads it.
fn numeric(value: u32) -> char {
    match value {
        0 => '\u{fffd}',
        0x80..=0x9f => {
            // windows-1252's characters, as browsers do.
            let byte = [value as u8];
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(&byte)
                .0
                .chars()
                .next()
                .unwrap_or('\u{fffd}')
        }
        v => char::from_u32(v).unwrap_or('\u{fffd}'),
    }
}

#[cfg(test)]
mod tests;
