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
    /// `group` blocks. A prompt's rows (more than [`PARALLEL_ROWS`]) are quantized over candle's
    /// kernel threads, each row as one thread would: the same bits.
    pub(crate) fn quantize(x: &[f32], k: usize, group: usize) -> Self {
        let stride = (k / QK).div_ceil(group) * group;
        let rows = x.len() / k;
        let mut acts = Self {
            stride,
            qs: vec![[0; QK]; rows * stride],
            d: vec![0.0; rows * stride],
            offset: vec![[0; 8]; rows * stride],
        };
        struct Out(*mut [i8; QK], *mut f32, *mut [i32; 8]);
        // SAFETY: each row's blocks are written by the one thread its index is given to, and
        // the buffers outlive the call.
        unsafe impl Sync for Out {}
        let out = Out(
            acts.qs.as_mut_ptr(),
            acts.d.as_mut_ptr(),
            acts.offset.as_mut_ptr(),
        );
        let out = &out;
        let work = |range: std::ops::Range<usize>| {
            for r in range {
                let (at, blocks) = (r * stride, k / QK);
                // SAFETY: rows are disjoint ranges of blocks within the buffers (see `Out`).
                unsafe {
                    quantize_row(
                        &x[r * k..(r + 1) * k],
                        std::slice::from_raw_parts_mut(out.0.add(at), blocks),
                        std::slice::from_raw_parts_mut(out.1.add(at), blocks),
                        std::slice::from_raw_parts_mut(out.2.add(at), blocks),
                    )
                };
            }
        };
        if rows <= PARALLEL_ROWS {
            work(0..rows);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(rows, work);
        }
        acts
    }
}

/// Rows of activations above which [`Q8Acts::quantize`] splits them over the kernel threads:
/// a decoding step's few rows cost less than waking the threads.
const PARALLEL_ROWS: usize = 16;

/// One row of `k` values into its `k / 32` blocks: with AVX2 where the CPU has it, else
/// [`quantize_row_scalar`]; the same bits either way.
fn quantize_row(row: &[f32], qs: &mut [[i8; QK]], d: &mut [f32], offset: &mut [[i32; 8]]) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx2_fma() {
        for (i, chunk) in row.chunks_exact(QK).enumerate() {
            // SAFETY: AVX2 and FMA were just checked for; `chunk` holds 32 values.
            d[i] = unsafe { quantize_block_avx2(chunk, &mut qs[i], &mut offset[i]) };
        }
        return;
    }
    quantize_row_scalar(row, qs, d, offset);
}

/// [`quantize_row`] one value at a time: the definition the vector code must match.
fn quantize_row_scalar(row: &[f32], qs: &mut [[i8; QK]], d: &mut [f32], offset: &mut [[i32; 8]]) {
    for (i, chunk) in row.chunks_exact(QK).enumerate() {
        d[i] = quantize_block_scalar(chunk, &mut qs[i], &mut offset[i]);
    }
}

/// One block of [`quantize_row_scalar`]; returns its scale.
fn quantize_block_scalar(x: &[f32], qs: &mut [i8; QK], offset: &mut [i32; 8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let scale = amax / 127.0;
    let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    for (q, v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    for (o, four) in offset.iter_mut().zip(qs.chunks_exact(4)) {
        *o = 16 * four.iter().map(|&v| i32::from(v)).sum::<i32>();
    }
    f16::from_f32(scale).to_f32()
}

/// One block of [`quantize_row_scalar`] eight values at a time; returns its scale. The same
/// max of the magnitudes, the same product by the inverse scale, rounded half away from zero
/// as `f32::round` does (truncated, then one added away from zero where the fraction's
/// magnitude is at least a half: the subtraction is exact), and the offsets from the bytes by
/// `maddubs`/`madd`, exact. A block so small that the inverse scale overflows (every value
/// below about 4e-37) goes to [`quantize_block_scalar`], whose saturating casts the vector
/// conversion does not share. (A NaN activation, which no model gives, could round otherwise.)
///
/// # Safety
/// The CPU has AVX2 and FMA, and `x` holds 32 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_block_avx2(x: &[f32], qs: &mut [i8; QK], offset: &mut [i32; 8]) -> f32 {
    debug_assert_eq!(x.len(), QK);
    let p = x.as_ptr();
    let v = [
        _mm256_loadu_ps(p),
        _mm256_loadu_ps(p.add(8)),
        _mm256_loadu_ps(p.add(16)),
        _mm256_loadu_ps(p.add(24)),
    ];
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_andnot_ps(sign, v[0]);
    for &vi in &v[1..] {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, vi));
    }
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m1 = _mm_max_ss(m2, _mm_movehdup_ps(m2));
    let amax = _mm_cvtss_f32(m1);
    let scale = amax / 127.0;
    if scale != 0.0 && !(1.0 / scale).is_finite() {
        return quantize_block_scalar(x, qs, offset);
    }
    let id = _mm256_set1_ps(if scale != 0.0 { 1.0 / scale } else { 0.0 });
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let round = |v: __m256| {
        let x = _mm256_mul_ps(v, id);
        let t = _mm256_round_ps(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(x, t));
        let up = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), one);
        let away = _mm256_or_ps(up, _mm256_and_ps(x, sign));
        _mm256_cvtps_epi32(_mm256_add_ps(t, away))
    };
    let [a, b, c, e] = v.map(round);
    // Packing interleaves the 128-bit lanes; the permutation puts the values back in order.
    let ab = _mm256_packs_epi32(a, b);
    let ce = _mm256_packs_epi32(c, e);
    let bytes = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(ab, ce),
        _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
    );
    _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, bytes);
    let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes);
    let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(16));
    _mm256_storeu_si256(offset.as_mut_ptr() as *mut __m256i, quads);
    f16::from_f32(scale).to_f32()
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
    fn the_vector_quantization_gives_the_scalar_bits() {
        if !super::super::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        // Random blocks, a block of zeros, blocks of exact halves (ties round away from zero),
        // and a block whose largest magnitude is negative.
        let k = 32 * 40;
        let mut x: Vec<f32> = super::super::cpu::test_tensor(&[k], 11, 9.0)
            .to_vec1::<f32>()
            .unwrap();
        x[32..64].fill(0.0);
        // A magnitude of 127 makes the scale exactly 1: the values stay halves.
        for (i, v) in x[64..96].iter_mut().enumerate() {
            *v = if i == 0 { 127.0 } else { i as f32 - 16.5 };
        }
        for (i, v) in x[96..128].iter_mut().enumerate() {
            *v = if i == 5 { -127.0 } else { 0.5 - i as f32 };
        }
        // Values so small that the inverse scale overflows to infinity, zeros among them: the
        // casts saturate (to ±127) and a zero times infinity gives 0.
        for (i, v) in x[128..160].iter_mut().enumerate() {
            *v = [0.0, 1e-38, -2e-39, 3e-40][i % 4];
        }
        let blocks = k / 32;
        let (mut qs, mut d, mut off) = (vec![[0; QK]; blocks], vec![0.0; blocks], vec![[0; 8]; blocks]);
        let (mut qs2, mut d2, mut off2) = (qs.clone(), d.clone(), off.clone());
        quantize_row(&x, &mut qs, &mut d, &mut off);
        quantize_row_scalar(&x, &mut qs2, &mut d2, &mut off2);
        assert_eq!(qs, qs2);
        assert_eq!(d.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), d2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert_eq!(off, off2);
        // The ties went away from zero.
        assert_eq!((d[2], qs[2][1], qs[2][31]), (1.0, -16, 15));
        assert_eq!((d[3], qs[3][0], qs[3][2]), (1.0, 1, -2));
        assert_eq!(&qs[4][..4], &[0, 127, -128, 127]);
    }

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
