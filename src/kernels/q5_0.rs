//! Linear layers whose weights are Q5_0 blocks, multiplied on the CPU with AVX2 or AVX-512 VNNI
//! without widening the weights first.
//!
//! What it is for: llama.cpp's Q4_K_M files store most matrices whose rows are not a multiple
//! of 256 values as Q5_0 (for Qwen2.5-0.5B, most of its 896-wide matrices: most of the model).
//! candle 0.11 has no SIMD Q5_0 kernel, so these were held as Q8_0 (see `qwen2::fast_kernels`),
//! which is exact but reads 34 bytes per 32 weights instead of 22. Decoding one token reads every
//! weight once, so it is bound by memory traffic and by the work of unpacking 5-bit values.
//!
//! At load, each row is rearranged (not requantized: the same scales and the same 5-bit values)
//! into groups of four blocks laid out for the SIMD unpacking, 88 bytes per group as the file's
//! four 22-byte blocks:
//! - bytes 0..8: the four f16 scales, one vector conversion for four blocks;
//! - bytes 8..24: the fifth bits, byte `i` holding bit `b` = fifth bit of value `i` of block `b`
//!   and bit `4 + b` = that of value `16 + i`, so one block's bits are one shift and one mask;
//! - bytes 24..56 and 56..88: the low four bits of blocks 0 and 2 (low nibbles) and 1 and 3 (high
//!   nibbles), byte `i` for value `i`, so two blocks come from one 32-byte load.
//!
//! The values are then unsigned (0..=31, value + 16) and multiply the activations directly; the
//! 16 × (sum of the activations) that this adds is subtracted as an integer, per block, from
//! sums precomputed with the activations. A row whose length is not a multiple of four blocks is
//! padded with zero blocks, which add nothing.
//!
//! The arithmetic is llama.cpp's and candle's for Q5_0 × Q8_0: the activations are quantized to
//! blocks of 32 signed bytes with one scale (rounded through f16, as a Q8_0 block stores it), each
//! block's integer dot product is exact, and the blocks are summed in f32, in order.
//!
//! Decoding (one activation row per sequence, up to [`FEW_ROWS_MOST`]) unpacks each group in
//! registers once for [`FEW_ROWS`](super::q8_acts::FEW_ROWS) rows. A prompt (more rows)
//! unpacks [`TILE`] weight rows at a time to bytes and multiplies each activation block with all
//! of them while it is in a register. Both paths, and the AVX2 and VNNI integer products, give
//! every output the same bits ([`super::q8_acts`]), so a row's outputs do not depend on the rows
//! multiplied with it.
//!
//! Not for: other block types, GPUs, or CPUs without AVX2 and FMA ([`Q5Linear::new`] says `None`
//! and the caller keeps candle's path).

use super::cpu::KernelSet;
#[cfg(target_arch = "x86_64")]
use super::q8_acts::{hsum, offset_quads, offset_quads_vnni};
use super::q8_acts::{decode_rows, Q8Acts, Tile, FEW_ROWS_MOST, QK, TILE};
use candle_core::{Result, Tensor};
use half::f16;

/// Bytes per Q5_0 block: f16 scale, 32 high bits, 16 bytes of low nibbles.
pub(crate) const BLOCK_BYTES: usize = 22;
/// Blocks per group of the kernel's layout.
const GROUP: usize = 4;
/// Bytes per group: four blocks' worth, rearranged (see the module doc).
const GROUP_BYTES: usize = GROUP * BLOCK_BYTES;
/// How far ahead of the group being read the decode kernel asks for the row's bytes. The
/// hardware prefetcher alone left the 2-core test machine at ~70% of its read bandwidth on the
/// 0.5B model's matrices; any distance from 2 to 4 KiB did about as well.
const PREFETCH_BYTES: usize = 2048;

/// A Q5_0 weight matrix of `n` rows (outputs) by `k` columns (inputs), in the kernel's layout.
#[derive(Debug)]
pub struct Q5Linear {
    groups: Vec<u8>,
    n: usize,
    k: usize,
}

impl Q5Linear {
    /// The layer for `blocks` (the tensor's raw Q5_0 bytes, `n` rows of `k` values), or `None`
    /// where this kernel does not run: a CPU without AVX2/FMA, or rows that are not whole
    /// blocks. A wrong byte count is an error (a corrupt file).
    pub fn new(blocks: &[u8], n: usize, k: usize) -> Result<Option<Self>> {
        if !Self::supported() || !k.is_multiple_of(QK) || k == 0 || n == 0 {
            return Ok(None);
        }
        let expected = n.checked_mul(k / QK * BLOCK_BYTES);
        if expected != Some(blocks.len()) {
            candle_core::bail!(
                "Q5_0 tensor of {n}x{k} holds {} bytes, expected {expected:?}",
                blocks.len()
            );
        }
        let row_bytes = groups_per_row(k) * GROUP_BYTES;
        let mut groups = vec![0u8; n * row_bytes];
        for (src, dst) in blocks
            .chunks_exact(k / QK * BLOCK_BYTES)
            .zip(groups.chunks_exact_mut(row_bytes))
        {
            // SAFETY: `supported` checked AVX2 and FMA above.
            unsafe { repack_row(src, dst) };
        }
        Ok(Some(Self { groups, n, k }))
    }

    /// Whether this CPU runs the kernel.
    pub fn supported() -> bool {
        super::cpu::has_avx2_fma()
    }

    /// `xs @ W^T` for `xs` of shape (.., k), f32, on the CPU: (.., n).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        super::cpu::forward_rows(xs, self.k, self.n, |x, m, dst| {
            self.matmul(&Q8Acts::quantize(x, self.k, GROUP), m, dst)
        })
    }

    /// The groups of weight row `j`.
    fn row(&self, j: usize) -> &[u8] {
        let bytes = groups_per_row(self.k) * GROUP_BYTES;
        &self.groups[j * bytes..(j + 1) * bytes]
    }

    /// dst (m, n) = acts (m rows) · W^T with the kernels of [`super::cpu::kernel_set`].
    fn matmul(&self, acts: &Q8Acts, m: usize, dst: &mut [f32]) {
        self.matmul_with(super::cpu::kernel_set(), acts, m, dst)
    }

    /// dst (m, n) = acts (m rows) · W^T with the kernels of `set`, split by weight rows over
    /// candle's kernel threads (the pool candle's own matmuls use, so the two never compete).
    /// Every path gives an output the same bits (see [`super::q8_acts`]).
    fn matmul_with(&self, set: KernelSet, acts: &Q8Acts, m: usize, dst: &mut [f32]) {
        super::cpu::check_set(set);
        let n = self.n;
        if m <= FEW_ROWS_MOST {
            // Decoding (one row per sequence): each weight row is unpacked in registers once
            // per `FEW_ROWS` activation rows and never leaves them.
            decode_rows(n, m, dst, |j, r0, v| {
                // SAFETY: `new` returned Some only where AVX2 and FMA are present, and `set` is
                // at most what the CPU has; `decode_rows` passes rows r0.. of `acts`.
                unsafe { dot_q5_rows(set, self.row(j), acts, r0, v) }
            });
            return;
        }
        let out = super::cpu::SharedOut::new(dst);
        // A prompt: each tile of weight rows is unpacked once and multiplied by every
        // activation row.
        let rows = |range: std::ops::Range<usize>| {
            let mut tile = Tile::new(self.k / QK, groups_per_row(self.k) * GROUP, true);
            for j0 in range.clone().step_by(TILE) {
                let filled = TILE.min(range.end - j0);
                for t in 0..filled {
                    let (d, qs) = tile.row_mut(t);
                    // SAFETY: as above; the tile's rows hold whole groups.
                    unsafe { unpack(self.row(j0 + t), d, qs) };
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

/// Groups in a row of `k` values (`k` a multiple of 32).
fn groups_per_row(k: usize) -> usize {
    (k / QK).div_ceil(GROUP)
}

/// Unpacks `row` (whole groups of the kernel's layout) to unsigned bytes (value + 16, 0..=31)
/// and f32 scales, one block of each per block of the row, padding included.
///
/// # Safety
/// The CPU has AVX2 and FMA, and `d` and `qs` hold as many blocks as `row` (the scales are stored
/// four at a time without a bounds check).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn unpack(row: &[u8], d: &mut [f32], qs: &mut [[i8; QK]]) {
    debug_assert_eq!(row.len() / GROUP_BYTES * GROUP, d.len());
    debug_assert_eq!(d.len(), qs.len());
    use std::arch::x86_64::*;
    for (g, group) in row.chunks_exact(GROUP_BYTES).enumerate() {
        let (scales, values) = unpack_group(group);
        _mm_storeu_ps(d.as_mut_ptr().add(g * GROUP), scales);
        for (b, w) in values.into_iter().enumerate() {
            _mm256_storeu_si256(qs[g * GROUP + b].as_mut_ptr() as *mut __m256i, w);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn unpack(_: &[u8], _: &mut [f32], _: &mut [[i8; QK]]) {
    unreachable!("Q5Linear::new returns None off x86_64")
}

/// A Q5_0 block's scale and its 32 values: value j takes its low 4 bits from byte 6 + j % 16
/// (low nibble for j < 16, high nibble after) and its fifth bit from bit j of the 32-bit `qh`,
/// minus 16. The one definition of the file's layout in this crate (`qwen2::fast_kernels` uses
/// it too; the tests check the kernel's layout against it).
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

/// Rearranges one row of file blocks into `dst`, whole groups of the kernel's layout (the module
/// doc), the last one padded with zero blocks.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn repack_row(src: &[u8], dst: &mut [u8]) {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0F);
    let one = _mm256_set1_epi8(1);
    let mut blocks = src.chunks_exact(BLOCK_BYTES);
    for group in dst.chunks_exact_mut(GROUP_BYTES) {
        let mut scales = [0u8; 2 * GROUP];
        // Unsigned values (value + 16); a padding block is all zero, its scale too.
        let mut values = [_mm256_setzero_si256(); GROUP];
        for (b, v) in values.iter_mut().enumerate() {
            if let Some(block) = blocks.next() {
                scales[2 * b..2 * b + 2].copy_from_slice(&block[..2]);
                *v = _mm256_add_epi8(unpack_block_avx2(block), _mm256_set1_epi8(16));
            }
        }
        // Fifth bits: bit b of byte i for value i of block b (bytes hold 0 or 1 before the
        // shifts, so the 16-bit shifts move nothing across bytes).
        let mut fifth = _mm256_setzero_si256();
        for (b, v) in values.iter().enumerate() {
            let bit = _mm256_and_si256(_mm256_srli_epi16(*v, 4), one);
            fifth = _mm256_or_si256(fifth, _mm256_sllv_epi32(bit, _mm256_set1_epi32(b as i32)));
        }
        // Values 16..32 move to the high half of bytes 0..16.
        let fifth = _mm_or_si128(
            _mm256_castsi256_si128(fifth),
            _mm_slli_epi16(_mm256_extracti128_si256(fifth, 1), 4),
        );
        let pair = |a: __m256i, b: __m256i| {
            _mm256_or_si256(
                _mm256_and_si256(a, low),
                _mm256_slli_epi16(_mm256_and_si256(b, low), 4),
            )
        };
        group[..8].copy_from_slice(&scales);
        _mm_storeu_si128(group.as_mut_ptr().add(8) as *mut __m128i, fifth);
        let lo = pair(values[0], values[1]);
        let hi = pair(values[2], values[3]);
        _mm256_storeu_si256(group.as_mut_ptr().add(24) as *mut __m256i, lo);
        _mm256_storeu_si256(group.as_mut_ptr().add(56) as *mut __m256i, hi);
    }
}

/// A file block's 32 values (-16..=15) as signed bytes in a register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn unpack_block_avx2(b: &[u8]) -> std::arch::x86_64::__m256i {
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
    _mm256_or_si256(
        nibbles,
        _mm256_andnot_si256(high, _mm256_set1_epi8(0xF0u8 as i8)),
    )
}

/// A group's four scales, and its four blocks' values as unsigned bytes (value + 16, 0..=31).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn unpack_group(
    g: &[u8],
) -> (std::arch::x86_64::__m128, [std::arch::x86_64::__m256i; GROUP]) {
    use std::arch::x86_64::*;
    debug_assert_eq!(g.len(), GROUP_BYTES);
    let p = g.as_ptr();
    let low = _mm256_set1_epi8(0x0F);
    let bit5 = _mm256_set1_epi8(0x10);
    let scales = _mm_cvtph_ps(_mm_loadl_epi64(p as *const __m128i));
    let fifth = _mm_loadu_si128(p.add(8) as *const __m128i);
    // Byte i holds the fifth bits of value i of the four blocks in bits 0..4.
    let fifth = _mm256_set_m128i(_mm_srli_epi16(fifth, 4), fifth);
    let lo = _mm256_loadu_si256(p.add(24) as *const __m256i);
    let hi = _mm256_loadu_si256(p.add(56) as *const __m256i);
    // Block b's bit moves to bit 4 (shifts of at most 4 bring nothing from the next byte there).
    let values = [
        _mm256_or_si256(
            _mm256_and_si256(lo, low),
            _mm256_and_si256(_mm256_slli_epi16(fifth, 4), bit5),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(lo, 4), low),
            _mm256_and_si256(_mm256_slli_epi16(fifth, 3), bit5),
        ),
        _mm256_or_si256(
            _mm256_and_si256(hi, low),
            _mm256_and_si256(_mm256_slli_epi16(fifth, 2), bit5),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(hi, 4), low),
            _mm256_and_si256(_mm256_slli_epi16(fifth, 1), bit5),
        ),
    ];
    (scales, values)
}

/// For activation rows `r0..r0 + out.len()` (at most [`FEW_ROWS`](super::q8_acts::FEW_ROWS)),
/// each row's sum over blocks
/// of scale_w · scale_x · (integer dot product) into `out`, unpacking the weights in registers
/// once for all of them, with the kernels of `set`. Every row gets the operations of a call of
/// that row alone, in the same order.
///
/// # Safety
/// The CPU has the kernels of `set` (AVX2 and FMA at least); `row` is a whole row of this layer
/// and `r0..r0 + out.len()` rows of `x`.
unsafe fn dot_q5_rows(set: KernelSet, row: &[u8], x: &Q8Acts, r0: usize, out: &mut [f32]) {
    let vnni = set >= KernelSet::Avx512Vnni;
    macro_rules! rows {
        ($($r:literal)*) => {
            match out.len() {
                $($r if vnni => out.copy_from_slice(&dot_q5_vnni::<$r>(row, x, r0)),
                  $r => out.copy_from_slice(&dot_q5_avx2::<$r>(row, x, r0)),)*
                len => unreachable!("{len} rows at once"),
            }
        };
    }
    rows!(1 2 3 4 5 6 7 8)
}

/// Defines [`dot_q5_rows`] for one kernel set and `R` rows: `$quads` is that set's
/// [`super::q8_acts::offset_quads`].
macro_rules! dot_q5 {
    ($name:ident, $features:literal, $quads:ident) => {
        /// [`dot_q5_rows`] for one kernel set and `R` rows from `r0`.
        ///
        /// # Safety
        /// As [`dot_q5_rows`], the CPU having the features enabled here.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize>(row: &[u8], x: &Q8Acts, r0: usize) -> [f32; R] {
            use std::arch::x86_64::*;
            let mut acc = [_mm256_setzero_ps(); R];
            debug_assert_eq!(row.len() / GROUP_BYTES * GROUP, x.stride);
            debug_assert!((r0 + R) * x.stride <= x.d.len());
            for (g, group) in row.chunks_exact(GROUP_BYTES).enumerate() {
                // A hint only: an address past the row, or past the matrix, is never read.
                let ahead = group.as_ptr().wrapping_add(PREFETCH_BYTES);
                _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64) as *const i8);
                let (scales, values) = unpack_group(group);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let at = (r0 + i) * x.stride + g * GROUP;
                    let xd = _mm_loadu_ps(x.d.as_ptr().add(at));
                    let d = _mm256_castps128_ps256(_mm_mul_ps(scales, xd));
                    for (b, &w) in values.iter().enumerate() {
                        let y = _mm256_loadu_si256(x.qs.as_ptr().add(at + b) as *const __m256i);
                        let offset =
                            _mm256_loadu_si256(x.offset.as_ptr().add(at + b) as *const __m256i);
                        let sums = $quads(w, y, offset);
                        let scale = _mm256_permutevar8x32_ps(d, _mm256_set1_epi32(b as i32));
                        *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), *acc);
                    }
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
            unreachable!("Q5Linear::new returns None off x86_64")
        }
    };
}

dot_q5!(dot_q5_avx2, "avx2,fma", offset_quads);
dot_q5!(
    dot_q5_vnni,
    "avx2,fma,avx512f,avx512vl,avx512vnni",
    offset_quads_vnni
);

#[cfg(not(target_arch = "x86_64"))]
unsafe fn repack_row(_: &[u8], _: &mut [u8]) {
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

    /// The kernel's layout holds the file's scales and values, block for block, and pads a
    /// row that is not whole groups with zero-scale blocks.
    #[test]
    fn kernel_layout_holds_the_file_blocks() {
        if !Q5Linear::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (n, k) in [(3, 896), (2, 96), (2, 32), (1, 160)] {
            let bytes = random_blocks(n, k, 7 + k as u64);
            let ours = Q5Linear::new(&bytes, n, k).unwrap().unwrap();
            let blocks = k / QK;
            let mut w = Tile::new(blocks, groups_per_row(k) * GROUP, true);
            for j in 0..n {
                let (wd, wq) = w.row_mut(0);
                unsafe { unpack(ours.row(j), wd, wq) };
                let file = &bytes[j * blocks * BLOCK_BYTES..(j + 1) * blocks * BLOCK_BYTES];
                for (i, block) in file.chunks_exact(BLOCK_BYTES).enumerate() {
                    let (d, q) = unpack_block(block);
                    let signed = wq[i].map(|v| v - 16);
                    assert_eq!((wd[i], signed), (d, q), "{n}x{k} row {j} block {i}");
                }
                for (i, d) in wd.iter().enumerate().skip(blocks) {
                    assert_eq!(*d, 0.0, "{n}x{k} row {j}: padding block {i}");
                }
            }
        }
    }

    /// Decode (one row) and prompt (many rows) against candle's own Q5_0 × Q8_0 matmul, which
    /// does the same integer arithmetic: equal up to the order of the f32 sums. The narrower
    /// shapes end in a partial group.
    #[test]
    fn matches_candles_q5_0_matmul() {
        if !Q5Linear::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (n, k) in [(37, 896), (5, 192), (4, 64)] {
            check_against_candle(n, k);
        }
    }

    fn check_against_candle(n: usize, k: usize) {
        let bytes = random_blocks(n, k, 11);
        let ours = Q5Linear::new(&bytes, n, k).unwrap().unwrap();
        let q = candle_q5(&bytes, n, k);
        let theirs = QMatMul::from_qtensor(q).unwrap();
        for m in [1, 5, FEW_ROWS_MOST + 3] {
            let x = activations(m, k);
            let a = ours.forward(&x).unwrap();
            assert_eq!(a.dims(), &[1, m, n]);
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = theirs.forward(&x).unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                    "{n}x{k} m={m} [{i}]: {x} vs {y}"
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
        let x = activations(FEW_ROWS_MOST + 2, k);
        let all = ours.forward(&x).unwrap().to_vec3::<f32>().unwrap();
        for (r, row) in all[0].iter().enumerate() {
            let one = ours.forward(&x.narrow(1, r, 1).unwrap()).unwrap();
            assert_eq!(&one.to_vec3::<f32>().unwrap()[0][0], row);
        }
    }

    /// Every kernel set this CPU has gives the AVX2 kernel's bits, and a row's outputs do not
    /// depend on how many rows are multiplied with it or on what they hold.
    #[test]
    fn kernel_sets_and_row_counts_agree() {
        if !Q5Linear::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (n, k) in [(9, 128), (6, 96), (13, 896)] {
            let ours = Q5Linear::new(&random_blocks(n, k, 21 + k as u64), n, k)
                .unwrap()
                .unwrap();
            crate::kernels::cpu::check_sets_and_rows(k, n, |set, x, m| {
                let mut dst = vec![0f32; m * n];
                ours.matmul_with(set, &Q8Acts::quantize(x, k, GROUP), m, &mut dst);
                dst
            });
        }
    }

    /// Timings, not a check: `RAYON_NUM_THREADS=1 cargo test --release --lib prompt_timings --
    /// --ignored --nocapture` prints the CPU time (of this thread: one kernel thread, so a busy
    /// machine counts less) of an 896×896 matmul of a 185-row prompt, per set, against 185
    /// single-row (decode path) calls.
    #[test]
    #[ignore]
    fn prompt_timings() {
        let (n, k, m) = (896, 896, 185);
        let ours = Q5Linear::new(&random_blocks(n, k, 1), n, k).unwrap().unwrap();
        let x = activations(m, k).flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let acts = Q8Acts::quantize(&x, k, GROUP);
        let rows: Vec<Q8Acts> = x.chunks_exact(k).map(|r| Q8Acts::quantize(r, k, GROUP)).collect();
        let mut dst = vec![0f32; m * n];
        for set in crate::kernels::cpu::sets_to_test() {
            // Nanoseconds this thread has run (the first field of schedstat).
            let cpu_ns = || {
                let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
                stat.split_whitespace().next().unwrap().parse::<f64>().unwrap()
            };
            let time = |f: &mut dyn FnMut()| {
                f();
                let start = cpu_ns();
                for _ in 0..20 {
                    f();
                }
                (cpu_ns() - start) / 20.0 / 1e6
            };
            let tiled = time(&mut || ours.matmul_with(set, &acts, m, &mut dst));
            let single = time(&mut || {
                for (r, a) in rows.iter().enumerate() {
                    ours.matmul_with(set, a, 1, &mut dst[r * n..][..n]);
                }
            });
            eprintln!("{}: prompt {tiled:.2} ms, row by row {single:.2} ms", set.name());
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
