//! Plain text: paragraphs separated by blank lines, each translated as one piece.
//!
//! Not for: how paragraphs are found (`super::segment::paragraphs`).

use super::format::{Format, FormatError, TextCodec};
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

impl TextCodec for Paragraphs {
    fn pieces(&self, text: &str) -> Result<Vec<String>, FormatError> {
        Ok(segment::paragraphs(text)
            .into_iter()
            .map(|s| text[s].to_string())
            .collect())
    }

    fn rebuild(&self, _text: &str, translations: &[String]) -> Result<String, FormatError> {
        let mut out = translations.join("\n\n");
        out.push('\n');
        Ok(out)
    }

    fn plain_text(&self, text: &str) -> Result<String, FormatError> {
        Ok(text.to_string())
    }
}
