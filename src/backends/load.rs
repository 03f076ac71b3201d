//! From a catalog entry to a loaded backend: resolves the files (`hub`), opens them with the
//! family's loader, and keeps each model loaded once per process, so a model that both
//! translates and writes briefs is in memory once.
//!
//! Seq2seq entries (`marian`, `bart`, `t5`) take their generation settings from the model's own
//! `generation_config.json`; only what the entry itself sets (`num_beams`, `max_new_tokens`)
//! overrides them. The catalog-wide `[generation]` table is for chat models and does not apply
//! to them (its `max_new_tokens = 1024` would otherwise replace every model's tuned length).
//!
//! Model names are resolved here, once per command ([`Loader::select`]); the pipeline and the
//! commands get catalog entries, never names. A name may also be a GGUF file or an `hf:`
//! reference, which the catalog turns into an entry of its own ([`Catalog::resolve`]).
//!
//! Not for: what the models do (the backends), where files come from (`hub`), or what the
//! catalog says (`catalog`); this module joins the three.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::Device;

use crate::catalog::{Catalog, CatalogError, Entry, Family, Generation, Task, Weights};
use crate::generate::sampling::SamplingConfig;
use crate::generate::GenerationConfig;
use crate::hub::{self, Access};
use super::chat::{ChatSettings, GgufChat};
use super::seq2seq::{self, MarianTranslator, Seq2SeqFiles, Seq2SeqSummarizer};
use super::{Summarizer, Translator};
use crate::nn::linear::LinearKind;
use crate::{Error, Result};

/// Context used when neither the entry nor the catalog sets one.
const DEFAULT_CONTEXT: usize = 8192;

/// Window size (source tokens per request) when neither the entry nor the catalog sets one.
const DEFAULT_WINDOW_TOKENS: usize = 128;

/// A loaded model, by backend.
#[derive(Clone)]
enum Loaded {
    /// A GGUF chat model: translates and writes briefs.
    Chat(Arc<GgufChat>),
    /// A Marian (opus-mt) model: translates only.
    Marian(Arc<MarianTranslator>),
    /// A BART or T5 model: writes briefs only.
    Summarizer(Arc<Seq2SeqSummarizer>),
}

/// The settings an entry sets itself replace those of the model's `generation_config.json`.
fn override_generation(config: &mut GenerationConfig, entry: &Generation) {
    if let Some(beams) = entry.num_beams {
        config.num_beams = beams;
    }
    if let Some(max) = entry.max_new_tokens {
        config.set_max_new_tokens(max);
    }
}

/// The models one command runs, resolved from the catalog (names checked, defaults applied).
#[derive(Debug, Clone)]
pub struct Selection {
    /// Always there: briefs are made from the English.
    pub translate: Entry,
    pub brief: Option<Entry>,
}

/// Loads models on first use and hands out shared backends.
pub struct Loader {
    catalog: Catalog,
    access: Access,
    device: Device,
    /// `--weights`: how seq2seq models hold their weights, over what their entries say.
    weights: Option<Weights>,
    /// `--batch`: conversations a chat model decodes together (0: chosen from the memory; 1:
    /// off, the default).
    batch: usize,
    /// `--pool-tokens`: a Marian model's pooled batches, in padded source tokens (0: no
    /// pooling).
    pool: super::pool::Budget,
    /// Calls that may come at once (the documents in flight), set by the pipeline before the
    /// models load.
    concurrent_calls: std::sync::atomic::AtomicUsize,
    /// Opened models, and the error of those that failed to open.
    loaded: Mutex<HashMap<String, std::result::Result<Loaded, String>>>,
}

impl Loader {
    pub fn new(catalog: Catalog, access: Access, device: Device) -> Self {
        Self {
            catalog,
            access,
            device,
            weights: None,
            batch: 1,
            pool: super::pool::Budget::default(),
            concurrent_calls: std::sync::atomic::AtomicUsize::new(1),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Holds every seq2seq model's weights as `weights`, whatever its entry says.
    pub fn with_weights(mut self, weights: Option<Weights>) -> Self {
        self.weights = weights;
        self
    }

    /// Chat models decode up to `batch` conversations together (`--batch`; 0: chosen from the
    /// memory, 1: off).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// `--batch` as given (0: auto).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Marian models pool the sentences of concurrent calls into batches of at most `tokens`
    /// padded source tokens (`--pool-tokens`; 0: each call batches its own sentences).
    pub fn with_pool_tokens(mut self, tokens: usize) -> Self {
        self.pool.tokens = tokens;
        self
    }

    /// `--pool-tokens` as given (0: off).
    pub fn pool_tokens(&self) -> usize {
        self.pool.tokens
    }

    /// How many calls may come at once (the documents in flight), for pooling: set before the
    /// models load (a model already loaded keeps what it was told).
    pub fn expect_concurrent_calls(&self, calls: usize) {
        (self.concurrent_calls).store(calls.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// What each loaded Marian model's pooling did (none when it is off).
    pub fn pooling(&self) -> Vec<super::pool::PoolReport> {
        let Ok(loaded) = self.loaded.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = (loaded.iter())
            .filter_map(|(name, l)| match l {
                Ok(Loaded::Marian(m)) => m
                    .pool_stats()
                    .map(|(budget, stats)| super::pool::PoolReport::new(name, budget, stats)),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.model.cmp(&b.model));
        out
    }

    /// What each loaded chat model's batching chose and did (none when it is off).
    pub fn batching(&self) -> Vec<super::batch::BatchReport> {
        let Ok(loaded) = self.loaded.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = (loaded.values())
            .filter_map(|l| match l {
                Ok(Loaded::Chat(chat)) => chat.batching(),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.model.cmp(&b.model));
        out
    }

    /// How `entry`'s linear layers hold their weights: `--weights`, else the entry's `weights`,
    /// else f32. GGUF models always run in their file's block types.
    pub fn weights(&self, entry: &Entry) -> Weights {
        match entry.family {
            Family::GgufChat => Weights::F32,
            Family::Marian | Family::Bart | Family::T5 => {
                self.weights.or(entry.weights).unwrap_or_default()
            }
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The entry that serves `task`: `name` (a catalog name, a GGUF file or an `hf:`
    /// reference, see [`Catalog::resolve`]), or the catalog default.
    pub fn entry(&self, task: Task, name: Option<&str>) -> Result<Entry, CatalogError> {
        self.catalog.for_task(task, name)
    }

    /// The models a command needs: a translation model always (briefs are made from the
    /// English), and a brief model unless `only` is [`Task::Translate`]. An unknown name, or a
    /// model that does not serve its task, is an error here, before any work starts.
    pub fn select(
        &self,
        translate: Option<&str>,
        brief: Option<&str>,
        only: Option<Task>,
    ) -> Result<Selection, CatalogError> {
        let translate = self.entry(Task::Translate, translate)?;
        let brief = if only == Some(Task::Translate) {
            None
        } else {
            Some(self.entry(Task::Brief, brief)?)
        };
        Ok(Selection { translate, brief })
    }

    /// Everything about a model that changes its outputs, as one stable string: the entry
    /// (source, files, hashes), its resolved generation settings and its prompts. Part of each
    /// output's fingerprint.
    pub fn identity(&self, entry: &Entry) -> String {
        let generation = self.catalog.generation(entry);
        let prompts = self.catalog.prompts(entry);
        let mut id = serde_json::json!({
            "name": entry.name,
            "family": entry.family.to_string(),
            "source": entry.source,
            "files": entry.files,
            "sha256": entry.sha256,
            "generation": generation,
            "prompts": prompts,
        });
        // Only when not the default, so that f32 outputs written before `weights` existed stay
        // up to date.
        let weights = self.weights(entry);
        if weights != Weights::F32 {
            id["weights"] = serde_json::json!(weights.to_string());
        }
        id.to_string()
    }

    /// The model of `entry`, opened on first use. A model that failed to open is not tried
    /// again for every document (which would re-read, and re-hash, its files each time): the
    /// first failure is remembered and returned to every later caller.
    fn load(&self, entry: &Entry) -> Result<Loaded> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| Error::msg("model loader poisoned by an earlier panic"))?;
        if let Some(l) = loaded.get(&entry.name) {
            return l.clone().map_err(Error::msg);
        }
        let opened = self.open(entry);
        let remembered = match &opened {
            Ok(l) => Ok(l.clone()),
            Err(e) => Err(e.to_string()),
        };
        loaded.insert(entry.name.clone(), remembered);
        opened
    }

    fn chat_settings(&self, entry: &Entry) -> Result<ChatSettings> {
        let generation = self.catalog.generation(entry);
        let prompts = self
            .catalog
            .prompts(entry)
            .cloned()
            .ok_or_else(|| Error::model(&entry.name, "a gguf-chat model needs a prompt set"))?;
        Ok(ChatSettings {
            prompts,
            sampling: SamplingConfig {
                temperature: generation.temperature.unwrap_or(0.0),
                top_p: generation.top_p,
                top_k: generation.top_k,
                seed: generation.seed.unwrap_or(0),
                repeat_penalty: generation.repeat_penalty.unwrap_or(1.0),
                repeat_guard: generation.repeat_guard.unwrap_or(true),
                max_new_tokens: generation.max_new_tokens.unwrap_or(1024),
            },
            context: generation.context.unwrap_or(DEFAULT_CONTEXT),
            context_paragraphs: generation.context_paragraphs.unwrap_or(1),
            window_tokens: generation.window_tokens.unwrap_or(DEFAULT_WINDOW_TOKENS),
            template: entry.template,
            batch: self.batch,
        })
    }

    fn open(&self, entry: &Entry) -> Result<Loaded> {
        // A hub error already names the model.
        let files = hub::resolve(entry, self.access).map_err(Error::msg)?;
        let model_path = files
            .get("model")
            .ok_or_else(|| Error::model(&entry.name, "the catalog entry names no `model` file"))?;
        tracing::info!(model = %entry.name, path = %model_path.display(), "loading");
        let seq2seq_files = || {
            Seq2SeqFiles::from_roles(&files).map_err(|e| Error::model(&entry.name, e.to_string()))
        };
        let kind = match self.weights(entry) {
            Weights::F32 => LinearKind::F32,
            Weights::Int8 => LinearKind::Int8,
        };
        let device = &self.device;
        let summarizer = |mut m: Seq2SeqSummarizer| {
            override_generation(&mut m.generation, &entry.generation);
            Loaded::Summarizer(Arc::new(m))
        };
        Ok(match entry.family {
            Family::GgufChat => {
                let settings = self.chat_settings(entry)?;
                Loaded::Chat(Arc::new(GgufChat::load(
                    &entry.name,
                    model_path,
                    settings,
                    device,
                )?))
            }
            Family::Marian => {
                let mut m = seq2seq::load_marian_translator(&seq2seq_files()?, kind, device)?;
                override_generation(&mut m.generation, &entry.generation);
                if self.pool.tokens > 0 {
                    let callers = self.concurrent_calls.load(std::sync::atomic::Ordering::Relaxed);
                    m = m.pooled(super::pool::Budget {
                        callers,
                        ..self.pool
                    })?;
                }
                Loaded::Marian(Arc::new(m))
            }
            Family::Bart => {
                summarizer(seq2seq::load_bart_summarizer(&seq2seq_files()?, kind, device)?)
            }
            Family::T5 => summarizer(seq2seq::load_t5_summarizer(&seq2seq_files()?, kind, device)?),
        })
    }

    pub fn translator(&self, entry: &Entry) -> Result<Arc<dyn Translator>> {
        match self.load(entry)? {
            Loaded::Chat(m) => Ok(m),
            Loaded::Marian(m) => Ok(m),
            Loaded::Summarizer(_) => Err(Error::model(
                &entry.name,
                format!(
                    "a {} model writes briefs; it cannot translate",
                    entry.family
                ),
            )),
        }
    }

    pub fn summarizer(&self, entry: &Entry) -> Result<Arc<dyn Summarizer>> {
        match self.load(entry)? {
            Loaded::Chat(m) => Ok(m),
            Loaded::Summarizer(m) => Ok(m),
            Loaded::Marian(_) => Err(Error::model(
                &entry.name,
                "a marian model translates; it cannot write briefs",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn loader_with(entries: &str) -> Loader {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seq2seq");
        let mut catalog = Catalog::default();
        catalog
            .add_str(crate::catalog::BUILTIN, "built-in")
            .unwrap();
        let text = entries.replace("FIXTURES", &dir.display().to_string());
        catalog.add_str(&text, "test").unwrap();
        Loader::new(catalog, Access::Offline, Device::Cpu)
    }

    /// One catalog entry serving both tasks; `extra` is appended (a `generation` line).
    fn entry(name: &str, family: &str, fixture: &str, files: &str, extra: &str) -> String {
        format!(
            "[models.{name}]\ndescription = \"d\"\nfamily = \"{family}\"\n\
             tasks = [\"translate\", \"brief\"]\npath = \"FIXTURES/{fixture}\"\n\
             files = {files}\n{extra}\n"
        )
    }

    const MARIAN_FILES: &str = r#"{ config = "config.json", generation_config = "generation_config.json", model = "model.safetensors", source_spm = "source.spm", vocab = "vocab.json" }"#;

    #[test]
    fn a_model_that_fails_to_open_is_not_tried_again() {
        let loader = loader_with(&entry(
            "gone",
            "marian",
            "no-such-fixture",
            MARIAN_FILES,
            "",
        ));
        let e = loader.catalog().get("gone").unwrap();
        let first = loader.translator(e).err().unwrap().to_string();
        assert!(first.contains("no-such-fixture"), "{first}");
        // Asked again (by the next document), it is not retried: the first failure comes back.
        let second = loader.translator(e).err().unwrap().to_string();
        assert_eq!(first, second);
    }

    #[test]
    fn entry_settings_override_generation_config_only_when_set() {
        let entries = entry("plain", "marian", "marian", MARIAN_FILES, "")
            + &entry(
                "tuned",
                "marian",
                "marian",
                MARIAN_FILES,
                "generation = { num_beams = 1, max_new_tokens = 7 }",
            );
        let loader = loader_with(&entries);
        let get = |name: &str| {
            let entry = loader.catalog().get(name).unwrap();
            match loader.load(entry).unwrap() {
                Loaded::Marian(m) => m.generation.clone(),
                _ => panic!("{name} is a Marian model"),
            }
        };
        // The fixture's generation_config.json says beam 4 and no max_new_tokens; the
        // catalog-wide max_new_tokens (for chat models) does not apply.
        let plain = get("plain");
        assert_eq!(plain.num_beams, 4);
        assert_eq!(plain.max_new_tokens, None);
        assert_eq!(plain.max_length, 64);
        let tuned = get("tuned");
        assert_eq!(tuned.num_beams, 1);
        assert_eq!(tuned.max_new_tokens, Some(7));
        assert_eq!(tuned.max_length, 8, "the start token plus 7");
    }

    #[test]
    fn families_serve_only_their_task() {
        let bart_files = r#"{ config = "config.json", model = "model.safetensors", tokenizer = "tokenizer.json" }"#;
        let t5_files = r#"{ model = "model.safetensors", tokenizer = "tokenizer.json" }"#;
        let entries = entry("m", "marian", "marian", MARIAN_FILES, "")
            + &entry("b", "bart", "bart", bart_files, "")
            + &entry("noconfig", "t5", "flan-t5", t5_files, "");
        let loader = loader_with(&entries);
        let entry = |name: &str| loader.catalog().get(name).unwrap().clone();
        assert!(loader.translator(&entry("m")).is_ok());
        let err = loader.summarizer(&entry("m")).err().unwrap().to_string();
        assert!(err.contains("cannot write briefs"), "{err}");
        assert!(loader.summarizer(&entry("b")).is_ok());
        let err = loader.translator(&entry("b")).err().unwrap().to_string();
        assert!(err.contains("cannot translate"), "{err}");
        let err = loader
            .summarizer(&entry("noconfig"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("config"), "{err}");
    }
}
