//! Tokenizers of Hugging Face repos read through the `tokenizers` crate: a `tokenizer.json`
//! (BART, T5), or BART's byte-level BPE from `vocab.json` + `merges.txt` for older repos that have
//! no `tokenizer.json` (distilbart-cnn-*).
//!
//! Not for: SentencePiece files (`super::spm`), Marian's vocabulary (`super::marian`), or GGUF
//! metadata (`super::gguf`).

use std::path::Path;

use crate::{Error, Result};

/// A `tokenizer.json`, set up for seq2seq inputs: no padding (inputs are truncated to the
/// model's limit by the caller, never padded by the tokenizer).
pub fn tokenizer_json(path: &Path) -> Result<tokenizers::Tokenizer> {
    let mut tokenizer = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
    // Inputs are truncated to the model's limit here, never padded by the tokenizer.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

/// BART's tokenizer from `vocab.json` + `merges.txt`, as transformers converts it: byte-level
/// BPE without a prefix space, `<s> … </s>` around the input, special tokens skipped on decode.
pub fn bart_bpe_tokenizer(vocab: &Path, merges: &Path) -> Result<tokenizers::Tokenizer> {
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::processors::roberta::RobertaProcessing;
    use tokenizers::AddedToken;
    let tok_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Tokenizer(e.to_string());
    let (Some(vocab), Some(merges)) = (vocab.to_str(), merges.to_str()) else {
        return Err(Error::Tokenizer("BPE file paths must be UTF-8".into()));
    };
    let bpe = BPE::from_file(vocab, merges).build().map_err(tok_err)?;
    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let id = |token: &str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| Error::Tokenizer(format!("{vocab} has no {token}")))
    };
    let (bos, eos) = (id("<s>")?, id("</s>")?);
    let specials: Vec<AddedToken> = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        .into_iter()
        .filter(|t| tokenizer.token_to_id(t).is_some())
        .map(|t| AddedToken::from(t, true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), eos), ("<s>".into(), bos))
            .add_prefix_space(false)
            .trim_offsets(true),
    ));
    Ok(tokenizer)
}
