//! Activation rows quantized to Q8_0 blocks, the form in which the GGUF kernels (`q5_0`,
//! `q8_0`) multiply them: 32 signed bytes and one scale per block, scale = max |x| / 127
//! rounded through f16, as llama.cpp and candle quantize the activations of a Q5_0 or Q8_0
//! matmul, so that the integer part of every block's dot product is the same as theirs.
//!
//! Also what both kernels share to multiply them: the integer block dot products, for AVX2
//! (`vpmaddubsw` + `vpmaddwd`) and AVX-512 VNNI (`vpdpbusd` on 256-bit registers, and on 512-bit
//! ones in a prompt's tile, two weight rows a register), which give the same exact eight lanes
//! of four products; the f32 part after them (one FMA per block and lane,
//! blocks in order, then [`hsum`]), which every kernel set and path shares, so that an output does
//! not depend on the kernel set, on the number of activation rows, or on the other rows; and the
//! prompt path's [`Tile`] of weight rows unpacked once for every activation row.
//!
//! Not for: the weights' file formats (`q5_0`, `q8_0`), or activations of the f32 and int8
//! seq2seq kernels (`packed_f32`, `packed_i8`), which keep their own row formats.

use half::f16;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

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
}

/// The sum of the eight lanes of `v`.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The eight lanes of four products of a block's 32 signed weights `w` and 32 activations `y`
/// (`offset` is unused: the signature is that of [`offset_quads`]). `maddubs` multiplies
/// unsigned by signed bytes, so w's sign is moved onto y: |w| ≤ 128 (a -128 reads as 128
/// unsigned) and |y| ≤ 127 keep each pair of products within its i16.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn signed_quads(w: __m256i, y: __m256i, _offset: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
    _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
}

/// [`signed_quads`] by `vpdpbusd`, which adds its four products to the lane without
/// saturating: the same exact sums.
///
/// # Safety
/// The CPU has AVX2, FMA, AVX-512 VL and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
#[inline]
pub(crate) unsafe fn signed_quads_vnni(w: __m256i, y: __m256i, _offset: __m256i) -> __m256i {
    let abs = _mm256_sign_epi8(w, w);
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), abs, _mm256_sign_epi8(y, w))
}

/// The eight lanes of four products of unsigned weights `w` (value + 16, 0..=31) and activations
/// `y`, less `offset` (16 × each lane's activations, [`Q8Acts::offset`]): the signed products.
/// Pairs stay within `maddubs`' i16 (2 · 31 · 127).
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn offset_quads(w: __m256i, y: __m256i, offset: __m256i) -> __m256i {
    let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w, y), _mm256_set1_epi16(1));
    _mm256_sub_epi32(sums, offset)
}

/// [`offset_quads`] by `vpdpbusd`, starting from -offset: the same exact lanes.
///
/// # Safety
/// The CPU has AVX2, FMA, AVX-512 VL and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
#[inline]
pub(crate) unsafe fn offset_quads_vnni(w: __m256i, y: __m256i, offset: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), offset), w, y)
}

/// Activation rows the decode paths of `q5_0` and `q8_0` multiply by a weight row in one pass,
/// the weights unpacked in registers once for all of them and one accumulator per row
/// (batched decoding: one row per sequence).
pub(crate) const FEW_ROWS: usize = 8;

/// The most activation rows the decode paths take (in passes of [`FEW_ROWS`]); more go through
/// the prompt path's [`Tile`], whose unpacking to memory pays off over many rows.
pub(crate) const FEW_ROWS_MOST: usize = 16;

/// The decode paths' loop, shared by `q5_0`, `q8_0` and `kquants`: `dst` (m rows of `n`, m at
/// most [`FEW_ROWS_MOST`]) from `dot(j, r0, out)`, which gives weight row `j`'s outputs for
/// activation rows `r0..r0 + out.len()` (at most [`FEW_ROWS`] of them). The weight rows are
/// split over candle's kernel threads (the pool candle's own matmuls use, so the two never
/// compete); each is read once per [`FEW_ROWS`] activation rows.
pub(crate) fn decode_rows(
    n: usize,
    m: usize,
    dst: &mut [f32],
    dot: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    assert!(m <= FEW_ROWS_MOST && dst.len() == m * n, "{m} rows of {n} in {}", dst.len());
    let out = super::cpu::SharedOut::new(dst);
    let rows = |range: std::ops::Range<usize>| {
        let mut v = [0f32; FEW_ROWS];
        for j in range {
            for r0 in (0..m).step_by(FEW_ROWS) {
                let v = &mut v[..FEW_ROWS.min(m - r0)];
                dot(j, r0, v);
                for (i, &v) in v.iter().enumerate() {
                    // SAFETY: (r0 + i) * n + j < m * n, and column j is written only by the
                    // work item that holds weight row j.
                    unsafe { out.write((r0 + i) * n + j, v) };
                }
            }
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(n, rows);
}

/// Weight rows of a prompt path's tile: each activation block is loaded once for this many rows
/// with AVX-512 (32 registers), their accumulators in registers; AVX2 (16 registers) goes over
/// the tile in two passes of half as many. (On the test machine's EPYC, an 896×896 Q5_0 matmul
/// of 185 rows took 1.88 ms with 8 rows per pass against 2.04 ms with 4 on VNNI; AVX2 ran
/// no faster with 8.)
pub(crate) const TILE: usize = 8;

/// [`TILE`] weight rows unpacked to bytes and f32 scales, reused for every activation row of a
/// prompt. Rows past the last one filled, and blocks past a row's real ones, hold zeros or an
/// earlier row's values: their outputs are not used.
pub(crate) struct Tile {
    /// Real blocks per row.
    pub blocks: usize,
    /// Blocks per row in `d` and `qs` (the real ones and padding).
    pub stride: usize,
    /// Whether `qs` holds unsigned values + 16 ([`offset_quads`]) rather than signed values
    /// ([`signed_quads`]).
    pub unsigned: bool,
    pub d: Vec<f32>,
    pub qs: Vec<[i8; QK]>,
    /// With AVX-512 VNNI ([`Tile::seal`]): rows 2p and 2p+1 side by side, block by block, so
    /// that one 512-bit register holds a block of both: their 64 bytes, and their scales eight
    /// times each.
    pair_qs: Vec<[i8; 2 * QK]>,
    pair_d: Vec<[f32; 16]>,
}

impl Tile {
    pub(crate) fn new(blocks: usize, stride: usize, unsigned: bool) -> Self {
        Self {
            blocks,
            stride,
            unsigned,
            d: vec![0.0; TILE * stride],
            qs: vec![[0; QK]; TILE * stride],
            pair_qs: Vec::new(),
            pair_d: Vec::new(),
        }
    }

    /// Readies the rows filled through [`Tile::row_mut`] for [`Tile::dot`] with `set`: with
    /// AVX-512 VNNI, lays them out in pairs (the 512-bit path); otherwise nothing.
    pub(crate) fn seal(&mut self, set: super::cpu::KernelSet) {
        if set < super::cpu::KernelSet::Avx512Vnni {
            return;
        }
        let (stride, blocks) = (self.stride, self.blocks);
        self.pair_qs.resize(TILE / 2 * blocks, [0; 2 * QK]);
        self.pair_d.resize(TILE / 2 * blocks, [0.0; 16]);
        for p in 0..TILE / 2 {
            for b in 0..blocks {
                let (lo, hi) = (2 * p * stride + b, (2 * p + 1) * stride + b);
                let q = &mut self.pair_qs[p * blocks + b];
                q[..QK].copy_from_slice(&self.qs[lo]);
                q[QK..].copy_from_slice(&self.qs[hi]);
                let d = &mut self.pair_d[p * blocks + b];
                d[..8].fill(self.d[lo]);
                d[8..].fill(self.d[hi]);
            }
        }
    }

    /// Row `t`'s blocks: (scales, values). Unseals the tile: until [`Tile::seal`] runs again,
    /// [`Tile::dot`] takes the 256-bit path, which reads the rows as they are now.
    pub(crate) fn row_mut(&mut self, t: usize) -> (&mut [f32], &mut [[i8; QK]]) {
        self.pair_qs.clear();
        let at = t * self.stride..(t + 1) * self.stride;
        (&mut self.d[at.clone()], &mut self.qs[at])
    }

    /// The outputs of the tile's rows for activation row `r` of `x`, with the kernels of `set`
    /// (AVX2 at least, and at most what the CPU has): per block and lane one FMA of
    /// (weight scale · activation scale) and the lane's exact sum, blocks in order, then
    /// [`hsum`], as the decode paths compute each row alone.
    ///
    /// With AVX-512 VNNI (the tile [`Tile::seal`]ed for it), two weight rows share each 512-bit
    /// register, lanes 0-7 the first and 8-15 the second: every lane does what the 256-bit
    /// path does, so the bits are the same.
    pub(crate) fn dot(&self, set: super::cpu::KernelSet, x: &Q8Acts, r: usize) -> [f32; TILE] {
        let vnni = set >= super::cpu::KernelSet::Avx512Vnni;
        // SAFETY: the callers pass a set the CPU has (`kernel_set`, or a test's check).
        unsafe {
            match (vnni, self.unsigned) {
                (false, false) => tile_signed_avx2(self, x, r),
                (false, true) => tile_offset_avx2(self, x, r),
                (true, unsigned) if self.pair_qs.len() == TILE / 2 * self.blocks => {
                    tile_pairs_vnni(self, x, r, unsigned)
                }
                (true, false) => tile_signed_vnni(self, x, r),
                (true, true) => tile_offset_vnni(self, x, r),
            }
        }
    }
}

/// Defines [`Tile::dot`] for one kernel set and kind of weight bytes: `$quads` is one of
/// [`signed_quads`], [`offset_quads`] and their VNNI forms.
macro_rules! tile_dot {
    ($name:ident, $features:literal, $quads:ident, $pass:literal) => {
        /// [`Tile::dot`] for one kernel set and kind of weight bytes, `$pass` rows at a time.
        ///
        /// # Safety
        /// The CPU has the features enabled here; `r` is a row of `x`, whose rows hold at least
        /// `w.blocks` blocks.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(w: &Tile, x: &Q8Acts, r: usize) -> [f32; TILE] {
            let mut out = [0f32; TILE];
            let at = r * x.stride;
            for first in (0..TILE).step_by($pass) {
                let mut acc = [_mm256_setzero_ps(); $pass];
                for b in 0..w.blocks {
                    let y = _mm256_loadu_si256(x.qs.as_ptr().add(at + b) as *const __m256i);
                    let offset =
                        _mm256_loadu_si256(x.offset.as_ptr().add(at + b) as *const __m256i);
                    let yd = _mm256_set1_ps(*x.d.get_unchecked(at + b));
                    for (t, acc) in acc.iter_mut().enumerate() {
                        let wat = (first + t) * w.stride + b;
                        let wv = _mm256_loadu_si256(w.qs.as_ptr().add(wat) as *const __m256i);
                        let quads = $quads(wv, y, offset);
                        // The same product as the scalar wd · yd of the decode paths.
                        let d = _mm256_mul_ps(_mm256_broadcast_ss(w.d.get_unchecked(wat)), yd);
                        *acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(quads), *acc);
                    }
                }
                for (o, a) in out[first..].iter_mut().zip(acc) {
                    *o = hsum(a);
                }
            }
            out
        }

        #[cfg(not(target_arch = "x86_64"))]
        unsafe fn $name(_: &Tile, _: &Q8Acts, _: usize) -> [f32; TILE] {
            unreachable!("the GGUF kernels run on x86_64 only")
        }
    };
}

/// [`Tile::dot`] with AVX-512 VNNI over the sealed pairs of rows. Per lane: the block's
/// integer sums by `vpdpbusd` (unsigned weights from -offset, as [`offset_quads_vnni`]; signed
/// ones as [`signed_quads_vnni`], the sign moved onto the activations), then one FMA of
/// (weight scale · activation scale) into the lane's sum, blocks in order; each half's [`hsum`]
/// at the end.
///
/// # Safety
/// The CPU has AVX2, FMA, AVX-512 F, BW, VL and VNNI; `w` is sealed for it; `r` is a row of `x`,
/// whose rows hold at least `w.blocks` blocks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_pairs_vnni(w: &Tile, x: &Q8Acts, r: usize, unsigned: bool) -> [f32; TILE] {
    let mut acc = [_mm512_setzero_ps(); TILE / 2];
    let at = r * x.stride;
    let zero = _mm512_setzero_si512();
    for b in 0..w.blocks {
        let y = _mm256_loadu_si256(x.qs.as_ptr().add(at + b) as *const __m256i);
        let y = _mm512_broadcast_i64x4(y);
        let start = if unsigned {
            let offset =
                _mm256_loadu_si256(x.offset.as_ptr().add(at + b) as *const __m256i);
            _mm512_sub_epi32(zero, _mm512_broadcast_i64x4(offset))
        } else {
            zero
        };
        let yd = _mm512_set1_ps(*x.d.get_unchecked(at + b));
        for (p, acc) in acc.iter_mut().enumerate() {
            let i = p * w.blocks + b;
            let wv = _mm512_loadu_si512(w.pair_qs.as_ptr().add(i) as *const _);
            let quads = if unsigned {
                _mm512_dpbusd_epi32(start, wv, y)
            } else {
                // |w| and y with w's sign, as `vpsignb` does on 256 bits (a weight of 0 zeroes
                // the product through |w|).
                let negative = _mm512_movepi8_mask(wv);
                let signed_y = _mm512_mask_sub_epi8(y, negative, zero, y);
                _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), signed_y)
            };
            // The same product as the scalar wd · yd of the decode paths.
            let d = _mm512_mul_ps(_mm512_loadu_ps(w.pair_d.as_ptr().add(i) as *const f32), yd);
            *acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(quads), *acc);
        }
    }
    let mut out = [0f32; TILE];
    for (p, acc) in acc.iter().enumerate() {
        let lo = _mm512_castps512_ps256(*acc);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(*acc), 1));
        out[2 * p] = hsum(lo);
        out[2 * p + 1] = hsum(hi);
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_pairs_vnni(_: &Tile, _: &Q8Acts, _: usize, _: bool) -> [f32; TILE] {
    unreachable!("the GGUF kernels run on x86_64 only")
}

tile_dot!(tile_signed_avx2, "avx2,fma", signed_quads, 4);
tile_dot!(tile_offset_avx2, "avx2,fma", offset_quads, 4);
tile_dot!(tile_signed_vnni, "avx2,fma,avx512f,avx512vl,avx512vnni", signed_quads_vnni, 8);
tile_dot!(tile_offset_vnni, "avx2,fma,avx512f,avx512vl,avx512vnni", offset_quads_vnni, 8);

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
    }
}
