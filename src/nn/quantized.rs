//! Layers of GGUF models that every architecture shares, holding the weights in the block
//! types of the file: [`QLinear`] (a weight matrix, through our own CPU kernels for Q5_0 and
//! Q8_0, candle's quantized matmul otherwise) and [`TokenEmbedding`] (a quantized table whose
//! rows are expanded on demand).
//!
//! Not for: the kernels themselves (`crate::kernels`), or what an architecture does with the
//! layers (`crate::models`).

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};

use crate::kernels::kquants::{KQuant, KQuantRows};
use crate::kernels::q5_0::{self, Q5Linear};
use crate::kernels::q8_0::Q8Linear;
use crate::kernels::q8_acts::FEW_ROWS_MOST;

/// A weight matrix of a GGUF model, in its stored block type: candle's quantized matmul, or, for
/// Q5_0 and Q8_0 weights on an AVX2 CPU, our own kernels ([`Q5Linear`], which candle lacks, and
/// [`Q8Linear`], which prefetches); Q4_K and Q6_K weights on an AVX2 CPU go through candle for
/// prompts and through our [`KQuantRows`] for decoding steps (one row per sequence).
#[derive(Debug)]
pub enum QLinear {
    Candle(QMatMul),
    Q5(Q5Linear),
    Q8(Q8Linear),
    KQuant(KQuantLayer),
}

/// A Q4_K or Q6_K matrix: candle's matmul for several rows of one sequence, ours for decoding
/// steps, both over the same bytes (candle's tensor).
#[derive(Debug)]
pub struct KQuantLayer {
    tensor: Arc<QTensor>,
    candle: QMatMul,
    rows: KQuantRows,
}

impl KQuantLayer {
    /// `xs` (1, m, k), one row per sequence (m at most [`FEW_ROWS_MOST`]), through our kernel.
    fn steps(&self, xs: &Tensor) -> Result<Tensor> {
        self.rows.forward(&self.tensor.data()?, xs)
    }
}

impl QLinear {
    /// The layer for `t`: Q5_0 and Q8_0 through our kernels on a CPU that runs them; otherwise
    /// through candle, with Q5_0 widened to Q8_0 ([`widen_q5_0`]).
    pub fn new(t: QTensor) -> Result<Self> {
        let cpu_dims = cpu_dims(&t)?;
        if let Some((n, k)) = cpu_dims {
            match t.dtype() {
                GgmlDType::Q5_0 => {
                    if let Some(q5) = Q5Linear::new(&t.data()?, n, k)? {
                        return Ok(Self::Q5(q5));
                    }
                }
                GgmlDType::Q8_0 => {
                    if let Some(q8) = Q8Linear::new(&t.data()?, n, k)? {
                        return Ok(Self::Q8(q8));
                    }
                }
                GgmlDType::Q4K | GgmlDType::Q6K => {
                    let kind = if t.dtype() == GgmlDType::Q4K {
                        KQuant::Q4K
                    } else {
                        KQuant::Q6K
                    };
                    if let Some(rows) = KQuantRows::new(kind, &t.data()?, n, k)? {
                        let tensor = Arc::new(t);
                        return Ok(Self::KQuant(KQuantLayer {
                            candle: repacked(QMatMul::from_arc(tensor.clone())?, cpu_dims)?,
                            tensor,
                            rows,
                        }));
                    }
                }
                _ => {}
            }
        }
        Ok(Self::Candle(repacked(QMatMul::from_qtensor(widen_q5_0(t)?)?, cpu_dims)?))
    }
}

/// `(n, k)` of a weight matrix on the CPU; `None` elsewhere.
fn cpu_dims(t: &QTensor) -> Result<Option<(usize, usize)>> {
    t.device().is_cpu().then(|| t.shape().dims2()).transpose()
}

/// `m`, with candle's layout of its weights for the x86 prompt kernels made now, at load time,
/// by multiplying two rows of zeros (the result is dropped) where `cpu_dims` (from
/// [`cpu_dims`]) says the layer is on the CPU. Every layer held as candle's matmul goes through
/// here, a tied output projection too. candle 0.11 repacks Q4_K, Q6_K and (with VNNI) Q8_0
/// weights into its tiles the first time a product needs them, so a run's first prompt paid
/// for every layer's repacking: the first prompt of a fresh process measured anywhere from 299
/// to 561 tokens/s, later ones 500 to 600. llama.cpp repacks at load as well. Other block types
/// and CPUs only pay for the small product.
fn repacked(m: QMatMul, cpu_dims: Option<(usize, usize)>) -> Result<QMatMul> {
    if let Some((_, k)) = cpu_dims {
        let zeros = Tensor::zeros((1, 2, k), candle_core::DType::F32, &Device::Cpu)?;
        m.forward(&zeros)?;
    }
    Ok(m)
}

impl Module for QLinear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle(m) => m.forward(xs),
            Self::Q5(m) => m.forward(xs),
            Self::Q8(m) => m.forward(xs),
            Self::KQuant(m) if xs.dims().iter().rev().skip(1).product::<usize>() == 1 => {
                m.steps(xs)
            }
            Self::KQuant(m) => m.candle.forward(xs),
        }
    }
}

impl QLinear {
    /// `xs @ W^T` for `xs` (1, rows, k) holding the rows of several sequences, `lens` rows
    /// each, one after the other. Each sequence's rows come out as the same numbers as a pass
    /// of that sequence alone: our Q5_0/Q8_0 kernels compute every row without regard to the
    /// others, so they take all rows at once (one read of the weights); candle's quantized
    /// matmul picks its kernel by the number of rows (Q6_K, say, has one path for a single row
    /// and another for several, with different rounding), so it runs once per sequence, on that
    /// sequence's rows; on CUDA, except for groups of short sequences that [`cuda_row_groups`]
    /// shows to be safe to share a call. Q4_K and Q6_K matrices on the CPU take every
    /// one-row sequence (a decoding step) through our [`KQuantRows`] together, as a pass of
    /// one such sequence alone does, and a longer sequence through candle alone.
    pub fn forward_parts(&self, xs: &Tensor, lens: &[usize]) -> Result<Tensor> {
        match self {
            Self::KQuant(m) if lens.len() > 1 => {
                // Decoding steps (sequences of one row) share our kernel's call, in groups of
                // at most FEW_ROWS_MOST; a longer sequence goes through candle alone.
                let mut outs = Vec::new();
                let (mut at, mut i) = (0, 0);
                while i < lens.len() {
                    let steps = lens[i..]
                        .iter()
                        .take(FEW_ROWS_MOST)
                        .take_while(|&&len| len == 1)
                        .count();
                    let (rows, out) = if steps > 0 {
                        (steps, m.steps(&xs.narrow(1, at, steps)?)?)
                    } else {
                        (lens[i], m.candle.forward(&xs.narrow(1, at, lens[i])?)?)
                    };
                    outs.push(out);
                    at += rows;
                    i += steps.max(1);
                }
                Tensor::cat(&outs, 1)
            }
            Self::Candle(m) if lens.len() > 1 => {
                let groups = if xs.device().is_cuda() && cuda_mmvq_runs(m) {
                    cuda_row_groups(lens, cuda_shared_rows())
                } else {
                    lens.to_vec()
                };
                if groups.len() == 1 {
                    return m.forward(xs);
                }
                let mut at = 0;
                let outs = (groups.iter())
                    .map(|&rows| {
                        let out = m.forward(&xs.narrow(1, at, rows)?);
                        at += rows;
                        out
                    })
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&outs, 1)
            }
            _ => self.forward(xs),
        }
    }

    /// A projection that reads the rows of `table` (an output projection tied to the token
    /// embeddings): the same bytes serve both, through candle's quantized matmul.
    pub fn tied(table: std::sync::Arc<QTensor>) -> Result<Self> {
        let dims = cpu_dims(&table)?;
        Ok(Self::Candle(repacked(QMatMul::from_arc(table)?, dims)?))
    }
}

/// The most rows candle's CUDA quantized matmul (0.11.1) computes, each, exactly as it computes
/// a call of one row.
///
/// For 1 to 8 rows of f32 activations, `QCudaStorage::fwd` takes the MMVQ kernel
/// (`quantized/fast_mmvq.rs`, `candle-kernels/src/mmvq_gguf.cu`): the rows are quantized to Q8_1
/// block by block (each 32-value block on its own, whatever the row count), then
/// `mmvq_core_impl<ncols_dst>` gives each output one sum whose order depends only on the number
/// of warps per CUDA block: thread `tid` adds the dot products of weight blocks `tid / (qi/vdr)`,
/// then every `vdr * nwarps * 32 / qi` blocks on, in that order; warp 0 adds the other warps'
/// partial sums in warp order; a butterfly shuffle sums the warp. The row count only chooses
/// how many weight rows one CUDA block covers (1 for one row, 2 for more) and how many
/// activation rows share the loop, neither of which changes any output's additions. The number
/// of warps does: 4 for 1 to 4 rows, 2 for 5 to 8 (a different split of the blocks among
/// threads, so different rounding); above 8 rows the tiled MMQ kernels take over, with their
/// own order. So up to 4 rows give every row the numbers of a call of that row alone, and of
/// any call of up to 4 rows.
const CUDA_SHARED_ROWS: usize = 4;

/// `TRANSBRIEF_CUDA_ROWS=1` (up to [`CUDA_SHARED_ROWS`]) lowers the rows a shared CUDA call
/// takes; 1 is one call per sequence, as on the CPU: the way back should a candle version
/// change the kernel choice, and the baseline the GPU bench compares against.
const CUDA_ROWS_ENV: &str = "TRANSBRIEF_CUDA_ROWS";

/// The rows a shared CUDA call takes: [`CUDA_SHARED_ROWS`], or less as [`CUDA_ROWS_ENV`] says.
fn cuda_shared_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        std::env::var(CUDA_ROWS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| (1..=CUDA_SHARED_ROWS).contains(n))
            .unwrap_or(CUDA_SHARED_ROWS)
    })
}

/// Whether `m` runs through candle's CUDA MMVQ kernels (see [`CUDA_SHARED_ROWS`]): a quantized
/// matrix of a block type those kernels take. Dequantized matrices (F16, F32, BF16 files) go
/// through cuBLAS, whose algorithm can depend on the row count, and are left one call per
/// sequence.
fn cuda_mmvq_runs(m: &QMatMul) -> bool {
    match m {
        QMatMul::QTensor(t) => matches!(
            t.dtype(),
            GgmlDType::Q4_0
                | GgmlDType::Q4_1
                | GgmlDType::Q5_0
                | GgmlDType::Q5_1
                | GgmlDType::Q8_0
                | GgmlDType::Q2K
                | GgmlDType::Q3K
                | GgmlDType::Q4K
                | GgmlDType::Q5K
                | GgmlDType::Q6K
        ),
        _ => false,
    }
}

/// The calls a CUDA pass over sequences of `lens` rows makes, as row counts, in order: a
/// sequence of more than `most` rows (at most [`CUDA_SHARED_ROWS`]) alone (a pass of it alone
/// may take another kernel for all its rows), consecutive shorter ones together while the call
/// stays within `most` rows. Decoding steps (one row per sequence) go four sequences a call.
fn cuda_row_groups(lens: &[usize], most: usize) -> Vec<usize> {
    let mut groups: Vec<usize> = Vec::with_capacity(lens.len());
    let mut open = false;
    for &len in lens {
        match groups.last_mut() {
            Some(rows) if open && len <= most && *rows + len <= most => {
                *rows += len
            }
            _ => {
                groups.push(len);
                open = len <= most;
            }
        }
    }
    groups
}

/// Q5_0 weights (which llama.cpp's Q4_K_M files use for most matrices whose rows are not a
/// multiple of 256, such as the 896-wide matrices of Qwen2.5-0.5B) have no SIMD kernel in
/// candle, and ran ~4x slower than the rest. Every Q5_0 value is a 5-bit integer times its
/// block's scale, which a Q8_0 block (same 32 values, same f16 scale, 8-bit integers) holds
/// exactly: converting costs 12 more bytes per 32 weights and changes no weight. Used where
/// [`Q5Linear`] does not run (no AVX2/FMA, GPUs) and for a Q5_0 embedding table.
pub fn widen_q5_0(t: QTensor) -> candle_core::Result<QTensor> {
    if t.dtype() != GgmlDType::Q5_0 {
        return Ok(t);
    }
    let raw = t.data()?;
    let blocks = raw.len() / q5_0::BLOCK_BYTES;
    let mut out = Vec::with_capacity(blocks * 34);
    for b in raw.chunks_exact(q5_0::BLOCK_BYTES) {
        // The same f16 scale, then the 32 values as signed bytes.
        out.extend_from_slice(&b[0..2]);
        let (_, q) = q5_0::unpack_block(b);
        out.extend(q.map(|v| v as u8));
    }
    let dims = t.shape().dims().to_vec();
    let device = t.device();
    candle_core::quantized::ggml_file::qtensor_from_ggml(GgmlDType::Q8_0, &out, dims, &device)
}

/// The token embedding table, kept quantized as in the file: only the rows of the tokens being
/// read are expanded (candle's `QTensor::embedding`, on every device). The f32 table of a
/// 150k-token vocabulary would be 545 MB for Qwen2.5-0.5B, against 145 MB as Q8_0, and with tied
/// weights the output projection reads the very same bytes.
#[derive(Debug)]
pub struct TokenEmbedding(Arc<QTensor>);

impl TokenEmbedding {
    pub fn new(table: Arc<QTensor>, hidden: usize) -> Result<Self> {
        let (rows, cols) = table.shape().dims2()?;
        if cols != hidden || rows == 0 {
            candle_core::bail!("token_embd.weight is {rows}x{cols}, expected rows of {hidden}");
        }
        Ok(Self(table))
    }

    /// The embeddings of `ids`: (1, ids.len(), hidden), f32. An id outside the table is an error.
    pub fn forward(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        self.0.embedding(&Tensor::new(ids, device)?.unsqueeze(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short sequences share CUDA calls of at most four rows; a longer one always runs alone.
    #[test]
    fn cuda_row_groups_pack_short_sequences_up_to_four_rows() {
        assert_eq!(cuda_row_groups(&[1; 9], 4), vec![4, 4, 1]);
        assert_eq!(cuda_row_groups(&[1, 5, 1, 1], 4), vec![1, 5, 2]);
        assert_eq!(cuda_row_groups(&[3, 2, 2, 4, 1], 4), vec![3, 4, 4, 1]);
        assert_eq!(cuda_row_groups(&[200, 7], 4), vec![200, 7]);
        assert_eq!(cuda_row_groups(&[2, 1, 1, 1], 4), vec![4, 1]);
        // One row a call: every sequence alone, as on the CPU.
        assert_eq!(cuda_row_groups(&[1, 1, 3], 1), vec![1, 1, 3]);
    }

    #[test]
    fn q5_0_weights_become_q8_0_without_changing_a_value() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (4, 64), &dev).unwrap();
        let q5 = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
        let before = q5.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap();
        let q8 = widen_q5_0(q5).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        assert_eq!(
            q8.dequantize(&dev).unwrap().to_vec2::<f32>().unwrap(),
            before
        );
    }

    /// Rows looked up in the quantized table are the rows of the table dequantized whole, for
    /// each block type the table can have; an id outside the vocabulary is an error.
    #[test]
    fn quantized_embedding_rows_equal_the_dequantized_table() {
        use candle_nn::Embedding;
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (7, 256), &dev).unwrap();
        let ids = [6u32, 0, 3, 3];
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::F16] {
            let table = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let dense = Embedding::new(table.dequantize(&dev).unwrap(), 256);
            let want = dense
                .forward(&Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap())
                .unwrap();
            let quantized = TokenEmbedding::new(table, 256).unwrap();
            let got = quantized.forward(&ids, &dev).unwrap();
            assert_eq!(
                got.to_vec3::<f32>().unwrap(),
                want.to_vec3::<f32>().unwrap(),
                "{dtype:?}"
            );
            assert!(quantized.forward(&[7], &dev).is_err());
        }
    }
}
