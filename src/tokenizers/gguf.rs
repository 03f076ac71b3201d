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
//! style vocabularies, through the `tokenizers` crate) with the pre-tokenizers listed in
//! [`SUPPORTED_PRE`], and `"llama"` (SentencePiece-style BPE with scores and byte fallback:
//! Llama 2, Mistral, Gemma). Other models and pre-tokenizers are refused with a clear error.
//!
//! User-defined tokens (type 4, e.g. Qwen's `<tool_call>`) are matched in the text as llama.cpp
//! matches them, even as ordinary text; control, unknown and unused tokens never come out of
//! [`GgufTokenizer::encode`] and are left out by [`GgufTokenizer::decode`].
//!
//! [`GgufTokenizer::split_special`] reads the texts of control tokens as those tokens (llama.cpp's `parse_special = true`): for the text of a chat
//! template, which the program writes, never for a document.
//!
//! Not for: chat templates (the raw `tokenizer.chat_template` is only handed out; rendering it is
//! `backends::chat_template`), prompt assembly, or streaming detokenization.

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
    "phi-2",
    "default",
];

/// Texts of tokens that end generation (end of turn, of text, of message) in the common
/// formats: ChatML, Llama 2 and 3, Gemma, Phi-3. Like llama.cpp, tokens with these texts count as
/// control tokens whatever type the file declares (Qwen2.5 declares `</s>` normal), and are stop
/// ids.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|end_of_text|>",
    "<EOT>",
    "<eos>",
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
        "gpt-2" | "phi-2" => (&[GPT2_SPLIT], false),
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

/// The two families of vocabulary llama.cpp knows from `tokenizer.ggml.model`.
enum Backend {
    /// `gpt2`: byte-level BPE, through the `tokenizers` crate.
    Bpe(Box<Tokenizer>),
    /// `llama`: SentencePiece-style BPE over characters, merges chosen by score.
    Spm(spm::Spm),
}

/// A tokenizer read from a GGUF file's metadata. Cheap to share: encoding and decoding take
/// `&self`.
pub struct GgufTokenizer {
    backend: Backend,
    types: Vec<TokenType>,
    special: HashMap<String, u32>,
    /// The texts of control, unknown and user-defined tokens with their ids, longest first: what
    /// [`GgufTokenizer::split_special`] finds in a chat template's text.
    parse_special: Vec<(String, u32)>,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
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

/// Reads `tokenizer.ggml.token_type`; every token is normal when the key is absent.
fn read_token_types(content: &Content, n_tokens: usize) -> Result<Vec<TokenType>> {
    let Some(v) = md(content, "tokenizer.ggml.token_type") else {
        return Ok(vec![TokenType::Normal; n_tokens]);
    };
    let values = v
        .to_vec()
        .map_err(|e| tok_err(format!("'tokenizer.ggml.token_type': {e}")))?;
    if values.len() != n_tokens {
        return Err(tok_err(format!(
            "{} token types for {n_tokens} tokens",
            values.len()
        )));
    }
    values
        .iter()
        .map(|v| {
            as_i64(v)
                .and_then(TokenType::from_gguf)
                .ok_or_else(|| tok_err(format!("unknown token type {v:?} in the GGUF metadata")))
        })
        .collect()
}

/// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) as a `tokenizers::Tokenizer`.
fn build_bpe(content: &Content, tokens: &[&str], types: &[TokenType]) -> Result<Tokenizer> {
    // llama.cpp falls back to "default" (with a loud warning) when `pre` is missing.
    let pre = md_string(content, "tokenizer.ggml.pre")?.unwrap_or("default");
    let pre = pre_tokenization(pre)?;
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
    let mut user_defined = Vec::new();
    for (id, (&text, &ty)) in tokens.iter().zip(types).enumerate() {
        // from_gguf checked that every id fits a u32.
        let id = id as u32;
        match ty {
            TokenType::Control | TokenType::Unknown | TokenType::Unused => {}
            TokenType::UserDefined => {
                user_defined.push(AddedToken::from(text.to_string(), false));
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
    // User-defined tokens are matched in the text before splitting, as llama.cpp does even with
    // parse_special = false; they keep their vocabulary ids.
    tokenizer.add_tokens(&user_defined);
    Ok(tokenizer)
}

impl GgufTokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let model = md_string(content, "tokenizer.ggml.model")?
            .ok_or_else(|| tok_err("the GGUF metadata has no 'tokenizer.ggml.model'"))?;
        let tokens = md_strings(content, "tokenizer.ggml.tokens")?;
        if u32::try_from(tokens.len()).is_err() {
            return Err(tok_err("more than 2^32 tokens"));
        }
        let mut types = read_token_types(content, tokens.len())?;
        let backend = match model {
            "gpt2" => Backend::Bpe(Box::new(build_bpe(content, &tokens, &types)?)),
            "llama" => Backend::Spm(spm::Spm::from_gguf(content, &tokens, &types)?),
            other => {
                return Err(tok_err(format!(
                    "unsupported tokenizer model tokenizer.ggml.model = '{other}'; supported: \
                     gpt2 (byte-level BPE: Qwen2, Llama 3), llama (SentencePiece BPE with byte \
                     fallback: Llama 2, Mistral, Gemma)"
                )))
            }
        };
        // After building the encoder, which keeps such tokens where the file put them (ordinary
        // text cannot reach them anyway: every pre-tokenizer splits `</s>` into pieces).
        for (ty, text) in types.iter_mut().zip(&tokens) {
            if END_OF_GENERATION_TEXTS.contains(text) && !ty.is_special() {
                *ty = TokenType::Control;
            }
        }
        // Ids fit a u32: checked above.
        let special: HashMap<String, u32> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (_, ty))| matches!(ty, TokenType::Control | TokenType::Unknown))
            .map(|(id, (text, _))| (text.to_string(), id as u32))
            .collect();
        let mut parse_special: Vec<(String, u32)> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (text, ty))| {
                !text.is_empty()
                    && matches!(
                        ty,
                        TokenType::Control | TokenType::Unknown | TokenType::UserDefined
                    )
            })
            .map(|(id, (text, _))| (text.to_string(), id as u32))
            .collect();
        parse_special.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));

        let n = tokens.len();
        // llama.cpp's defaults for SentencePiece vocabularies: <s> = 1, </s> = 2.
        let (default_bos, default_eos) = match backend {
            Backend::Spm(_) => (
                Some(1).filter(|&i| i < n as u32),
                Some(2).filter(|&i| i < n as u32),
            ),
            Backend::Bpe(_) => (None, None),
        };
        let bos = md_token_id(content, "tokenizer.ggml.bos_token_id", n)?.or(default_bos);
        let eos = md_token_id(content, "tokenizer.ggml.eos_token_id", n)?.or(default_eos);
        let pad = md_token_id(content, "tokenizer.ggml.padding_token_id", n)?;
        let mut stop = BTreeSet::new();
        stop.extend(eos);
        stop.extend(md_token_id(content, "tokenizer.ggml.eot_token_id", n)?);
        stop.extend(md_token_id(content, "tokenizer.ggml.eom_token_id", n)?);
        stop.extend(
            END_OF_GENERATION_TEXTS
                .iter()
                .filter_map(|t| special.get(*t)),
        );
        let add_bos = match md(content, "tokenizer.ggml.add_bos_token") {
            None => false,
            Some(v) => v
                .to_bool()
                .map_err(|e| tok_err(format!("'tokenizer.ggml.add_bos_token': {e}")))?,
        };
        let chat_template = md_string(content, "tokenizer.chat_template")?.map(str::to_string);

        Ok(Self {
            backend,
            types,
            special,
            parse_special,
            bos,
            eos,
            pad,
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
        match &self.backend {
            Backend::Bpe(tokenizer) => {
                let encoding = tokenizer.encode_fast(text, false).map_err(tok_err)?;
                Ok(encoding.get_ids().to_vec())
            }
            Backend::Spm(spm) => spm.encode(text),
        }
    }

    /// Cuts `text` at the texts of control, unknown and user-defined tokens (at each position the
    /// longest that matches): the pieces of text between them, and those tokens' ids. This is
    /// llama.cpp's `parse_special = true`, for text the program itself wrote (a chat template's),
    /// never for a document.
    pub fn split_special<'a>(&self, text: &'a str) -> Vec<Special<'a>> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut pos = 0;
        while pos < text.len() {
            let rest = &text[pos..];
            let found = self
                .parse_special
                .iter()
                .find(|(t, _)| rest.starts_with(t.as_str()));
            match found {
                Some((t, id)) => {
                    if start < pos {
                        out.push(Special::Text(&text[start..pos]));
                    }
                    out.push(Special::Token(*id));
                    pos += t.len();
                    start = pos;
                }
                None => pos += rest.chars().next().map_or(1, char::len_utf8),
            }
        }
        if start < text.len() {
            out.push(Special::Text(&text[start..]));
        }
        out
    }


    /// The text of a control, unknown or user-defined token (`<|im_start|>`, `<s>`), by id.
    pub fn special_text(&self, id: u32) -> Option<&str> {
        (self.parse_special.iter())
            .find(|(_, i)| *i == id)
            .map(|(t, _)| t.as_str())
    }

    /// The texts of the special/control tokens (`<|im_end|>`, `</s>`, ...), in no order.
    pub fn special_texts(&self) -> impl Iterator<Item = &str> {
        self.special.keys().map(String::as_str)
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

    /// The padding token (`tokenizer.ggml.padding_token_id`), for batching.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether the model expects a BOS token before a prompt (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Ids that end generation, sorted: eos, eot and eom (`tokenizer.ggml.eot_token_id`,
    /// `tokenizer.ggml.eom_token_id`), and the end-of-turn / end-of-text tokens of the common
    /// chat formats (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, `<end_of_turn>`, `</s>`...)
    /// when present. A subset of llama.cpp's end-of-generation ids (which also has FIM tokens).
    pub fn stop_ids(&self) -> Vec<u32> {
        self.stop.clone()
    }

    /// Decodes ids to text, leaving out special (control, unknown, unused) tokens. Bytes that do
    /// not form valid UTF-8 (a character cut between tokens) become U+FFFD. Unlike llama.cpp's
    /// detokenizer for some vocabularies (Llama 3, GPT-2), no "clean-up" of spaces before
    /// punctuation is done: `decode(encode(text)) == text`.
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
        match &self.backend {
            Backend::Bpe(tokenizer) => tokenizer.decode(&kept, false).map_err(tok_err),
            Backend::Spm(spm) => Ok(spm.decode(&kept, &self.types)),
        }
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

/// A piece of text cut by [`GgufTokenizer::split_special`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special<'a> {
    /// Text between special tokens, to encode as ordinary text.
    Text(&'a str),
    /// A control, unknown or user-defined token whose text was found.
    Token(u32),
}

/// SentencePiece-style BPE, as llama.cpp runs it for `tokenizer.ggml.model = "llama"`: spaces
/// become `▁` (with one space added in front of the text), characters are merged pairwise, always
/// the adjacent pair whose concatenation is the vocabulary piece with the highest score (leftmost
/// on ties), and characters left outside the vocabulary fall back to `<0xXX>` byte tokens.
mod spm {
    use std::cmp::Ordering;
    use std::collections::{BinaryHeap, HashMap};

    use super::{md, tok_err, Content, TokenType};
    use crate::Result;

    /// How SentencePiece writes a space.
    const SPACE: &str = "\u{2581}";

    pub(super) struct Spm {
        ids: HashMap<String, u32>,
        pieces: Vec<String>,
        scores: Vec<f32>,
        /// The token for each byte value, for byte fallback.
        byte_tokens: Vec<Option<u32>>,
        /// The byte value of each byte token (`<0xXX>`), by id.
        byte_of: Vec<Option<u8>>,
        /// User-defined tokens, longest first: matched in the text before anything else.
        user_defined: Vec<(String, u32)>,
        add_space_prefix: bool,
    }

    /// A piece of the input: text still to tokenize, or a user-defined token found in it.
    enum Fragment<'a> {
        Text(&'a str),
        Token(u32),
    }

    /// A candidate merge of two adjacent symbols.
    struct Bigram {
        score: f32,
        left: usize,
        right: usize,
        size: usize,
    }

    impl Ord for Bigram {
        /// Highest score first, then the leftmost.
        fn cmp(&self, other: &Self) -> Ordering {
            self.score
                .total_cmp(&other.score)
                .then(other.left.cmp(&self.left))
        }
    }

    impl PartialOrd for Bigram {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    impl PartialEq for Bigram {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other) == Ordering::Equal
        }
    }

    impl Eq for Bigram {}

    /// A run of the text (bytes `start..start + len`) in a linked list of symbols; `len == 0`
    /// once merged into its left neighbour.
    struct Symbol {
        start: usize,
        len: usize,
        prev: Option<usize>,
        next: Option<usize>,
    }

    fn parse_byte_token(piece: &str) -> Option<u8> {
        let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
        if hex.len() != 2 {
            return None;
        }
        u8::from_str_radix(hex, 16).ok()
    }

    impl Spm {
        pub(super) fn from_gguf(
            content: &Content,
            tokens: &[&str],
            types: &[TokenType],
        ) -> Result<Self> {
            let scores = match md(content, "tokenizer.ggml.scores") {
                None => vec![0.0; tokens.len()],
                Some(v) => v
                    .to_vec()
                    .map_err(|e| tok_err(format!("'tokenizer.ggml.scores': {e}")))?
                    .iter()
                    .map(|s| s.to_f32().map_err(|e| tok_err(format!("score: {e}"))))
                    .collect::<Result<Vec<_>>>()?,
            };
            if scores.len() != tokens.len() {
                return Err(tok_err(format!(
                    "{} scores for {} tokens",
                    scores.len(),
                    tokens.len()
                )));
            }
            let add_space_prefix = match md(content, "tokenizer.ggml.add_space_prefix") {
                None => true,
                Some(v) => v
                    .to_bool()
                    .map_err(|e| tok_err(format!("'tokenizer.ggml.add_space_prefix': {e}")))?,
            };
            // As in llama.cpp, a text that appears twice maps to its last id. Ids fit a u32:
            // GgufTokenizer::from_gguf checked the token count first.
            let ids: HashMap<String, u32> = tokens
                .iter()
                .enumerate()
                .map(|(id, t)| (t.to_string(), id as u32))
                .collect();
            let byte_tokens = (0..=255u8)
                .map(|b| {
                    ids.get(&format!("<0x{b:02X}>"))
                        .or_else(|| b.is_ascii().then(|| ids.get(&char::from(b).to_string()))?)
                        .copied()
                })
                .collect();
            let byte_of = tokens
                .iter()
                .zip(types)
                .map(|(t, ty)| (*ty == TokenType::Byte).then(|| parse_byte_token(t))?)
                .collect();
            let mut user_defined: Vec<(String, u32)> = tokens
                .iter()
                .zip(types)
                .enumerate()
                .filter(|(_, (t, ty))| **ty == TokenType::UserDefined && !t.is_empty())
                .map(|(id, (t, _))| (t.to_string(), id as u32))
                .collect();
            user_defined.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
            Ok(Self {
                ids,
                pieces: tokens.iter().map(|t| t.to_string()).collect(),
                scores,
                byte_tokens,
                byte_of,
                user_defined,
                add_space_prefix,
            })
        }

        /// Splits `text` around the user-defined tokens, longest tokens first.
        fn partition<'a>(&self, text: &'a str) -> Vec<Fragment<'a>> {
            let mut fragments = if text.is_empty() {
                Vec::new()
            } else {
                vec![Fragment::Text(text)]
            };
            for (token, id) in &self.user_defined {
                let mut next = Vec::with_capacity(fragments.len());
                for fragment in fragments {
                    let Fragment::Text(mut rest) = fragment else {
                        next.push(fragment);
                        continue;
                    };
                    while let Some(at) = rest.find(token.as_str()) {
                        if at > 0 {
                            next.push(Fragment::Text(&rest[..at]));
                        }
                        next.push(Fragment::Token(*id));
                        rest = &rest[at + token.len()..];
                    }
                    if !rest.is_empty() {
                        next.push(Fragment::Text(rest));
                    }
                }
                fragments = next;
            }
            fragments
        }

        pub(super) fn encode(&self, text: &str) -> Result<Vec<u32>> {
            let mut out = Vec::new();
            // A space goes in front of the text, and again after each user-defined token.
            let mut after_token = true;
            for fragment in self.partition(text) {
                match fragment {
                    Fragment::Token(id) => {
                        out.push(id);
                        after_token = true;
                    }
                    Fragment::Text(t) => {
                        let prefix = if self.add_space_prefix && after_token {
                            " "
                        } else {
                            ""
                        };
                        let escaped = format!("{prefix}{t}").replace(' ', SPACE);
                        self.merge_and_emit(&escaped, &mut out)?;
                        after_token = false;
                    }
                }
            }
            Ok(out)
        }

        fn push_bigram(
            &self,
            text: &str,
            symbols: &[Symbol],
            heap: &mut BinaryHeap<Bigram>,
            left: Option<usize>,
            right: Option<usize>,
        ) {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let start = symbols[left].start;
            let size = symbols[left].len + symbols[right].len;
            if let Some(&id) = self.ids.get(&text[start..start + size]) {
                heap.push(Bigram {
                    score: self.scores[id as usize],
                    left,
                    right,
                    size,
                });
            }
        }

        fn merge_and_emit(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
            let mut symbols: Vec<Symbol> = Vec::new();
            for (start, c) in text.char_indices() {
                let index = symbols.len();
                symbols.push(Symbol {
                    start,
                    len: c.len_utf8(),
                    prev: index.checked_sub(1),
                    next: (start + c.len_utf8() < text.len()).then_some(index + 1),
                });
            }
            let mut heap = BinaryHeap::new();
            for right in 1..symbols.len() {
                self.push_bigram(text, &symbols, &mut heap, Some(right - 1), Some(right));
            }
            while let Some(bigram) = heap.pop() {
                let (l, r) = (bigram.left, bigram.right);
                // Stale: one side was merged since this candidate was queued.
                if symbols[l].len == 0
                    || symbols[r].len == 0
                    || symbols[l].len + symbols[r].len != bigram.size
                {
                    continue;
                }
                symbols[l].len += symbols[r].len;
                symbols[r].len = 0;
                symbols[l].next = symbols[r].next;
                if let Some(n) = symbols[r].next {
                    symbols[n].prev = Some(l);
                }
                let (prev, next) = (symbols[l].prev, symbols[l].next);
                self.push_bigram(text, &symbols, &mut heap, prev, Some(l));
                self.push_bigram(text, &symbols, &mut heap, Some(l), next);
            }
            // Every merged symbol is a vocabulary piece by construction; only single characters
            // can be missing, and those become byte tokens.
            let mut i = (!symbols.is_empty()).then_some(0);
            while let Some(index) = i {
                let s = &symbols[index];
                let piece = &text[s.start..s.start + s.len];
                match self.ids.get(piece) {
                    Some(&id) => out.push(id),
                    None => {
                        for b in piece.bytes() {
                            let id = self.byte_tokens[b as usize].ok_or_else(|| {
                                tok_err(format!("the vocabulary has no byte token for 0x{b:02X}"))
                            })?;
                            out.push(id);
                        }
                    }
                }
                i = s.next;
            }
            Ok(())
        }

        /// Decodes ids that are known to be in the vocabulary and not special. Removes the space
        /// that encoding puts in front of the text and after each user-defined token, so that
        /// decoding undoes encoding.
        pub(super) fn decode(&self, ids: &[u32], types: &[TokenType]) -> String {
            let mut bytes = Vec::new();
            let mut strip_space = self.add_space_prefix;
            for &id in ids {
                let id = id as usize;
                let start = bytes.len();
                match (types[id], self.byte_of[id]) {
                    (TokenType::UserDefined, _) => {
                        bytes.extend(self.pieces[id].as_bytes());
                        strip_space = self.add_space_prefix;
                        continue;
                    }
                    (TokenType::Byte, Some(b)) => bytes.push(b),
                    _ => bytes.extend(self.pieces[id].replace(SPACE, " ").as_bytes()),
                }
                if strip_space && bytes.get(start) == Some(&b' ') {
                    bytes.remove(start);
                }
                strip_space = false;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file;

    /// The tiny test model's metadata, changed by `edit`, and the error building from it.
    fn error_after(edit: impl FnOnce(&mut HashMap<String, Value>)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        crate::testkit::write_tiny_qwen2_gguf(&path, 1).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        let mut content = gguf_file::Content::read(&mut file).unwrap();
        GgufTokenizer::from_gguf(&content).unwrap();
        edit(&mut content.metadata);
        GgufTokenizer::from_gguf(&content).unwrap_err().to_string()
    }

    #[test]
    fn shared_by_worker_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<GgufTokenizer>();
    }

    #[test]
    fn unsupported_tokenizer_model_is_named() {
        let err = error_after(|md| {
            md.insert("tokenizer.ggml.model".into(), Value::String("bert".into()));
        });
        assert!(err.contains("unsupported tokenizer model") && err.contains("'bert'"));
        assert!(err.contains("gpt2") && err.contains("llama"), "{err}");
    }

    #[test]
    fn unknown_pre_tokenizer_lists_the_supported_ones() {
        let err = error_after(|md| {
            md.insert("tokenizer.ggml.pre".into(), Value::String("tekken".into()));
        });
        assert!(err.contains("'tekken'"), "{err}");
        for pre in SUPPORTED_PRE {
            assert!(err.contains(pre), "{err} does not list {pre}");
        }
        // Every listed pre-tokenizer really is supported.
        for pre in SUPPORTED_PRE {
            byte_level_pre_tokenizer(pre).unwrap();
        }
    }

    #[test]
    fn malformed_metadata_is_an_error_not_a_panic() {
        let err = error_after(|md| {
            md.remove("tokenizer.ggml.tokens");
        });
        assert!(err.contains("tokenizer.ggml.tokens"), "{err}");
        let err = error_after(|md| {
            md.insert(
                "tokenizer.ggml.token_type".into(),
                Value::Array(vec![Value::I32(1)]),
            );
        });
        assert!(err.contains("token types for"), "{err}");
        let err = error_after(|md| {
            let merges = vec![Value::String("nospace".into())];
            md.insert("tokenizer.ggml.merges".into(), Value::Array(merges));
        });
        assert!(err.contains("'nospace'"), "{err}");
        let err = error_after(|md| {
            md.insert("tokenizer.ggml.tokens".into(), Value::U32(3));
        });
        assert!(err.contains("tokenizer.ggml.tokens"), "{err}");
    }
}
