//! Linear layers whose weights are Q8_0 blocks, multiplied on the CPU with AVX2 or AVX-512 VNNI,
//! reading the blocks as the file stores them.
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
//! in f32, in order. Decoding (one activation row per sequence, up to [`FEW_ROWS_MOST`]) reads
//! each weight block once for [`FEW_ROWS`](super::q8_acts::FEW_ROWS) rows. A prompt (more rows)
//! converts [`TILE`] weight rows' scales once and multiplies each activation block with all of
//! them while it is in a register; every path and kernel set gives an output the same bits
//! ([`super::q8_acts`]).
//!
//! Not for: other block types, GPUs, or CPUs without AVX2 and FMA ([`Q8Linear::new`] says `None`
//! and the caller keeps candle's path).

use super::cpu::KernelSet;
#[cfg(target_arch = "x86_64")]
use super::q8_acts::{hsum, signed_quads, signed_quads_vnni};
use super::q8_acts::{decode_rows, Q8Acts, Tile, FEW_ROWS_MOST, QK, TILE};
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
        if !super::cpu::has_avx2_fma() || !k.is_multiple_of(QK) || k == 0 || n == 0 {
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

    /// dst (m, n) = acts (m rows) · W^T with the kernels of [`super::cpu::kernel_set`].
    fn matmul(&self, acts: &Q8Acts, m: usize, dst: &mut [f32]) {
        self.matmul_with(super::cpu::kernel_set(), acts, m, dst)
    }

    /// dst (m, n) = acts (m rows) · W^T with the kernels of `set`, split by weight rows over
    /// candle's kernel threads. Each weight row is read from memory once and multiplied by every
    /// activation row; every path gives an output the same bits (see [`super::q8_acts`]).
    fn matmul_with(&self, set: KernelSet, acts: &Q8Acts, m: usize, dst: &mut [f32]) {
        super::cpu::check_set(set);
        let (n, blocks) = (self.n, self.k / QK);
        let row_bytes = blocks * BLOCK_BYTES;
        let row = |j: usize| &self.blocks[j * row_bytes..(j + 1) * row_bytes];
        if m <= FEW_ROWS_MOST {
            // Decoding (one row per sequence): each weight row is read once per `FEW_ROWS`
            // activation rows.
            decode_rows(n, m, dst, |j, r0, v| {
                // SAFETY: `new` returned Some only where AVX2 and FMA are present, and `set` is
                // at most what the CPU has; `decode_rows` passes rows r0.. of `acts`.
                unsafe { dot_rows(set, row(j), acts, r0, v) }
            });
            return;
        }
        let out = super::cpu::SharedOut::new(dst);
        // A prompt: tiles of weight rows, their scales converted once, times every row.
        let rows = |range: std::ops::Range<usize>| {
            let mut tile = Tile::new(blocks, blocks, false);
            for j0 in range.clone().step_by(TILE) {
                let filled = TILE.min(range.end - j0);
                for t in 0..filled {
                    let (d, qs) = tile.row_mut(t);
                    for ((block, d), q) in row(j0 + t).chunks_exact(BLOCK_BYTES).zip(d).zip(qs) {
                        *d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                        for (q, &b) in q.iter_mut().zip(&block[2..]) {
                            *q = b as i8;
                        }
                    }
                }
                tile.seal(set);
                for r in 0..m {
                    let v = tile.dot(set, acts, r);
                    for (t, &v) in v.iter().enumerate().take(filled) {
                        // SAFETY: as above.
                        unsafe { out.write(r * n + j0 + t, v) };
                    }
                }
            }
        };
        candle_core::utils::barrier_pool().execute_chunked(n, rows);
    }
}

/// For activation rows `r0..r0 + out.len()` (at most [`FEW_ROWS`](super::q8_acts::FEW_ROWS)),
/// each row's sum over blocks of scale_w · scale_x · (integer dot product) into `out`, the
/// weight row read once for all of them, with the kernels of `set`. Every row gets the
/// operations of a call of that row alone, in the same order.
///
/// # Safety
/// The CPU has the kernels of `set` (AVX2 and FMA at least); `r0..r0 + out.len()` are rows of
/// `x`.
unsafe fn dot_rows(set: KernelSet, row: &[u8], x: &Q8Acts, r0: usize, out: &mut [f32]) {
    let vnni = set >= KernelSet::Avx512Vnni;
    macro_rules! rows {
        ($($r:literal)*) => {
            match out.len() {
                $($r if vnni => out.copy_from_slice(&dot_vnni::<$r>(row, x, r0)),
                  $r => out.copy_from_slice(&dot_avx2::<$r>(row, x, r0)),)*
                len => unreachable!("{len} rows at once"),
            }
        };
    }
    rows!(1 2 3 4 5 6 7 8)
}

/// Defines [`dot_rows`] for one kernel set and `R` rows: `$quads` is that set's
/// [`super::q8_acts::signed_quads`].
macro_rules! dot {
    ($name:ident, $features:literal, $quads:ident) => {
        /// [`dot_rows`] for one kernel set and `R` rows from `r0`.
        ///
        /// # Safety
        /// As [`dot_rows`], the CPU having the features enabled here.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize>(row: &[u8], x: &Q8Acts, r0: usize) -> [f32; R] {
            use std::arch::x86_64::*;
            let mut acc = [_mm256_setzero_ps(); R];
            debug_assert!((r0 + R) * x.stride <= x.d.len());
            for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                // A hint only: an address past the row, or past the matrix, is never read.
                let ahead = block.as_ptr().wrapping_add(PREFETCH_BYTES);
                _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                let wd = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                let w = _mm256_loadu_si256(block.as_ptr().add(2) as *const __m256i);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let at = (r0 + i) * x.stride + b;
                    let y = _mm256_loadu_si256(x.qs.as_ptr().add(at) as *const __m256i);
                    let quads = $quads(w, y, _mm256_setzero_si256());
                    let d = wd * *x.d.get_unchecked(at);
                    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(quads), *acc);
                }
            }
            let mut out = [0f32; R];
            for (o, a) in out.iter_mut().zip(acc) {
                *o = hsum(a);
            }
            out
        }

        #[cfg(not(target_arch = "x86_64"))]
        unsafe fn $name<const R: usize>(_: &[u8], _: &Q8Acts, _: usize) -> [f32; R] {
            unreachable!("Q8Linear::new returns None off x86_64")
        }
    };
}

dot!(dot_avx2, "avx2,fma", signed_quads);
dot!(dot_vnni, "avx2,fma,avx512f,avx512vl,avx512vnni", signed_quads_vnni);

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
            for m in [1, 4, FEW_ROWS_MOST + 3] {
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

    /// Every kernel set this CPU has gives the AVX2 kernel's bits, and a row's outputs do not
    /// depend on how many rows are multiplied with it or on what they hold. The weights are
    /// random bytes, -128 included.
    #[test]
    fn kernel_sets_and_row_counts_agree() {
        if !crate::kernels::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (n, k) in [(9, 128), (6, 96), (13, 896)] {
            let mut s = 0x2545_F491_4F6C_DD1Du64 ^ k as u64;
            let mut bytes = Vec::new();
            for i in 0..n * k / QK {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let d = half::f16::from_f32((s % 1000) as f32 / 20000.0 + 0.001);
                bytes.extend_from_slice(&d.to_le_bytes());
                bytes.extend((0..QK).map(|j| if (i + j) % 11 == 0 { 0x80 } else { (s >> (j % 56)) as u8 }));
            }
            let ours = Q8Linear::new(&bytes, n, k).unwrap().unwrap();
            crate::kernels::cpu::check_sets_and_rows(k, n, |set, x, m| {
                let mut dst = vec![0f32; m * n];
                ours.matmul_with(set, &Q8Acts::quantize(x, k, 1), m, &mut dst);
                dst
            });
        }
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
