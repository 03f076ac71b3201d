//! Generation settings, read from a model's `generation_config.json` (or, when a repository has
//! none, from the generation fields of its `config.json`, as transformers falls back), with
//! transformers' defaults for every field left out. Not for: model architecture settings.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// When beam search may stop before `max_length` (transformers' `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `true`: stop as soon as `num_beams` hypotheses are finished.
    Always,
    /// `false`: stop when the best running beam, at its current length, cannot beat the worst
    /// finished hypothesis (the default).
    #[default]
    Heuristic,
    /// `"never"`: like `Heuristic`, but for a positive length penalty assume the running beam
    /// could grow to `max_length`.
    Never,
}

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(EarlyStopping::Always),
            Raw::Bool(false) => Ok(EarlyStopping::Heuristic),
            Raw::Str(s) if s == "never" => Ok(EarlyStopping::Never),
            Raw::Str(s) => Err(serde::de::Error::custom(format!(
                "early_stopping must be true, false or \"never\", not {s:?}"
            ))),
        }
    }
}

/// One token id or a list of them, as the hub's JSON files write `eos_token_id`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(u32),
        Many(Vec<u32>),
        Null(()),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(id) => vec![id],
        Raw::Many(ids) => ids,
        Raw::Null(()) => Vec::new(),
    })
}

fn default_max_length() -> usize {
    20
}
fn default_one_usize() -> usize {
    1
}
fn default_one_f32() -> f32 {
    1.0
}

/// The settings of one generation call. Field names and defaults are transformers'.
#[derive(Debug, Clone, Deserialize)]
pub struct GenerationConfig {
    /// Longest decoder sequence, counting the decoder start token.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// When set, overrides `max_length` with `max_new_tokens + 1`.
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    /// Shortest decoder sequence (counting the start token) before EOS is allowed.
    #[serde(default)]
    pub min_length: usize,
    #[serde(default = "default_one_usize")]
    pub num_beams: usize,
    #[serde(default = "default_one_f32")]
    pub length_penalty: f32,
    #[serde(default)]
    pub early_stopping: EarlyStopping,
    #[serde(default)]
    pub no_repeat_ngram_size: usize,
    #[serde(default = "default_one_f32")]
    pub repetition_penalty: f32,
    #[serde(default)]
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    #[serde(default)]
    pub forced_bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub forced_eos_token_id: Vec<u32>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub eos_token_id: Vec<u32>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        // An empty JSON object gives transformers' defaults; it always parses.
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

impl GenerationConfig {
    /// Reads `generation_config.json` when there is one, else the generation fields of
    /// `config.json`, as transformers' `GenerationConfig.from_model_config` does.
    pub fn from_files(generation_config: Option<&Path>, config: &Path) -> Result<Self> {
        let path = generation_config.filter(|p| p.exists()).unwrap_or(config);
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let mut config: Self = serde_json::from_str(text)
            .map_err(|e| Error::msg(format!("generation config: {e}")))?;
        if let Some(new) = config.max_new_tokens {
            // The decoder prompt of an encoder-decoder model is its start token.
            config.max_length = new + 1;
        }
        Ok(config)
    }

    /// The first decoder token: `decoder_start_token_id`, else `bos_token_id`.
    pub fn decoder_start(&self) -> Result<u32> {
        self.decoder_start_token_id
            .or(self.bos_token_id)
            .ok_or_else(|| Error::msg("generation config has no decoder_start_token_id"))
    }

    pub fn is_eos(&self, token: u32) -> bool {
        self.eos_token_id.contains(&token)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_length < 2 {
            return Err(Error::msg(
                "max_length must leave room for at least one token",
            ));
        }
        if self.eos_token_id.is_empty() {
            return Err(Error::msg("generation config has no eos_token_id"));
        }
        if self.repetition_penalty <= 0.0 {
            return Err(Error::msg("repetition_penalty must be positive"));
        }
        Ok(())
    }
}
