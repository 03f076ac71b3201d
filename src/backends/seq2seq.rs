//! The seq2seq backends: Marian as a [`Translator`], BART and T5 as [`Summarizer`]s, each a
//! loaded model plus its tokenizer and generation settings, with a loader per family that takes
//! the model's files ([`Seq2SeqFiles`]).
//!
//! Translation goes sentence by sentence (opus-mt models are trained on sentences): paragraphs are
//! split, all their sentences are tokenized, sorted by length and generated in batches, then
//! joined back into one line per paragraph. A sentence's translation does not depend on its batch
//! (the generation engine guarantees it), so sorting changes speed, never output. In a folder
//! run, the sentences of all documents in flight are pooled (`super::pool`).
//!
//! Not for: finding or downloading files (`hub`, `catalog`), splitting documents into paragraphs
//! or chunks (`text`), or shaping briefs (`pipeline`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::models::bart::{self, BartForConditionalGeneration};
use crate::nn::linear::LinearKind;
use crate::tokenizers::hf;
use crate::tokenizers::marian::MarianTokenizer;
use crate::models::t5::{self, T5ForConditionalGeneration};
use super::pool::{Budget, PoolStats, Seq2seqPool};
use super::{Output, Summarizer, SummaryInput, Translator, Usage};
use crate::generate::{generate, EncoderDecoder, GenerationConfig};
use crate::{Error, Result};

/// Sentences translated per generation batch.
const TRANSLATION_BATCH: usize = 16;

/// The files of one seq2seq model. Marian needs `source_spm` and `vocab`; T5 needs
/// `tokenizer_json`; BART needs `tokenizer_json`, or else `vocab` and `merges` (older repos such
/// as distilbart-cnn-*). `generation_config` is optional (settings then come from `config.json`).
#[derive(Debug, Clone, Default)]
pub struct Seq2SeqFiles {
    pub config: PathBuf,
    pub generation_config: Option<PathBuf>,
    /// One or more `.safetensors` files.
    pub weights: Vec<PathBuf>,
    pub source_spm: Option<PathBuf>,
    pub target_spm: Option<PathBuf>,
    /// Marian's piece-to-id map, or BART's byte-level BPE vocabulary.
    pub vocab: Option<PathBuf>,
    /// BART's BPE merges (`merges.txt`).
    pub merges: Option<PathBuf>,
    pub tokenizer_json: Option<PathBuf>,
}

impl Seq2SeqFiles {
    /// The files of a model saved in one directory with transformers' usual names, those present.
    pub fn from_dir(dir: &Path) -> Self {
        let some = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        Self {
            config: dir.join("config.json"),
            generation_config: some("generation_config.json"),
            weights: vec![dir.join("model.safetensors")],
            source_spm: some("source.spm"),
            target_spm: some("target.spm"),
            vocab: some("vocab.json"),
            merges: some("merges.txt"),
            tokenizer_json: some("tokenizer.json"),
        }
    }

    /// The files of a catalog entry, by the roles `hub` resolved: `config`, `generation_config`,
    /// `model` (one `.safetensors` file), `source_spm`, `target_spm`, `vocab`, `merges` and
    /// `tokenizer` (a `tokenizer.json`). `config` is required; the family's loader says which
    /// others it needs.
    pub fn from_roles(files: &crate::hub::ResolvedFiles) -> Result<Self> {
        let role = |name: &str| files.get(name).map(Path::to_path_buf);
        let config = role("config").ok_or_else(|| {
            Error::msg("a seq2seq catalog entry needs a `config` file (config.json)")
        })?;
        Ok(Self {
            config,
            generation_config: role("generation_config"),
            weights: role("model").into_iter().collect(),
            source_spm: role("source_spm"),
            target_spm: role("target_spm"),
            vocab: role("vocab"),
            merges: role("merges"),
            tokenizer_json: role("tokenizer"),
        })
    }

    fn name(&self) -> String {
        self.config
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn required<'a>(&self, file: &'a Option<PathBuf>, what: &str) -> Result<&'a PathBuf> {
        file.as_ref()
            .ok_or_else(|| Error::model(self.name(), format!("missing {what}")))
    }

    fn read_config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let text = std::fs::read_to_string(&self.config)
            .map_err(|e| Error::model(self.name(), format!("{}: {e}", self.config.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::model(self.name(), format!("{}: {e}", self.config.display())))
    }

    fn var_builder(&self, device: &Device) -> Result<VarBuilder<'static>> {
        if self.weights.is_empty() {
            return Err(Error::model(self.name(), "no weight files"));
        }
        crate::nn::weights::var_builder(&self.weights, DType::F32, device)
            .map_err(|e| Error::model(self.name(), e.to_string()))
    }

    fn generation(&self) -> Result<GenerationConfig> {
        GenerationConfig::from_files(self.generation_config.as_deref(), &self.config)
    }
}

/// The sentences of a paragraph, trimmed, as `text::segment` splits French text; blank ones
/// are dropped.
fn sentences(text: &str) -> Vec<&str> {
    crate::text::segment::sentences(text)
        .into_iter()
        .map(|span| text[span].trim())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One line of text: newlines and runs of whitespace become single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Keeps at most `max` ids, the last one (EOS) included.
fn truncate_keeping_last(ids: &mut Vec<u32>, max: usize) {
    if ids.len() > max && max > 0 {
        let last = ids[ids.len() - 1];
        ids.truncate(max - 1);
        ids.push(last);
    }
}

/// A Marian (opus-mt) model as a [`Translator`].
pub struct MarianTranslator {
    model: Arc<BartForConditionalGeneration>,
    tokenizer: MarianTokenizer,
    /// Generation settings; `generation_config.json`'s by default (opus-mt: beam 4). Set them
    /// before [`MarianTranslator::pooled`], which hands a copy to the pool.
    pub generation: GenerationConfig,
    max_source_tokens: usize,
    /// The sentences of concurrent calls generated together ([`MarianTranslator::pooled`]).
    pool: Option<Seq2seqPool>,
}

impl MarianTranslator {
    /// Pools the sentences of concurrent calls (the documents in flight) into shared batches
    /// of at most `budget`, through one engine thread ([`Seq2seqPool`]), with the generation
    /// settings as they are now. Outputs are the same as without pooling.
    pub fn pooled(mut self, budget: Budget) -> Result<Self> {
        self.pool = Some(Seq2seqPool::new(
            self.model.clone(),
            self.generation.clone(),
            budget,
        )?);
        Ok(self)
    }

    /// What the pool has done, when the sentences are pooled.
    pub fn pool_stats(&self) -> Option<(Budget, PoolStats)> {
        self.pool.as_ref().map(|p| (p.budget(), p.stats()))
    }

    /// Translates single sentences (or short texts), batched; one output per input.
    pub fn translate_sentences(&self, sentences: &[&str]) -> Result<Output<Vec<String>>> {
        let mut usage = Usage::default();
        let mut inputs = Vec::with_capacity(sentences.len());
        for s in sentences {
            let mut ids = self.tokenizer.encode(s)?;
            truncate_keeping_last(&mut ids, self.max_source_tokens);
            usage.input_tokens += ids.len() as u64;
            inputs.push(ids);
        }
        let generated = match &self.pool {
            Some(pool) => pool.generate(inputs)?,
            None => self.generate_sorted(&inputs)?,
        };
        let value = (generated.iter())
            .map(|ids| {
                usage.output_tokens += ids.len() as u64;
                one_line(&self.tokenizer.decode(ids))
            })
            .collect();
        Ok(Output { value, usage })
    }

    /// One output per input, in order: the inputs sorted longest first (so that each batch
    /// pads little) and generated [`TRANSLATION_BATCH`] at a time.
    fn generate_sorted(&self, inputs: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(inputs[i].len()));
        let mut out = vec![Vec::new(); inputs.len()];
        for chunk in order.chunks(TRANSLATION_BATCH) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| inputs[i].clone()).collect();
            let generated = generate(self.model.as_ref(), &batch, &self.generation)?;
            for (&i, ids) in chunk.iter().zip(generated) {
                out[i] = ids;
            }
        }
        Ok(out)
    }
}

impl Translator for MarianTranslator {
    fn translate(&self, paragraphs: &[&str]) -> Result<Output<Vec<String>>> {
        let split: Vec<Vec<&str>> = paragraphs.iter().copied().map(sentences).collect();
        let flat: Vec<&str> = split.iter().flatten().copied().collect();
        let translated = self.translate_sentences(&flat)?;
        let mut parts = translated.value.into_iter();
        let value = split
            .iter()
            .map(|sents| {
                let joined: Vec<String> = parts.by_ref().take(sents.len()).collect();
                one_line(&joined.join(" "))
            })
            .collect();
        Ok(Output {
            value,
            usage: translated.usage,
        })
    }
}

/// Loads a Marian (opus-mt) model and its spm tokenizer as a [`Translator`], with its linear
/// layers held as `weights`.
pub fn load_marian(
    files: &Seq2SeqFiles,
    weights: LinearKind,
    device: &Device,
) -> Result<Arc<dyn Translator>> {
    Ok(Arc::new(load_marian_translator(files, weights, device)?))
}

/// [`load_marian`], keeping the concrete type (for tests and examples).
pub fn load_marian_translator(
    files: &Seq2SeqFiles,
    weights: LinearKind,
    device: &Device,
) -> Result<MarianTranslator> {
    let cfg: bart::Config = files.read_config()?;
    if cfg.model_type != "marian" {
        return Err(Error::model(
            files.name(),
            format!("not a Marian model ({})", cfg.model_type),
        ));
    }
    if !cfg.share_encoder_decoder_embeddings || cfg.target_vocab() != cfg.vocab_size {
        return Err(Error::model(
            files.name(),
            "this Marian model has a separate target vocabulary (target.spm with its own ids), \
             which is not supported: only opus-mt models with one shared vocab.json load",
        ));
    }
    let tokenizer = MarianTokenizer::from_files(
        files.required(&files.source_spm, "source.spm")?,
        files.required(&files.vocab, "vocab.json")?,
    )?;
    Ok(MarianTranslator {
        model: Arc::new(BartForConditionalGeneration::new_with(
            &cfg,
            files.var_builder(device)?,
            weights,
        )?),
        tokenizer,
        generation: files.generation()?,
        max_source_tokens: cfg.max_position_embeddings,
        pool: None,
    })
}

/// A BART or T5 model as a [`Summarizer`].
pub struct Seq2SeqSummarizer {
    model: Box<dyn EncoderDecoder>,
    tokenizer: tokenizers::Tokenizer,
    /// Text put before the input ("summarize: " for T5).
    prefix: &'static str,
    max_input_tokens: usize,
    /// Generation settings; `generation_config.json`'s by default.
    pub generation: GenerationConfig,
}

impl Seq2SeqSummarizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let input = format!("{}{}", self.prefix, text);
        let encoding = self
            .tokenizer
            .encode(input, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Summarizes several texts in one batch; one summary per input.
    pub fn summarize_batch(&self, texts: &[&str]) -> Result<Output<Vec<String>>> {
        let mut usage = Usage::default();
        let mut inputs = Vec::with_capacity(texts.len());
        for t in texts {
            let mut ids = self.encode(t)?;
            truncate_keeping_last(&mut ids, self.max_input_tokens);
            usage.input_tokens += ids.len() as u64;
            inputs.push(ids);
        }
        let generated = generate(self.model.as_ref(), &inputs, &self.generation)?;
        let mut value = Vec::with_capacity(generated.len());
        for ids in generated {
            usage.output_tokens += ids.len() as u64;
            let text = self
                .tokenizer
                .decode(&ids, true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            value.push(text.trim().to_string());
        }
        Ok(Output { value, usage })
    }
}

impl Summarizer for Seq2SeqSummarizer {
    fn max_input_tokens(&self) -> usize {
        self.max_input_tokens
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text)?.len())
    }

    fn summarize(&self, text: &str, _input: SummaryInput) -> Result<Output<String>> {
        let out = self.summarize_batch(&[text])?;
        let value = out.value.into_iter().next().unwrap_or_default();
        Ok(Output {
            value,
            usage: out.usage,
        })
    }
}

/// Loads a BART-family summarizer (bart-large-cnn, distilbart-cnn-*).
pub fn load_bart(
    files: &Seq2SeqFiles,
    weights: LinearKind,
    device: &Device,
) -> Result<Arc<dyn Summarizer>> {
    Ok(Arc::new(load_bart_summarizer(files, weights, device)?))
}

/// [`load_bart`], keeping the concrete type.
pub fn load_bart_summarizer(
    files: &Seq2SeqFiles,
    weights: LinearKind,
    device: &Device,
) -> Result<Seq2SeqSummarizer> {
    let cfg: bart::Config = files.read_config()?;
    Ok(Seq2SeqSummarizer {
        model: Box::new(BartForConditionalGeneration::new_with(
            &cfg,
            files.var_builder(device)?,
            weights,
        )?),
        tokenizer: match (&files.tokenizer_json, &files.vocab, &files.merges) {
            (None, Some(vocab), Some(merges)) => hf::bart_bpe_tokenizer(vocab, merges)?,
            _ => hf::tokenizer_json(files.required(&files.tokenizer_json, "tokenizer.json")?)?,
        },
        prefix: "",
        max_input_tokens: cfg.max_position_embeddings.min(1024),
        generation: files.generation()?,
    })
}

/// Loads a T5-family summarizer (t5-*, flan-t5-*), prompting with "summarize: ".
pub fn load_t5(
    files: &Seq2SeqFiles,
    weights: LinearKind,
    device: &Device,
) -> Result<Arc<dyn Summarizer>> {
    Ok(Arc::new(load_t5_summarizer(files, weights, device)?))
}

/// [`load_t5`], keeping the concrete type.
pub fn load_t5_summarizer(
    files: &Seq2SeqFiles,
    weights: LinearKind,
    device: &Device,
) -> Result<Seq2SeqSummarizer> {
    let cfg: t5::Config = files.read_config()?;
    Ok(Seq2SeqSummarizer {
        model: Box::new(T5ForConditionalGeneration::new_with(
            &cfg,
            files.var_builder(device)?,
            weights,
        )?),
        tokenizer: hf::tokenizer_json(files.required(&files.tokenizer_json, "tokenizer.json")?)?,
        prefix: "summarize: ",
        max_input_tokens: 512,
        generation: files.generation()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_trimmed_and_cover_every_word() {
        let text = "  Il a dit « non. » Puis il est parti !  Et après ?\n";
        assert_eq!(
            sentences(text),
            vec!["Il a dit « non. »", "Puis il est parti !", "Et après ?"]
        );
        let text = "M. Dupont a payé 3,5 euros. Le 12 mai, il est revenu.";
        let got = sentences(text);
        assert_eq!(got.join(" "), text, "{got:?}");
        assert!(sentences(" \n ").is_empty());
    }

    #[test]
    fn marian_with_a_separate_target_vocabulary_is_refused() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seq2seq/marian");
        let tmp = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(&src).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
        }
        let files = Seq2SeqFiles::from_dir(tmp.path());
        assert!(load_marian_translator(&files, LinearKind::F32, &Device::Cpu).is_ok());
        let config = tmp.path().join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        cfg["share_encoder_decoder_embeddings"] = false.into();
        std::fs::write(&config, cfg.to_string()).unwrap();
        let err = load_marian_translator(&files, LinearKind::F32, &Device::Cpu).err().unwrap();
        assert!(
            err.to_string().contains("separate target vocabulary"),
            "{err}"
        );
    }

    #[test]
    fn truncation_keeps_the_final_token() {
        let mut ids = vec![5, 6, 7, 8, 0];
        truncate_keeping_last(&mut ids, 3);
        assert_eq!(ids, vec![5, 6, 0]);
    }
}
