//! Plain text: paragraphs separated by blank lines, each translated as one piece.
//!
//! Not for: how paragraphs are found (`super::segment::paragraphs`).

use super::format::{Codec, Format};
use super::segment;

/// `.txt`, and any file whose extension no other format claims.
pub static PLAIN: Format = Format {
    name: "text",
    fingerprint: "Plain",
    extensions: &["txt"],
    output_extension: "txt",
    codec: &Paragraphs,
};

/// Plain text: paragraphs separated by blank lines ([`segment::paragraphs`]); the translation
/// has one paragraph per paragraph, one blank line between them, and ends with a line break.
struct Paragraphs;

impl Codec for Paragraphs {
    fn pieces<'a>(&self, text: &'a str) -> Vec<&'a str> {
        segment::paragraphs(text)
            .into_iter()
            .map(|s| &text[s])
            .collect()
    }

    fn rebuild(&self, _text: &str, translations: &[String]) -> String {
        let mut out = translations.join("\n\n");
        out.push('\n');
        out
    }

    fn plain_text(&self, text: &str) -> String {
        text.to_string()
    }
}
