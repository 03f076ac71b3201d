//! Reading `.safetensors` weight files into a candle `VarBuilder`, one tensor at a time with
//! positioned reads, instead of memory-mapping the whole file.
//!
//! Why not candle's mmap loader: CPU tensors own their data, so every tensor is copied out of
//! the mapping, and the mapped pages stay resident (and counted in the process' memory) until
//! the whole mapping goes away: loading peaks at twice the model's size. Reading each tensor
//! into its own buffer peaks at the model plus one tensor, and needs no `unsafe`.
//!
//! Not for: GGUF files (`models::qwen2` reads those), or writing weights.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use serde::Deserialize;

/// Where one tensor lies in which file.
#[derive(Debug)]
struct Entry {
    file: usize,
    /// The dtype, or the name of one this crate does not read.
    dtype: std::result::Result<DType, String>,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// The tensors of one or more safetensors files, read on demand.
#[derive(Debug)]
pub struct SafetensorsFiles {
    files: Vec<(PathBuf, File)>,
    tensors: HashMap<String, Entry>,
}

#[derive(Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

fn dtype_of(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "U32" => DType::U32,
        "U8" => DType::U8,
        _ => return None,
    })
}

impl SafetensorsFiles {
    /// Opens `paths` and reads their headers (not the tensors).
    pub fn open(paths: &[PathBuf]) -> candle_core::Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for (index, path) in paths.iter().enumerate() {
            let bad = |what: String| candle_core::Error::Msg(format!("{}: {what}", path.display()));
            let file = File::open(path).map_err(|e| bad(e.to_string()))?;
            let size = file.metadata().map_err(|e| bad(e.to_string()))?.len();
            let mut len = [0u8; 8];
            file.read_exact_at(&mut len, 0)
                .map_err(|_| bad("too short to be a safetensors file".into()))?;
            let header_len = u64::from_le_bytes(len);
            if header_len > 100 << 20 || 8 + header_len > size {
                return Err(bad(format!(
                    "not a safetensors file (header length {header_len}, file size {size})"
                )));
            }
            let mut header = vec![0u8; header_len as usize];
            file.read_exact_at(&mut header, 8)
                .map_err(|e| bad(e.to_string()))?;
            let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
                .map_err(|e| bad(format!("unreadable safetensors header: {e}")))?;
            let data_start = 8 + header_len;
            for (name, value) in header {
                if name == "__metadata__" {
                    continue;
                }
                let entry: HeaderEntry = serde_json::from_value(value)
                    .map_err(|e| bad(format!("tensor {name}: {e}")))?;
                let [from, to] = entry.data_offsets;
                let bounds = || {
                    bad(format!(
                        "tensor {name}: data out of bounds (truncated file?)"
                    ))
                };
                let start = data_start.checked_add(from).ok_or_else(bounds)?;
                let end = data_start.checked_add(to).ok_or_else(bounds)?;
                if from > to || end > size {
                    return Err(bounds());
                }
                // A dtype this crate cannot convert is an error only if the model reads the
                // tensor (see `read`).
                let dtype = dtype_of(&entry.dtype);
                if let Some(dtype) = dtype {
                    let want = entry
                        .shape
                        .iter()
                        .try_fold(dtype.size_in_bytes(), |acc, &d| acc.checked_mul(d));
                    if want != Some((to - from) as usize) {
                        return Err(bounds());
                    }
                }
                tensors.insert(
                    name,
                    Entry {
                        file: index,
                        dtype: dtype.ok_or(entry.dtype),
                        shape: entry.shape,
                        start,
                        end,
                    },
                );
            }
            files.push((path.clone(), file));
        }
        Ok(Self { files, tensors })
    }

    /// A `VarBuilder` over these files, converting tensors to `dtype` on `device`.
    pub fn var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }

    fn read(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let entry = self.tensors.get(name).ok_or_else(|| {
            candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()
        })?;
        let (path, file) = &self.files[entry.file];
        let stored = entry.dtype.clone().map_err(|d| {
            candle_core::Error::Msg(format!(
                "{}: tensor {name} has dtype {d}, which transbrief does not read",
                path.display()
            ))
        })?;
        let io =
            |e: std::io::Error| candle_core::Error::Msg(format!("{}: {name}: {e}", path.display()));
        let tensor = if stored == DType::F32 && device.is_cpu() && cfg!(target_endian = "little") {
            // Straight into the tensor's own buffer: no second copy of the weights.
            let mut data = vec![0f32; entry.shape.iter().product()];
            file.read_exact_at(bytemuck::cast_slice_mut(&mut data), entry.start)
                .map_err(io)?;
            Tensor::from_vec(data, entry.shape.as_slice(), device)?
        } else {
            let mut bytes = vec![0u8; (entry.end - entry.start) as usize];
            file.read_exact_at(&mut bytes, entry.start).map_err(io)?;
            Tensor::from_raw_buffer(&bytes, stored, &entry.shape, device)?
        };
        if tensor.dtype() == dtype {
            Ok(tensor)
        } else {
            tensor.to_dtype(dtype)
        }
    }
}

impl SimpleBackend for SafetensorsFiles {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.read(name, dtype, dev)?;
        if tensor.shape() != &s {
            Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: tensor.shape().clone(),
            }
            .bt())?
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.read(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// Opens `paths` as one `VarBuilder` of `dtype` tensors on `device`.
pub fn var_builder(
    paths: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> candle_core::Result<VarBuilder<'static>> {
    Ok(SafetensorsFiles::open(paths)?.var_builder(dtype, device))
}

/// `path` as a one-file `VarBuilder` of f32 tensors on the CPU.
pub fn var_builder_f32(path: &Path) -> candle_core::Result<VarBuilder<'static>> {
    var_builder(&[path.to_path_buf()], DType::F32, &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_candle_wrote_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let dev = Device::Cpu;
        let a = Tensor::arange(0f32, 12.0, &dev)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let b = Tensor::new(&[1u32, 2, 3], &dev).unwrap();
        candle_core::safetensors::save(
            &HashMap::from([
                ("a".to_string(), a.clone()),
                ("b".to_string(), b),
                ("odd".to_string(), Tensor::new(&[1i16, 2], &dev).unwrap()),
            ]),
            &path,
        )
        .unwrap();
        let vb = var_builder_f32(&path).unwrap();
        assert!(vb.contains_tensor("a") && !vb.contains_tensor("c"));
        let got = vb.get((3, 4), "a").unwrap();
        assert_eq!(got.to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        assert!(vb.get((4, 3), "a").is_err());
        assert!(vb.get(3, "missing").is_err());
        // A tensor of a dtype this loader does not read fails only when it is read.
        let err = vb.get(2, "odd").unwrap_err().to_string();
        assert!(
            err.contains("I16") && err.contains("w.safetensors"),
            "{err}"
        );

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = SafetensorsFiles::open(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("w.safetensors"), "{err}");
    }
}
