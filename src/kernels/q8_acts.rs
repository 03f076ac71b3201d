//! Activation rows quantized to Q8_0 blocks, the form in which the GGUF kernels (`q5_0`,
//! `q8_0`) multiply them: 32 signed bytes and one scale per block, scale = max |x| / 127
//! rounded through f16, as llama.cpp and candle quantize the activations of a Q5_0 or Q8_0
//! matmul, so that the integer part of every block's dot product is the same as theirs.
//!
//! Not for: weights, or activations of the f32 and int8 seq2seq kernels (`packed_f32`,
//! `packed_i8`), which keep their own row formats.

use half::f16;

/// Values per block.
pub(crate) const QK: usize = 32;

/// Activation rows as Q8_0 blocks, each row padded with zero blocks to a multiple of the
/// kernel's group of blocks.
pub(crate) struct Q8Acts {
    /// Blocks per row, padding included.
    pub stride: usize,
    /// Each block's 32 values.
    pub qs: Vec<[i8; QK]>,
    /// Each block's scale.
    pub d: Vec<f32>,
    /// Each block's 16 × (sum of each run of four values), the eight lanes of the dot product of
    /// the block with 32 sixteens: what `q5_0`'s unsigned weights (value + 16) add.
    pub offset: Vec<[i32; 8]>,
}

impl Q8Acts {
    /// The rows of `x` (rows of `k` values, `k` a multiple of 32), each padded to a multiple of
    /// `group` blocks.
    pub(crate) fn quantize(x: &[f32], k: usize, group: usize) -> Self {
        let stride = (k / QK).div_ceil(group) * group;
        let rows = x.len() / k;
        let mut acts = Self {
            stride,
            qs: vec![[0; QK]; rows * stride],
            d: vec![0.0; rows * stride],
            offset: vec![[0; 8]; rows * stride],
        };
        for (r, row) in x.chunks_exact(k).enumerate() {
            for (i, chunk) in row.chunks_exact(QK).enumerate() {
                let at = r * stride + i;
                let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                let qs = &mut acts.qs[at];
                for (q, v) in qs.iter_mut().zip(chunk) {
                    *q = (v * id).round() as i8;
                }
                for (o, four) in acts.offset[at].iter_mut().zip(qs.chunks_exact(4)) {
                    *o = 16 * four.iter().map(|&v| i32::from(v)).sum::<i32>();
                }
                acts.d[at] = f16::from_f32(d).to_f32();
            }
        }
        acts
    }

    /// Row `r`'s blocks, `blocks` of them from its start: (values, scales).
    pub(crate) fn row(&self, r: usize, blocks: usize) -> (&[[i8; QK]], &[f32]) {
        let at = r * self.stride..r * self.stride + blocks;
        (&self.qs[at.clone()], &self.d[at])
    }
}

/// The sum of the eight lanes of `v`.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// `acc + d · (w · y)`, the products of a block's 32 signed weights `w` and 32 activations `y`
/// summed in eight lanes of four. `maddubs` multiplies unsigned by signed bytes, so w's sign is
/// moved onto y: |w| ≤ 128 (a -128 reads as 128 unsigned) and |y| ≤ 127 keep each pair of
/// products within its i16.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn signed_block_fma(
    acc: std::arch::x86_64::__m256,
    w: std::arch::x86_64::__m256i,
    y: std::arch::x86_64::__m256i,
    d: f32,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
    let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(quads), acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_scales_offsets_and_padding() {
        // Two rows of 64 values: block scales from each block's max, padding to 4 blocks.
        let x: Vec<f32> = (0..128).map(|i| (i as f32 - 50.0) / 10.0).collect();
        let a = Q8Acts::quantize(&x, 64, 4);
        assert_eq!(a.stride, 4);
        assert_eq!(a.qs.len(), 8);
        let d0 = f16::from_f32(5.0 / 127.0).to_f32();
        assert_eq!(a.d[0], d0);
        assert_eq!(a.qs[0][0], -127);
        for (i, q) in a.qs[0].iter().enumerate() {
            let v = (i as f32 - 50.0) / 10.0;
            assert!((f32::from(*q) * d0 - v).abs() <= d0, "value {i}");
        }
        assert_eq!(a.offset[0][0], 16 * a.qs[0][..4].iter().map(|&v| i32::from(v)).sum::<i32>());
        // Padding blocks are zero; the second row starts at the stride.
        assert_eq!((a.d[2], a.qs[2], a.offset[3]), (0.0, [0; QK], [0; 8]));
        assert!(a.d[4] > 0.0 && a.d[5] > 0.0);
        let (qs, d) = a.row(1, 2);
        assert_eq!((qs.len(), d[1]), (2, a.d[5]));
    }
}
