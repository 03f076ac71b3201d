//! The one table of document formats: which files are documents, what their translation is
//! called, how a document is read (decoded text, or a package's bytes), cut into the pieces a
//! model translates and put back together, and what text a scorer or a brief reads from it.
//! `plan`, `run`, `translate`, `check`, `eval` and `compare` all ask it.
//!
//! Adding a format: a file beside this one that defines the format (a `static` [`Format`] with a
//! type that implements [`TextCodec`] for a text format, or [`Codec`] for a package such as
//! DOCX), declared in `text/mod.rs`, and one line in [`FORMATS`].
//!
//! Not for: decoding bytes into text (`super::read`), carrying inline formatting through the
//! model (`super::inline`), or running a model over the pieces (`crate::pipeline`).

use std::path::Path;

pub use super::docx::DOCX;
pub use super::html::HTML;
pub use super::markdown::MARKDOWN;
pub use super::odt::ODT;
pub use super::plain::PLAIN;
use super::read::{self, Decoded, ReadError};
pub use super::subtitles::{SRT, VTT};

/// A document as its format reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A text format's document, decoded by [`read::decode`].
    Text(Decoded),
    /// A package (DOCX, ODT): the file's bytes.
    Bytes(Vec<u8>),
}

impl Source {
    /// The document's text, for a text format.
    pub fn text(&self) -> Option<&str> {
        match self {
            Source::Text(d) => Some(&d.text),
            Source::Bytes(_) => None,
        }
    }

    /// What an output's fingerprint hashes: the decoded text, or the package's bytes.
    pub fn content(&self) -> &[u8] {
        match self {
            Source::Text(d) => d.text.as_bytes(),
            Source::Bytes(b) => b,
        }
    }

    /// How it was read: a text encoding ("utf-8", "windows-1252"...) or "package".
    pub fn encoding(&self) -> &'static str {
        match self {
            Source::Text(d) => d.encoding,
            Source::Bytes(_) => "package",
        }
    }

    /// A source for text already decoded (stdin, tests).
    pub fn from_text(text: impl Into<String>) -> Self {
        Source::Text(Decoded {
            text: text.into(),
            encoding: "utf-8",
            lossy: false,
        })
    }
}

/// Why a document cannot be cut or rebuilt as its format says: malformed XML, an encrypted
/// package, a part over the size limits... The message names the problem, not the file (the
/// caller adds it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl FormatError {
    pub fn new(msg: impl Into<String>) -> Self {
        FormatError(msg.into())
    }
}

/// How the documents of one format are read, cut and rebuilt. Implementations hold no state:
/// `rebuild` cuts the document again, which is cheap next to translating it.
pub trait Codec: Sync {
    /// Whether documents are text ([`TextCodec`]), rather than packages of bytes.
    fn is_text(&self) -> bool {
        false
    }

    /// The document from the file's bytes: decoded text, or a package after a first look at
    /// its signature.
    fn source(&self, bytes: Vec<u8>) -> Result<Source, ReadError>;

    /// The pieces of the document to translate, in document order. None is blank. Inline
    /// formatting, where the format has it, is carried in markers (`super::inline`).
    fn pieces(&self, doc: &Source) -> Result<Vec<String>, FormatError>;

    /// The translated document: `doc` with its pieces (as [`Codec::pieces`] returns them)
    /// replaced by `translations`, one per piece, in order; everything else kept.
    fn rebuild(&self, doc: &Source, translations: &[String]) -> Result<Vec<u8>, FormatError>;

    /// The document's text as a reader sees it, markup dropped: what scores are computed on.
    fn plain_text(&self, doc: &Source) -> Result<String, FormatError>;

    /// The English a brief is made from, given a translation as [`Codec::rebuild`] wrote it.
    fn brief_text(&self, translation: Vec<u8>) -> Result<String, FormatError> {
        let doc = self
            .source(translation)
            .map_err(|e| FormatError::new(e.to_string()))?;
        self.plain_text(&doc)
    }
}

/// A format whose documents are text: decoded by [`read::decode`] (encoding detected, line
/// endings normalised), cut and rebuilt as strings. Every `TextCodec` is a [`Codec`].
pub trait TextCodec: Sync {
    /// The pieces of `text` to translate, in document order. None is blank.
    fn pieces(&self, text: &str) -> Result<Vec<String>, FormatError>;

    /// The document with its pieces replaced by `translations`, one per piece, in order.
    fn rebuild(&self, text: &str, translations: &[String]) -> Result<String, FormatError>;

    /// The document's text as a reader sees it, markup dropped.
    fn plain_text(&self, text: &str) -> Result<String, FormatError>;

    /// The English a brief is made from, given a translation as `rebuild` wrote it: by default
    /// the translation itself (plain text and Markdown read well as they are).
    fn brief_text(&self, translation: &str) -> Result<String, FormatError> {
        Ok(translation.to_string())
    }
}

fn text_of(doc: &Source) -> Result<&str, FormatError> {
    doc.text()
        .ok_or_else(|| FormatError::new("a text format was given a package's bytes"))
}

impl<T: TextCodec> Codec for T {
    fn is_text(&self) -> bool {
        true
    }

    fn source(&self, bytes: Vec<u8>) -> Result<Source, ReadError> {
        read::decode(&bytes).map(Source::Text)
    }

    fn pieces(&self, doc: &Source) -> Result<Vec<String>, FormatError> {
        TextCodec::pieces(self, text_of(doc)?)
    }

    fn rebuild(&self, doc: &Source, translations: &[String]) -> Result<Vec<u8>, FormatError> {
        TextCodec::rebuild(self, text_of(doc)?, translations).map(String::into_bytes)
    }

    fn plain_text(&self, doc: &Source) -> Result<String, FormatError> {
        TextCodec::plain_text(self, text_of(doc)?)
    }

    fn brief_text(&self, translation: Vec<u8>) -> Result<String, FormatError> {
        let text = String::from_utf8(translation)
            .map_err(|_| FormatError::new("the translation is not UTF-8"))?;
        TextCodec::brief_text(self, &text)
    }
}

/// A document format.
pub struct Format {
    /// Its name, for messages.
    pub name: &'static str,
    /// Its name in output fingerprints (`.transbrief/` records): changing it makes every
    /// output of this format stale.
    pub fingerprint: &'static str,
    /// File extensions, lowercase, without the dot.
    pub extensions: &'static [&'static str],
    /// The extension of the translation: `name.fr.EXT` gives `name.en.{output_extension}`.
    pub output_extension: &'static str,
    pub codec: &'static dyn Codec,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Format {}

/// Every format. [`PLAIN`] is also what a file of any other extension, named on the command line
/// or taken by `--include`, is read as. One line per format.
pub static FORMATS: &[&Format] = &[&PLAIN, &MARKDOWN, &HTML, &SRT, &VTT, &DOCX, &ODT];

/// The name of every brief: `name.fr.EXT` gives `name.brief.en.md`, whatever the format.
pub const BRIEF_SUFFIX: &str = ".brief.en.md";

impl Format {
    /// Reads one document of this format (`read::read_bytes`'s checks of kind and size, then
    /// [`Codec::source`]).
    pub fn read(&self, path: &Path, max_bytes: u64) -> Result<Source, ReadError> {
        self.codec.source(read::read_bytes(path, max_bytes)?)
    }

    /// The format of files with extension `ext` (case-insensitive), if any.
    pub fn by_extension(ext: &str) -> Option<&'static Format> {
        let ext = ext.to_ascii_lowercase();
        FORMATS
            .iter()
            .copied()
            .find(|f| f.extensions.contains(&ext.as_str()))
    }

    /// The format of a path from its extension; `None` for an unknown extension or none.
    pub fn of_path(path: &Path) -> Option<&'static Format> {
        Self::by_extension(path.extension()?.to_str()?)
    }

    /// The format of a document, [`PLAIN`] for an unknown extension.
    pub fn of_document(path: &Path) -> &'static Format {
        Self::of_path(path).unwrap_or(&PLAIN)
    }

    /// `*.EXT` for every extension of every format: the documents a folder walk takes by default.
    pub fn default_globs() -> Vec<String> {
        FORMATS
            .iter()
            .flat_map(|f| f.extensions.iter().map(|e| format!("*.{e}")))
            .collect()
    }

    /// The translation's file name for a document whose name, less its extension and `.fr`,
    /// is `base`.
    pub fn translation_name(&self, base: &str) -> String {
        format!("{base}.en.{}", self.output_extension)
    }

    /// The base name of a translation file (`X.en.txt` gives `X`) and its format, if
    /// `file_name` is named as one.
    pub fn translation_base(file_name: &str) -> Option<(&str, &'static Format)> {
        FORMATS.iter().copied().find_map(|f| {
            let stem = file_name.strip_suffix(f.output_extension)?;
            Some((stem.strip_suffix(".en.")?, f))
        })
    }

    /// Reference names for a document with base name `base`, in order of preference:
    /// `X.ref.en.EXT` for each format's output extension, then `X.ref.txt`.
    pub fn reference_names(base: &str) -> Vec<String> {
        FORMATS
            .iter()
            .map(|f| format!("{base}.ref.en.{}", f.output_extension))
            .chain(std::iter::once(format!("{base}.ref.txt")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        let of = |p: &str| Format::of_path(Path::new(p)).map(|f| f.name);
        assert_eq!(of("a/b.txt"), Some("text"));
        assert_eq!(of("NOTES.TXT"), Some("text"));
        assert_eq!(of("x.md"), Some("markdown"));
        assert_eq!(of("x.Markdown"), Some("markdown"));
        assert_eq!(of("page.HTM"), Some("html"));
        assert_eq!(of("film.srt"), Some("srt"));
        assert_eq!(of("film.vtt"), Some("vtt"));
        assert_eq!(of("x.pdf"), None);
        assert_eq!(of("README"), None);
        assert_eq!(of(".txt"), None, "a dot file has no extension");
        assert_eq!(of("archive.txt.gz"), None);
        assert_eq!(Format::of_document(Path::new("x.pdf")), &PLAIN);
    }

    #[test]
    fn names_of_outputs_and_references() {
        assert_eq!(PLAIN.translation_name("a"), "a.en.txt");
        assert_eq!(MARKDOWN.translation_name("a"), "a.en.md");
        assert_eq!(
            Format::translation_base("a.en.md").map(|(b, f)| (b, f.name)),
            Some(("a", "markdown"))
        );
        assert_eq!(Format::translation_base("a.fr.txt"), None);
        assert_eq!(
            Format::reference_names("a"),
            [
                "a.ref.en.txt",
                "a.ref.en.md",
                "a.ref.en.html",
                "a.ref.en.srt",
                "a.ref.en.vtt",
                "a.ref.en.docx",
                "a.ref.en.odt",
                "a.ref.txt"
            ]
        );
        assert_eq!(
            Format::default_globs(),
            [
                "*.txt",
                "*.md",
                "*.markdown",
                "*.html",
                "*.htm",
                "*.srt",
                "*.vtt",
                "*.docx",
                "*.docm",
                "*.odt"
            ]
        );
        assert_eq!(DOCX.translation_name("a"), "a.en.docx");
        assert_eq!(ODT.translation_name("a"), "a.en.odt");
        assert_eq!(Format::of_path(Path::new("a.fr.docx")), Some(&DOCX));
        assert_eq!(Format::of_path(Path::new("a.fr.DOCM")), Some(&DOCX));
        assert_eq!(
            Format::translation_base("a.en.odt").map(|(b, f)| (b, f.name)),
            Some(("a", "odt"))
        );
    }

    /// Every codec rebuilds a document from its own pieces: Markdown byte for byte, plain text
    /// with its paragraphs normalised to one blank line between them.
    #[test]
    fn pieces_translated_as_themselves_rebuild_the_document() {
        let md = "# Titre\n\nUn paragraphe.\n\n```\ncode\n```\n\n- point\n";
        let md = Source::from_text(md);
        let pieces = MARKDOWN.codec.pieces(&md).unwrap();
        assert_eq!(pieces, ["Titre", "Un paragraphe.", "point"]);
        assert_eq!(MARKDOWN.codec.rebuild(&md, &pieces).unwrap(), md.content());

        let txt = "Un.\n\n\nDeux\ntrois.\n";
        let txt = Source::from_text(txt);
        let pieces = PLAIN.codec.pieces(&txt).unwrap();
        assert_eq!(pieces, ["Un.", "Deux\ntrois."]);
        assert_eq!(
            PLAIN.codec.rebuild(&txt, &pieces).unwrap(),
            b"Un.\n\nDeux\ntrois.\n"
        );
    }
}
