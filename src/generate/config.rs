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
            config.set_max_new_tokens(new);
        }
        Ok(config)
    }

    /// Generate at most `new` tokens after the start token (sets `max_length` to match).
    pub fn set_max_new_tokens(&mut self, new: usize) {
        self.max_new_tokens = Some(new);
        // The decoder prompt of an encoder-decoder model is its start token.
        self.max_length = new + 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_config_json_wins_and_config_json_is_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"d_model": 8, "num_beams": 4, "max_length": 200, "eos_token_id": [2, 3],
                "early_stopping": "never", "forced_bos_token_id": 0}"#,
        )
        .unwrap();
        let fallback = GenerationConfig::from_files(None, &config).unwrap();
        assert_eq!(fallback.num_beams, 4);
        assert_eq!(fallback.max_length, 200);
        assert_eq!(fallback.eos_token_id, vec![2, 3]);
        assert_eq!(fallback.early_stopping, EarlyStopping::Never);
        assert_eq!(fallback.forced_bos_token_id, Some(0));

        let generation = dir.path().join("generation_config.json");
        std::fs::write(
            &generation,
            r#"{"max_new_tokens": 10, "eos_token_id": 1, "early_stopping": true}"#,
        )
        .unwrap();
        let own = GenerationConfig::from_files(Some(&generation), &config).unwrap();
        assert_eq!(own.num_beams, 1, "config.json fields do not leak in");
        assert_eq!(
            own.max_length, 11,
            "max_new_tokens counts after the start token"
        );
        assert_eq!(own.eos_token_id, vec![1]);
        assert_eq!(own.early_stopping, EarlyStopping::Always);
    }
}
