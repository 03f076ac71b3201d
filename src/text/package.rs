//! What the package formats (DOCX, ODT) share: opening a zip archive within limits that a zip
//! bomb cannot get past, reading its XML parts as text, writing a copy where only the rewritten
//! parts change (every other entry is copied raw, compressed bytes and all, so it stays byte for
//! byte what it was), and an XML tree that keeps the byte range of every tag and text, so that a
//! codec rewrites the text it translates and splices the original bytes around it instead of
//! serialising the XML again.
//!
//! The XML is tokenised by `quick-xml`, which never resolves external entities; a part with a
//! `<!DOCTYPE` is refused outright, and so is anything that is not well formed (unclosed or
//! crossed tags, an undefined entity, bad UTF-8).
//!
//! Not for: knowing what a paragraph is in a given format (`super::docx`, `super::odt`), or
//! inline formatting through the model (`super::inline`).

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::Reader;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::format::FormatError;

/// Limits on what a package may make us decompress. The file itself is already at most
/// `read::DEFAULT_MAX_BYTES` (8 MiB, `--max-bytes`); these bound what it expands into.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries in the archive: a real document has tens, a few hundred with many images.
    pub max_entries: usize,
    /// Uncompressed size of one part that is read (an XML part), declared or actually read.
    pub max_part_bytes: u64,
    /// Uncompressed size of all the parts read, together.
    pub max_read_bytes: u64,
    /// Declared uncompressed size of every entry together, read or not.
    pub max_total_bytes: u64,
    /// Largest compression ratio (uncompressed / compressed) of an entry bigger than
    /// `ratio_floor`: XML deflates 5 to 20 times, rarely 50; a bomb of zeros, 1000 times.
    pub max_ratio: u64,
    /// Entries up to this size may have any ratio: they cannot bomb.
    pub ratio_floor: u64,
}

/// The limits of [`Package::open`]: 10,000 entries; 64 MiB per part read and 256 MiB for all
/// the parts read together; 1 GiB declared for the whole archive; a compression ratio of at
/// most 200 for any entry over 1 MiB.
pub const LIMITS: Limits = Limits {
    max_entries: 10_000,
    max_part_bytes: 64 << 20,
    max_read_bytes: 256 << 20,
    max_total_bytes: 1 << 30,
    max_ratio: 200,
    ratio_floor: 1 << 20,
};

/// Deepest XML nesting accepted: real documents stay under 30 levels (a table in a text box in a
/// table...); the tree is walked recursively, so this also bounds the stack.
pub const MAX_XML_DEPTH: usize = 256;

/// The zip signature of a package's first bytes.
pub const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";

/// The signature of an OLE compound file: an old Office file, or an encrypted OOXML one.
pub const OLE_SIGNATURE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// What a file that is no zip archive looks like, for the error that refuses it.
pub fn what_it_is(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    if bytes.starts_with(OLE_SIGNATURE) {
        return "an OLE compound file (an old Office document)".into();
    }
    if bytes.starts_with(b"%PDF-") {
        return "a PDF document".into();
    }
    if bytes.starts_with(b"PK") {
        return "a damaged or unusual zip archive".into();
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the end of the sample.
        Err(e) => e.valid_up_to() + 4 > head.len(),
    };
    if text && !head.contains(&0) {
        return "a text file".into();
    }
    "binary data of an unknown kind".into()
}

/// Whether an OLE compound file holds an `EncryptionInfo` stream: how Office stores a DOCX
/// (or ODT saved by Office) encrypted with a password. The stream name is UTF-16LE in the
/// directory.
pub fn ole_is_encrypted(bytes: &[u8]) -> bool {
    let name: Vec<u8> = "EncryptionInfo"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    bytes.windows(name.len()).any(|w| w == name.as_slice())
}

/// An open zip package, checked against [`Limits`].
pub struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    limits: Limits,
    read: u64,
}

impl<'a> Package<'a> {
    /// Opens `bytes` as a zip archive with the default [`LIMITS`].
    pub fn open(bytes: &'a [u8]) -> Result<Self, FormatError> {
        Self::open_with(bytes, LIMITS)
    }

    /// Opens `bytes` as a zip archive, refusing too many entries, encrypted entries, a declared
    /// total over the limit, and any entry whose compression ratio gives a bomb away.
    pub fn open_with(bytes: &'a [u8], limits: Limits) -> Result<Self, FormatError> {
        if !bytes.starts_with(b"PK") {
            return Err(FormatError::new(format!(
                "not a zip package: {}",
                what_it_is(bytes)
            )));
        }
        let mut archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| FormatError::new(format!("not a readable zip package ({e})")))?;
        if archive.len() > limits.max_entries {
            return Err(FormatError::new(format!(
                "the package has {} entries, over the limit of {} (a zip bomb?)",
                archive.len(),
                limits.max_entries
            )));
        }
        let mut total: u64 = 0;
        for i in 0..archive.len() {
            let f = archive
                .by_index_raw(i)
                .map_err(|e| FormatError::new(format!("unreadable zip entry {i} ({e})")))?;
            if f.encrypted() {
                return Err(FormatError::new(
                    "encrypted or password-protected (its zip entries are encrypted)",
                ));
            }
            total = total.saturating_add(f.size());
            if f.size() > limits.ratio_floor
                && f.size() / f.compressed_size().max(1) > limits.max_ratio
            {
                return Err(FormatError::new(format!(
                    "zip bomb: {} expands {} times ({} bytes into {}), over the limit of {}",
                    f.name(),
                    f.size() / f.compressed_size().max(1),
                    f.compressed_size(),
                    f.size(),
                    limits.max_ratio
                )));
            }
        }
        if total > limits.max_total_bytes {
            return Err(FormatError::new(format!(
                "zip bomb: the package declares {total} bytes uncompressed, over the limit of {}",
                limits.max_total_bytes
            )));
        }
        Ok(Package {
            archive,
            limits,
            read: 0,
        })
    }

    /// Whether the archive has an entry named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.archive.index_for_name(name).is_some()
    }

    /// The entries' names, in archive order.
    pub fn names(&self) -> Vec<String> {
        self.archive.file_names().map(str::to_string).collect()
    }

    /// The uncompressed bytes of entry `name`, within the limits on one part and on all the
    /// parts read (the declared size, then what is actually read: a lying header gains nothing).
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, FormatError> {
        let limit = self
            .limits
            .max_part_bytes
            .min(self.limits.max_read_bytes.saturating_sub(self.read));
        let mut f = self
            .archive
            .by_name(name)
            .map_err(|e| FormatError::new(format!("cannot read {name} ({e})")))?;
        let over = |size: u64| {
            FormatError::new(format!(
                "zip bomb: {name} expands to {size} bytes or more, over the limit of {limit}"
            ))
        };
        if f.size() > limit {
            return Err(over(f.size()));
        }
        let mut out = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
        (&mut f)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| FormatError::new(format!("cannot decompress {name} ({e})")))?;
        if out.len() as u64 > limit {
            return Err(over(out.len() as u64));
        }
        self.read += out.len() as u64;
        Ok(out)
    }

    /// Entry `name` as UTF-8 text (a BOM is kept: the XML tree skips it).
    pub fn read_text(&mut self, name: &str) -> Result<String, FormatError> {
        String::from_utf8(self.read(name)?)
            .map_err(|_| FormatError::new(format!("{name} is not UTF-8")))
    }

    /// A copy of the archive with the entries of `replaced` given new contents (compressed as
    /// they were, with their dates and permissions) and every other entry copied raw, in the
    /// same order: their bytes, compressed or stored, are the original ones.
    pub fn write(&mut self, replaced: &HashMap<String, Vec<u8>>) -> Result<Vec<u8>, FormatError> {
        let err =
            |e: zip::result::ZipError| FormatError::new(format!("cannot write the package ({e})"));
        let mut out = ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..self.archive.len() {
            let f = self.archive.by_index_raw(i).map_err(err)?;
            match replaced.get(f.name()) {
                None => out.raw_copy_file(f).map_err(err)?,
                Some(bytes) => {
                    let name = f.name().to_string();
                    let method = match f.compression() {
                        CompressionMethod::Stored => CompressionMethod::Stored,
                        _ => CompressionMethod::Deflated,
                    };
                    let options = f.options().compression_method(method);
                    drop(f);
                    out.start_file(name, options).map_err(err)?;
                    out.write_all(bytes)
                        .map_err(|e| FormatError::new(format!("cannot write the package ({e})")))?;
                }
            }
        }
        Ok(out.finish().map_err(err)?.into_inner())
    }
}

/// A zip package of `entries` (name, bytes), deflated, in order: for tests and the fuzz
/// targets, which wrap their input in a package.
pub fn package_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in entries {
        // Writing into memory fails only on a duplicate name, which the caller does not give.
        if w.start_file(*name, options).is_ok() {
            let _ = w.write_all(bytes);
        }
    }
    w.finish().map(Cursor::into_inner).unwrap_or_default()
}

/// One node of an XML part, with the byte range it covers in the part's text. The nodes of a
/// part cover its text entirely, in order, with no gap.
#[derive(Debug, Clone)]
pub enum Node {
    Elem(Elem),
    /// Character data (text, entity and character references, CDATA), decoded.
    Text {
        range: Range<usize>,
        text: String,
    },
    /// A comment, processing instruction, the XML declaration or a BOM.
    Other(Range<usize>),
}

impl Node {
    /// The bytes the node covers.
    pub fn range(&self) -> Range<usize> {
        match self {
            Node::Elem(e) => e.open.start..e.close.end,
            Node::Text { range, .. } | Node::Other(range) => range.clone(),
        }
    }

    pub fn elem(&self) -> Option<&Elem> {
        match self {
            Node::Elem(e) => Some(e),
            _ => None,
        }
    }
}

/// An element: its qualified name, attributes (decoded), and the ranges of its opening and
/// closing tags (an empty range at the end of the opening tag for `<x/>`).
#[derive(Debug, Clone)]
pub struct Elem {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub open: Range<usize>,
    pub close: Range<usize>,
    pub children: Vec<Node>,
}

impl Elem {
    /// The value of attribute `name` (qualified, as written).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it was written `<x/>`.
    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }

    /// Child elements.
    pub fn elems(&self) -> impl Iterator<Item = &Elem> {
        self.children.iter().filter_map(Node::elem)
    }
}

/// The prefix (`w`, `text`; empty for the default namespace) that the root element of `nodes`
/// binds to namespace `uri`, if it does.
pub fn prefix_of(nodes: &[Node], uri: &str) -> Option<String> {
    let root = nodes.iter().find_map(Node::elem)?;
    root.attrs.iter().find_map(|(k, v)| {
        (v == uri).then(|| {
            k.strip_prefix("xmlns:")
                .map(str::to_string)
                .or_else(|| (k == "xmlns").then(String::new))
        })?
    })
}

/// `prefix:local`, or `local` for the default namespace.
pub fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        format!("{prefix}:{local}")
    }
}

fn xml_error(at: u64, what: impl std::fmt::Display) -> FormatError {
    FormatError::new(format!("malformed XML at byte {at}: {what}"))
}

/// The text of a general reference (`amp`, `#233`, `#x20AC`): one of XML's five predefined
/// entities or a character reference; anything else is undefined without a DTD.
fn resolve_ref(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code).filter(|&c| !forbidden(c))?
        }
    })
}

/// The characters XML 1.0 does not allow in a document, even as references.
fn forbidden(c: char) -> bool {
    ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}'
}

/// Parses an XML part into nodes covering it entirely. Refuses a DOCTYPE (no entity is ever
/// defined or resolved), undefined entities, unclosed, unmatched or crossed tags, nesting deeper
/// than [`MAX_XML_DEPTH`].
pub fn parse(src: &str) -> Result<Vec<Node>, FormatError> {
    let bom = if src.starts_with('\u{feff}') { 3 } else { 0 };
    let mut reader = Reader::from_str(&src[bom..]);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    let mut stack: Vec<Elem> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    if bom > 0 {
        top.push(Node::Other(0..bom));
    }
    fn push(stack: &mut [Elem], top: &mut Vec<Node>, node: Node) {
        let siblings = match stack.last_mut() {
            Some(e) => &mut e.children,
            None => top,
        };
        // Text split by references (`a&amp;b` is three events) joins into one node.
        if let (Node::Text { range, text }, Some(Node::Text { range: r, text: t })) =
            (&node, siblings.last_mut())
        {
            if r.end == range.start {
                r.end = range.end;
                t.push_str(text);
                return;
            }
        }
        siblings.push(node);
    }
    loop {
        let start = reader.buffer_position() as usize + bom;
        let event = reader
            .read_event()
            .map_err(|e| xml_error(reader.error_position() + bom as u64, e))?;
        let end = reader.buffer_position() as usize + bom;
        let range = start..end;
        let attrs =
            |e: &quick_xml::events::BytesStart| -> Result<Vec<(String, String)>, FormatError> {
                e.attributes()
                    .map(|a| {
                        let a = a.map_err(|e| xml_error(start as u64, e))?;
                        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| xml_error(start as u64, e))?
                            .into_owned();
                        Ok((key, value))
                    })
                    .collect()
            };
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(xml_error(
                        start as u64,
                        format!("nested deeper than {MAX_XML_DEPTH} elements"),
                    ));
                }
                stack.push(Elem {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    attrs: attrs(&e)?,
                    open: range,
                    close: end..end,
                    children: Vec::new(),
                });
            }
            Event::Empty(e) => {
                let elem = Elem {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    attrs: attrs(&e)?,
                    open: range,
                    close: end..end,
                    children: Vec::new(),
                };
                push(&mut stack, &mut top, Node::Elem(elem));
            }
            Event::End(_) => {
                let mut elem = stack
                    .pop()
                    .ok_or_else(|| xml_error(start as u64, "a closing tag that closes nothing"))?;
                elem.close = range;
                push(&mut stack, &mut top, Node::Elem(elem));
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|e| xml_error(start as u64, e))?;
                if text.chars().any(forbidden) {
                    return Err(xml_error(
                        start as u64,
                        "a control character XML does not allow",
                    ));
                }
                if stack.is_empty() && !text.trim().is_empty() {
                    return Err(xml_error(start as u64, "text outside the root element"));
                }
                let text = text.into_owned();
                push(&mut stack, &mut top, Node::Text { range, text });
            }
            Event::CData(t) => {
                let text = String::from_utf8_lossy(&t).into_owned();
                push(&mut stack, &mut top, Node::Text { range, text });
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let c = resolve_ref(&name).ok_or_else(|| {
                    xml_error(
                        start as u64,
                        format!(
                            "undefined entity or bad character reference &{name}; (entities \
                             are never resolved)"
                        ),
                    )
                })?;
                let text = c.to_string();
                push(&mut stack, &mut top, Node::Text { range, text });
            }
            Event::DocType(_) => {
                return Err(FormatError::new(
                    "XML with a DOCTYPE (it may declare external entities, which are never \
                     resolved): refused",
                ))
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {
                push(&mut stack, &mut top, Node::Other(range))
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(xml_error(
            src.len() as u64,
            format!("<{}> is never closed", open.name),
        ));
    }
    if !top.iter().any(|n| matches!(n, Node::Elem(_))) {
        return Err(xml_error(0, "no root element"));
    }
    Ok(top)
}

/// Writes text as XML character data: `&`, `<`, `>` and CR escaped, and the characters XML
/// 1.0 forbids (control characters a model may emit) dropped, so the part stays well formed.
pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A literal CR would be read back as a line end.
            '\r' => out.push_str("&#13;"),
            c if forbidden(c) => {}
            c => out.push(c),
        }
    }
}

/// Whether two lists of runs (text, style) say the same thing: the same text, and every
/// character that is not whitespace in the same style. A paragraph whose translation is itself
/// in this sense is copied unchanged, byte for byte.
pub fn same_runs(a: &[(String, usize)], b: &[(String, usize)]) -> bool {
    let chars = |runs: &[(String, usize)]| -> Vec<(char, Option<usize>)> {
        runs.iter()
            .flat_map(|(t, s)| {
                t.chars()
                    .map(move |c| (c, (!c.is_whitespace()).then_some(*s)))
            })
            .collect()
    };
    chars(a) == chars(b)
}

/// Consecutive runs of one style merged into one.
pub fn merge_runs(runs: Vec<(String, usize)>) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::with_capacity(runs.len());
    for (t, s) in runs {
        match out.last_mut() {
            Some((lt, ls)) if *ls == s => lt.push_str(&t),
            _ => out.push((t, s)),
        }
    }
    out
}

/// The styles of a paragraph's runs, numbered in order of first appearance: the key of each
/// distinct formatting (bytes of run properties, wrappers...) gets the next number.
#[derive(Debug, Default)]
pub struct Styles {
    keys: Vec<String>,
}

impl Styles {
    pub fn id(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.to_string());
                self.keys.len() - 1
            }
        }
    }
}

/// One item of a paragraph, in order: a stretch of its text (the runs of the paragraph's text,
/// whose content the codec rewrites) or a node kept as it is (properties, bookmarks, fields,
/// drawings, notes...; nested paragraphs inside it are still translated).
#[derive(Debug, Clone, Copy)]
pub enum Item<'n> {
    Text,
    Node(&'n Node),
}

/// A paragraph as a codec reads it: its items, its text as runs (text, style number) and, per
/// style number, what the codec needs to write a run of that style again.
#[derive(Debug)]
pub struct Para<'n, S> {
    pub items: Vec<Item<'n>>,
    pub runs: Vec<(String, usize)>,
    pub styles: Vec<S>,
}

/// Which copy of `mc:AlternateContent` a node is in (DOCX: a text box is written twice, a
/// DrawingML `mc:Choice` and a VML `mc:Fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// The `mc:AlternateContent` element itself.
    Alternate,
    Choice,
    Fallback,
}

/// What a format says about its XML parts: which elements are paragraphs, how a paragraph's
/// runs are read, and how runs are written back.
pub trait Dialect {
    /// The style information [`Dialect::write_runs`] needs, one per style number.
    type Style;
    fn is_paragraph(&self, e: &Elem) -> bool;
    fn analyze<'n>(&self, src: &'n str, p: &'n Elem) -> Para<'n, Self::Style>;
    /// Writes `runs` (text, style number) in place of the paragraph's text.
    fn write_runs(
        &self,
        src: &str,
        para: &Para<'_, Self::Style>,
        runs: &[(String, usize)],
        out: &mut String,
    );
    /// Whether `e` is `mc:AlternateContent` or one of its branches.
    fn branch(&self, _e: &Elem) -> Option<Branch> {
        None
    }
}

/// A piece met in an `mc:Choice`: its text, its number, and whether a paragraph of the
/// `mc:Fallback` took its translation yet.
type ChoicePiece = (String, usize, bool);

/// The pieces of one or more parts, and with translations, the parts rewritten. The one walk
/// serves both, so `rebuild` always meets the pieces `pieces` gave, in the same order.
pub struct Walk<'t> {
    /// Pieces (paragraph text with markers), in document order.
    pub pieces: Vec<String>,
    /// The text of each piece without markers.
    pub plain: Vec<String>,
    translations: Option<&'t [String]>,
    /// Per enclosing `mc:AlternateContent`, which branch the walk is in and what its Choice
    /// held.
    alternates: Vec<(Vec<ChoicePiece>, Branch)>,
}

impl<'t> Walk<'t> {
    /// A walk that gathers pieces, and rewrites the parts if `translations` are given.
    pub fn new(translations: Option<&'t [String]>) -> Self {
        Walk {
            pieces: Vec::new(),
            plain: Vec::new(),
            translations,
            alternates: Vec::new(),
        }
    }

    /// Walks one parsed part; with translations, returns its text rewritten (`None` when
    /// nothing changed).
    pub fn part<D: Dialect>(
        &mut self,
        d: &D,
        src: &str,
        nodes: &[Node],
    ) -> Result<Option<String>, FormatError> {
        let mut out = String::with_capacity(src.len() + src.len() / 8);
        let mut pos = 0;
        let mut changed = false;
        for n in nodes {
            self.node(d, src, n, &mut out, &mut pos, &mut changed)?;
        }
        out.push_str(&src[pos..]);
        Ok((self.translations.is_some() && changed).then_some(out))
    }

    /// Checks that every translation was used.
    pub fn finish(&self) -> Result<(), FormatError> {
        match self.translations {
            Some(t) if t.len() != self.pieces.len() => Err(FormatError::new(format!(
                "{} translations for {} pieces",
                t.len(),
                self.pieces.len()
            ))),
            _ => Ok(()),
        }
    }

    // `out` is the rewritten part up to `pos` in `src`: untouched nodes are not copied one by
    // one, only the source between rewritten paragraphs, in one go.
    fn node<D: Dialect>(
        &mut self,
        d: &D,
        src: &str,
        n: &Node,
        out: &mut String,
        pos: &mut usize,
        changed: &mut bool,
    ) -> Result<(), FormatError> {
        let Node::Elem(e) = n else { return Ok(()) };
        let branch = d.branch(e);
        match branch {
            Some(Branch::Alternate) => self.alternates.push((Vec::new(), Branch::Alternate)),
            Some(b) => {
                if let Some(top) = self.alternates.last_mut() {
                    top.1 = b;
                }
            }
            None => {}
        }
        let result = if d.is_paragraph(e) {
            self.paragraph(d, src, e, out, pos, changed)
        } else {
            e.children
                .iter()
                .try_for_each(|c| self.node(d, src, c, out, pos, changed))
        };
        match branch {
            Some(Branch::Alternate) => {
                self.alternates.pop();
            }
            Some(_) => {
                if let Some(top) = self.alternates.last_mut() {
                    top.1 = Branch::Alternate;
                }
            }
            None => {}
        }
        result
    }

    fn paragraph<D: Dialect>(
        &mut self,
        d: &D,
        src: &str,
        p: &Elem,
        out: &mut String,
        pos: &mut usize,
        changed: &mut bool,
    ) -> Result<(), FormatError> {
        let para = d.analyze(src, p);
        let marked = super::inline::mark(&para.runs);
        let walk_children =
            |w: &mut Self, out: &mut String, pos: &mut usize, changed: &mut bool| {
                p.children
                    .iter()
                    .try_for_each(|c| w.node(d, src, c, out, pos, changed))
            };
        // The piece is the paragraph's text trimmed: the whitespace around it (the space after
        // a footnote's mark, a leading tab) is put back around its translation.
        let piece = marked.text.trim();
        if piece.is_empty() {
            return walk_children(self, out, pos, changed);
        }
        // In a Fallback, the same text as an unused piece of the Choice takes its translation.
        let reused = match self.alternates.last_mut() {
            Some((seen, Branch::Fallback)) => seen
                .iter_mut()
                .find(|(t, _, used)| !used && t == piece)
                .map(|(_, i, used)| {
                    *used = true;
                    *i
                }),
            _ => None,
        };
        let index = match reused {
            Some(i) => i,
            None => {
                let plain: String = para.runs.iter().map(|(t, _)| t.as_str()).collect();
                self.pieces.push(piece.to_string());
                self.plain.push(plain.trim().to_string());
                let i = self.pieces.len() - 1;
                if let Some((seen, Branch::Choice)) = self.alternates.last_mut() {
                    seen.push((piece.to_string(), i, false));
                }
                i
            }
        };
        let Some(translations) = self.translations else {
            return walk_children(self, out, pos, changed);
        };
        let translation = translations.get(index).ok_or_else(|| {
            FormatError::new(format!(
                "{} translations for more pieces than that",
                translations.len()
            ))
        })?;
        let text = &marked.text;
        let lead = &text[..text.len() - text.trim_start().len()];
        let trail = &text[text.trim_end().len()..];
        let translation = format!("{lead}{}{trail}", translation.trim());
        let new = super::inline::unmark(&translation, &marked);
        if same_runs(&merge_runs(para.runs.clone()), new.runs()) {
            return walk_children(self, out, pos, changed);
        }
        *changed = true;
        out.push_str(&src[*pos..p.open.end]);
        *pos = p.open.end;
        let first_text = para.items.iter().position(|i| matches!(i, Item::Text));
        for (i, item) in para.items.iter().enumerate() {
            match item {
                Item::Text if Some(i) == first_text => d.write_runs(src, &para, new.runs(), out),
                Item::Text => {}
                Item::Node(n) => {
                    // Kept, with what it holds translated: copied from its start.
                    *pos = n.range().start;
                    self.node(d, src, n, out, pos, changed)?;
                    out.push_str(&src[*pos..n.range().end]);
                }
            }
            if let Item::Node(n) = item {
                *pos = n.range().end;
            }
        }
        out.push_str(&src[p.close.clone()]);
        *pos = p.close.end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(src: &str, nodes: &[Node]) -> String {
        nodes.iter().map(|n| &src[n.range()]).collect()
    }

    #[test]
    fn nodes_cover_the_part_and_decode_text() {
        let src = "\u{feff}<?xml version=\"1.0\"?>\n<r a=\"x&amp;y\"><p>a &amp; b&#233;<![CDATA[<c>]]></p><e/><!-- c --></r>\n";
        let nodes = parse(src).unwrap();
        assert_eq!(covers(src, &nodes), src);
        let root = nodes.iter().find_map(Node::elem).unwrap();
        assert_eq!(root.attr("a"), Some("x&y"));
        let p = root.elems().next().unwrap();
        let Node::Text { text, range } = &p.children[0] else {
            panic!()
        };
        assert_eq!(text, "a & bé<c>");
        assert_eq!(&src[range.clone()], "a &amp; b&#233;<![CDATA[<c>]]>");
        assert!(root.elems().nth(1).unwrap().is_empty());
    }

    #[test]
    fn bad_xml_is_refused() {
        for (bad, why) in [
            ("<r><p></r>", "malformed"),
            ("<r><p>", "never closed"),
            ("<r></p>", "malformed"),
            ("<r>&ext;</r>", "undefined entity"),
            (
                "<!DOCTYPE r [<!ENTITY ext SYSTEM \"file:///etc/passwd\">]><r>&ext;</r>",
                "DOCTYPE",
            ),
            ("just text", "root"),
            ("", "no root"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.0.contains(why), "{bad}: {e}");
        }
        let deep = "<a>".repeat(MAX_XML_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().0.contains("deeper"));
    }

    #[test]
    fn limits_hold_on_declared_and_actual_sizes() {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated);
        w.start_file("a.xml", opts).unwrap();
        w.write_all(&[b'a'; 4000]).unwrap();
        w.start_file("b.xml", opts).unwrap();
        w.write_all(b"<b/>").unwrap();
        let zip = w.finish().unwrap().into_inner();

        let mut p = Package::open(&zip).unwrap();
        assert_eq!(p.read("b.xml").unwrap(), b"<b/>");
        let tight = Limits {
            max_part_bytes: 1000,
            ..LIMITS
        };
        let e = Package::open_with(&zip, tight).unwrap().read("a.xml");
        assert!(e.unwrap_err().0.contains("zip bomb"));
        let ratio = Limits {
            ratio_floor: 100,
            max_ratio: 10,
            ..LIMITS
        };
        assert!(Package::open_with(&zip, ratio)
            .err()
            .unwrap()
            .0
            .contains("expands"));
        let few = Limits {
            max_entries: 1,
            ..LIMITS
        };
        assert!(Package::open_with(&zip, few)
            .err()
            .unwrap()
            .0
            .contains("entries"));
        let total = Limits {
            max_total_bytes: 100,
            ..LIMITS
        };
        assert!(Package::open_with(&zip, total)
            .err()
            .unwrap()
            .0
            .contains("declares"));

        // A header that lies about the size: the part is read no further than the limit.
        let mut lying = zip.clone();
        let at = lying.windows(5).position(|w| w == b"a.xml").unwrap();
        // Local header: the uncompressed size is 8 bytes before the name length fields.
        lying[at - 8..at - 4].copy_from_slice(&10u32.to_le_bytes());
        let central = lying.windows(5).rposition(|w| w == b"a.xml").unwrap();
        lying[central - 22..central - 18].copy_from_slice(&10u32.to_le_bytes());
        let small = Limits {
            max_part_bytes: 1000,
            ..LIMITS
        };
        if let Ok(mut p) = Package::open_with(&lying, small) {
            let r = p.read("a.xml");
            assert!(r.map_or(true, |b| b.len() <= 1000));
        }

        // Untouched entries are copied raw.
        let mut p = Package::open(&zip).unwrap();
        let mut replaced = HashMap::new();
        replaced.insert("b.xml".to_string(), b"<c/>".to_vec());
        let out = p.write(&replaced).unwrap();
        let mut q = Package::open(&out).unwrap();
        assert_eq!(q.read("a.xml").unwrap(), vec![b'a'; 4000]);
        assert_eq!(q.read("b.xml").unwrap(), b"<c/>");
        assert_eq!(q.names(), ["a.xml", "b.xml"]);
    }

    #[test]
    fn files_that_are_no_zip_say_what_they_are() {
        assert_eq!(what_it_is(b"Bonjour\n"), "a text file");
        assert_eq!(what_it_is(b"%PDF-1.4\n"), "a PDF document");
        assert!(Package::open(b"Bonjour")
            .err()
            .unwrap()
            .0
            .contains("text file"));
        let mut ole = OLE_SIGNATURE.to_vec();
        ole.extend(vec![0; 64]);
        assert!(!ole_is_encrypted(&ole));
        ole.extend(
            "EncryptionInfo"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        );
        assert!(ole_is_encrypted(&ole));
    }
}

/// What the DOCX and ODT tests share: the fixtures, a fake translation, the entries of a
/// package, and an XML part with its text taken out.
#[cfg(test)]
pub(crate) mod testing {
    use super::super::format::{Codec, Format, Source};
    use super::*;

    /// A fixture of `tests/fixtures/docs/`.
    pub fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/docs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (scripts/make-doc-fixtures)"))
    }

    pub use crate::text::inline::shout;

    /// Every entry: name, raw (compressed) bytes, uncompressed bytes.
    pub fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let mut a = ZipArchive::new(Cursor::new(zip)).unwrap();
        (0..a.len())
            .map(|i| {
                let mut raw = Vec::new();
                let mut f = a.by_index_raw(i).unwrap();
                let name = f.name().to_string();
                f.read_to_end(&mut raw).unwrap();
                drop(f);
                let mut data = Vec::new();
                a.by_index(i).unwrap().read_to_end(&mut data).unwrap();
                (name, raw, data)
            })
            .collect()
    }

    /// [`check_codec`] on variations ([`mutations`]) of the part `part` of the fixture `zip`,
    /// every other entry as it is.
    pub fn check_variations(codec: &dyn Codec, zip: &[u8], part: &str) {
        let src = entry(zip, part);
        let others = entries(zip);
        for variant in mutations(&src, mutation_count()) {
            let parts: Vec<(&str, &[u8])> = others
                .iter()
                .map(|(n, _, data)| {
                    let data = if n == part { variant.as_bytes() } else { data };
                    (n.as_str(), data)
                })
                .collect();
            check_codec(codec, package_of(&parts));
        }
    }

    /// Writes the translation of a fixture (upper-cased with [`shout`], markers kept; and the
    /// words of the formatted paragraph reordered) to `$TRANSBRIEF_DOC_OUT/sample.en.EXT`, for
    /// `scripts/check-doc-outputs` to open in python-docx or odfpy and LibreOffice.
    pub fn write_translated_fixture(format: &Format, doc: &Source) {
        let Ok(dir) = std::env::var("TRANSBRIEF_DOC_OUT") else {
            return;
        };
        let english: Vec<String> = (format.codec.pieces(doc).unwrap().iter())
            .map(|p| match p.strip_prefix("Mon nom ") {
                Some(_) => "<c>Paris</c>: my name <a>is</a> Michel, <b>he has lived</b> there \
                            since 2010."
                    .to_string(),
                None => shout(p),
            })
            .collect();
        let out = format.codec.rebuild(doc, &english).unwrap();
        std::fs::write(format!("{dir}/sample.en.{}", format.output_extension), out).unwrap();
    }

    /// One entry's uncompressed text.
    pub fn entry(zip: &[u8], name: &str) -> String {
        let e = entries(zip);
        let (_, _, data) = e.iter().find(|(n, _, _)| n == name).unwrap();
        String::from_utf8(data.clone()).unwrap()
    }

    /// The part without its text: `drop` says which elements go whole (text runs), `unwrap`
    /// which lose their tags but keep their content (links, spans), `text_in` in which
    /// elements the character data goes. What is left must not change when the text does.
    pub fn skeleton(
        src: &str,
        drop: &dyn Fn(&Elem) -> bool,
        unwrap: &dyn Fn(&Elem) -> bool,
        text_in: &dyn Fn(&Elem) -> bool,
    ) -> String {
        type Filters<'f> = (
            &'f dyn Fn(&Elem) -> bool,
            &'f dyn Fn(&Elem) -> bool,
            &'f dyn Fn(&Elem) -> bool,
        );
        fn go(src: &str, nodes: &[Node], parent: Option<&Elem>, f: Filters, out: &mut String) {
            for n in nodes {
                match n {
                    Node::Elem(e) if f.0(e) => {}
                    Node::Elem(e) => {
                        let keep = !f.1(e);
                        if keep {
                            out.push_str(&src[e.open.clone()]);
                        }
                        go(src, &e.children, Some(e), f, out);
                        if keep {
                            out.push_str(&src[e.close.clone()]);
                        }
                    }
                    Node::Text { .. } if parent.is_some_and(|p| f.2(p)) => {}
                    n => out.push_str(&src[n.range()]),
                }
            }
        }
        let mut out = String::new();
        go(
            src,
            &parse(src).unwrap(),
            None,
            (drop, unwrap, text_in),
            &mut out,
        );
        out
    }

    /// The elements named `name` in `nodes`, in document order, nested ones included.
    pub fn all<'n>(nodes: &'n [Node], name: &str, out: &mut Vec<&'n Elem>) {
        for n in nodes {
            if let Node::Elem(e) = n {
                if e.name == name {
                    out.push(e);
                }
                all(&e.children, name, out);
            }
        }
    }

    /// The character data under `e`, all of it.
    pub fn text_of(e: &Elem) -> String {
        e.children
            .iter()
            .map(|c| match c {
                Node::Text { text, .. } => text.clone(),
                Node::Elem(x) => text_of(x),
                Node::Other(_) => String::new(),
            })
            .collect()
    }
}

/// How many variations the fixture tests try: 300, or `$TRANSBRIEF_MUTATIONS`.
#[cfg(test)]
pub(crate) fn mutation_count() -> usize {
    std::env::var("TRANSBRIEF_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

/// Well-formed variations of a real part: one to four elements taken out whole, unwrapped
/// (their tags removed, their content kept) or doubled, chosen by a seeded generator. They
/// reach the codecs' paths that random bytes do not (paragraphs without runs, runs outside
/// paragraphs, links without runs, a Choice without its Fallback, two Fallbacks...).
#[cfg(test)]
pub(crate) fn mutations(src: &str, count: usize) -> Vec<String> {
    fn elems<'n>(nodes: &'n [Node], out: &mut Vec<&'n Elem>) {
        for n in nodes {
            if let Node::Elem(e) = n {
                out.push(e);
                elems(&e.children, out);
            }
        }
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut once = |src: &str| {
        let nodes = parse(src).unwrap();
        let mut all = Vec::new();
        elems(&nodes, &mut all);
        // The root stays.
        all.remove(0);
        if all.is_empty() {
            return src.to_string();
        }
        let e = all[(next() % all.len() as u64) as usize];
        let mut out = src.to_string();
        let whole = e.open.start..e.close.end;
        match next() % 3 {
            0 => out.replace_range(whole, ""),
            1 if !e.is_empty() => {
                out.replace_range(e.close.clone(), "");
                out.replace_range(e.open.clone(), "");
            }
            // Or doubled: two text boxes, two Fallbacks, a paragraph in a paragraph...
            _ => out.insert_str(whole.end, &src[whole]),
        }
        out
    };
    (0..count)
        .map(|i| (0..=i % 4).fold(src.to_string(), |s, _| once(&s)))
        .collect()
}

/// The properties the fuzz targets check (`fuzz/src/lib.rs`), on one package: a document
/// whose pieces cannot be read cannot be rebuilt; pieces are not blank; translated as
/// themselves they rebuild a package with the same pieces; a translation that changes the text
/// and breaks the markers rebuilds a package that opens again.
#[cfg(test)]
pub(crate) fn check_codec(codec: &dyn super::format::Codec, bytes: Vec<u8>) {
    let Ok(doc) = codec.source(bytes) else { return };
    let Ok(pieces) = codec.pieces(&doc) else {
        assert!(codec.rebuild(&doc, &[]).is_err());
        return;
    };
    assert!(pieces.iter().all(|p| !p.trim().is_empty()));
    let out = codec.rebuild(&doc, &pieces).unwrap();
    let again = codec.pieces(&codec.source(out).unwrap()).unwrap();
    assert_eq!(again, pieces);
    let changed: Vec<String> = pieces
        .iter()
        .map(|p| format!("{} <a>x", p.to_uppercase()))
        .collect();
    let out = codec.rebuild(&doc, &changed).unwrap();
    codec.pieces(&codec.source(out).unwrap()).unwrap();
}

/// The codecs' properties on real documents: every `.docx` and `.odt` under
/// `$TRANSBRIEF_DOC_CORPUS` (for instance LibreOffice's templates, and the same saved as
/// .docx by `soffice --convert-to docx`). Ignored: the documents are not committed.
#[cfg(test)]
mod corpus {
    #[test]
    #[ignore = "needs $TRANSBRIEF_DOC_CORPUS"]
    fn documents_of_a_corpus_keep_the_codec_properties() {
        let Ok(dir) = std::env::var("TRANSBRIEF_DOC_CORPUS") else {
            return;
        };
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let Some(format) = super::super::format::Format::of_path(&path) else {
                continue;
            };
            if format.codec.is_text() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let doc = format.codec.source(bytes.clone());
            let pieces = doc.as_ref().map(|d| format.codec.pieces(d));
            eprintln!(
                "{}: {}",
                path.display(),
                match &pieces {
                    Ok(Ok(p)) => format!("{} pieces", p.len()),
                    Ok(Err(e)) => format!("refused: {e}"),
                    Err(e) => format!("refused: {e}"),
                }
            );
            super::check_codec(format.codec, bytes);
            // With $TRANSBRIEF_DOC_OUT, the translation upper-cased is written there, for
            // python-docx, odfpy or LibreOffice to open.
            if let (Ok(out), Ok(Ok(pieces))) = (std::env::var("TRANSBRIEF_DOC_OUT"), &pieces) {
                let english: Vec<String> =
                    pieces.iter().map(|p| super::testing::shout(p)).collect();
                let doc = doc.as_ref().unwrap();
                let bytes = format.codec.rebuild(doc, &english).unwrap();
                let name = path.file_name().unwrap();
                std::fs::write(std::path::Path::new(&out).join(name), bytes).unwrap();
            }
        }
    }
}
