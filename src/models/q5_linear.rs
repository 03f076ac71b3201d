//! Linear layers whose weights are Q5_0 blocks, multiplied on the CPU with AVX2 without
//! widening the weights first.
//!
//! What it is for: llama.cpp's Q4_K_M files store most matrices whose rows are not a multiple
//! of 256 values as Q5_0 (for Qwen2.5-0.5B, most of its 896-wide matrices: most of the model). candle 0.11 has no SIMD Q5_0 kernel, so these were held as Q8_0 (see
//! `qwen2::fast_kernels`), which is exact but reads 34 bytes per 32 weights instead of 22.
//! Decoding one token reads every weight once, so it is bound by memory traffic: this kernel
//! reads the 22-byte blocks as they are in the file and unpacks them in registers.
//!
//! The arithmetic is llama.cpp's and candle's for Q5_0 × Q8_0: the activations are quantized to
//! blocks of 32 signed bytes with one scale (rounded through f16, as a Q8_0 block stores it), each
//! block's integer dot product is exact, and the blocks are summed in f32.
//!
//! Not for: other block types, GPUs, or CPUs without AVX2 and FMA ([`Q5Linear::new`] says `None`
//! and the caller keeps candle's path).

use candle_core::{Result, Tensor};
use half::f16;

/// Values per block.
const QK: usize = 32;
/// Bytes per Q5_0 block: f16 scale, 32 high bits, 16 bytes of low nibbles.
pub(crate) const BLOCK_BYTES: usize = 22;

/// A Q5_0 weight matrix of `n` rows (outputs) by `k` columns (inputs), raw blocks row by row.
#[derive(Debug)]
pub struct Q5Linear {
    blocks: Vec<u8>,
    n: usize,
    k: usize,
}

/// One block of 32 activations as signed bytes with one scale.
#[derive(Clone, Copy)]
struct Q8Block {
    d: f32,
    qs: [i8; QK],
}

impl Q5Linear {
    /// The layer for `blocks` (the tensor's raw Q5_0 bytes, `n` rows of `k` values), or `None`
    /// where this kernel does not run: a CPU without AVX2/FMA, or rows that are not whole
    /// blocks. A wrong byte count is an error (a corrupt file).
    pub fn new(blocks: &[u8], n: usize, k: usize) -> Result<Option<Self>> {
        if !Self::supported() || k % QK != 0 || n == 0 {
            return Ok(None);
        }
        let expected = n.checked_mul(k / QK * BLOCK_BYTES);
        if expected != Some(blocks.len()) {
            candle_core::bail!(
                "Q5_0 tensor of {n}x{k} holds {} bytes, expected {expected:?}",
                blocks.len()
            );
        }
        Ok(Some(Self {
            blocks: blocks.to_vec(),
            n,
            k,
        }))
    }

    /// Whether this CPU runs the kernel.
    pub fn supported() -> bool {
        super::cpu::has_avx2_fma()
    }

    /// `xs @ W^T` for `xs` of shape (.., k), f32, on the CPU: (.., n).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        super::cpu::forward_rows(xs, self.k, self.n, |x, m, dst| {
            self.matmul(&quantize(x, self.k), m, dst)
        })
    }

    /// The blocks of weight row `j`.
    fn row(&self, j: usize) -> &[u8] {
        let bytes = self.k / QK * BLOCK_BYTES;
        &self.blocks[j * bytes..(j + 1) * bytes]
    }

    /// dst (m, n) = acts (m rows of k/32 blocks) · W^T, split by weight rows over candle's
    /// kernel threads (the pool candle's own matmuls use, so the two never compete).
    fn matmul(&self, acts: &[Q8Block], m: usize, dst: &mut [f32]) {
        let (n, kb) = (self.n, self.k / QK);
        let out = super::cpu::SharedOut::new(dst);
        if m == 1 {
            // Decode: one activation row, fused unpacking.
            let rows = |range: std::ops::Range<usize>| {
                for j in range {
                    // SAFETY: `new` returned Some only where AVX2 and FMA are present; each
                    // index of dst is written by exactly one work item.
                    unsafe { out.write(j, dot_q5_avx2(self.row(j), acts)) };
                }
            };
            candle_core::utils::barrier_pool().execute_chunked(n, rows);
            return;
        }
        // A prompt: each weight row is unpacked once and multiplied by every activation row.
        let rows = |range: std::ops::Range<usize>| {
            let mut w = Unpacked::new(kb);
            for j in range {
                w.unpack(self.row(j));
                for r in 0..m {
                    // SAFETY: as above.
                    let v = unsafe { dot_q8_avx2(&w, &acts[r * kb..(r + 1) * kb]) };
                    unsafe { out.write(r * n + j, v) };
                }
            }
        };
        candle_core::utils::barrier_pool().execute_chunked(n, rows);
    }
}

/// Activations, row by row, as [`Q8Block`]s (the Q8_0 quantization: scale = max |x| / 127).
fn quantize(x: &[f32], k: usize) -> Vec<Q8Block> {
    let mut out = Vec::with_capacity(x.len() / QK);
    for row in x.chunks_exact(k) {
        for chunk in row.chunks_exact(QK) {
            let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0i8; QK];
            for (q, v) in qs.iter_mut().zip(chunk) {
                *q = (v * id).round() as i8;
            }
            out.push(Q8Block {
                d: f16::from_f32(d).to_f32(),
                qs,
            });
        }
    }
    out
}

/// One weight row unpacked to signed bytes (-16..=15) and f32 scales, reused across the
/// activation rows of a prompt.
struct Unpacked {
    d: Vec<f32>,
    qs: Vec<[i8; QK]>,
}

impl Unpacked {
    fn new(blocks: usize) -> Self {
        Self {
            d: vec![0.0; blocks],
            qs: vec![[0; QK]; blocks],
        }
    }

    fn unpack(&mut self, row: &[u8]) {
        for ((b, d), qs) in row
            .chunks_exact(BLOCK_BYTES)
            .zip(self.d.iter_mut())
            .zip(self.qs.iter_mut())
        {
            let (scale, values) = unpack_block(b);
            *d = scale;
            *qs = values;
        }
    }
}

/// A Q5_0 block's scale and its 32 values: value j takes its low 4 bits from byte 6 + j % 16
/// (low nibble for j < 16, high nibble after) and its fifth bit from bit j of the 32-bit `qh`,
/// minus 16. The one definition of the layout in this crate (`qwen2::fast_kernels` uses it too).
pub(crate) fn unpack_block(b: &[u8]) -> (f32, [i8; QK]) {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let mut q = [0i8; QK];
    for j in 0..16 {
        let lo = (b[6 + j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (b[6 + j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        q[j] = lo as i8 - 16;
        q[j + 16] = hi as i8 - 16;
    }
    (d, q)
}

/// Sum over blocks of scale_w · scale_x · (integer dot product), unpacking the Q5_0 blocks in
/// registers.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q5_avx2(row: &[u8], x: &[Q8Block]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_ps();
    for (b, y) in row.chunks_exact(BLOCK_BYTES).zip(x) {
        let (d, w) = unpack_avx2(b);
        acc = block_fma(acc, w, y, d * y.d);
    }
    hsum(acc)
}

/// A Q5_0 block's scale, and its 32 values (-16..=15) as signed bytes in a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn unpack_avx2(b: &[u8]) -> (f32, std::arch::x86_64::__m256i) {
    use std::arch::x86_64::*;
    debug_assert_eq!(b.len(), BLOCK_BYTES);
    // Byte i of the spread copy of qh is byte i / 8 of qh; the mask keeps bit i % 8 of it.
    let spread = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let packed = _mm_loadu_si128(b.as_ptr().add(6) as *const __m128i);
    let nibbles = _mm256_and_si256(
        _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
        _mm256_set1_epi8(0x0F),
    );
    let high = _mm256_cmpeq_epi8(
        _mm256_and_si256(
            _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), spread),
            bit,
        ),
        bit,
    );
    // value - 16: the nibble itself where the fifth bit is set, else the nibble with the sign
    // bits set (nibble - 16 in two's complement).
    let w = _mm256_or_si256(
        nibbles,
        _mm256_andnot_si256(high, _mm256_set1_epi8(0xF0u8 as i8)),
    );
    (d, w)
}

/// Like [`dot_q5_avx2`] for a row already unpacked by [`Unpacked::unpack`].
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q8_avx2(w: &Unpacked, x: &[Q8Block]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_ps();
    for ((wq, wd), y) in w.qs.iter().zip(&w.d).zip(x) {
        let wv = _mm256_loadu_si256(wq.as_ptr() as *const __m256i);
        acc = block_fma(acc, wv, y, wd * y.d);
    }
    hsum(acc)
}

/// acc + d · (the 32 products w·y summed in eight lanes of four). |w| ≤ 16 and |y| ≤ 127, so
/// each pair of products fits the i16 of `maddubs`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block_fma(
    acc: std::arch::x86_64::__m256,
    w: std::arch::x86_64::__m256i,
    y: &Q8Block,
    d: f32,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let yv = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
    // maddubs multiplies unsigned by signed bytes: move w's sign onto y.
    let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yv, w));
    let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(quads), acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_q5_avx2(_: &[u8], _: &[Q8Block]) -> f32 {
    unreachable!("Q5Linear::new returns None off x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_q8_avx2(_: &Unpacked, _: &[Q8Block]) -> f32 {
    unreachable!("Q5Linear::new returns None off x86_64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::Module;

    /// Random Q5_0 bytes for an n×k matrix (any bytes are a valid block, bar NaN scales).
    fn random_blocks(n: usize, k: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut out = Vec::new();
        for _ in 0..n * k / QK {
            let d = f16::from_f32((next() % 1000) as f32 / 20000.0 + 0.001);
            out.extend_from_slice(&d.to_le_bytes());
            for _ in 0..20 {
                out.push(next() as u8);
            }
        }
        out
    }

    fn activations(m: usize, k: usize) -> Tensor {
        let v: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * if i % 13 == 0 { 9.0 } else { 1.0 })
            .collect();
        Tensor::from_vec(v, (1, m, k), &Device::Cpu).unwrap()
    }

    /// The same bytes as candle's own Q5_0 tensor.
    fn candle_q5(bytes: &[u8], n: usize, k: usize) -> QTensor {
        candle_core::quantized::ggml_file::qtensor_from_ggml(
            GgmlDType::Q5_0,
            bytes,
            vec![n, k],
            &Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn unpacking_matches_candles_dequantization() {
        let (n, k) = (3, 64);
        let bytes = random_blocks(n, k, 3);
        let q = candle_q5(&bytes, n, k);
        let want = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let want = want.to_vec1::<f32>().unwrap();
        let got: Vec<f32> = bytes
            .chunks_exact(BLOCK_BYTES)
            .flat_map(|b| {
                let (d, q) = unpack_block(b);
                q.map(|v| v as f32 * d)
            })
            .collect();
        assert_eq!(got, want);
    }

    /// Decode (one row) and prompt (many rows) against candle's own Q5_0 × Q8_0 matmul, which
    /// does the same integer arithmetic: equal up to the order of the f32 sums.
    #[test]
    fn matches_candles_q5_0_matmul() {
        if !Q5Linear::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let (n, k) = (37, 896);
        let bytes = random_blocks(n, k, 11);
        let ours = Q5Linear::new(&bytes, n, k).unwrap().unwrap();
        let q = candle_q5(&bytes, n, k);
        let theirs = QMatMul::from_qtensor(q).unwrap();
        for m in [1, 5] {
            let x = activations(m, k);
            let a = ours.forward(&x).unwrap();
            assert_eq!(a.dims(), &[1, m, n]);
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = theirs.forward(&x).unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                    "m={m} [{i}]: {x} vs {y}"
                );
            }
        }
    }

    /// The prompt path (unpacked rows) and the decode path (in-register unpacking) give the same
    /// numbers for the same row.
    #[test]
    fn prompt_and_decode_paths_agree() {
        if !Q5Linear::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let (n, k) = (9, 128);
        let ours = Q5Linear::new(&random_blocks(n, k, 5), n, k)
            .unwrap()
            .unwrap();
        let x = activations(3, k);
        let all = ours.forward(&x).unwrap().to_vec3::<f32>().unwrap();
        for (r, row) in all[0].iter().enumerate() {
            let one = ours.forward(&x.narrow(1, r, 1).unwrap()).unwrap();
            assert_eq!(&one.to_vec3::<f32>().unwrap()[0][0], row);
        }
    }

    #[test]
    fn a_wrong_byte_count_is_an_error() {
        if !Q5Linear::supported() {
            return;
        }
        assert!(Q5Linear::new(&[0u8; 21], 1, 32).is_err());
        assert!(Q5Linear::new(&[0u8; 22], 1, 48).unwrap().is_none());
    }
}
