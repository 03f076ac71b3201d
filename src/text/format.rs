//! The one table of document formats: which files are documents, what their translation is
//! called, how a document is cut into the pieces a model translates and put back together, and
//! what text a scorer reads from it. `plan`, `translate`, `eval` and `compare` all ask it.
//!
//! Adding a format: a file beside this one that defines the format (a `static` [`Format`] with a
//! type that implements [`Codec`]), declared in `text/mod.rs`, and one line in [`FORMATS`].
//!
//! Not for: reading bytes into text (`super::read`), or running a model over the pieces
//! (`crate::pipeline`).

use std::path::Path;

pub use super::markdown::MARKDOWN;
pub use super::plain::PLAIN;

/// How the documents of one format are cut and rebuilt. Implementations hold no state: `rebuild`
/// cuts the text again, which is cheap next to translating it.
pub trait Codec: Sync {
    /// The pieces of `text` to translate, in document order. None is blank.
    fn pieces<'a>(&self, text: &'a str) -> Vec<&'a str>;

    /// The document with its pieces (as [`Codec::pieces`] returns them) replaced by
    /// `translations`, one per piece, in order.
    fn rebuild(&self, text: &str, translations: &[String]) -> String;

    /// The document's text as a reader sees it, markup dropped: what scores are computed on.
    fn plain_text(&self, text: &str) -> String;
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
pub static FORMATS: &[&Format] = &[&PLAIN, &MARKDOWN];

/// The name of every brief: `name.fr.EXT` gives `name.brief.en.md`, whatever the format.
pub const BRIEF_SUFFIX: &str = ".brief.en.md";

impl Format {
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
            ["a.ref.en.txt", "a.ref.en.md", "a.ref.txt"]
        );
        assert_eq!(Format::default_globs(), ["*.txt", "*.md", "*.markdown"]);
    }

    /// Every codec rebuilds a document from its own pieces: Markdown byte for byte, plain text
    /// with its paragraphs normalised to one blank line between them.
    #[test]
    fn pieces_translated_as_themselves_rebuild_the_document() {
        let md = "# Titre\n\nUn paragraphe.\n\n```\ncode\n```\n\n- point\n";
        let pieces: Vec<String> = MARKDOWN
            .codec
            .pieces(md)
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(pieces, ["Titre", "Un paragraphe.", "point"]);
        assert_eq!(MARKDOWN.codec.rebuild(md, &pieces), md);

        let txt = "Un.\n\n\nDeux\ntrois.\n";
        let pieces: Vec<String> = PLAIN
            .codec
            .pieces(txt)
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(pieces, ["Un.", "Deux\ntrois."]);
        assert_eq!(PLAIN.codec.rebuild(txt, &pieces), "Un.\n\nDeux\ntrois.\n");
    }
}
