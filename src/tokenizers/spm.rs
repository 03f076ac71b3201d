//! SentencePiece model files (`*.spm`, `*.model`) read without Python: a small protobuf reader
//! for the parts we need (pieces with scores and types, the normalizer spec with its precompiled
//! character map), and the equivalent `tokenizers` Unigram tokenizer built from them.
//!
//! Not for: training, BPE-type spm models, or mapping pieces to a model's ids (Marian does that
//! through its `vocab.json`, see `super::marian`).

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{Precompiled, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{NormalizerWrapper, Tokenizer};

use crate::{Error, Result};

/// What a piece is for (sentencepiece's `SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// The parts of a sentencepiece `ModelProto` that tokenization needs.
#[derive(Debug, Clone, Default)]
pub struct SpmModel {
    pub pieces: Vec<Piece>,
    /// Normalization rule name, e.g. `nmt_nfkc`.
    pub normalizer_name: String,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
}

/// A cursor over protobuf wire-format bytes.
struct Wire<'a> {
    bytes: &'a [u8],
}

enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .bytes
                .split_first()
                .ok_or_else(|| Error::Tokenizer("truncated sentencepiece model".into()))?;
            self.bytes = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(Error::Tokenizer("bad varint in sentencepiece model".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(Error::Tokenizer("truncated sentencepiece model".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Varint(0)
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| Error::Tokenizer("bad length".into()))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => {
                return Err(Error::Tokenizer(format!(
                    "unsupported protobuf wire type {w} in sentencepiece model"
                )))
            }
        };
        Ok(Some((key >> 3, value)))
    }
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::Tokenizer("sentencepiece piece is not UTF-8".into()))
}

fn parse_piece(bytes: &[u8]) -> Result<Piece> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut wire = Wire { bytes };
    while let Some((field, value)) = wire.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => piece.piece = utf8(b)?,
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(t)) => {
                piece.kind = match t {
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    _ => PieceType::Normal,
                }
            }
            _ => {}
        }
    }
    Ok(piece)
}

impl SpmModel {
    /// Parses a serialized `ModelProto`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut model = SpmModel {
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            ..Default::default()
        };
        let mut wire = Wire { bytes };
        while let Some((field, value)) = wire.field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => model.pieces.push(parse_piece(b)?),
                (3, Value::Bytes(b)) => {
                    let mut spec = Wire { bytes: b };
                    while let Some((f, v)) = spec.field()? {
                        match (f, v) {
                            (1, Value::Bytes(b)) => model.normalizer_name = utf8(b)?,
                            (2, Value::Bytes(b)) => model.precompiled_charsmap = b.to_vec(),
                            (3, Value::Varint(v)) => model.add_dummy_prefix = v != 0,
                            (4, Value::Varint(v)) => model.remove_extra_whitespaces = v != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err(Error::Tokenizer("sentencepiece model has no pieces".into()));
        }
        Ok(model)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::input(path, e))?;
        Self::parse(&bytes).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// A `tokenizers` tokenizer that splits text into this model's pieces as sentencepiece does:
    /// the precompiled normalization, whitespace cleanup, a `▁` before each word, and Unigram
    /// Viterbi over the pieces' scores. Control pieces never match text, so they are left out;
    /// token *strings* are meaningful, token ids are not (they index the pieces kept).
    pub fn unigram_tokenizer(&self) -> Result<Tokenizer> {
        let tok_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Tokenizer(e.to_string());
        let kept: Vec<&Piece> = self
            .pieces
            .iter()
            .filter(|p| !matches!(p.kind, PieceType::Control | PieceType::Unused))
            .collect();
        let unk = kept.iter().position(|p| p.kind == PieceType::Unknown);
        let vocab = kept
            .iter()
            .map(|p| (p.piece.clone(), f64::from(p.score)))
            .collect();
        let model = Unigram::from(vocab, unk, false).map_err(tok_err)?;
        let mut tokenizer = Tokenizer::new(model);
        let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
        if !self.precompiled_charsmap.is_empty() {
            let precompiled = Precompiled::from(&self.precompiled_charsmap)
                .map_err(|e| Error::Tokenizer(format!("precompiled charsmap: {e}")))?;
            normalizers.push(precompiled.into());
        }
        if self.remove_extra_whitespaces {
            normalizers.push(Strip::new(true, true).into());
            normalizers.push(
                Replace::new(
                    tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
                    " ",
                )
                .map_err(tok_err)?
                .into(),
            );
        }
        tokenizer.with_normalizer(Some(Sequence::new(normalizers)));
        let prepend = if self.add_dummy_prefix {
            PrependScheme::Always
        } else {
            PrependScheme::Never
        };
        tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', prepend, true)));
        Ok(tokenizer)
    }
}
