//! The tokenizer of a GGUF model, built from the file's own metadata (`tokenizer.ggml.*`), so a
//! single `.gguf` file is a complete model: no `tokenizer.json` beside it.
//!
//! The reference for every id is llama.cpp: [`GgufTokenizer::encode`] gives the ids that
//! llama.cpp's `tokenize(text, add_special = false, parse_special = false)` gives, which means
//! user text is always ordinary text (a literal `<|im_start|>` in a document never becomes the
//! control token), and there is no Unicode normalization (llama.cpp applies none to byte-level
//! BPE, although Qwen2's `tokenizer.json` declares NFC).
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE: Qwen2/Qwen2.5, Llama 3, GPT-2
//! style vocabularies) with the pre-tokenizers listed in [`SUPPORTED_PRE`]. SentencePiece-style
//! vocabularies (`"llama"`: Gemma, Llama 2, Mistral) are refused with a clear error.
//!
//! Not for: chat templates (the raw `tokenizer.chat_template` is only handed out), prompt
//! assembly, or streaming detokenization.

use std::collections::{BTreeSet, HashMap};

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::{Error, Result};

/// The `tokenizer.ggml.pre` values this module knows, grouped by the splitting they select.
pub const SUPPORTED_PRE: &[&str] = &[
    "qwen2",
    "deepseek-r1-qwen",
    "megrez",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "gpt-2",
    "gpt2",
    "phi-2",
    "default",
];

/// Texts of control tokens that end a chat turn in the common chat formats (ChatML, Llama 3,
/// Gemma, Phi-3). Any of them present as a control token is a stop id.
const END_OF_TURN_TEXTS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<end_of_turn>",
    "<|end|>",
];

/// Qwen2's split: English contractions, letter runs with at most one leading non-letter,
/// single digits, punctuation runs with an optional leading space, then whitespace. The
/// contractions are spelled with explicit case classes (as llama.cpp does) rather than `(?i:)`,
/// so that no Unicode case folding (`ſ` for `s`) creeps in.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Llama 3's split: as Qwen2's, but digits go in runs of up to three.
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GPT-2's split.
const GPT2_SPLIT: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// llama.cpp's fallback for `pre = "default"`: four splits applied one after the other.
const DEFAULT_SPLITS: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];

/// How a `tokenizer.ggml.pre` value splits text before BPE.
struct PreTokenization {
    /// Regexes applied in turn; each keeps both its matches and the text between them.
    splits: &'static [&'static str],
    /// Whether a pre-token that is already a whole vocabulary entry skips the merges (Llama 3).
    ignore_merges: bool,
}

impl PreTokenization {
    /// The splits, then the byte-level mapping (bytes to printable characters, no added prefix
    /// space, no regex of its own).
    fn pre_tokenizer(&self) -> Result<Sequence> {
        let mut steps = self
            .splits
            .iter()
            .map(|re| {
                Split::new(
                    SplitPattern::Regex((*re).to_string()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map(PreTokenizerWrapper::Split)
                .map_err(tok_err)
            })
            .collect::<Result<Vec<_>>>()?;
        steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
            false, false, false,
        )));
        Ok(Sequence::new(steps))
    }
}

/// The pre-tokenizer that `tokenizer.ggml.pre = pre` selects, for building tokenizers that must
/// split text exactly as [`GgufTokenizer`] does (the test kit trains its vocabulary with it).
pub(crate) fn byte_level_pre_tokenizer(pre: &str) -> Result<Sequence> {
    pre_tokenization(pre)?.pre_tokenizer()
}

fn pre_tokenization(pre: &str) -> Result<PreTokenization> {
    let (splits, ignore_merges): (&'static [&'static str], bool) = match pre {
        "qwen2" | "deepseek-r1-qwen" | "megrez" => (&[QWEN2_SPLIT], false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" => (&[LLAMA3_SPLIT], true),
        "gpt-2" | "gpt2" | "phi-2" => (&[GPT2_SPLIT], false),
        "default" => (DEFAULT_SPLITS, false),
        other => {
            return Err(Error::Tokenizer(format!(
                "unsupported pre-tokenizer tokenizer.ggml.pre = '{other}'; supported: {}",
                SUPPORTED_PRE.join(", ")
            )))
        }
    };
    Ok(PreTokenization {
        splits,
        ignore_merges,
    })
}

/// `tokenizer.ggml.token_type`, as llama.cpp numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    fn from_gguf(value: i64) -> Option<Self> {
        match value {
            // 0 is "undefined" in llama.cpp; converters never write it, treat it as normal.
            0 | 1 => Some(Self::Normal),
            2 => Some(Self::Unknown),
            3 => Some(Self::Control),
            4 => Some(Self::UserDefined),
            5 => Some(Self::Unused),
            6 => Some(Self::Byte),
            _ => None,
        }
    }

    /// Tokens that ordinary text never produces and that decoding leaves out.
    fn is_special(self) -> bool {
        matches!(self, Self::Unknown | Self::Control | Self::Unused)
    }
}

/// A tokenizer read from a GGUF file's metadata. Cheap to share: encoding and decoding take
/// `&self`.
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    types: Vec<TokenType>,
    special: HashMap<String, u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    stop: Vec<u32>,
    add_bos: bool,
    chat_template: Option<String>,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.types.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

fn md<'a>(content: &'a Content, key: &str) -> Option<&'a Value> {
    content.metadata.get(key)
}

fn md_required<'a>(content: &'a Content, key: &str) -> Result<&'a Value> {
    md(content, key).ok_or_else(|| tok_err(format!("the GGUF metadata has no '{key}'")))
}

fn md_string<'a>(content: &'a Content, key: &str) -> Result<Option<&'a str>> {
    md(content, key)
        .map(|v| {
            v.to_string()
                .map(String::as_str)
                .map_err(|e| tok_err(format!("'{key}': {e}")))
        })
        .transpose()
}

fn md_strings<'a>(content: &'a Content, key: &str) -> Result<Vec<&'a str>> {
    let values = md_required(content, key)?
        .to_vec()
        .map_err(|e| tok_err(format!("'{key}': {e}")))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .map(String::as_str)
                .map_err(|e| tok_err(format!("'{key}': {e}")))
        })
        .collect()
}

/// Any integer value, whatever width the converter chose.
fn as_i64(value: &Value) -> Option<i64> {
    Some(match value {
        Value::U8(v) => i64::from(*v),
        Value::I8(v) => i64::from(*v),
        Value::U16(v) => i64::from(*v),
        Value::I16(v) => i64::from(*v),
        Value::U32(v) => i64::from(*v),
        Value::I32(v) => i64::from(*v),
        Value::U64(v) => i64::try_from(*v).ok()?,
        Value::I64(v) => *v,
        _ => return None,
    })
}

/// A token id from the metadata; ids outside the vocabulary (llama.cpp writes -1 or leaves the
/// key out when there is none) count as absent.
fn md_token_id(content: &Content, key: &str, vocab_size: usize) -> Result<Option<u32>> {
    let Some(value) = md(content, key) else {
        return Ok(None);
    };
    let id = as_i64(value).ok_or_else(|| tok_err(format!("'{key}' is not an integer")))?;
    Ok(u32::try_from(id)
        .ok()
        .filter(|&id| (id as usize) < vocab_size))
}

impl GgufTokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let model = md_string(content, "tokenizer.ggml.model")?
            .ok_or_else(|| tok_err("the GGUF metadata has no 'tokenizer.ggml.model'"))?;
        if model != "gpt2" {
            return Err(tok_err(format!(
                "unsupported tokenizer model tokenizer.ggml.model = '{model}'; supported: gpt2 \
                 (byte-level BPE, as in Qwen2 and Llama 3)"
            )));
        }
        // llama.cpp falls back to "default" (with a loud warning) when `pre` is missing.
        let pre = md_string(content, "tokenizer.ggml.pre")?.unwrap_or("default");
        let pre = pre_tokenization(pre)?;

        let tokens = md_strings(content, "tokenizer.ggml.tokens")?;
        let types = match md(content, "tokenizer.ggml.token_type") {
            None => vec![TokenType::Normal; tokens.len()],
            Some(v) => {
                let values = v
                    .to_vec()
                    .map_err(|e| tok_err(format!("'tokenizer.ggml.token_type': {e}")))?;
                if values.len() != tokens.len() {
                    return Err(tok_err(format!(
                        "{} token types for {} tokens",
                        values.len(),
                        tokens.len()
                    )));
                }
                values
                    .iter()
                    .map(|v| {
                        as_i64(v).and_then(TokenType::from_gguf).ok_or_else(|| {
                            tok_err(format!("unknown token type {v:?} in the GGUF metadata"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let merges = md_strings(content, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| tok_err(format!("merge '{m}' is not two tokens")))
            })
            .collect::<Result<Vec<_>>>()?;

        // Special tokens stay out of the BPE vocabulary, so no text can ever encode to one.
        let mut vocab = Vocab::with_capacity(tokens.len());
        let mut special = HashMap::new();
        let mut user_defined = Vec::new();
        for (id, (&text, &ty)) in tokens.iter().zip(&types).enumerate() {
            let id = u32::try_from(id).map_err(|_| tok_err("more than 2^32 tokens"))?;
            match ty {
                TokenType::Control | TokenType::Unknown => {
                    special.insert(text.to_string(), id);
                }
                TokenType::Unused => {}
                TokenType::UserDefined => {
                    user_defined.push(text);
                    vocab.insert(text.to_string(), id);
                }
                TokenType::Normal | TokenType::Byte => {
                    vocab.insert(text.to_string(), id);
                }
            }
        }

        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre.ignore_merges)
            .build()
            .map_err(|e| tok_err(format!("building BPE from the GGUF vocabulary: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer
            .with_pre_tokenizer(Some(pre.pre_tokenizer()?))
            .with_decoder(Some(ByteLevelDecoder::default()));
        // User-defined tokens are matched in the text before splitting, as llama.cpp does even
        // with parse_special = false; they keep their vocabulary ids.
        let added: Vec<AddedToken> = user_defined
            .into_iter()
            .map(|t| AddedToken::from(t.to_string(), false))
            .collect();
        tokenizer.add_tokens(&added);

        let n = tokens.len();
        let bos = md_token_id(content, "tokenizer.ggml.bos_token_id", n)?;
        let eos = md_token_id(content, "tokenizer.ggml.eos_token_id", n)?;
        let mut stop = BTreeSet::new();
        stop.extend(eos);
        stop.extend(md_token_id(content, "tokenizer.ggml.eot_token_id", n)?);
        stop.extend(md_token_id(content, "tokenizer.ggml.eom_token_id", n)?);
        stop.extend(END_OF_TURN_TEXTS.iter().filter_map(|t| special.get(*t)));
        let add_bos = match md(content, "tokenizer.ggml.add_bos_token") {
            None => false,
            Some(v) => v
                .to_bool()
                .map_err(|e| tok_err(format!("'tokenizer.ggml.add_bos_token': {e}")))?,
        };
        let chat_template = md_string(content, "tokenizer.chat_template")?.map(str::to_string);

        Ok(Self {
            tokenizer,
            types,
            special,
            bos,
            eos,
            stop: stop.into_iter().collect(),
            add_bos,
            chat_template,
        })
    }

    /// Encodes user text as ordinary text: never yields a special/control token, even if the
    /// text contains `<|im_start|>` or `<|endoftext|>` (they come out as ordinary BPE pieces,
    /// exactly as llama.cpp's `tokenize(text, add_special=false, parse_special=false)`). No BOS
    /// is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.tokenizer.encode_fast(text, false).map_err(tok_err)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Looks up a special/control token by its text, e.g. `<|im_start|>`, `<|im_end|>`,
    /// `<|endoftext|>`.
    pub fn special(&self, token: &str) -> Option<u32> {
        self.special.get(token).copied()
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// Whether the model expects a BOS token before a prompt (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Ids that end generation, sorted: eos, eot and eom (`tokenizer.ggml.eot_token_id`,
    /// `tokenizer.ggml.eom_token_id`), and the end-of-turn control tokens of the common chat
    /// formats (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, `<end_of_turn>`...) when present.
    pub fn stop_ids(&self) -> Vec<u32> {
        self.stop.clone()
    }

    /// Decodes ids to text, leaving out special (control, unknown, unused) tokens. Bytes that do
    /// not form valid UTF-8 (a character cut between tokens) become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut kept = Vec::with_capacity(ids.len());
        for &id in ids {
            let ty = self.types.get(id as usize).ok_or_else(|| {
                tok_err(format!(
                    "token id {id} is outside the vocabulary of {} tokens",
                    self.types.len()
                ))
            })?;
            if !ty.is_special() {
                kept.push(id);
            }
        }
        self.tokenizer.decode(&kept, false).map_err(tok_err)
    }

    /// The number of token ids, special tokens included (`tokenizer.ggml.tokens`).
    pub fn vocab_size(&self) -> usize {
        self.types.len()
    }

    /// The Jinja chat template of the model (`tokenizer.chat_template`), if it has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}
