//! Turns the bytes of a document into text: picks the encoding (UTF-8 with or without BOM,
//! UTF-16 with or without BOM, windows-1252 as the fallback for legacy French files), refuses
//! binary files with a reason a user can act on, and normalizes line endings to `\n`.
//!
//! Not for: deciding *which* files to read (that is the pipeline's walk and [`super::format`]),
//! nor for splitting the text (see [`super::segment`]).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// Largest document read by default: 8 MiB. That is about 1.3 million French words, several
/// novels, which would take days to translate on a CPU; a bigger ".txt" is almost always a log or
/// a data dump. It also bounds memory: decoding UTF-16 or windows-1252 can double the size, and
/// every worker holds its document, its segments and its output at once.
pub const DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Share of control characters (other than tab, line feed, carriage return, form feed) above
/// which decoded text is taken for binary data: 1 in 20. Real documents have none or a stray one.
const MAX_CONTROL_SHARE: usize = 20;

/// How many leading bytes are sampled to recognize UTF-16 without a BOM.
const UTF16_SAMPLE: usize = 4096;

/// A document's text and how it was decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text, with `\r\n` and lone `\r` turned into `\n`, and without any BOM.
    pub text: String,
    /// "utf-8", "utf-8-bom", "utf-16le", "utf-16be" or "windows-1252".
    pub encoding: &'static str,
    /// Some bytes were not valid in the chosen encoding and were replaced with U+FFFD.
    pub lossy: bool,
}

/// Why a document cannot be used as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("binary file ({reason}); only text documents are translated")]
    Binary { reason: String },
    #[error("empty file: nothing to translate")]
    Empty,
    #[error("the file holds only whitespace: nothing to translate")]
    WhitespaceOnly,
    /// `size` is the size on disk, or for a file that grew while being read, the bytes read.
    #[error("the file is {size} bytes, over the limit of {limit} bytes for one document; split it, or raise the limit (`transbrief run --max-bytes`)")]
    TooLarge { size: u64, limit: u64 },
    #[error("not a regular file ({kind}); only regular files are read")]
    NotAFile { kind: &'static str },
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// A package format's file (DOCX, ODT) that is not one, or cannot be opened (encrypted).
    #[error("{0}")]
    Package(String),
}

/// Decodes a whole document, deciding in this order:
/// 1. no bytes: [`ReadError::Empty`];
/// 2. a known binary signature (PNG, JPEG, GIF, PDF, ZIP, GGUF, gzip, ELF...): binary;
/// 3. a BOM: UTF-8, UTF-16LE or UTF-16BE, BOM removed;
/// 4. zero bytes piling up at odd (or even) offsets only: UTF-16LE (or BE) without BOM;
/// 5. any other NUL byte: binary, with its offset;
/// 6. valid UTF-8: UTF-8; mostly valid UTF-8 (more valid non-ASCII characters than invalid
///    sequences): UTF-8 with U+FFFD replacements, `lossy`; otherwise windows-1252, which maps
///    every byte;
/// 7. then `\r\n` and lone `\r` become `\n`; more than 1 in 20 characters being control
///    characters (or U+FFFD after a lossy decode) means binary; nothing but whitespace is
///    [`ReadError::WhitespaceOnly`], and nothing at all (a lone BOM) [`ReadError::Empty`].
pub fn decode(bytes: &[u8]) -> Result<Decoded, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    if let Some(what) = binary_signature(bytes) {
        return Err(ReadError::Binary {
            reason: format!("{what} signature"),
        });
    }
    let (text, encoding, lossy) = decode_raw(bytes)?;
    let mut text = normalize_newlines(text);
    // A doubled BOM (files concatenated, or re-saved by a tool that adds one) leaves U+FEFF at
    // the start once the first is removed: it is no text either.
    if text.starts_with('\u{feff}') {
        text = text.trim_start_matches('\u{feff}').to_string();
    }
    if text.is_empty() {
        return Err(ReadError::Empty);
    }
    check_controls(&text, lossy)?;
    if text.trim().is_empty() {
        return Err(ReadError::WhitespaceOnly);
    }
    Ok(Decoded {
        text,
        encoding,
        lossy,
    })
}

/// Reads one document's bytes, refusing anything that is not a regular file (a directory, a FIFO
/// that would block forever, a device that never ends), anything over `max_bytes`, both checked
/// from the file's metadata *before* reading, and an empty file. Symbolic links to regular files
/// are read. A text format then decodes them ([`decode`], through `format::Format::read`); a
/// package keeps them as they are.
pub fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let meta = fs::metadata(path)?;
    check_regular(&meta)?;
    if meta.len() > max_bytes {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit: max_bytes,
        });
    }
    let file = File::open(path)?;
    // Checked again on the open handle: the path may have been replaced in between.
    let meta = file.metadata()?;
    check_regular(&meta)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(max_bytes)).unwrap_or(0));
    // A file growing while we read must not get past the limit either.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > max_bytes {
        return Err(ReadError::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(bytes)
}

fn check_regular(meta: &fs::Metadata) -> Result<(), ReadError> {
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let kind = if ft.is_dir() {
        "a directory"
    } else {
        special_kind(&ft)
    };
    Err(ReadError::NotAFile { kind })
}

#[cfg(unix)]
fn special_kind(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a named pipe"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_ft: &fs::FileType) -> &'static str {
    "a special file"
}

/// Names the format of a file that starts with a well-known binary signature.
fn binary_signature(b: &[u8]) -> Option<&'static str> {
    const PREFIXES: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xFF\xD8\xFF", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"%PDF-", "PDF document"),
        (b"PK\x03\x04", "ZIP archive (or .docx/.odt/.epub)"),
        (b"PK\x05\x06", "ZIP archive"),
        (b"\x1F\x8B", "gzip archive"),
        (b"\xFD7zXZ\x00", "xz archive"),
        (b"7z\xBC\xAF\x27\x1C", "7-Zip archive"),
        (b"Rar!\x1A\x07", "RAR archive"),
        (b"\x28\xB5\x2F\xFD", "zstd archive"),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "old Microsoft Office document",
        ),
        (b"SQLite format 3\x00", "SQLite database"),
        (b"\x7FELF", "ELF executable"),
        (b"OggS", "Ogg audio/video"),
        (b"II*\x00", "TIFF image"),
        (b"MM\x00*", "TIFF image"),
    ];
    if let Some((_, name)) = PREFIXES.iter().find(|(magic, _)| b.starts_with(magic)) {
        return Some(name);
    }
    // Signatures that are ordinary words, so they need more than their first bytes to match.
    if b.starts_with(b"GGUF") && b.get(5..8) == Some(&[0, 0, 0][..]) {
        return Some("GGUF model");
    }
    if b.starts_with(b"RIFF") {
        if let Some(kind) = b.get(8..12) {
            match kind {
                b"WEBP" => return Some("WebP image"),
                b"WAVE" => return Some("WAV audio"),
                b"AVI " => return Some("AVI video"),
                _ => {}
            }
        }
    }
    if b.get(4..8) == Some(&b"ftyp"[..]) {
        return Some("MP4/QuickTime media");
    }
    None
}

/// Picks the encoding and decodes; no newline handling yet.
fn decode_raw(bytes: &[u8]) -> Result<(String, &'static str, bool), ReadError> {
    use encoding_rs::{UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

    let with = |enc: &'static encoding_rs::Encoding, rest: &[u8], name| {
        let (text, lossy) = enc.decode_without_bom_handling(rest);
        (text.into_owned(), name, lossy)
    };
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(with(UTF_8, rest, "utf-8-bom"));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return Ok(with(UTF_16LE, rest, "utf-16le"));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return Ok(with(UTF_16BE, rest, "utf-16be"));
    }
    match utf16_without_bom(bytes) {
        Some(Utf16::Le) => return Ok(with(UTF_16LE, bytes, "utf-16le")),
        Some(Utf16::Be) => return Ok(with(UTF_16BE, bytes, "utf-16be")),
        None => {}
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(ReadError::Binary {
            reason: format!("NUL byte at offset {at}"),
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_owned(), "utf-8", false));
    }
    // Not valid UTF-8. A UTF-8 file with a few damaged bytes still has many valid multi-byte
    // characters (é, à, ’); a windows-1252 file almost never forms one by chance.
    let (mut multibyte, mut invalid) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += usize::from(!chunk.invalid().is_empty());
    }
    if multibyte > invalid {
        return Ok(with(UTF_8, bytes, "utf-8"));
    }
    Ok(with(WINDOWS_1252, bytes, "windows-1252"))
}

enum Utf16 {
    Le,
    Be,
}

/// Recognizes UTF-16 without a BOM by its zero bytes: text in Latin scripts (French included,
/// accents are below U+0100) has a zero high byte in nearly every code unit, so zeros pile up at
/// odd offsets (little-endian) or even offsets (big-endian) and almost never at the other.
fn utf16_without_bom(bytes: &[u8]) -> Option<Utf16> {
    let sample = &bytes[..bytes.len().min(UTF16_SAMPLE)];
    let units = sample.len() / 2;
    if units == 0 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    // At least half the units look like Latin text and at most 1 in 20 has the other pattern.
    let mostly = |n: usize| n * 2 >= units;
    let rarely = |n: usize| n * 20 <= units;
    if mostly(odd) && rarely(even) {
        Some(Utf16::Le)
    } else if mostly(even) && rarely(odd) {
        Some(Utf16::Be)
    } else {
        None
    }
}

fn normalize_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Refuses text with a high share of control characters (or of replacement characters after a
/// lossy decode): that is binary data that happened to get through the earlier checks.
fn check_controls(text: &str, lossy: bool) -> Result<(), ReadError> {
    let (mut total, mut odd) = (0usize, 0usize);
    for c in text.chars() {
        total += 1;
        let control = c.is_control() && !matches!(c, '\n' | '\t' | '\x0C');
        if control || (lossy && c == char::REPLACEMENT_CHARACTER) {
            odd += 1;
        }
    }
    if odd * MAX_CONTROL_SHARE > total {
        return Err(ReadError::Binary {
            reason: format!("{odd} of {total} characters are control or undecodable characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn doubled_boms_are_all_removed() {
        // Found by the fuzz driver: UTF-16BE BOM twice.
        let d = decode(b"\xFE\xFF\xFE\xFF\x00A\x00.").unwrap();
        assert_eq!((d.text.as_str(), d.encoding), ("A.", "utf-16be"));
        let d = decode("\u{feff}\u{feff}Été.".as_bytes()).unwrap();
        assert_eq!(d.text, "Été.");
        assert!(matches!(
            decode(b"\xEF\xBB\xBF\xEF\xBB\xBF"),
            Err(ReadError::Empty)
        ));
    }

    use super::*;

    /// What a text format's `Format::read` does.
    fn read_document(path: &Path, max_bytes: u64) -> Result<Decoded, ReadError> {
        decode(&read_bytes(path, max_bytes)?)
    }
    use crate::text::testgen::for_each_case;

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    }

    fn binary_reason(bytes: &[u8]) -> String {
        match decode(bytes) {
            Err(ReadError::Binary { reason }) => reason,
            other => panic!("expected a binary refusal, got {other:?}"),
        }
    }

    const FR: &str = "« L’été à Noël », dit-il. Œuvre complète, 3,5 €.\n";

    #[test]
    fn plain_utf8() {
        let d = decode(FR.as_bytes()).unwrap();
        assert_eq!((d.text.as_str(), d.encoding, d.lossy), (FR, "utf-8", false));
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(FR.as_bytes());
        let d = decode(&bytes).unwrap();
        assert_eq!((d.text.as_str(), d.encoding), (FR, "utf-8-bom"));
    }

    #[test]
    fn utf16_with_bom_both_orders() {
        for (bom, be, name) in [
            (b"\xFF\xFE", false, "utf-16le"),
            (b"\xFE\xFF", true, "utf-16be"),
        ] {
            let mut bytes = bom.to_vec();
            bytes.extend(utf16(FR, be));
            let d = decode(&bytes).unwrap();
            assert_eq!((d.text.as_str(), d.encoding, d.lossy), (FR, name, false));
        }
    }

    #[test]
    fn utf16_without_bom_is_text_not_binary() {
        for (be, name) in [(false, "utf-16le"), (true, "utf-16be")] {
            let d = decode(&utf16(FR, be)).unwrap();
            assert_eq!((d.text.as_str(), d.encoding), (FR, name));
        }
    }

    #[test]
    fn utf16_odd_length_is_lossy() {
        let mut bytes = b"\xFF\xFE".to_vec();
        bytes.extend(utf16("Bonjour tout le monde, ceci est un texte.", false));
        bytes.push(b'x');
        let d = decode(&bytes).unwrap();
        assert!(d.lossy);
        assert_eq!(d.text, "Bonjour tout le monde, ceci est un texte.\u{FFFD}");
    }

    #[test]
    fn windows_1252_fallback() {
        // "Là, « œuvre » coûte 5 €" in windows-1252: à=E0 «=AB œ=9C »=BB û=FB €=80.
        let bytes = b"L\xE0, \xAB \x9Cuvre \xBB co\xFBte 5 \x80 \x93ok\x94";
        let d = decode(bytes).unwrap();
        assert_eq!(d.encoding, "windows-1252");
        assert_eq!(d.text, "Là, « œuvre » coûte 5 € “ok”");
        assert!(!d.lossy);
    }

    #[test]
    fn mostly_utf8_with_a_bad_byte_stays_utf8() {
        let mut bytes = "Été, très élevé, déjà ".as_bytes().to_vec();
        bytes.push(0xE9); // a stray latin-1 "é"
        bytes.extend_from_slice(" fin".as_bytes());
        let d = decode(&bytes).unwrap();
        assert_eq!(d.encoding, "utf-8");
        assert!(d.lossy);
        assert_eq!(d.text, "Été, très élevé, déjà \u{FFFD} fin");
    }

    #[test]
    fn newlines_are_normalized() {
        let d = decode(b"un\r\ndeux\rtrois\n\r\nquatre").unwrap();
        assert_eq!(d.text, "un\ndeux\ntrois\n\nquatre");
        let mut bytes = b"\xFF\xFE".to_vec();
        bytes.extend(utf16("a\r\nb\rc", false));
        assert_eq!(decode(&bytes).unwrap().text, "a\nb\nc");
    }

    #[test]
    fn empty_and_whitespace_only_are_distinct() {
        assert!(matches!(decode(b""), Err(ReadError::Empty)));
        assert!(matches!(decode(b"\xEF\xBB\xBF"), Err(ReadError::Empty)));
        assert!(matches!(decode(b"\xFF\xFE"), Err(ReadError::Empty)));
        assert!(matches!(
            decode(b" \n\t\r\n  "),
            Err(ReadError::WhitespaceOnly)
        ));
        assert!(matches!(
            decode("\u{A0}\u{202F}\n".as_bytes()),
            Err(ReadError::WhitespaceOnly)
        ));
    }

    #[test]
    fn nul_bytes_mean_binary_with_offset() {
        let mut bytes = b"Bonjour le monde, ceci est un texte assez long.".to_vec();
        bytes[12] = 0;
        assert_eq!(binary_reason(&bytes), "NUL byte at offset 12");
        let msg = decode(&bytes).unwrap_err().to_string();
        assert_eq!(
            msg,
            "binary file (NUL byte at offset 12); only text documents are translated"
        );
    }

    #[test]
    fn renamed_images_and_archives_are_refused_by_signature() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG image"),
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", "JPEG image"),
            (b"GIF89a\x01\x00", "GIF image"),
            (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", "PDF document"),
            (b"PK\x03\x04\x14\x00", "ZIP archive (or .docx/.odt/.epub)"),
            (b"GGUF\x03\x00\x00\x00\x10", "GGUF model"),
            (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WebP image"),
        ];
        for (bytes, name) in cases {
            assert_eq!(binary_reason(bytes), format!("{name} signature"));
        }
        // The words alone are not signatures.
        for text in [
            "GGUF est un format de fichier.",
            "RIFF, un mot anglais.",
            "PK, pas de quoi.",
        ] {
            assert_eq!(decode(text.as_bytes()).unwrap().text, text);
        }
    }

    #[test]
    fn control_characters_mean_binary() {
        let bytes: Vec<u8> = (1u8..32).cycle().take(300).collect();
        assert!(binary_reason(&bytes).contains("control"));
        // One stray control character in real text is tolerated.
        let d = decode(b"Un texte normal avec un \x1b caract\xE8re bizarre.").unwrap();
        assert_eq!(d.encoding, "windows-1252");
    }

    #[test]
    fn high_bytes_without_controls_decode_as_windows_1252() {
        let bytes: Vec<u8> = (0x80u8..=0xFF).collect();
        let d = decode(&bytes).unwrap();
        assert_eq!(d.encoding, "windows-1252");
        assert_eq!(d.text.chars().count(), 128);
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly() {
        for_each_case(
            3000,
            |g| g.bytes(300),
            |bytes| {
                if let Ok(d) = decode(bytes) {
                    assert!(!d.text.contains('\r'));
                    assert!(!d.text.trim().is_empty());
                }
            },
        );
    }

    #[test]
    fn read_document_checks_size_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("doc.txt");
        fs::write(&file, FR).unwrap();
        assert_eq!(read_document(&file, DEFAULT_MAX_BYTES).unwrap().text, FR);

        let limit = FR.len() as u64 - 1;
        match read_document(&file, limit) {
            Err(ReadError::TooLarge { size, limit: l }) => {
                assert_eq!((size, l), (FR.len() as u64, limit))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(matches!(
            read_document(dir.path(), DEFAULT_MAX_BYTES),
            Err(ReadError::NotAFile {
                kind: "a directory"
            })
        ));
        assert!(matches!(
            read_document(&dir.path().join("missing.txt"), DEFAULT_MAX_BYTES),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }

    #[cfg(unix)]
    #[test]
    fn read_document_refuses_devices_without_reading_them() {
        // /dev/zero never ends: reading it would hang or exhaust memory.
        let dev = Path::new("/dev/zero");
        if dev.exists() {
            assert!(matches!(
                read_document(dev, DEFAULT_MAX_BYTES),
                Err(ReadError::NotAFile { kind: "a device" })
            ));
        }
    }
}
