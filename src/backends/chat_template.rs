//! Chat templates: how a conversation (system, user and assistant turns) becomes token ids for
//! a GGUF instruct model.
//!
//! Control markers (`<|im_start|>`, ...) come from the vocabulary as single control tokens;
//! everything else, the role names and the texts, is tokenized as plain text, so a document can
//! never open a turn of its own.
//!
//! Not for: what the turns say (the catalog's prompts, `super::chat`), or tokenizing
//! (`crate::tokenizers::gguf`).

use crate::tokenizers::gguf::GgufTokenizer;
use crate::{Error, Result};

/// A role in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// How a model's chat template wraps turns. Only ChatML (Qwen) so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ntext<|im_end|>\n`, the answer after `<|im_start|>assistant\n`.
    ChatMl,
}

impl ChatTemplate {
    /// The template of a model, from the file's `tokenizer.chat_template` or, when it has none,
    /// from the control tokens of its vocabulary. The error says what is missing.
    pub fn detect(tokenizer: &GgufTokenizer) -> std::result::Result<Self, String> {
        match tokenizer.chat_template() {
            Some(t) if t.contains("<|im_start|>") => Ok(Self::ChatMl),
            None if tokenizer.special("<|im_start|>").is_some() => Ok(Self::ChatMl),
            _ => Err("unsupported chat template (only ChatML)".into()),
        }
    }

    /// Appends the ids of one turn to `out`.
    pub fn turn(
        &self,
        tokenizer: &GgufTokenizer,
        role: Role,
        text: &str,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        match self {
            Self::ChatMl => {
                out.push(special(tokenizer, "<|im_start|>")?);
                out.extend(tokenizer.encode(&format!("{}\n{text}", role.name()))?);
                out.push(special(tokenizer, "<|im_end|>")?);
                out.extend(tokenizer.encode("\n")?);
            }
        }
        Ok(())
    }

    /// Appends the ids that open the assistant's answer.
    pub fn assistant_start(&self, tokenizer: &GgufTokenizer, out: &mut Vec<u32>) -> Result<()> {
        match self {
            Self::ChatMl => {
                out.push(special(tokenizer, "<|im_start|>")?);
                out.extend(tokenizer.encode("assistant\n")?);
            }
        }
        Ok(())
    }

    /// The tokens that end an answer, besides the vocabulary's own end-of-sequence tokens.
    pub fn end_of_turn(&self, tokenizer: &GgufTokenizer) -> Vec<u32> {
        match self {
            Self::ChatMl => tokenizer.special("<|im_end|>").into_iter().collect(),
        }
    }
}

fn special(tokenizer: &GgufTokenizer, token: &str) -> Result<u32> {
    tokenizer
        .special(token)
        .ok_or_else(|| Error::Tokenizer(format!("the vocabulary has no '{token}' token")))
}
