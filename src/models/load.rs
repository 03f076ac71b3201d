//! From a catalog entry to a loaded backend: resolves the files (`hub`), opens them with the
//! family's loader, and keeps each model loaded once per process, so a model that both
//! translates and writes briefs is in memory once.
//!
//! Not for: what the models do (the backends) or where files come from (`hub`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::Device;

use crate::catalog::{Catalog, Entry, Family, Task};
use crate::generate::sampling::SamplingConfig;
use crate::hub::{self, Access};
use crate::models::gguf_chat::{ChatSettings, GgufChat};
use crate::models::{Summarizer, Translator};
use crate::{Error, Result};

/// Context used when neither the entry nor the catalog sets one.
const DEFAULT_CONTEXT: usize = 8192;

#[derive(Clone)]
enum Loaded {
    Chat(Arc<GgufChat>),
}

/// Loads models on first use and hands out shared backends.
pub struct Loader {
    catalog: Catalog,
    access: Access,
    device: Device,
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl Loader {
    pub fn new(catalog: Catalog, access: Access, device: Device) -> Self {
        Self {
            catalog,
            access,
            device,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The entry that serves `task`: `name`, or the catalog default.
    pub fn entry(&self, task: Task, name: Option<&str>) -> Result<&Entry> {
        self.catalog
            .for_task(task, name)
            .map_err(|e| Error::msg(e.to_string()))
    }

    /// Everything about a model that changes its outputs, as one stable string: the entry
    /// (source, files, hashes), its resolved generation settings and its prompts. Part of each
    /// output's fingerprint.
    pub fn identity(&self, entry: &Entry) -> String {
        let generation = self.catalog.generation(entry);
        let prompts = self.catalog.prompts(entry);
        serde_json::json!({
            "name": entry.name,
            "family": entry.family.to_string(),
            "source": entry.source,
            "files": entry.files,
            "sha256": entry.sha256,
            "generation": generation,
            "prompts": prompts,
        })
        .to_string()
    }

    fn load(&self, entry: &Entry) -> Result<Loaded> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| Error::msg("model loader poisoned by an earlier panic"))?;
        if let Some(l) = loaded.get(&entry.name) {
            return Ok(l.clone());
        }
        let files =
            hub::resolve(entry, self.access).map_err(|e| Error::model(&entry.name, e))?;
        let model_path = files
            .get("model")
            .ok_or_else(|| Error::model(&entry.name, "the catalog entry names no `model` file"))?;
        let generation = self.catalog.generation(entry);
        let l = match entry.family {
            Family::GgufChat => {
                let prompts = self.catalog.prompts(entry).cloned().ok_or_else(|| {
                    Error::model(&entry.name, "a gguf-chat model needs a prompt set")
                })?;
                let settings = ChatSettings {
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
                    context_paragraphs: 1,
                };
                tracing::info!(model = %entry.name, path = %model_path.display(), "loading");
                Loaded::Chat(Arc::new(GgufChat::load(
                    &entry.name,
                    model_path,
                    settings,
                    &self.device,
                )?))
            }
            family => {
                return Err(Error::model(
                    &entry.name,
                    format!("the {family} family is not available in this build"),
                ))
            }
        };
        loaded.insert(entry.name.clone(), l.clone());
        Ok(l)
    }

    pub fn translator(&self, entry: &Entry) -> Result<Arc<dyn Translator>> {
        match self.load(entry)? {
            Loaded::Chat(m) => Ok(m),
        }
    }

    pub fn summarizer(&self, entry: &Entry) -> Result<Arc<dyn Summarizer>> {
        match self.load(entry)? {
            Loaded::Chat(m) => Ok(m),
        }
    }
}
