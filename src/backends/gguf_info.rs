//! What a GGUF file says about itself, read from its header without loading any weight: the
//! architecture (and whether transbrief runs it), the file's size, its quantization, whether it
//! carries a chat template and which template the chat backend would render (the file's own or a
//! built-in one, compiled and tried as at load), and its context length. For `transbrief models
//! info`.
//!
//! The header is read with candle's `gguf_file::Content::read`, as the chat backend reads it;
//! a file whose tensor data ends past the end of the file is reported as truncated, so that a
//! half-downloaded model is caught here rather than at load.
//!
//! Not for: loading the model (`super::chat`), or finding the file (`crate::hub`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::GgmlDType;

use super::chat_template::ChatTemplate;
use crate::catalog::BuiltinTemplate;
use crate::models;
use crate::tokenizers::gguf::GgufTokenizer;
use crate::{Error, Result};

/// The header of one GGUF file, summarized.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufInfo {
    pub path: PathBuf,
    /// `general.architecture` (empty when the file has none).
    pub architecture: String,
    /// The families transbrief runs with this architecture, or why it does not run it.
    pub supported: std::result::Result<&'static str, String>,
    /// `general.name`, when given.
    pub model_name: Option<String>,
    /// Bytes on disk.
    pub file_size: u64,
    /// `general.file_type` (llama.cpp's `llama_ftype`), when given.
    pub file_type: Option<u64>,
    /// How many tensors have each block type, by llama.cpp's name of the type (`Q4_K`, `F32`).
    pub tensor_types: BTreeMap<&'static str, usize>,
    /// The length in bytes of `tokenizer.chat_template`, when the file has one.
    pub chat_template: Option<usize>,
    /// The template the chat backend would use (`the file's own ...`, `built-in gemma`), or why
    /// it has none that renders.
    pub template: std::result::Result<String, String>,
    /// `<architecture>.context_length`, when given.
    pub context_length: Option<u64>,
}

impl GgufInfo {
    /// The quantization as llama.cpp names it: the name of `general.file_type` (`Q4_K_M`),
    /// else the commonest block type among the tensors.
    pub fn quantization(&self) -> String {
        match self.file_type {
            Some(t) => match file_type_name(t) {
                Some(name) => format!("{name} (general.file_type {t})"),
                None => format!("general.file_type {t}"),
            },
            None => self
                .tensor_types
                .iter()
                .max_by_key(|(name, count)| (**count, std::cmp::Reverse(**name)))
                .map_or("no tensors".to_string(), |(name, _)| {
                    format!("{name} (most tensors; no general.file_type)")
                }),
        }
    }

    /// The block types with their tensor counts, most frequent first: `Q4_K: 145, F32: 121`.
    pub fn tensor_type_counts(&self) -> String {
        let mut counts: Vec<(&&str, &usize)> = self.tensor_types.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads the header of the GGUF file at `path`; `template` is the catalog entry's built-in chat
/// template, if it names one. A file that cannot be read, is not GGUF, or is shorter than its
/// tensors say, is an error naming it.
pub fn inspect(path: &Path, template: Option<BuiltinTemplate>) -> Result<GgufInfo> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::input(
            path,
            format!("{what}: {e}. The file may be truncated or not a GGUF model"),
        )
    };
    let mut file = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
    let file_size = file.metadata().map_err(|e| Error::input(path, e))?.len();
    let content = read_header(&mut file).map_err(|e| match e {
        HeaderError::UnsupportedType(why) => Error::input(path, why),
        HeaderError::Unreadable(e) => bad("cannot read the GGUF header", &e),
    })?;
    let data_end = content
        .tensor_infos
        .values()
        .map(|t| {
            let bytes = t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size();
            t.offset.saturating_add(bytes as u64)
        })
        .max()
        .unwrap_or(0)
        .saturating_add(content.tensor_data_offset);
    if data_end > file_size {
        return Err(Error::input(
            path,
            format!(
                "truncated: its tensors end at byte {data_end}, but the file has {file_size} \
                 bytes. Delete it and fetch it again"
            ),
        ));
    }
    let mut tensor_types = BTreeMap::new();
    for t in content.tensor_infos.values() {
        *tensor_types.entry(dtype_name(t.ggml_dtype)).or_insert(0) += 1;
    }
    let architecture = models::architecture_name(&content);
    let metadata = &content.metadata;
    let string = |key: &str| metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
    let chat = GgufTokenizer::from_gguf(&content)
        .map_err(|e| format!("the tokenizer cannot be built: {e}"))
        .and_then(|tok| ChatTemplate::load(&architecture, &tok, template))
        .map(|t| t.source().to_string());
    Ok(GgufInfo {
        path: path.to_path_buf(),
        supported: models::architecture_of(&content).map(|a| a.families),
        model_name: string("general.name"),
        file_size,
        file_type: metadata.get("general.file_type").and_then(integer),
        tensor_types,
        chat_template: string("tokenizer.chat_template").map(|t| t.len()),
        template: chat,
        context_length: metadata
            .get(&format!("{architecture}.context_length"))
            .and_then(integer),
        architecture,
    })
}

/// Why a GGUF header could not be read.
#[derive(Debug)]
pub enum HeaderError {
    /// A tensor has a block type transbrief has no kernel for; the text names it and says what
    /// to use instead.
    UnsupportedType(String),
    /// Anything else: not GGUF, truncated, unreadable.
    Unreadable(candle_core::Error),
}

/// Reads the header of an open GGUF file with candle's reader, telling a block type that
/// transbrief cannot run (the i-quants, ternary and MXFP4 types of newer llama.cpp files) apart
/// from a file that is broken.
pub fn read_header(file: &mut std::fs::File) -> std::result::Result<gguf_file::Content, HeaderError> {
    gguf_file::Content::read(file).map_err(|e| {
        // candle refuses such a tensor with "unknown dtype for tensor N", N being ggml's type id.
        let text = e.to_string();
        const REFUSAL: &str = "unknown dtype for tensor ";
        let id = text.find(REFUSAL).and_then(|at| {
            let digits: String = text[at + REFUSAL.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u32>().ok()
        });
        match id {
            Some(id) => HeaderError::UnsupportedType(format!(
                "a tensor has block type {} (ggml type {id}), which transbrief has no kernel for \
                 (it runs F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K to Q6_K). Use \
                 another quantization of the same model, such as Q4_K_M or Q8_0",
                ggml_type_name(id).unwrap_or("unknown")
            )),
            None => HeaderError::Unreadable(e),
        }
    })
}

/// llama.cpp's name of a ggml block type id that candle does not read (`enum ggml_type`).
fn ggml_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return None,
    })
}

/// A metadata value of any unsigned or non-negative integer type.
fn integer(v: &Value) -> Option<u64> {
    match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

/// llama.cpp's name of a block type.
fn dtype_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// llama.cpp's name of a `general.file_type` (`enum llama_ftype` in llama.h).
fn file_type_name(t: u64) -> Option<&'static str> {
    Some(match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        crate::testkit::write_tiny_qwen2_gguf(&path, 7).unwrap();
        (dir, path)
    }

    #[test]
    fn the_tiny_model_is_described_from_its_header() {
        let (_dir, path) = tiny();
        let info = inspect(&path, None).unwrap();
        assert_eq!(info.architecture, "qwen2");
        assert!(info.supported.is_ok(), "{:?}", info.supported);
        assert_eq!(info.file_size, std::fs::metadata(&path).unwrap().len());
        assert_eq!(info.file_type, Some(7));
        assert_eq!(info.quantization(), "Q8_0 (general.file_type 7)");
        assert!(info.tensor_types.contains_key("Q8_0"), "{info:?}");
        assert!(info.tensor_types.contains_key("F32"), "{info:?}");
        assert_eq!(
            info.chat_template,
            Some(crate::testkit::TINY_CHAT_TEMPLATE.len())
        );
        assert_eq!(
            info.template.as_deref(),
            Ok("the file's own")
        );
        let info = inspect(&path, Some(BuiltinTemplate::Phi3)).unwrap();
        assert_eq!(info.template.as_deref(), Ok("built-in phi3"));
        assert_eq!(
            info.context_length,
            Some(crate::testkit::TINY_CONTEXT as u64)
        );
    }

    /// A GGUF file (version 3) with one metadata pair and one 32x2 tensor of ggml type
    /// `dtype`, its data zeroed.
    fn one_tensor_gguf(path: &Path, dtype: u32, data_bytes: usize) {
        let mut b = Vec::new();
        let string = |b: &mut Vec<u8>, s: &str| {
            b.extend((s.len() as u64).to_le_bytes());
            b.extend(s.as_bytes());
        };
        b.extend(b"GGUF");
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes()); // tensors
        b.extend(1u64.to_le_bytes()); // metadata pairs
        string(&mut b, "general.architecture");
        b.extend(8u32.to_le_bytes()); // string
        string(&mut b, "llama");
        string(&mut b, "token_embd.weight");
        b.extend(2u32.to_le_bytes());
        b.extend(32u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(dtype.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        while b.len() % 32 != 0 {
            b.push(0);
        }
        b.extend(vec![0u8; data_bytes]);
        std::fs::write(path, b).unwrap();
    }

    /// An i-quant tensor (IQ4_XS, ggml type 23) is refused with its name and what to use
    /// instead, not as a broken file; the same file with a Q8_0 tensor reads.
    #[test]
    fn a_block_type_without_a_kernel_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let iq = dir.path().join("iq4.gguf");
        one_tensor_gguf(&iq, 23, 2 * 136);
        let err = inspect(&iq, None).unwrap_err().to_string();
        assert!(err.contains("iq4.gguf"), "{err}");
        assert!(err.contains("IQ4_XS (ggml type 23)"), "{err}");
        assert!(err.contains("Q4_K_M"), "{err}");
        assert!(!err.contains("truncated"), "{err}");
        let q8 = dir.path().join("q8.gguf");
        one_tensor_gguf(&q8, 8, 2 * 34);
        let info = inspect(&q8, None).unwrap();
        assert_eq!(info.tensor_type_counts(), "Q8_0: 1");
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let (dir, path) = tiny();
        let bytes = std::fs::read(&path).unwrap();
        // Cut in the tensor data: the header still reads, the data does not fit.
        let cut = dir.path().join("cut.gguf");
        std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
        let err = inspect(&cut, None).unwrap_err().to_string();
        assert!(err.contains("cut.gguf") && err.contains("truncated"), "{err}");
        // Cut in the header.
        std::fs::write(&cut, &bytes[..200]).unwrap();
        let err = inspect(&cut, None).unwrap_err().to_string();
        assert!(err.contains("cut.gguf") && err.contains("GGUF header"), "{err}");
        // Not GGUF at all.
        std::fs::write(&cut, b"hello, not a model").unwrap();
        let err = inspect(&cut, None).unwrap_err().to_string();
        assert!(err.contains("cut.gguf"), "{err}");
    }

    #[test]
    fn without_a_file_type_the_commonest_block_type_is_the_quantization() {
        let (_dir, path) = tiny();
        let mut info = inspect(&path, None).unwrap();
        info.file_type = None;
        info.tensor_types = BTreeMap::from([("F32", 3), ("Q4_K", 5), ("Q6_K", 1)]);
        assert_eq!(
            info.quantization(),
            "Q4_K (most tensors; no general.file_type)"
        );
        assert_eq!(info.tensor_type_counts(), "Q4_K: 5, F32: 3, Q6_K: 1");
        info.file_type = Some(15);
        assert_eq!(info.quantization(), "Q4_K_M (general.file_type 15)");
    }
}
