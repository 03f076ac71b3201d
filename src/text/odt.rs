//! OpenDocument texts (`.odt`): the paragraphs and headings (`text:p`, `text:h`) of
//! `content.xml` (body, lists, tables, notes, comments, text boxes in frames) and of
//! `styles.xml` (the headers and footers of the master pages) are the pieces, one paragraph
//! each; the stretches in a `text:span` or `text:a` travel as markers (`super::inline`) and come
//! back on the corresponding English words.
//!
//! What is rewritten, and what is kept:
//! - A translated paragraph's text, spans and links are rewritten: its text nodes, `text:s`
//!   (spaces), `text:tab` (`\t` in the piece), `text:line-break` (`\n`), and the `text:span` and
//!   `text:a` around them, whose opening tags are copied from the original. Whitespace is read
//!   as ODF displays it (a run of spaces and line ends in the XML is one space), and written so
//!   that it displays as the translation has it (`text:s` for repeated spaces).
//! - Everything else in the paragraph (notes, comments, frames, bookmarks, fields, soft page
//!   breaks) is kept byte for byte and in order: what came before the paragraph's first text
//!   stays before the translated text, what came after it follows the translated text. An
//!   element inside a span or link is kept, outside it. The text of fields is not translated.
//! - A paragraph whose translation has the same text and formatting as the original is not
//!   rewritten; every zip entry but `content.xml` and `styles.xml`, `mimetype` first and stored
//!   included, is copied raw.
//!
//! Refused, with the reason: an encrypted document (its manifest has
//! `manifest:encryption-data`), another kind of OpenDocument (spreadsheet, presentation), a zip
//! bomb (`package::LIMITS`), XML with a DOCTYPE, malformed XML, anything that is no
//! OpenDocument package.
//!
//! Known limits: the XML parts must be UTF-8; a part with a DOCTYPE is refused even where old
//! OpenOffice files carry a harmless one (their `META-INF/manifest.xml` is never parsed, so
//! those are read); a span's nested elements (a note inside a span) come out of the span when
//! the paragraph is rewritten.
//!
//! Not for: flat XML OpenDocument (`.fodt`), `.odp`/`.ods`, or the document's metadata
//! (`meta.xml`), which is kept untranslated.

use std::collections::HashMap;
use std::ops::Range;

use super::format::{Codec, Format, FormatError, Source};
use super::package::{
    self, parse, prefix_of, push_escaped, qualified, Dialect, Elem, Item, Node, Package, Para,
    Styles, Walk,
};
use super::read::ReadError;

/// OpenDocument texts: `.odt`, translated as `.odt`.
pub static ODT: Format = Format {
    name: "odt",
    fingerprint: "ODT",
    extensions: &["odt"],
    output_extension: "odt",
    codec: &Odt,
};

const TEXT_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";
const MIMETYPE: &str = "application/vnd.oasis.opendocument.text";
/// The parts with text, in reading order.
const PARTS: [&str; 2] = ["content.xml", "styles.xml"];

struct Odt;

impl Codec for Odt {
    fn source(&self, bytes: Vec<u8>) -> Result<Source, ReadError> {
        if bytes.starts_with(package::OLE_SIGNATURE) && package::ole_is_encrypted(&bytes) {
            return Err(ReadError::Package(
                "encrypted or password-protected document: remove the password, then translate it"
                    .into(),
            ));
        }
        if !bytes.starts_with(package::ZIP_SIGNATURE) {
            return Err(ReadError::Package(format!(
                "not an OpenDocument text: an .odt is a zip package, this is {}",
                package::what_it_is(&bytes)
            )));
        }
        Ok(Source::Bytes(bytes))
    }

    fn pieces(&self, doc: &Source) -> Result<Vec<String>, FormatError> {
        Ok(walk(doc, None)?.0.pieces)
    }

    fn rebuild(&self, doc: &Source, translations: &[String]) -> Result<Vec<u8>, FormatError> {
        let (_, bytes) = walk(doc, Some(translations))?;
        Ok(bytes.unwrap_or_default())
    }

    fn plain_text(&self, doc: &Source) -> Result<String, FormatError> {
        Ok(walk(doc, None)?.0.plain.join("\n\n"))
    }
}

/// Opens the package and checks that it is an OpenDocument text, not encrypted.
fn open(bytes: &[u8]) -> Result<Package<'_>, FormatError> {
    let mut pkg = Package::open(bytes)?;
    if !pkg.has("content.xml") {
        return Err(FormatError::new(
            "not an OpenDocument text: a zip package without content.xml",
        ));
    }
    if pkg.has("mimetype") {
        let mime = pkg.read("mimetype")?;
        let mime = String::from_utf8_lossy(&mime);
        if !mime.trim().starts_with(MIMETYPE) {
            return Err(FormatError::new(format!(
                "an OpenDocument of another kind ({}): only texts (.odt) are translated",
                mime.trim()
            )));
        }
    }
    if pkg.has("META-INF/manifest.xml")
        && pkg
            .read_text("META-INF/manifest.xml")?
            .contains("encryption-data")
    {
        return Err(FormatError::new(
            "encrypted or password-protected document: remove the password, then translate it",
        ));
    }
    Ok(pkg)
}

fn walk<'t>(
    doc: &Source,
    translations: Option<&'t [String]>,
) -> Result<(Walk<'t>, Option<Vec<u8>>), FormatError> {
    let bytes = match doc {
        Source::Bytes(b) => b,
        Source::Text(_) => return Err(FormatError::new("a package format was given text")),
    };
    let mut pkg = open(bytes)?;
    let mut walk = Walk::new(translations);
    let mut replaced = HashMap::new();
    for part in PARTS {
        if !pkg.has(part) {
            continue;
        }
        let in_part = |e: FormatError| FormatError::new(format!("{part}: {e}"));
        let src = pkg.read_text(part)?;
        let nodes = parse(&src).map_err(in_part)?;
        let Some(prefix) = prefix_of(&nodes, TEXT_NS) else {
            continue;
        };
        let dialect = OdfText::new(&prefix);
        if let Some(out) = walk.part(&dialect, &src, &nodes).map_err(in_part)? {
            replaced.insert(part.to_string(), out.into_bytes());
        }
    }
    walk.finish()?;
    let bytes = match translations {
        Some(_) => Some(pkg.write(&replaced)?),
        None => None,
    };
    Ok((walk, bytes))
}

/// The qualified names of the elements the codec reads, with the part's prefix.
struct OdfText {
    p: String,
    h: String,
    span: String,
    a: String,
    s: String,
    c: String,
    tab: String,
    line_break: String,
}

impl OdfText {
    fn new(t: &str) -> Self {
        let q = |l: &str| qualified(t, l);
        OdfText {
            p: q("p"),
            h: q("h"),
            span: q("span"),
            a: q("a"),
            s: q("s"),
            c: q("c"),
            tab: q("tab"),
            line_break: q("line-break"),
        }
    }

    /// Reads the content of `e` (a paragraph, span or link) into `para`, inside the wrappers
    /// `chain`. `space` is whether the text so far ends in a collapsible space (or is empty).
    fn flatten<'n>(
        &self,
        src: &str,
        e: &'n Elem,
        chain: &mut Vec<&'n Elem>,
        para: &mut Para<'n, Vec<(Range<usize>, Range<usize>)>>,
        styles: &mut Styles,
        space: &mut bool,
    ) {
        type P<'n> = Para<'n, Vec<(Range<usize>, Range<usize>)>>;
        fn add(src: &str, para: &mut P, styles: &mut Styles, text: String, chain: &[&Elem]) {
            if text.is_empty() {
                return;
            }
            let key: String = chain.iter().map(|w| &src[w.open.clone()]).collect();
            let id = styles.id(&key);
            if id == para.styles.len() {
                para.styles.push(
                    chain
                        .iter()
                        .map(|w| (w.open.clone(), w.close.clone()))
                        .collect(),
                );
            }
            para.items.push(Item::Text);
            para.runs.push((text, id));
        }
        for c in &e.children {
            match c {
                Node::Text { text, .. } => {
                    let mut out = String::new();
                    for ch in text.chars() {
                        if matches!(ch, ' ' | '\t' | '\n' | '\r') {
                            if !*space {
                                out.push(' ');
                                *space = true;
                            }
                        } else {
                            out.push(ch);
                            *space = false;
                        }
                    }
                    add(src, para, styles, out, chain);
                }
                Node::Elem(x) if x.name == self.s => {
                    let n = x
                        .attr(&self.c)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1usize);
                    add(src, para, styles, " ".repeat(n.clamp(1, 1000)), chain);
                    *space = false;
                }
                Node::Elem(x) if x.name == self.tab => {
                    add(src, para, styles, "\t".into(), chain);
                    *space = false;
                }
                Node::Elem(x) if x.name == self.line_break => {
                    add(src, para, styles, "\n".into(), chain);
                    *space = false;
                }
                Node::Elem(x) if (x.name == self.span || x.name == self.a) && !x.is_empty() => {
                    chain.push(x);
                    self.flatten(src, x, chain, para, styles, space);
                    chain.pop();
                }
                _ => para.items.push(Item::Node(c)),
            }
        }
    }

    /// Text as ODF character data: escaped, tabs and line breaks as elements, and the spaces
    /// that ODF would collapse (at the start, or after another space) as `text:s`.
    fn write_text(&self, text: &str, out: &mut String, space: &mut bool) {
        let mut spaces = 0usize;
        let flush_spaces = |out: &mut String, n: &mut usize| {
            match *n {
                0 => {}
                1 => out.push_str(&format!("<{}/>", self.s)),
                n => out.push_str(&format!("<{} {}=\"{n}\"/>", self.s, self.c)),
            }
            *n = 0;
        };
        let mut buf = String::new();
        for ch in text.chars() {
            match ch {
                ' ' if *space => spaces += 1,
                ' ' => {
                    buf.push(' ');
                    *space = true;
                }
                '\t' | '\n' => {
                    push_escaped(out, &std::mem::take(&mut buf));
                    flush_spaces(out, &mut spaces);
                    let name = if ch == '\t' {
                        &self.tab
                    } else {
                        &self.line_break
                    };
                    out.push_str(&format!("<{name}/>"));
                    *space = true;
                }
                ch => {
                    push_escaped(out, &std::mem::take(&mut buf));
                    flush_spaces(out, &mut spaces);
                    buf.push(ch);
                    *space = false;
                }
            }
        }
        push_escaped(out, &buf);
        flush_spaces(out, &mut spaces);
    }
}

impl Dialect for OdfText {
    /// The opening and closing tags of the spans and links around a run, outermost first.
    type Style = Vec<(Range<usize>, Range<usize>)>;

    fn is_paragraph(&self, e: &Elem) -> bool {
        e.name == self.p || e.name == self.h
    }

    fn analyze<'n>(&self, src: &'n str, p: &'n Elem) -> Para<'n, Self::Style> {
        let mut para = Para {
            items: Vec::new(),
            runs: Vec::new(),
            styles: Vec::new(),
        };
        let mut styles = Styles::default();
        let mut space = true;
        self.flatten(src, p, &mut Vec::new(), &mut para, &mut styles, &mut space);
        para
    }

    fn write_runs(
        &self,
        src: &str,
        para: &Para<'_, Self::Style>,
        runs: &[(String, usize)],
        out: &mut String,
    ) {
        let mut space = true;
        for (text, style) in runs {
            let chain = &para.styles[*style];
            for (open, _) in chain {
                out.push_str(&src[open.clone()]);
            }
            self.write_text(text, out, &mut space);
            for (_, close) in chain.iter().rev() {
                out.push_str(&src[close.clone()]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::package::testing::{
        self, all, entries, entry, fixture, shout, skeleton, text_of,
    };
    use super::*;

    fn sample() -> Source {
        ODT.codec.source(fixture("sample.odt")).unwrap()
    }

    #[test]
    fn pieces_cover_body_lists_tables_notes_comments_frames_headers_and_footers() {
        let pieces = ODT.codec.pieces(&sample()).unwrap();
        let expected = [
            "Rapport annuel de la société",
            "Ce rapport présente les résultats de l'année écoulée.",
            "Chiffres provisoires, publiés en mars.",
            "Les points essentiels",
            "Le chiffre d'affaires a augmenté.",
            "Les coûts ont baissé.",
            "Préparer le budget.",
            "Recruter deux ingénieurs.",
            "Mon nom <a>est</a> Michel. <b>Il habite à</b> <c>Paris</c> depuis 2010.",
            "Première ligne\ndeuxième ligne\tet une tabulation.",
            "Année",
            "Résultat",
            "Deux mille vingt-trois",
            "Un bénéfice net",
            // A paragraph comes before the paragraphs it holds (its comment, here).
            "Le bénéfice atteint deux millions.",
            "Vérifier ce chiffre avant la publication.",
            "Le texte de la zone de texte.",
            "مرحبا بكم في التقرير",
            "שלום עולם",
            "東京は日本の首都です。",
            "Le mot <a>漢字</a> veut dire caractère chinois.",
            "En-tête du rapport annuel",
            "Pied de page : document confidentiel",
        ];
        assert_eq!(pieces, expected);
    }

    #[test]
    fn identity_rebuild_is_byte_identical() {
        let doc = sample();
        let pieces = ODT.codec.pieces(&doc).unwrap();
        let out = ODT.codec.rebuild(&doc, &pieces).unwrap();
        assert_eq!(entries(&out), entries(doc.content()));
        assert_eq!(&out[30..38], b"mimetype", "mimetype stays the first entry");
    }

    fn in_text(e: &Elem) -> bool {
        matches!(
            e.name.as_str(),
            "text:p" | "text:h" | "text:span" | "text:a"
        )
    }

    #[test]
    fn translation_changes_only_the_text() {
        let doc = sample();
        let pieces = ODT.codec.pieces(&doc).unwrap();
        let english: Vec<String> = pieces.iter().map(|p| shout(p)).collect();
        let out = ODT.codec.rebuild(&doc, &english).unwrap();
        let (before, after) = (entries(doc.content()), entries(&out));
        assert_eq!(before.len(), after.len());
        assert_eq!(after[0].0, "mimetype");
        for (b, a) in before.iter().zip(&after) {
            if PARTS.contains(&b.0.as_str()) {
                assert_ne!(b.2, a.2, "{} was translated", b.0);
                let strip = |x: &[u8]| {
                    skeleton(
                        std::str::from_utf8(x).unwrap(),
                        &|e| matches!(e.name.as_str(), "text:s" | "text:tab" | "text:line-break"),
                        &|e| matches!(e.name.as_str(), "text:span" | "text:a"),
                        &in_text,
                    )
                };
                assert_eq!(strip(&b.2), strip(&a.2), "{} beyond its text", b.0);
            } else {
                assert_eq!(b, a, "{} copied raw", b.0);
            }
        }
        let xml = entry(&out, "content.xml");
        for kept in [
            "<text:p text:style-name=\"P1\">مرحبا بكم في التقرير</text:p>",
            "<text:p text:style-name=\"P1\">שלום עולם</text:p>",
            "<text:p>東京は日本の首都です。</text:p>",
        ] {
            assert!(xml.contains(kept), "{kept}");
        }
        // What a brief is made from: the English text, without markers.
        let brief = ODT.codec.brief_text(out.clone()).unwrap();
        assert!(brief.contains("MON NOM EST MICHEL. IL HABITE À PARIS DEPUIS 2010."));
        assert!(!brief.contains("<a>"));
        let again = ODT.codec.source(out).unwrap();
        assert_eq!(ODT.codec.pieces(&again).unwrap(), english);
    }

    /// The paragraph starting with `starts`: (text, span style or link target) of each child.
    fn styled(zip: &[u8], starts: &str) -> Vec<(String, String)> {
        let nodes = parse(&entry(zip, "content.xml")).unwrap();
        let mut paras = Vec::new();
        all(&nodes, "text:p", &mut paras);
        let p = paras
            .into_iter()
            .find(|p| text_of(p).starts_with(starts))
            .unwrap_or_else(|| panic!("no paragraph starts with {starts}"));
        p.children
            .iter()
            .map(|c| match c {
                Node::Text { text, .. } => (text.clone(), String::new()),
                Node::Elem(e) => (
                    text_of(e),
                    e.attr("text:style-name")
                        .or(e.attr("xlink:href"))
                        .unwrap_or(&e.name)
                        .to_string(),
                ),
                Node::Other(_) => (String::new(), String::new()),
            })
            .collect()
    }

    #[test]
    fn spans_and_links_land_on_the_english_words() {
        let doc = sample();
        let pieces = ODT.codec.pieces(&doc).unwrap();
        let i = pieces
            .iter()
            .position(|p| p.starts_with("Mon nom"))
            .unwrap();
        let mut english: Vec<String> = pieces.iter().map(|p| shout(p)).collect();
        let out = ODT.codec.rebuild(&doc, &english).unwrap();
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            styled(&out, "MON NOM"),
            [
                s("MON NOM ", ""),
                s("EST", "T1"),
                s(" MICHEL. ", ""),
                s("IL HABITE À", "T2"),
                s(" ", ""),
                s("PARIS", "https://example.org"),
                s(" DEPUIS 2010.", ""),
            ]
        );
        english[i] = "<c>Paris</c>:  my name <a>is</a> Michel, <b>he has lived</b> there.".into();
        let out = ODT.codec.rebuild(&doc, &english).unwrap();
        assert_eq!(
            styled(&out, "Paris"),
            [
                s("Paris", "https://example.org"),
                s(": ", ""),
                s("", "text:s"),
                s("my name ", ""),
                s("is", "T1"),
                s(" Michel, ", ""),
                s("he has lived", "T2"),
                s(" there.", ""),
            ]
        );
        // Broken markers: the text stays, the formatting goes.
        english[i] = "My name <a>is Michel, <b>he</b> lives in <c>Paris</c>.".into();
        let out = ODT.codec.rebuild(&doc, &english).unwrap();
        assert_eq!(
            styled(&out, "My name"),
            [s("My name is Michel, he lives in Paris.", "")]
        );
    }

    #[test]
    fn bad_inputs_are_refused_with_their_reason() {
        let e = ODT
            .codec
            .source(fixture("text.odt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("this is a text file"), "{e}");
        for (name, why) in [
            ("encrypted.odt", "encrypted or password-protected"),
            ("doctype.odt", "content.xml: XML with a DOCTYPE"),
            ("broken.odt", "content.xml: malformed XML"),
            ("sample.docx", "without content.xml"),
            ("bomb.docx", "zip bomb"),
        ] {
            let doc = ODT.codec.source(fixture(name)).unwrap();
            let e = ODT.codec.pieces(&doc).unwrap_err().0;
            assert!(e.contains(why), "{name}: {e}");
            assert!(ODT.codec.rebuild(&doc, &[]).is_err(), "{name}");
        }
    }

    /// The fuzz targets' properties on well-formed variations of the fixture's content.
    #[test]
    fn variations_of_the_fixture_keep_the_codec_properties() {
        testing::check_variations(&Odt, &fixture("sample.odt"), "content.xml");
    }

    /// Writes the fixture's translation (upper-cased, markers kept; and with the words of the
    /// formatted paragraph reordered) to `$TRANSBRIEF_DOC_OUT/sample.en.odt`, for
    /// `scripts/check-doc-outputs` to open in python-docx or odfpy and LibreOffice.
    #[test]
    #[ignore = "writes a file for scripts/check-doc-outputs"]
    fn write_the_translated_fixture() {
        testing::write_translated_fixture(&ODT, &sample());
    }
}
