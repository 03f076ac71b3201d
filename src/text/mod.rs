//! Plain-text plumbing between a file on disk and a model: decoding bytes into text, splitting
//! text into paragraphs and French sentences, fitting it into a model's input budget, and cutting
//! Markdown into translatable prose and structure that must be kept as is.
//!
//! Every splitter here returns byte ranges into the caller's string rather than copies, so the
//! caller can always put a document back together around translated pieces.
//!
//! Not for: tokenizing (that is the model's tokenizer, passed in as a counting closure), running
//! models, or writing outputs (that is `pipeline`).

pub mod chunk;
pub mod markdown;
pub mod read;
pub mod segment;
#[cfg(test)]
mod testgen;

use std::path::Path;

/// How a document's text is laid out, as told by its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Paragraphs separated by blank lines.
    Plain,
    /// CommonMark / GitHub Markdown: see [`markdown::blocks`].
    Markdown,
}

/// The format of a document from its extension (case-insensitive): `.txt` is [`Format::Plain`],
/// `.md` and `.markdown` are [`Format::Markdown`]; anything else (or no extension) is `None`,
/// meaning "not a document we translate".
pub fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "txt" => Some(Format::Plain),
        "md" | "markdown" => Some(Format::Markdown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(format_of(Path::new("a/b.txt")), Some(Format::Plain));
        assert_eq!(format_of(Path::new("NOTES.TXT")), Some(Format::Plain));
        assert_eq!(format_of(Path::new("x.md")), Some(Format::Markdown));
        assert_eq!(format_of(Path::new("x.Markdown")), Some(Format::Markdown));
        assert_eq!(format_of(Path::new("x.pdf")), None);
        assert_eq!(format_of(Path::new("README")), None);
        assert_eq!(
            format_of(Path::new(".txt")),
            None,
            "a dot file has no extension"
        );
        assert_eq!(format_of(Path::new("archive.txt.gz")), None);
    }
}
