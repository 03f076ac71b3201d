//! The Marian (opus-mt-*, including transformer-big `tc-big`) tokenizer, built straight from the
//! repository's `source.spm`, `target.spm` and `vocab.json`, without Python. The Marian model
//! itself is `crate::models::marian`.
//!
//! The tokenizer reproduces transformers' `MarianTokenizer`: sentencepiece pieces of the source
//! model, mapped to ids through `vocab.json` (pieces it lacks become `<unk>`), then `</s>`; a
//! leading `>>xx<<` language code is kept as one token. Decoding maps ids back through
//! `vocab.json`, drops special tokens and turns `▁` into spaces.
//!
//! Not for: batching, sentence splitting or generation (`crate::backends::seq2seq`, `crate::generate`).

use std::collections::HashMap;
use std::path::Path;

use super::spm::SpmModel;
use crate::{Error, Result};


/// transformers' `MarianTokenizer`, for a shared (joint) source/target vocabulary.
pub struct MarianTokenizer {
    source: tokenizers::Tokenizer,
    vocab: HashMap<String, u32>,
    id_to_piece: HashMap<u32, String>,
    unk: u32,
    eos: u32,
    pad: u32,
}

fn special(vocab: &HashMap<String, u32>, name: &str) -> Result<u32> {
    vocab
        .get(name)
        .copied()
        .ok_or_else(|| Error::Tokenizer(format!("vocab.json has no {name} token")))
}

impl MarianTokenizer {
    /// Loads `source.spm` and `vocab.json` (the target spm only matters for models with separate
    /// vocabularies, which this crate does not support).
    pub fn from_files(source_spm: &Path, vocab_json: &Path) -> Result<Self> {
        let source = SpmModel::from_file(source_spm)?.unigram_tokenizer()?;
        let text = std::fs::read_to_string(vocab_json).map_err(|e| Error::input(vocab_json, e))?;
        let vocab: HashMap<String, u32> = serde_json::from_str(&text)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", vocab_json.display())))?;
        let id_to_piece = vocab.iter().map(|(k, &v)| (v, k.clone())).collect();
        Ok(Self {
            unk: special(&vocab, "<unk>")?,
            eos: special(&vocab, "</s>")?,
            pad: special(&vocab, "<pad>")?,
            source,
            vocab,
            id_to_piece,
        })
    }

    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Source text to model input ids, ending with `</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut rest = text;
        // A leading language code such as ">>fra<<" is one token, outside sentencepiece.
        if let Some(end) = text.strip_prefix(">>").and_then(|t| t.find("<<")) {
            let code = &text[..end + 4];
            ids.push(self.vocab.get(code).copied().unwrap_or(self.unk));
            rest = &text[end + 4..];
        }
        let encoding = self
            .source
            .encode(rest, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        ids.extend(
            encoding
                .get_tokens()
                .iter()
                .map(|piece| self.vocab.get(piece).copied().unwrap_or(self.unk)),
        );
        ids.push(self.eos);
        Ok(ids)
    }

    /// Target ids to text, without special tokens.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        for &id in ids {
            if id == self.eos || id == self.pad || id == self.unk {
                continue;
            }
            if let Some(piece) = self.id_to_piece.get(&id) {
                text.push_str(piece);
            }
        }
        text.replace('▁', " ").trim().to_string()
    }
}
