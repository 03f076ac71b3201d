//! Linear layers whose weights are Q8_0 blocks, multiplied on the CPU with AVX2, reading the
//! blocks as the file stores them.
//!
//! What it is for: the largest matrix of a small GGUF model is often its output projection, kept
//! at Q8_0 by llama.cpp's Q4_K_M recipe (for Qwen2.5-Coder-0.5B, 151936 × 896: 145 MB, over a
//! third of the bytes read per generated token). candle multiplies Q8_0 correctly but leaves the
//! memory prefetch to the hardware; this kernel does the same arithmetic and asks for the bytes
//! a few KiB ahead. On the 2-core test machine, using it for that matrix raised the whole
//! model's decoding speed by about a sixth (median of four alternating runs).
//!
//! The arithmetic is llama.cpp's and candle's for Q8_0 × Q8_0: the activations are quantized to
//! Q8_0 blocks ([`Q8Acts`]), each block's integer dot product is exact, and the blocks are summed
//! in f32, in order.
//!
//! Not for: other block types, GPUs, or CPUs without AVX2 and FMA ([`Q8Linear::new`] says `None`
//! and the caller keeps candle's path).

use super::q8_acts::{hsum, signed_block_fma, Q8Acts, QK};
use candle_core::{Result, Tensor};

/// Bytes per Q8_0 block: f16 scale, 32 signed bytes.
const BLOCK_BYTES: usize = 34;
/// How far ahead of the block being read the kernel asks for the row's bytes (see
/// `q5_0`'s constant of the same name).
const PREFETCH_BYTES: usize = 2048;

/// A Q8_0 weight matrix of `n` rows (outputs) by `k` columns (inputs), raw blocks row by row.
#[derive(Debug)]
pub struct Q8Linear {
    blocks: Vec<u8>,
    n: usize,
    k: usize,
}

impl Q8Linear {
    /// The layer for `blocks` (the tensor's raw Q8_0 bytes, `n` rows of `k` values), or `None`
    /// where this kernel does not run: a CPU without AVX2/FMA, or rows that are not whole
    /// blocks. A wrong byte count is an error (a corrupt file).
    pub fn new(blocks: &[u8], n: usize, k: usize) -> Result<Option<Self>> {
        if !super::cpu::has_avx2_fma() || k % QK != 0 || k == 0 || n == 0 {
            return Ok(None);
        }
        let expected = n.checked_mul(k / QK * BLOCK_BYTES);
        if expected != Some(blocks.len()) {
            candle_core::bail!(
                "Q8_0 tensor of {n}x{k} holds {} bytes, expected {expected:?}",
                blocks.len()
            );
        }
        Ok(Some(Self {
            blocks: blocks.to_vec(),
            n,
            k,
        }))
    }

    /// `xs @ W^T` for `xs` of shape (.., k), f32, on the CPU: (.., n).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        super::cpu::forward_rows(xs, self.k, self.n, |x, m, dst| {
            self.matmul(&Q8Acts::quantize(x, self.k, 1), m, dst)
        })
    }

    /// dst (m, n) = acts (m rows) · W^T, split by weight rows over candle's kernel threads. Each
    /// weight row is read from memory once and multiplied by every activation row.
    fn matmul(&self, acts: &Q8Acts, m: usize, dst: &mut [f32]) {
        let (n, row_bytes) = (self.n, self.k / QK * BLOCK_BYTES);
        let out = super::cpu::SharedOut::new(dst);
        let rows = |range: std::ops::Range<usize>| {
            for j in range {
                let row = &self.blocks[j * row_bytes..(j + 1) * row_bytes];
                for r in 0..m {
                    // SAFETY: `new` returned Some only where AVX2 and FMA are present; each
                    // index of dst is written by exactly one work item.
                    unsafe { out.write(r * n + j, dot_avx2(row, acts, r)) };
                }
            }
        };
        candle_core::utils::barrier_pool().execute_chunked(n, rows);
    }
}

/// Sum over blocks of scale_w · scale_x · (integer dot product) for activation row `r`.
///
/// # Safety
/// The CPU has AVX2 and FMA; `r` is a row of `x`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(row: &[u8], x: &Q8Acts, r: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_ps();
    let (xq, xd) = x.row(r, row.len() / BLOCK_BYTES);
    for ((block, yq), yd) in row.chunks_exact(BLOCK_BYTES).zip(xq).zip(xd) {
        // A hint only: an address past the row, or past the matrix, is never read.
        _mm_prefetch::<_MM_HINT_T0>(block.as_ptr().wrapping_add(PREFETCH_BYTES) as *const i8);
        let wd = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        let w = _mm256_loadu_si256(block.as_ptr().add(2) as *const __m256i);
        let y = _mm256_loadu_si256(yq.as_ptr() as *const __m256i);
        acc = signed_block_fma(acc, w, y, wd * yd);
    }
    hsum(acc)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_avx2(_: &[u8], _: &Q8Acts, _: usize) -> f32 {
    unreachable!("Q8Linear::new returns None off x86_64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::test_tensor;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module};

    /// Decode (one row) and prompt (many rows) against candle's own Q8_0 matmul on the same
    /// bytes, which does the same integer arithmetic in the same order.
    #[test]
    fn matches_candles_q8_0_matmul() {
        if !crate::kernels::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (n, k) in [(37, 896), (3, 32), (5, 160)] {
            let w = test_tensor(&[n, k], 5 + k as u64, 1.0);
            let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
            let ours = Q8Linear::new(&q.data().unwrap(), n, k).unwrap().unwrap();
            let theirs = QMatMul::from_qtensor(q).unwrap();
            for m in [1, 4] {
                let x = test_tensor(&[1, m, k], 9 + m as u64, 3.0);
                let a = ours.forward(&x).unwrap();
                assert_eq!(a.dims(), &[1, m, n]);
                let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let b = theirs.forward(&x).unwrap().flatten_all().unwrap();
                let b = b.to_vec1::<f32>().unwrap();
                for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                        "{n}x{k} m={m} [{i}]: {x} vs {y}"
                    );
                }
            }
        }
    }

    /// A weight of -128, which Q8_0 files may hold though llama.cpp never writes it, is read as
    /// -128 (the sign trick's unsigned 128), not wrapped.
    #[test]
    fn minus_128_weights_count_in_full() {
        if !crate::kernels::cpu::has_avx2_fma() {
            return;
        }
        let mut block = vec![0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
        block[2..].fill(0x80);
        let ours = Q8Linear::new(&block, 1, 32).unwrap().unwrap();
        let x = Tensor::ones((1, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = ours.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        // x quantizes to 127 with scale 1/127 (through f16); each weight is -128.
        let d = half::f16::from_f32(1.0 / 127.0).to_f32();
        assert_eq!(y[0][0], -128.0 * 127.0 * 32.0 * d);
    }

    #[test]
    fn a_wrong_byte_count_is_an_error() {
        if !crate::kernels::cpu::has_avx2_fma() {
            return;
        }
        assert!(Q8Linear::new(&[0u8; 33], 1, 32).is_err());
        assert!(Q8Linear::new(&[0u8; 34], 1, 48).unwrap().is_none());
    }
}
