//! Decoding-step products of Q4_K and Q6_K weight matrices on the CPU with AVX2: each weight row
//! is read once for up to [`FEW_ROWS`](super::q8_acts::FEW_ROWS) activation rows (one per
//! sequence of a batched pass).
//!
//! What it is for: llama.cpp's Q4_K_M recipe stores some matrices whose rows are whole 256-value
//! super-blocks in Q4_K and Q6_K (for Qwen2.5-Coder-0.5B, every `ffn_down`: a sixth of the bytes
//! read per token). candle multiplies them with kernels chosen by the number of activation rows,
//! with different rounding for one row and for several (Q6_K), so a batched pass had to call
//! candle once per sequence and read these matrices once per sequence. This kernel gives every
//! row the same arithmetic whatever the number of rows, so the rows of a decoding step share one
//! read of the weights.
//!
//! The arithmetic is llama.cpp's AVX2 `ggml_vec_dot_q4_K_q8_K` and `ggml_vec_dot_q6_K_q8_K`:
//! each activation row is quantized to Q8_K blocks (256 signed bytes, one f32 scale, as candle
//! quantizes them, ties rounded away from zero); within a super-block, the sub-blocks' integer
//! dot products times their 6- or 8-bit scales fall into eight exact i32 lanes (Q4_K's minimums
//! times the Q8_K block sums into four more), the same lanes as ggml's; each super-block's lanes
//! are added into f32 lanes by one FMA of `d_w · d_x` (Q4_K's minimums by `-dmin_w · d_x`), and
//! the lanes are summed at the end as ggml's `hsum_float_8` does (the operations of
//! [`super::q8_acts::hsum`]). Every step is per activation row, so an output depends on its row
//! alone.
//!
//! Not for: prompts (several rows of one sequence), which stay on candle's tiled kernels
//! (`crate::nn::quantized`), other block types, or CPUs without AVX2 and FMA.

#[cfg(target_arch = "x86_64")]
use super::q8_acts::hsum;
use super::q8_acts::decode_rows;
use candle_core::{Result, Tensor};
use half::f16;

/// Values per super-block.
pub const QK_K: usize = 256;
/// Bytes of a Q4_K super-block: f16 scale, f16 minimum scale, 12 bytes of packed 6-bit scales
/// and minimums, 128 bytes of 4-bit values.
const Q4K_BYTES: usize = 144;
/// Bytes of a Q6_K super-block: 128 bytes of low 4 bits, 64 of high 2 bits, 16 signed 8-bit
/// scales, f16 scale.
const Q6K_BYTES: usize = 210;
/// How far ahead of the super-block being read the kernel asks for the row's bytes (see
/// `q5_0`'s constant of the same name).
const PREFETCH_BYTES: usize = 2048;

/// The block types this kernel multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KQuant {
    Q4K,
    Q6K,
}

impl KQuant {
    fn block_bytes(self) -> usize {
        match self {
            Self::Q4K => Q4K_BYTES,
            Self::Q6K => Q6K_BYTES,
        }
    }
}

/// The shape of a Q4_K or Q6_K weight matrix of `n` rows (outputs) by `k` columns (inputs),
/// whose bytes (the file's super-blocks, row by row) the caller holds and passes to
/// [`KQuantRows::matmul`]: candle's tensor keeps them for its own kernels too.
#[derive(Debug)]
pub struct KQuantRows {
    kind: KQuant,
    n: usize,
    k: usize,
}

/// Activation rows as Q8_K blocks.
struct Q8K {
    /// Super-blocks per row.
    stride: usize,
    d: Vec<f32>,
    qs: Vec<[i8; QK_K]>,
    /// Sums of each run of 16 values (at most 16 · 128 in magnitude).
    bsums: Vec<[i16; QK_K / 16]>,
}

impl Q8K {
    /// The rows of `x` (rows of `k` values, `k` a multiple of 256), as candle quantizes them:
    /// per super-block, the value of largest magnitude maps to -127, the others are scaled alike
    /// and rounded half away from zero (llama.cpp rounds ties to even, a rare difference).
    fn quantize(x: &[f32], k: usize) -> Self {
        let stride = k / QK_K;
        let blocks = x.len() / QK_K;
        let mut q = Self {
            stride,
            d: vec![0.0; blocks],
            qs: vec![[0; QK_K]; blocks],
            bsums: vec![[0; QK_K / 16]; blocks],
        };
        for (b, xs) in x.chunks_exact(QK_K).enumerate() {
            let (mut max, mut amax) = (0f32, 0f32);
            for &v in xs {
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            if amax == 0.0 {
                continue;
            }
            let iscale = -127f32 / max;
            for (q, &v) in q.qs[b].iter_mut().zip(xs) {
                *q = (iscale * v).round().clamp(-128.0, 127.0) as i8;
            }
            for (s, run) in q.bsums[b].iter_mut().zip(q.qs[b].chunks_exact(16)) {
                *s = run.iter().map(|&v| i16::from(v)).sum();
            }
            q.d[b] = 1.0 / iscale;
        }
        q
    }
}

impl KQuantRows {
    /// The layer for `blocks` (the tensor's raw bytes, `n` rows of `k` values), or `None` where
    /// this kernel does not run: a CPU without AVX2/FMA, or rows that are not whole
    /// super-blocks. A wrong byte count is an error (a corrupt file).
    pub fn new(kind: KQuant, blocks: &[u8], n: usize, k: usize) -> Result<Option<Self>> {
        if !super::cpu::has_avx2_fma() || !k.is_multiple_of(QK_K) || k == 0 || n == 0 {
            return Ok(None);
        }
        let expected = n.checked_mul(k / QK_K * kind.block_bytes());
        if expected != Some(blocks.len()) {
            candle_core::bail!(
                "{kind:?} tensor of {n}x{k} holds {} bytes, expected {expected:?}",
                blocks.len()
            );
        }
        Ok(Some(Self { kind, n, k }))
    }

    /// `xs @ W^T` for `xs` of shape (.., k), f32, on the CPU, at most
    /// [`FEW_ROWS_MOST`](super::q8_acts::FEW_ROWS_MOST) rows: (.., n). `blocks` are the bytes
    /// [`KQuantRows::new`] was given.
    pub fn forward(&self, blocks: &[u8], xs: &Tensor) -> Result<Tensor> {
        super::cpu::forward_rows(xs, self.k, self.n, |x, _, dst| {
            self.matmul_into(blocks, x, dst)
        })
    }

    /// `x` (`m` rows of `k` values, at most [`FEW_ROWS_MOST`](super::q8_acts::FEW_ROWS_MOST))
    /// times W^T: `m` rows of `n`.
    /// `blocks` are the bytes [`KQuantRows::new`] was given.
    pub fn matmul(&self, blocks: &[u8], x: &[f32]) -> Vec<f32> {
        let mut dst = vec![0f32; x.len() / self.k * self.n];
        self.matmul_into(blocks, x, &mut dst);
        dst
    }

    /// [`KQuantRows::matmul`] into `dst` (`m` rows of `n`).
    fn matmul_into(&self, blocks: &[u8], x: &[f32], dst: &mut [f32]) {
        let m = x.len() / self.k;
        assert_eq!(blocks.len(), self.n * self.k / QK_K * self.kind.block_bytes());
        let acts = Q8K::quantize(x, self.k);
        let row_bytes = self.k / QK_K * self.kind.block_bytes();
        decode_rows(self.n, m, dst, |j, r0, v| {
            let row = &blocks[j * row_bytes..(j + 1) * row_bytes];
            // SAFETY: `new` returned Some only where AVX2 and FMA are present; `decode_rows`
            // passes rows r0.. of `acts`.
            unsafe { dot_rows(self.kind, row, &acts, r0, v) }
        });
    }
}

/// For activation rows `r0..r0 + out.len()` (at most [`FEW_ROWS`](super::q8_acts::FEW_ROWS)),
/// each row's product with
/// weight row `row` into `out`.
///
/// # Safety
/// The CPU has AVX2 and FMA; `r0..r0 + out.len()` are rows of `x`; `row` is a whole row.
unsafe fn dot_rows(kind: KQuant, row: &[u8], x: &Q8K, r0: usize, out: &mut [f32]) {
    macro_rules! rows {
        ($($r:literal)*) => {
            match (kind, out.len()) {
                $((KQuant::Q4K, $r) => out.copy_from_slice(&dot_q4k::<$r>(row, x, r0)),
                  (KQuant::Q6K, $r) => out.copy_from_slice(&dot_q6k::<$r>(row, x, r0)),)*
                (_, len) => unreachable!("{len} rows at once"),
            }
        };
    }
    rows!(1 2 3 4 5 6 7 8)
}

/// A Q4_K super-block's eight 6-bit scales and eight 6-bit minimums, from its 12 packed bytes.
fn q4k_scales(packed: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        (sc[j], mn[j]) = if j < 4 {
            (packed[j] & 63, packed[j + 4] & 63)
        } else {
            (
                (packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4),
                (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
            )
        };
    }
    (sc, mn)
}

/// [`dot_rows`] for Q4_K and `R` rows from `r0`, in the lanes of ggml's AVX2
/// `ggml_vec_dot_q4_K_q8_K`: per super-block, eight i32 lanes of scaled integer sums
/// (`maddubs`, then `madd` with the sub-block's scale) and four of minimums times block sums,
/// each added into f32 lanes by one FMA; the lanes summed at the end.
///
/// # Safety
/// As [`dot_rows`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q4k<const R: usize>(row: &[u8], x: &Q8K, r0: usize) -> [f32; R] {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut acc_m = [_mm_setzero_ps(); R];
    for (b, block) in row.chunks_exact(Q4K_BYTES).enumerate() {
        let ahead = block.as_ptr().wrapping_add(PREFETCH_BYTES);
        _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64) as *const i8);
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let dmin = f16::from_le_bytes([block[2], block[3]]).to_f32();
        let (sc, mn) = q4k_scales(&block[4..16]);
        let mins = _mm_setr_epi16(
            mn[0].into(), mn[1].into(), mn[2].into(), mn[3].into(),
            mn[4].into(), mn[5].into(), mn[6].into(), mn[7].into(),
        );
        let qs = block.as_ptr().add(16);
        // Values of sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles), c = 0..4.
        let mut values = [_mm256_setzero_si256(); 8];
        for c in 0..4 {
            let q = _mm256_loadu_si256(qs.add(32 * c) as *const __m256i);
            values[2 * c] = _mm256_and_si256(q, low);
            values[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
        }
        for (i, (acc, acc_m)) in acc.iter_mut().zip(&mut acc_m).enumerate() {
            let at = (r0 + i) * x.stride + b;
            let (y, bsums) = (&x.qs[at], &x.bsums[at]);
            let yd = *x.d.get_unchecked(at);
            // Sub-block s's block sum pairs, against its minimum: four lanes of two each.
            let bsums = _mm256_loadu_si256(bsums.as_ptr() as *const __m256i);
            let pairs = _mm_hadd_epi16(
                _mm256_castsi256_si128(bsums),
                _mm256_extracti128_si256(bsums, 1),
            );
            let prod = _mm_madd_epi16(mins, pairs);
            *acc_m = _mm_fmadd_ps(_mm_set1_ps(-yd * dmin), _mm_cvtepi32_ps(prod), *acc_m);
            let mut sumi = _mm256_setzero_si256();
            for (s, &w) in values.iter().enumerate() {
                let y = _mm256_loadu_si256(y.as_ptr().add(32 * s) as *const __m256i);
                let pairs = _mm256_maddubs_epi16(w, y);
                let scaled = _mm256_madd_epi16(pairs, _mm256_set1_epi16(i16::from(sc[s])));
                sumi = _mm256_add_epi32(sumi, scaled);
            }
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(yd * d), _mm256_cvtepi32_ps(sumi), *acc);
        }
    }
    let mut out = [0f32; R];
    for (o, (acc, m)) in out.iter_mut().zip(acc.iter().zip(acc_m)) {
        let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_add_ss(m, _mm_movehdup_ps(m));
        *o = hsum(*acc) + _mm_cvtss_f32(m);
    }
    out
}

/// [`dot_rows`] for Q6_K and `R` rows from `r0`, in the lanes of ggml's AVX2
/// `ggml_vec_dot_q6_K_q8_K`: the unsigned values (value + 32) times the activations by
/// `maddubs`, less 32 times the activations (the same pairs), then `madd` with the sub-blocks'
/// scales; eight i32 lanes per super-block, added into f32 lanes by one FMA; the lanes summed at
/// the end.
///
/// # Safety
/// As [`dot_rows`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q6k<const R: usize>(row: &[u8], x: &Q8K, r0: usize) -> [f32; R] {
    use std::arch::x86_64::*;
    let (low, two, m32) = (
        _mm256_set1_epi8(0x0F),
        _mm256_set1_epi8(3),
        _mm256_set1_epi8(32),
    );
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, block) in row.chunks_exact(Q6K_BYTES).enumerate() {
        let ahead = block.as_ptr().wrapping_add(PREFETCH_BYTES);
        _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64) as *const i8);
        let (ql, qh) = (block.as_ptr(), block.as_ptr().add(128));
        let scales: &[u8] = &block[192..208];
        let d = f16::from_le_bytes([block[208], block[209]]).to_f32();
        // Unsigned values (value + 32, 0..=63) of 32 values each: run t of half h holds values
        // 128h + 32t.., whose sub-blocks (16 values each) are 8h + 2t and 8h + 2t + 1.
        let mut values = [_mm256_setzero_si256(); 8];
        let mut scale = [_mm256_setzero_si256(); 8];
        for h in 0..2 {
            let l0 = _mm256_loadu_si256(ql.add(64 * h) as *const __m256i);
            let l1 = _mm256_loadu_si256(ql.add(64 * h + 32) as *const __m256i);
            let hi = _mm256_loadu_si256(qh.add(32 * h) as *const __m256i);
            let high = |shift: i32| {
                let bits = match shift {
                    0 => hi,
                    2 => _mm256_srli_epi16(hi, 2),
                    4 => _mm256_srli_epi16(hi, 4),
                    _ => _mm256_srli_epi16(hi, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(bits, two), 4)
            };
            let runs = [
                _mm256_or_si256(_mm256_and_si256(l0, low), high(0)),
                _mm256_or_si256(_mm256_and_si256(l1, low), high(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), high(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), high(6)),
            ];
            for (t, run) in runs.into_iter().enumerate() {
                let s = 8 * h + 2 * t;
                values[4 * h + t] = run;
                let (a, b) = (scales[s] as i8, scales[s + 1] as i8);
                scale[4 * h + t] = _mm256_setr_epi16(
                    a.into(), a.into(), a.into(), a.into(), a.into(), a.into(), a.into(), a.into(),
                    b.into(), b.into(), b.into(), b.into(), b.into(), b.into(), b.into(), b.into(),
                );
            }
        }
        for (i, acc) in acc.iter_mut().enumerate() {
            let at = (r0 + i) * x.stride + b;
            let y = &x.qs[at];
            let mut sumi = _mm256_setzero_si256();
            for (t, (&w, &sc)) in values.iter().zip(&scale).enumerate() {
                let y = _mm256_loadu_si256(y.as_ptr().add(32 * t) as *const __m256i);
                let pairs = _mm256_sub_epi16(
                    _mm256_maddubs_epi16(w, y),
                    _mm256_maddubs_epi16(m32, y),
                );
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, sc));
            }
            let dd = d * *x.d.get_unchecked(at);
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(sumi), *acc);
        }
    }
    let mut out = [0f32; R];
    for (o, acc) in out.iter_mut().zip(acc) {
        *o = hsum(acc);
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_q4k<const R: usize>(_: &[u8], _: &Q8K, _: usize) -> [f32; R] {
    unreachable!("KQuantRows::new returns None off x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_q6k<const R: usize>(_: &[u8], _: &Q8K, _: usize) -> [f32; R] {
    unreachable!("KQuantRows::new returns None off x86_64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::test_tensor;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::Module;

    fn layer(kind: KQuant, n: usize, k: usize, seed: u64) -> (KQuantRows, Vec<u8>, QMatMul) {
        let w = test_tensor(&[n, k], seed, 1.0);
        let dtype = match kind {
            KQuant::Q4K => GgmlDType::Q4K,
            KQuant::Q6K => GgmlDType::Q6K,
        };
        let q = QTensor::quantize(&w, dtype).unwrap();
        let bytes = q.data().unwrap().to_vec();
        let ours = KQuantRows::new(kind, &bytes, n, k).unwrap().unwrap();
        (ours, bytes, QMatMul::from_qtensor(q).unwrap())
    }

    /// Against candle's own product of one row (llama.cpp's arithmetic, its own order of the
    /// f32 sums): equal up to that order.
    #[test]
    fn matches_candles_single_row_product() {
        if !crate::kernels::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for kind in [KQuant::Q4K, KQuant::Q6K] {
            for (n, k) in [(32, 256), (48, 1024), (16, 4864)] {
                let (ours, bytes, theirs) = layer(kind, n, k, 3 + k as u64);
                for r in 0..3 {
                    let x = test_tensor(&[1, 1, k], 40 + r, 2.0);
                    let want = theirs.forward(&x).unwrap().flatten_all().unwrap();
                    let want = want.to_vec1::<f32>().unwrap();
                    let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    let got = ours.matmul(&bytes, &x);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                            "{kind:?} {n}x{k} row {r} [{i}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// A row's outputs are the same bits alone and among up to 16 rows, whatever they hold.
    #[test]
    fn rows_do_not_depend_on_each_other() {
        if !crate::kernels::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for kind in [KQuant::Q4K, KQuant::Q6K] {
            let (n, k) = (24, 512);
            let (ours, bytes, _) = layer(kind, n, k, 9);
            let rows = 17;
            let x: Vec<f32> = (0..rows)
                .flat_map(|r| {
                    let row = test_tensor(&[k], 100 + r as u64, 0.1 + r as f32);
                    row.to_vec1::<f32>().unwrap()
                })
                .collect();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let alone: Vec<Vec<u32>> = (0..rows)
                .map(|r| bits(&ours.matmul(&bytes, &x[r * k..][..k])))
                .collect();
            for m in [2, 3, 8, 9, 16] {
                for first in [0, rows - m] {
                    let got = ours.matmul(&bytes, &x[first * k..][..m * k]);
                    for (r, out) in got.chunks_exact(n).enumerate() {
                        let what = format!("{kind:?}: row {r} of {m} from {first}");
                        assert_eq!(bits(out), alone[first + r], "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_wrong_byte_count_is_an_error() {
        if !crate::kernels::cpu::has_avx2_fma() {
            return;
        }
        assert!(KQuantRows::new(KQuant::Q6K, &[0u8; 209], 1, 256).is_err());
        assert!(KQuantRows::new(KQuant::Q4K, &[0u8; 144], 1, 128).unwrap().is_none());
    }
}
