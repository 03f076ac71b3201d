//! Word documents (`.docx`): the paragraphs of the body, tables, headers, footers, footnotes,
//! endnotes, comments and text boxes are the pieces, one paragraph (`w:p`) each whatever its
//! runs; the runs whose formatting differs from the paragraph's main one travel as markers
//! (`super::inline`) and come back on the corresponding English words.
//!
//! What is rewritten, and what is kept:
//! - Only the text runs of a translated paragraph are rewritten: a `w:r` holding nothing but
//!   `w:rPr`, `w:t`, `w:tab`, `w:br` (a line break; a page or column break makes the run
//!   kept), `w:cr`, `w:noBreakHyphen`, `w:softHyphen` and `w:lastRenderedPageBreak` (a
//!   rendering hint, dropped), directly in the paragraph or in a `w:hyperlink`, `w:smartTag`,
//!   `w:ins` or `w:customXml` holding only such runs. A tab is `\t` in the piece and a line
//!   break `\n`; they are written back as `w:tab` and `w:br` wherever the translation puts them.
//! - The new runs take the `w:rPr` bytes (and the opening tag of the run and of the hyperlink
//!   around it) of the original runs of their style; each `w:t` is written with
//!   `xml:space="preserve"`. Runs whose `w:rPr` differ only in what does not show (`w:lang`,
//!   `w:noProof`, an `w:rFonts` with only a hint: Word's noise) are one style, and take the
//!   first such run's `w:rPr`.
//! - A paragraph's piece is its text trimmed; the whitespace around it (the space after a
//!   footnote's mark) is put back around the translation.
//! - Everything else in the paragraph (its properties, bookmarks, comment anchors, field runs
//!   and their results, drawings, footnote references, runs mixing text with other content,
//!   content controls, deleted text) is kept byte for byte and in order: what came before the
//!   first text run stays before the translated text, what came after it follows the
//!   translated text. So an element in the middle of a sentence (a footnote reference, a field
//!   such as a page number in "Page 1 sur 3") ends up after the paragraph's text: that is the
//!   price of translating the paragraph whole. The text of fields, content controls and mixed
//!   runs is not translated.
//! - A paragraph whose translation has the same text and formatting as the original (markers
//!   aside) is not rewritten at all; a part with no rewritten paragraph, and every other zip
//!   entry (styles, numbering, images, relationships...), is copied raw.
//! - A text box is in the document twice, as DrawingML (`mc:Choice`) and as VML
//!   (`mc:Fallback`): the Fallback's paragraphs take the translations of the Choice's
//!   paragraphs with the same text, and are no pieces of their own.
//!
//! Refused, with the reason: an encrypted or password-protected document, a macro-enabled one
//! (`.docm`), a zip bomb (`package::LIMITS`), XML with a DOCTYPE, malformed XML, and anything
//! that is no Word package.
//!
//! Known limits: the XML parts must be UTF-8 (Word writes nothing else); a hyperlink nested in
//! another wrapper, an inline content control (`w:sdt` in a paragraph), tracked deletions and
//! simple fields (`w:fldSimple`) are kept as they are, with their text untranslated; only the
//! first 26 differently formatted stretches of a paragraph get markers (`inline`), the others
//! take the paragraph's main formatting when it is rewritten.
//!
//! Not for: `.doc` (the old binary format), templates' glossaries (`word/glossary/`), charts,
//! SmartArt, or the document's properties (`docProps/`): their text is kept untranslated.

use std::collections::HashMap;
use std::ops::Range;

use super::format::{Codec, Format, FormatError, Source};
use super::package::{
    self, parse, prefix_of, push_escaped, qualified, Branch, Dialect, Elem, Item, Node, Package,
    Para, Styles, Walk,
};
use super::read::ReadError;

/// Word documents: `.docx` (and `.docm`, which is refused with the reason), translated as
/// `.docx`.
pub static DOCX: Format = Format {
    name: "docx",
    fingerprint: "DOCX",
    extensions: &["docx", "docm"],
    output_extension: "docx",
    codec: &Docx,
};

/// WordprocessingML's namespace, transitional and strict.
const W_NS: [&str; 2] = [
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
];
const MC_NS: &str = "http://schemas.openxmlformats.org/markup-compatibility/2006";

/// The main document part.
const DOCUMENT: &str = "word/document.xml";

struct Docx;

impl Codec for Docx {
    fn source(&self, bytes: Vec<u8>) -> Result<Source, ReadError> {
        if bytes.starts_with(package::OLE_SIGNATURE) {
            let reason = if package::ole_is_encrypted(&bytes) {
                "encrypted or password-protected Word document: remove the password, then \
                 translate it"
            } else {
                "an old Word document (.doc) or another OLE file, not a .docx: save it as .docx"
            };
            return Err(ReadError::Package(reason.into()));
        }
        if !bytes.starts_with(package::ZIP_SIGNATURE) {
            return Err(ReadError::Package(format!(
                "not a Word document: a .docx is a zip package, this is {}",
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

fn bytes_of(doc: &Source) -> Result<&[u8], FormatError> {
    match doc {
        Source::Bytes(b) => Ok(b),
        Source::Text(_) => Err(FormatError::new("a package format was given text")),
    }
}

/// Opens the package and checks that it is a Word document without macros.
fn open(bytes: &[u8]) -> Result<Package<'_>, FormatError> {
    let mut pkg = Package::open(bytes)?;
    if !pkg.has(DOCUMENT) {
        return Err(FormatError::new(format!(
            "not a Word document: a zip package without {DOCUMENT}"
        )));
    }
    let types = match pkg.has("[Content_Types].xml") {
        true => pkg.read_text("[Content_Types].xml")?,
        false => String::new(),
    };
    // The main part's content type; a workbook with macros embedded in a document is no reason.
    let macros = pkg.has("word/vbaProject.bin")
        || types.contains("ms-word.document.macroEnabled")
        || types.contains("ms-word.template.macroEnabled");
    if macros {
        return Err(FormatError::new(
            "a macro-enabled Word document (.docm): refused, macros are neither translated nor \
             carried into a translation; save it as .docx without macros",
        ));
    }
    Ok(pkg)
}

/// The parts with text, in reading order: the body, headers, footers, footnotes, endnotes,
/// comments.
fn parts(pkg: &Package) -> Vec<String> {
    let names = pkg.names();
    let numbered = |stem: &str| {
        let mut v: Vec<&String> = names
            .iter()
            .filter(|n| {
                n.strip_prefix("word/")
                    .and_then(|n| n.strip_prefix(stem))
                    .and_then(|n| n.strip_suffix(".xml"))
                    .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
            })
            .collect();
        v.sort_by_key(|n| (n.len(), n.to_string()));
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    let mut out = vec![DOCUMENT.to_string()];
    out.extend(numbered("header"));
    out.extend(numbered("footer"));
    for p in ["footnotes", "endnotes", "comments"] {
        let name = format!("word/{p}.xml");
        if names.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The walk of every part with text: its pieces, and with translations, the rewritten package.
fn walk<'t>(
    doc: &Source,
    translations: Option<&'t [String]>,
) -> Result<(Walk<'t>, Option<Vec<u8>>), FormatError> {
    let mut pkg = open(bytes_of(doc)?)?;
    let mut walk = Walk::new(translations);
    let mut replaced = HashMap::new();
    for part in parts(&pkg) {
        let in_part = |e: FormatError| FormatError::new(format!("{part}: {e}"));
        let src = pkg.read_text(&part)?;
        let nodes = parse(&src).map_err(in_part)?;
        let Some(w) = W_NS.iter().find_map(|ns| prefix_of(&nodes, ns)) else {
            if part == DOCUMENT {
                return Err(in_part(FormatError::new(
                    "no WordprocessingML namespace: not a Word document",
                )));
            }
            continue;
        };
        let dialect = Word::new(&w, prefix_of(&nodes, MC_NS).as_deref());
        if let Some(out) = walk.part(&dialect, &src, &nodes).map_err(in_part)? {
            replaced.insert(part, out.into_bytes());
        }
    }
    walk.finish()?;
    let bytes = match translations {
        Some(_) => Some(pkg.write(&replaced)?),
        None => None,
    };
    Ok((walk, bytes))
}

/// The qualified names of the elements the codec reads, with the part's prefixes.
struct Word {
    p: String,
    r: String,
    t: String,
    rpr: String,
    tab: String,
    br: String,
    cr: String,
    no_break_hyphen: String,
    soft_hyphen: String,
    last_rendered: String,
    fld_char: String,
    fld_char_type: String,
    br_type: String,
    lang: String,
    no_proof: String,
    r_fonts: String,
    hint: String,
    wrappers: [String; 4],
    alternate: Option<[String; 3]>,
}

impl Word {
    fn new(w: &str, mc: Option<&str>) -> Self {
        let q = |l: &str| qualified(w, l);
        Word {
            p: q("p"),
            r: q("r"),
            t: q("t"),
            rpr: q("rPr"),
            tab: q("tab"),
            br: q("br"),
            cr: q("cr"),
            no_break_hyphen: q("noBreakHyphen"),
            soft_hyphen: q("softHyphen"),
            last_rendered: q("lastRenderedPageBreak"),
            fld_char: q("fldChar"),
            fld_char_type: q("fldCharType"),
            br_type: q("type"),
            lang: q("lang"),
            no_proof: q("noProof"),
            r_fonts: q("rFonts"),
            hint: q("hint"),
            wrappers: [q("hyperlink"), q("smartTag"), q("ins"), q("customXml")],
            alternate: mc.map(|mc| {
                [
                    qualified(mc, "AlternateContent"),
                    qualified(mc, "Choice"),
                    qualified(mc, "Fallback"),
                ]
            }),
        }
    }

    /// The text of a run that holds only text (see the module's doc), or `None`.
    fn run_text(&self, r: &Elem) -> Option<String> {
        if r.name != self.r {
            return None;
        }
        let mut text = String::new();
        for c in &r.children {
            let e = match c {
                Node::Elem(e) => e,
                Node::Text { text, .. } if text.trim().is_empty() => continue,
                _ => return None,
            };
            let n = e.name.as_str();
            if n == self.rpr || n == self.last_rendered {
            } else if n == self.t {
                for c in &e.children {
                    match c {
                        Node::Text { text: t, .. } => text.push_str(t),
                        Node::Other(_) => {}
                        Node::Elem(_) => return None,
                    }
                }
            } else if n == self.tab {
                text.push('\t');
            } else if n == self.br {
                match e.attr(&self.br_type) {
                    None | Some("textWrapping") => text.push('\n'),
                    Some(_) => return None,
                }
            } else if n == self.cr {
                text.push('\n');
            } else if n == self.no_break_hyphen {
                text.push('\u{2011}');
            } else if n == self.soft_hyphen {
                text.push('\u{ad}');
            } else {
                return None;
            }
        }
        Some(text)
    }

    /// What tells two runs' formatting apart: their `w:rPr` less what does not show (the
    /// language, `w:noProof`, a font hint alone), so that Word's noise does not cut a
    /// paragraph into markers. Runs that differ only there take the first one's `w:rPr`.
    fn style_key(&self, src: &str, rpr: Option<&Elem>) -> String {
        let Some(rpr) = rpr else {
            return String::new();
        };
        rpr.children
            .iter()
            .filter(|c| match c {
                Node::Elem(e) => {
                    !(e.name == self.lang
                        || e.name == self.no_proof
                        || (e.name == self.r_fonts && e.attrs.iter().all(|(k, _)| *k == self.hint)))
                }
                Node::Text { text, .. } => !text.trim().is_empty(),
                Node::Other(_) => false,
            })
            .map(|c| &src[c.range()])
            .collect()
    }

    /// How the fields (`w:fldChar` begin/end) in a kept run change the nesting depth.
    fn field_depth(&self, r: &Elem, depth: &mut usize) {
        if r.name != self.r {
            return;
        }
        for e in r.elems().filter(|e| e.name == self.fld_char) {
            match e.attr(&self.fld_char_type) {
                Some("begin") => *depth += 1,
                Some("end") => *depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
}

/// How to write a run of one style again: byte ranges in the part.
#[derive(Debug)]
struct RunStyle {
    /// The opening tag of the first run of that style (empty for `<w:r/>`).
    open: Range<usize>,
    /// Its `w:rPr`, as it was (empty for none).
    rpr: Range<usize>,
    /// The opening and closing tags of the hyperlink (or other wrapper) around it, if any.
    wrapper: Option<(Range<usize>, Range<usize>)>,
}

impl Dialect for Word {
    type Style = RunStyle;

    fn is_paragraph(&self, e: &Elem) -> bool {
        e.name == self.p
    }

    fn branch(&self, e: &Elem) -> Option<Branch> {
        let [alt, choice, fallback] = self.alternate.as_ref()?;
        if &e.name == alt {
            Some(Branch::Alternate)
        } else if &e.name == choice {
            Some(Branch::Choice)
        } else if &e.name == fallback {
            Some(Branch::Fallback)
        } else {
            None
        }
    }

    fn analyze<'n>(&self, src: &'n str, p: &'n Elem) -> Para<'n, RunStyle> {
        let mut para = Para {
            items: Vec::new(),
            runs: Vec::new(),
            styles: Vec::new(),
        };
        let mut styles = Styles::default();
        let mut depth = 0usize;
        let mut add = |para: &mut Para<'n, RunStyle>, r: &Elem, wrapper: Option<&Elem>, text| {
            let rpr_elem = r.elems().find(|e| e.name == self.rpr);
            let rpr = rpr_elem.map_or(0..0, |e| e.open.start..e.close.end);
            let wrap = wrapper.map_or(0..0, |w| w.open.clone());
            let key = format!("{}\u{0}{}", &src[wrap], self.style_key(src, rpr_elem));
            let id = styles.id(&key);
            if id == para.styles.len() {
                para.styles.push(RunStyle {
                    open: if r.is_empty() { 0..0 } else { r.open.clone() },
                    rpr,
                    wrapper: wrapper.map(|w| (w.open.clone(), w.close.clone())),
                });
            }
            para.items.push(Item::Text);
            para.runs.push((text, id));
        };
        for c in &p.children {
            let Node::Elem(e) = c else {
                para.items.push(Item::Node(c));
                continue;
            };
            if depth == 0 {
                if let Some(text) = self.run_text(e) {
                    add(&mut para, e, None, text);
                    continue;
                }
                let dissolves = self.wrappers.contains(&e.name)
                    && !e.is_empty()
                    && e.children.iter().all(|c| match c {
                        Node::Elem(r) => self.run_text(r).is_some(),
                        Node::Text { text, .. } => text.trim().is_empty(),
                        Node::Other(_) => false,
                    });
                if dissolves {
                    for r in e.elems() {
                        let text = self.run_text(r).unwrap_or_default();
                        add(&mut para, r, Some(e), text);
                    }
                    continue;
                }
            }
            self.field_depth(e, &mut depth);
            para.items.push(Item::Node(c));
        }
        para
    }

    fn write_runs(
        &self,
        src: &str,
        para: &Para<'_, RunStyle>,
        runs: &[(String, usize)],
        out: &mut String,
    ) {
        let mut wrapper: Option<&(Range<usize>, Range<usize>)> = None;
        for (text, style) in runs {
            let s = &para.styles[*style];
            if wrapper != s.wrapper.as_ref() {
                if let Some((_, close)) = wrapper {
                    out.push_str(&src[close.clone()]);
                }
                if let Some((open, _)) = &s.wrapper {
                    out.push_str(&src[open.clone()]);
                }
                wrapper = s.wrapper.as_ref();
            }
            if s.open.is_empty() {
                out.push_str(&format!("<{}>", self.r));
            } else {
                out.push_str(&src[s.open.clone()]);
            }
            out.push_str(&src[s.rpr.clone()]);
            self.write_text(text, out);
            out.push_str(&format!("</{}>", self.r));
        }
        if let Some((_, close)) = wrapper {
            out.push_str(&src[close.clone()]);
        }
    }
}

impl Word {
    /// A run's text as `w:t` (with `xml:space="preserve"`), `w:tab`, `w:br`,
    /// `w:noBreakHyphen` and `w:softHyphen`.
    fn write_text(&self, text: &str, out: &mut String) {
        let mut start = 0;
        let flush = |out: &mut String, chunk: &str| {
            if !chunk.is_empty() {
                out.push_str(&format!("<{} xml:space=\"preserve\">", self.t));
                push_escaped(out, chunk);
                out.push_str(&format!("</{}>", self.t));
            }
        };
        for (i, c) in text.char_indices() {
            let empty = match c {
                '\t' => &self.tab,
                '\n' => &self.br,
                '\u{2011}' => &self.no_break_hyphen,
                '\u{ad}' => &self.soft_hyphen,
                _ => continue,
            };
            flush(out, &text[start..i]);
            out.push_str(&format!("<{empty}/>"));
            start = i + c.len_utf8();
        }
        flush(out, &text[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::package::testing::{
        self, all, entries, entry, fixture, shout, skeleton, text_of,
    };
    use super::*;

    fn sample() -> Source {
        DOCX.codec.source(fixture("sample.docx")).unwrap()
    }

    fn doc_nodes(zip: &[u8], part: &str) -> Vec<Node> {
        parse(&entry(zip, part)).unwrap()
    }

    #[test]
    fn pieces_cover_body_tables_headers_footers_notes_comments_and_text_boxes() {
        let pieces = DOCX.codec.pieces(&sample()).unwrap();
        let expected = [
            "Rapport annuel de la société",
            "Ce rapport présente les résultats de l'année écoulée.",
            "Les points essentiels",
            "Le chiffre d'affaires a augmenté.",
            "Les coûts ont baissé.",
            "Préparer le budget.",
            "Recruter deux ingénieurs.",
            "Mon nom <a>est</a> Michel. <b>Il habite à</b> <c>Paris</c> depuis 2010.",
            "Année",
            "Résultat",
            "Deux mille vingt-trois",
            "Un bénéfice net",
            "Première ligne\ndeuxième ligne\tet une tabulation.",
            "Le bénéfice atteint deux millions.",
            "Le texte de la zone de texte.",
            "مرحبا بكم في التقرير",
            "שלום עולם",
            "東京は日本の首都です。",
            "Le mot <a>漢字</a> veut dire caractère chinois.",
            "En-tête du rapport annuel",
            "Pied de page : document confidentiel",
            "Chiffres provisoires, publiés en mars.",
            "Vérifier ce chiffre avant la publication.",
        ];
        assert_eq!(pieces, expected);
        let plain = DOCX.codec.plain_text(&sample()).unwrap();
        assert!(plain.contains("Mon nom est Michel. Il habite à Paris depuis 2010."));
        assert!(!plain.contains("<a>"));
    }

    /// Translated as themselves, the pieces give the package back: every entry byte for byte,
    /// compressed bytes included (no paragraph is rewritten, so no part is).
    #[test]
    fn identity_rebuild_is_byte_identical() {
        let doc = sample();
        let pieces = DOCX.codec.pieces(&doc).unwrap();
        let out = DOCX.codec.rebuild(&doc, &pieces).unwrap();
        assert_eq!(entries(&out), entries(doc.content()));
        let again = DOCX.codec.source(out).unwrap();
        assert_eq!(DOCX.codec.pieces(&again).unwrap(), pieces);
    }

    fn is_text_run(e: &Elem) -> bool {
        e.name == "w:r" && e.elems().any(|c| c.name == "w:t")
    }

    /// A translation rewrites the text runs and nothing else: every entry but the parts with
    /// text is copied raw, and the parts with text, their text runs and links taken out, are
    /// what they were.
    #[test]
    fn translation_changes_only_the_text_runs() {
        let doc = sample();
        let pieces = DOCX.codec.pieces(&doc).unwrap();
        let english: Vec<String> = pieces.iter().map(|p| shout(p)).collect();
        let out = DOCX.codec.rebuild(&doc, &english).unwrap();
        let (before, after) = (entries(doc.content()), entries(&out));
        assert_eq!(
            before.iter().map(|e| &e.0).collect::<Vec<_>>(),
            after.iter().map(|e| &e.0).collect::<Vec<_>>(),
            "the same entries in the same order"
        );
        let with_text = [
            "word/document.xml",
            "word/header1.xml",
            "word/footer1.xml",
            "word/footnotes.xml",
            "word/comments.xml",
        ];
        for (b, a) in before.iter().zip(&after) {
            if with_text.contains(&b.0.as_str()) {
                assert_ne!(b.2, a.2, "{} was translated", b.0);
                let strip = |x: &[u8]| {
                    skeleton(
                        std::str::from_utf8(x).unwrap(),
                        &is_text_run,
                        &|e| e.name == "w:hyperlink",
                        &|_| false,
                    )
                };
                assert_eq!(strip(&b.2), strip(&a.2), "{} beyond its text runs", b.0);
            } else {
                assert_eq!(b, a, "{} copied raw", b.0);
            }
        }
        // Right-to-left and CJK text translated as itself (no case to change) stays as it was.
        let xml = entry(&out, DOCUMENT);
        for kept in [
            "<w:p><w:r><w:rPr><w:rtl/></w:rPr><w:t>مرحبا بكم في التقرير</w:t></w:r></w:p>",
            "<w:p><w:r><w:t>שלום עולם</w:t></w:r></w:p>",
            "<w:p><w:r><w:t>東京は日本の首都です。</w:t></w:r></w:p>",
        ] {
            assert!(xml.contains(kept), "{kept}");
        }
        // What a brief is made from: the English text, without markers.
        let brief = DOCX.codec.brief_text(out.clone()).unwrap();
        assert!(brief.contains("MON NOM EST MICHEL. IL HABITE À PARIS DEPUIS 2010."));
        assert!(!brief.contains("<a>"));
        let again = DOCX.codec.source(out).unwrap();
        assert_eq!(DOCX.codec.pieces(&again).unwrap(), english);
    }

    /// The run of each style in the paragraph "Mon nom …": (text, bold, italic, in a link).
    fn styled_runs(zip: &[u8], starts: &str) -> Vec<(String, bool, bool, bool)> {
        let nodes = doc_nodes(zip, DOCUMENT);
        let mut paras = Vec::new();
        all(&nodes, "w:p", &mut paras);
        let p = paras
            .into_iter()
            .find(|p| text_of(p).starts_with(starts))
            .unwrap_or_else(|| panic!("no paragraph starts with {starts}"));
        let mut out = Vec::new();
        for c in p.elems() {
            let (runs, link): (Vec<&Elem>, bool) = match c.name.as_str() {
                "w:r" => (vec![c], false),
                "w:hyperlink" => {
                    assert_eq!(c.attr("r:id"), Some("rId11"), "the link's target kept");
                    (c.elems().filter(|r| r.name == "w:r").collect(), true)
                }
                _ => continue,
            };
            for r in runs {
                let props = |name: &str| {
                    r.elems()
                        .filter(|e| e.name == "w:rPr")
                        .any(|rpr| rpr.elems().any(|e| e.name == name))
                };
                out.push((text_of(r), props("w:b"), props("w:i"), link));
            }
        }
        out
    }

    #[test]
    fn bold_italic_and_links_land_on_the_english_words() {
        let doc = sample();
        let pieces = DOCX.codec.pieces(&doc).unwrap();
        let i = pieces
            .iter()
            .position(|p| p.starts_with("Mon nom"))
            .unwrap();
        let mut english: Vec<String> = pieces.iter().map(|p| shout(p)).collect();
        let out = DOCX.codec.rebuild(&doc, &english).unwrap();
        let s = |t: &str, b, i, l| (t.to_string(), b, i, l);
        assert_eq!(
            styled_runs(&out, "MON NOM"),
            [
                s("MON NOM ", false, false, false),
                s("EST", true, false, false),
                s(" MICHEL. ", false, false, false),
                s("IL HABITE À", false, true, false),
                s(" ", false, false, false),
                s("PARIS", false, false, true),
                s(" DEPUIS 2010.", false, false, false),
            ]
        );
        // The English order differs: the formatting follows the words.
        english[i] =
            "<c>Paris</c>: my name <a>is</a> Michel, <b>he has lived</b> there since 2010.".into();
        let out = DOCX.codec.rebuild(&doc, &english).unwrap();
        assert_eq!(
            styled_runs(&out, "Paris"),
            [
                s("Paris", false, false, true),
                s(": my name ", false, false, false),
                s("is", true, false, false),
                s(" Michel, ", false, false, false),
                s("he has lived", false, true, false),
                s(" there since 2010.", false, false, false),
            ]
        );
        // Every text run written is `xml:space="preserve"`.
        let xml = entry(&out, DOCUMENT);
        assert!(xml.contains(r#"<w:t xml:space="preserve">is</w:t>"#));
    }

    #[test]
    fn broken_markers_keep_the_text_and_drop_the_formatting() {
        let doc = sample();
        let pieces = DOCX.codec.pieces(&doc).unwrap();
        let i = pieces
            .iter()
            .position(|p| p.starts_with("Mon nom"))
            .unwrap();
        let mut english = pieces.clone();
        english[i] = "My name <a>is Michel. <b>He lives in</b> <c>Paris</c> since 2010.".into();
        let out = DOCX.codec.rebuild(&doc, &english).unwrap();
        let runs = styled_runs(&out, "My name");
        assert_eq!(
            runs,
            [(
                "My name is Michel. He lives in Paris since 2010.".to_string(),
                false,
                false,
                false
            )]
        );
    }

    #[test]
    fn tabs_line_breaks_and_text_boxes_are_written_back() {
        let doc = sample();
        let pieces = DOCX.codec.pieces(&doc).unwrap();
        let english: Vec<String> = pieces
            .iter()
            .map(|p| match p.as_str() {
                "Première ligne\ndeuxième ligne\tet une tabulation." => {
                    "First line\nsecond line\tand a tab & <more>.".to_string()
                }
                "Le texte de la zone de texte." => "The text of the text box.".to_string(),
                p => p.to_string(),
            })
            .collect();
        let out = DOCX.codec.rebuild(&doc, &english).unwrap();
        let xml = entry(&out, DOCUMENT);
        assert!(xml.contains(
            "<w:r><w:t xml:space=\"preserve\">First line</w:t><w:br/><w:t xml:space=\"preserve\">\
             second line</w:t><w:tab/><w:t xml:space=\"preserve\">and a tab &amp; &lt;more&gt;.\
             </w:t></w:r>"
        ));
        // Both copies of the text box, DrawingML and VML, are translated alike.
        assert_eq!(xml.matches("The text of the text box.").count(), 2);
        assert!(!xml.contains("zone de texte."));
    }

    /// A footnote reference, comment anchors and the footnote's own mark stay where they were
    /// relative to the text: after it, or before it.
    #[test]
    fn anchors_and_references_stay_in_order() {
        let doc = sample();
        let pieces = DOCX.codec.pieces(&doc).unwrap();
        let english: Vec<String> = pieces.iter().map(|p| shout(p)).collect();
        let out = DOCX.codec.rebuild(&doc, &english).unwrap();
        let xml = entry(&out, DOCUMENT);
        let order = |a: &str, b: &str| xml.find(a).unwrap() < xml.find(b).unwrap();
        assert!(order(
            "L'ANNÉE ÉCOULÉE.",
            "<w:footnoteReference w:id=\"1\"/>"
        ));
        assert!(order("<w:commentRangeStart w:id=\"0\"/>", "DEUX MILLIONS."));
        assert!(order("DEUX MILLIONS.", "<w:commentRangeEnd w:id=\"0\"/>"));
        let notes = entry(&out, "word/footnotes.xml");
        assert!(notes.find("<w:footnoteRef/>").unwrap() < notes.find("CHIFFRES").unwrap());
        // The piece was trimmed; the space after the footnote's mark is put back.
        assert!(notes
            .contains("<w:t xml:space=\"preserve\"> CHIFFRES PROVISOIRES, PUBLIÉS EN MARS.</w:t>"));
    }

    #[test]
    fn the_wrong_number_of_translations_is_an_error() {
        let doc = sample();
        let n = DOCX.codec.pieces(&doc).unwrap().len();
        let e = DOCX.codec.rebuild(&doc, &vec!["x".to_string(); n - 1]);
        assert!(e.unwrap_err().0.contains("translations"));
        let e = DOCX.codec.rebuild(&doc, &vec!["x".to_string(); n + 1]);
        assert!(e.unwrap_err().0.contains("translations"));
    }

    /// Each bad input is refused with its reason, by `source` or by `pieces` and `rebuild`.
    #[test]
    fn bad_inputs_are_refused_with_their_reason() {
        for (name, why) in [
            ("encrypted.docx", "encrypted or password-protected"),
            ("text.docx", "this is a text file"),
            ("pdf.docx", "this is a PDF document"),
        ] {
            let e = DOCX.codec.source(fixture(name)).unwrap_err().to_string();
            assert!(e.contains(why), "{name}: {e}");
        }
        for (name, why) in [
            ("macros.docm", "macro-enabled"),
            ("bomb.docx", "zip bomb"),
            ("doctype.docx", "word/document.xml: XML with a DOCTYPE"),
            ("broken.docx", "word/document.xml: malformed XML"),
            ("nodocument.docx", "without word/document.xml"),
        ] {
            let doc = DOCX.codec.source(fixture(name)).unwrap();
            let e = DOCX.codec.pieces(&doc).unwrap_err().0;
            assert!(e.contains(why), "{name}: {e}");
            let e = DOCX.codec.rebuild(&doc, &[]).unwrap_err().0;
            assert!(e.contains(why), "{name}: {e}");
            assert!(DOCX.codec.plain_text(&doc).is_err());
        }
    }

    /// The fuzz targets' properties on well-formed variations of the fixture's body.
    #[test]
    fn variations_of_the_fixture_keep_the_codec_properties() {
        testing::check_variations(&Docx, &fixture("sample.docx"), DOCUMENT);
    }

    /// Writes the fixture's translation (upper-cased, markers kept; and with the words of the
    /// formatted paragraph reordered) to `$TRANSBRIEF_DOC_OUT/sample.en.docx`, for
    /// `scripts/check-doc-outputs` to open in python-docx or odfpy and LibreOffice.
    #[test]
    #[ignore = "writes a file for scripts/check-doc-outputs"]
    fn write_the_translated_fixture() {
        testing::write_translated_fixture(&DOCX, &sample());
    }

    fn body(xml: &str) -> Source {
        let doc = format!(
            "<w:document xmlns:w=\"{}\"><w:body>{xml}</w:body></w:document>",
            W_NS[0]
        );
        Source::Bytes(package::package_of(&[(DOCUMENT, doc.as_bytes())]))
    }

    /// Runs that differ only in language, proofing or a font hint are one style: no marker.
    #[test]
    fn word_noise_in_run_properties_makes_no_marker() {
        let doc = body(
            "<w:p><w:r><w:rPr><w:lang w:val=\"fr-FR\"/></w:rPr><w:t xml:space=\"preserve\">Le \
             chat </w:t></w:r><w:r><w:rPr><w:noProof/><w:lang w:val=\"en-US\"/></w:rPr>\
             <w:t>dort</w:t></w:r><w:r><w:rPr><w:rFonts w:hint=\"eastAsia\"/></w:rPr><w:t>.</w:t>\
             </w:r><w:r><w:rPr><w:b/><w:lang w:val=\"fr-FR\"/></w:rPr><w:t> Fin</w:t></w:r></w:p>",
        );
        assert_eq!(
            DOCX.codec.pieces(&doc).unwrap(),
            ["Le chat dort. <a>Fin</a>"]
        );
        let out = DOCX
            .codec
            .rebuild(&doc, &["The cat sleeps. <a>End</a>".into()])
            .unwrap();
        let xml = entry(&out, DOCUMENT);
        assert!(
            xml.contains(
                "<w:r><w:rPr><w:lang w:val=\"fr-FR\"/></w:rPr><w:t xml:space=\"preserve\">The cat \
             sleeps. </w:t></w:r><w:r><w:rPr><w:b/><w:lang w:val=\"fr-FR\"/></w:rPr>\
             <w:t xml:space=\"preserve\">End</w:t></w:r>"
            ),
            "{xml}"
        );
    }

    /// Fields, page breaks and runs mixing text with a drawing are kept, untranslated, after the
    /// text; text in a field's result is not a piece.
    #[test]
    fn fields_and_page_breaks_are_kept_after_the_text() {
        let doc = body(
            "<w:p><w:r><w:t xml:space=\"preserve\">Page </w:t></w:r>\
             <w:r><w:fldChar w:fldCharType=\"begin\"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r>\
             <w:r><w:fldChar w:fldCharType=\"separate\"/></w:r><w:r><w:t>1</w:t></w:r>\
             <w:r><w:fldChar w:fldCharType=\"end\"/></w:r><w:r><w:t xml:space=\"preserve\"> sur \
             trois</w:t></w:r><w:r><w:br w:type=\"page\"/></w:r></w:p>",
        );
        assert_eq!(DOCX.codec.pieces(&doc).unwrap(), ["Page  sur trois"]);
        let out = DOCX.codec.rebuild(&doc, &["Page of three".into()]).unwrap();
        let xml = entry(&out, DOCUMENT);
        assert!(
            xml.contains(
                "<w:p><w:r><w:t xml:space=\"preserve\">Page of three</w:t></w:r><w:r><w:fldChar \
             w:fldCharType=\"begin\"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r><w:r>\
             <w:fldChar w:fldCharType=\"separate\"/></w:r><w:r><w:t>1</w:t></w:r><w:r><w:fldChar \
             w:fldCharType=\"end\"/></w:r><w:r><w:br w:type=\"page\"/></w:r></w:p>"
            ),
            "{xml}"
        );
    }

    /// A workbook with macros embedded in a document does not make it a .docm.
    #[test]
    fn only_the_main_part_says_macro_enabled() {
        let types = "<Types><Default Extension=\"xlsm\" \
                     ContentType=\"application/vnd.ms-excel.sheet.macroEnabled.12\"/></Types>";
        let doc = format!(
            "<w:document xmlns:w=\"{}\"><w:body><w:p><w:r><w:t>Oui</w:t></w:r></w:p></w:body>\
             </w:document>",
            W_NS[0]
        );
        let zip = package::package_of(&[
            ("[Content_Types].xml", types.as_bytes()),
            (DOCUMENT, doc.as_bytes()),
        ]);
        assert_eq!(DOCX.codec.pieces(&Source::Bytes(zip)).unwrap(), ["Oui"]);
    }
}
