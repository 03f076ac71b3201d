//! int8 linear layers, `y = x W^T + b`, for the CPU with AVX2 or AVX-512 VNNI: weights quantized once per output
//! row and packed for a tiled integer kernel; activations quantized per row at each call.
//!
//! What it is for: the encoder-decoder families' `int8` weights (CTranslate2's `int8` compute
//! type does the same layers the same way: one scale per weight row, one per activation row).
//! candle's Q8_0 matmul computes one dot product per (row, output) pair and re-reads the whole
//! weight matrix for every activation row; this kernel reads each weight panel once per call.
//!
//! The arithmetic: both sides are quantized to -127..=127. AVX2 multiplies unsigned by signed
//! bytes (`vpmaddubsw`) and adds pairs into 16 bits, with saturation, so the kernel multiplies
//! |a| by w carrying a's sign (`vpsignb`, as llama.cpp's int8 dot products do): a pair of
//! products is at most 2 · 127 · 127 = 32258 and never saturates. Each output's sum is an exact
//! 32-bit integer (no overflow below 133,000 inputs), so results do not depend on `--threads`.
//! A row holding NaN or infinity gives NaN outputs, as an f32 product would.
//!
//! With AVX-512 VNNI ([`KernelSet::Avx512Vnni`]) one `vpdpbusd` per activation row and input
//! group does the products for a whole panel (16 outputs × 4 inputs, one 512-bit register). It
//! multiplies unsigned by signed bytes without saturation, so the activations go in as a + 128
//! (1..=255) and the 128 · Σ w that this adds is subtracted per output, from sums made at
//! packing. The i32 lanes wrap, but the true sum fits, so the result is the same exact integer
//! as the AVX2 kernel's, and the f32 part after it is shared: outputs are bit-identical across
//! kernel sets. AVX-512 without VNNI runs the AVX2 kernel.
//!
//! Not for: GPUs, CPUs without AVX2 and FMA ([`PackedI8::supported`]), or f32 weights
//! (`super::packed_f32`).

use candle_core::{Result, Tensor};

use super::cpu::{KernelSet, SharedOut};

/// Outputs per weight panel (two registers of eight 32-bit lanes).
const NR: usize = 16;
/// Activation rows per kernel call.
const MR: usize = 4;
/// Inputs per 32-bit lane: `vpmaddubsw` + `vpmaddwd` sum four byte products.
const KG: usize = 4;
/// Largest magnitude after quantization, weights and activations alike.
const QMAX: f32 = 127.0;
/// Most inputs whose products an i32 lane can sum without overflow (2^31 / 127²), rounded down.
const MAX_K: usize = 133_000;
/// Bytes of packed activations worked on together (a share of a 512 KiB L2).
const L2_ACTIVATIONS: usize = 192 * 1024;

/// A weight matrix of `n` outputs by `k` inputs as 8-bit integers with one scale per output.
#[derive(Debug)]
pub struct PackedI8 {
    /// `ceil(n / NR)` panels of `kp * NR` bytes (`kp` = `k` rounded up to [`KG`]): for input
    /// group `g`, the 4 values of output `j` are at `g * NR * KG + j * KG`; zero padded.
    panels: Vec<i8>,
    /// Per output: its scale.
    scale: Vec<f32>,
    /// Per output, padded to whole panels: 128 × the sum of its quantized weights, what the
    /// VNNI kernel's unsigned activations (a + 128) add to each sum.
    bias_sums: Vec<i32>,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

impl PackedI8 {
    /// Whether this CPU runs the kernel (it needs AVX2 only; FMA comes with every AVX2 CPU
    /// but early ones, and is asked for so that one check serves every kernel here).
    pub fn supported() -> bool {
        super::cpu::has_avx2_fma()
    }

    /// Quantizes and packs `weight` (`(n, k)`) and keeps `bias` (`(n,)`) in f32. `None` where the
    /// kernel cannot run (no AVX2/FMA, or not on the CPU): the caller keeps candle's path.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Option<Self>> {
        if !Self::supported() || !weight.device().is_cpu() {
            return Ok(None);
        }
        let (n, k) = weight.dims2()?;
        if k == 0 || k > MAX_K {
            candle_core::bail!("int8 linear layer of {k} inputs (1 to {MAX_K} supported)");
        }
        let kp = k.next_multiple_of(KG);
        let mut panels = vec![0i8; n.div_ceil(NR) * kp * NR];
        let mut scale = Vec::with_capacity(n);
        let mut bias_sums = vec![0i32; n.div_ceil(NR) * NR];
        super::cpu::with_f32_values(weight, |w| {
            for (row, values) in w.chunks_exact(k).enumerate() {
                let d = row_scale(values);
                let panel = &mut panels[(row / NR) * kp * NR..][..kp * NR];
                let mut sum = 0i32;
                for (i, &v) in values.iter().enumerate() {
                    let q = quantize(v, d);
                    panel[(i / KG) * NR * KG + (row % NR) * KG + i % KG] = q;
                    sum += i32::from(q);
                }
                // |sum| ≤ 127 · MAX_K, and 128 times that wraps as the kernel's sums do.
                bias_sums[row] = sum.wrapping_mul(128);
                scale.push(d);
            }
        })?;
        let bias = super::cpu::read_bias(bias, n)?;
        Ok(Some(Self {
            panels,
            scale,
            bias_sums,
            bias,
            n,
            k,
        }))
    }

    /// The dequantized weight rows of `ids` (any shape): `(ids.., k)`, for an embedding table
    /// tied to this matrix.
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        let kp = self.k.next_multiple_of(KG);
        super::cpu::gather_rows(ids, self.n, self.k, |id, out| {
            let panel = &self.panels[(id / NR) * kp * NR..][..kp * NR];
            for (i, o) in out.iter_mut().enumerate() {
                let q = panel[(i / KG) * NR * KG + (id % NR) * KG + i % KG];
                *o = f32::from(q) * self.scale[id];
            }
        })
    }

    /// `xs @ W^T + b` for `xs` of shape (.., k) on the CPU: (.., n).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        super::cpu::forward_rows(xs, self.k, self.n, |x, m, dst| self.matmul(x, m, dst))
    }

    /// `dst (m, n) = x (m, k) · W^T + b` with the kernels of [`super::cpu::kernel_set`].
    fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]) {
        self.matmul_with(super::cpu::kernel_set(), x, m, dst)
    }

    /// `dst (m, n) = x (m, k) · W^T + b` with the kernels of `set` (AVX2 at least, and at most
    /// what the CPU has), split by weight panels over candle's kernel threads.
    fn matmul_with(&self, set: KernelSet, x: &[f32], m: usize, dst: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        assert_eq!(x.len(), m * k);
        assert_eq!(dst.len(), m * n);
        super::cpu::check_set(set);
        if m == 0 || n == 0 {
            return;
        }
        let vnni = set >= KernelSet::Avx512Vnni;
        let kp = k.next_multiple_of(KG);
        let (mut a, a_scale) = quantize_rows(x, m, k);
        if vnni {
            // a + 128 as an unsigned byte (padding too: it meets zero weights).
            a.iter_mut().for_each(|v| *v ^= i8::MIN);
        }
        let out = SharedOut::new(dst);
        let blocks = m.div_ceil(MR);
        let group = (L2_ACTIVATIONS / (kp * MR)).clamp(1, blocks);
        let work = |range: std::ops::Range<usize>| {
            let mut tile = [[0i32; NR]; MR];
            for g in (0..blocks).step_by(group) {
                for p in range.clone() {
                    let panel = &self.panels[p * kp * NR..][..kp * NR];
                    let cols = NR.min(n - p * NR);
                    for mb in g..blocks.min(g + group) {
                        let block = &a[mb * kp * MR..][..kp * MR];
                        // SAFETY: `new` packs only where AVX2 is present and `set` is at most
                        // what the CPU has; the slices hold `kp / KG` groups each.
                        unsafe {
                            if vnni {
                                let sums = &self.bias_sums[p * NR..][..NR];
                                kernel_vnni(block, panel, sums, &mut tile)
                            } else {
                                kernel(block, panel, &mut tile)
                            }
                        };
                        for (r, sums) in tile.iter().enumerate().take(MR.min(m - mb * MR)) {
                            let row = mb * MR + r;
                            let at = p * NR..p * NR + cols;
                            let bias = self.bias.as_ref().map(|b| &b[at.clone()]);
                            // SAFETY: row < m and the columns p*NR.. are < n; only the work
                            // item that owns panel p writes them.
                            let dst = unsafe { out.row(row * n + p * NR, cols) };
                            scale_row(&sums[..cols], a_scale[row], &self.scale[at], bias, dst);
                        }
                    }
                }
            }
        };
        candle_core::utils::barrier_pool().execute_chunked(n.div_ceil(NR), work);
    }
}

/// `dst[j] = sums[j] · a_scale · w_scale[j] (+ bias[j])`, the products in that order and no
/// fused multiply-add, so that every kernel set's outputs are the same bits. Written as plain
/// loops over slices, which the compiler vectorizes.
fn scale_row(sums: &[i32], a_scale: f32, w_scale: &[f32], bias: Option<&[f32]>, dst: &mut [f32]) {
    for ((d, &s), &w) in dst.iter_mut().zip(sums).zip(w_scale) {
        *d = s as f32 * a_scale * w;
    }
    if let Some(bias) = bias {
        for (d, &b) in dst.iter_mut().zip(bias) {
            *d += b;
        }
    }
}

/// The scale of one row: its largest magnitude maps to [`QMAX`]. NaN when the row holds NaN or
/// infinity, so that its products come out NaN rather than silently zero.
fn row_scale(row: &[f32]) -> f32 {
    // One pass: `f32::max` skips NaN, so NaN is noted on the side. Eight running maxima, one
    // per lane of a register, so that the loop vectorizes; a maximum does not depend on the
    // order it is taken in.
    const LANES: usize = 8;
    let (mut lanes, mut nan) = ([0f32; LANES], false);
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
            nan |= v.is_nan();
        }
    }
    let mut amax = lanes.into_iter().fold(0f32, f32::max);
    for &v in tail {
        amax = amax.max(v.abs());
        nan |= v.is_nan();
    }
    if nan || !amax.is_finite() {
        f32::NAN
    } else if amax > 0.0 {
        amax / QMAX
    } else {
        1.0
    }
}

fn quantize(v: f32, d: f32) -> i8 {
    // NaN (a NaN scale) gives 0; the scale then makes the output NaN.
    let q = round_half_away(v / d).clamp(-QMAX, QMAX);
    if q.is_nan() {
        0
    } else {
        // SAFETY: q is finite and within ±127. (Unlike `as`, which saturates value by value,
        // this vectorizes.)
        (unsafe { q.to_int_unchecked::<i32>() }) as i8
    }
}

/// `q.round()` (halves away from zero) without a call to the C library's `roundf`, so that a
/// loop of it vectorizes: `q - q.trunc()` is exact below 2^23, and the values here are within
/// ±127 after the clamp that follows (or NaN, which stays NaN).
#[inline]
fn round_half_away(q: f32) -> f32 {
    let t = q.trunc();
    if (q - t).abs() >= 0.5 {
        t + q.signum()
    } else {
        t
    }
}

/// Quantizes each row of `x` with its own scale and packs blocks of [`MR`] rows: for input
/// group `g`, row `r`'s 4 bytes are at `g * MR * KG + r * KG`. Padding (rows past `m`, inputs
/// past `k`) is zero.
fn quantize_rows(x: &[f32], m: usize, k: usize) -> (Vec<i8>, Vec<f32>) {
    let kp = k.next_multiple_of(KG);
    let mut a = vec![0i8; m.div_ceil(MR) * kp * MR];
    let mut scales = Vec::with_capacity(m);
    let mut q = vec![0i8; kp];
    for (r, row) in x.chunks_exact(k).enumerate() {
        let d = row_scale(row);
        for (q, &v) in q.iter_mut().zip(row) {
            *q = quantize(v, d);
        }
        let block = &mut a[(r / MR) * kp * MR..][..kp * MR];
        for (g, four) in q.chunks_exact(KG).enumerate() {
            block[g * MR * KG + (r % MR) * KG..][..KG].copy_from_slice(four);
        }
        scales.push(d);
    }
    (a, scales)
}

/// `tile[r][j]` = Σ_i a[r][i] · w[j][i] over all input groups.
///
/// # Safety
/// The CPU has AVX2; `a` holds `MR * KG` bytes per group and `b` `NR * KG` per group, for the
/// same number of groups.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel(a: &[i8], b: &[i8], tile: &mut [[i32; NR]; MR]) {
    use std::arch::x86_64::*;
    let groups = b.len() / (NR * KG);
    debug_assert_eq!(a.len(), groups * MR * KG);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for g in 0..groups {
        let b0 = _mm256_loadu_si256(bp.add(g * NR * KG) as *const __m256i);
        let b1 = _mm256_loadu_si256(bp.add(g * NR * KG + 32) as *const __m256i);
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_set1_epi32((ap.add(g * MR * KG + r * KG) as *const i32).read_unaligned());
            // |a| (unsigned) times w with a's sign: the same products, and maddubs' operand types.
            let abs = _mm256_sign_epi8(av, av);
            let p0 = _mm256_maddubs_epi16(abs, _mm256_sign_epi8(b0, av));
            let p1 = _mm256_maddubs_epi16(abs, _mm256_sign_epi8(b1, av));
            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(p0, ones));
            acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(p1, ones));
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        _mm256_storeu_si256(tile[r].as_mut_ptr() as *mut __m256i, acc[0]);
        _mm256_storeu_si256(tile[r].as_mut_ptr().add(8) as *mut __m256i, acc[1]);
    }
}

/// `tile[r][j]` = Σ_i a[r][i] · w[j][i] as [`kernel`] computes it, where `a` holds a + 128
/// (unsigned) and `bias_sums[j]` = 128 · Σ_i w[j][i]; wrapping i32 arithmetic, exact where the
/// true sum fits (as `MAX_K` ensures).
///
/// # Safety
/// The CPU has AVX-512 F, BW, VL and VNNI; `a` and `b` as for [`kernel`]; `bias_sums` holds
/// [`NR`] values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn kernel_vnni(a: &[i8], b: &[i8], bias_sums: &[i32], tile: &mut [[i32; NR]; MR]) {
    use std::arch::x86_64::*;
    let groups = b.len() / (NR * KG);
    debug_assert_eq!(a.len(), groups * MR * KG);
    debug_assert_eq!(bias_sums.len(), NR);
    let mut acc = [_mm512_setzero_si512(); MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for g in 0..groups {
        // One group of a panel is 16 outputs × 4 inputs: 64 bytes, one register.
        let w = _mm512_loadu_si512(bp.add(g * NR * KG) as *const _);
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_epi32((ap.add(g * MR * KG + r * KG) as *const i32).read_unaligned());
            *acc = _mm512_dpbusd_epi32(*acc, av, w);
        }
    }
    let sums = _mm512_loadu_si512(bias_sums.as_ptr() as *const _);
    for (r, acc) in acc.iter().enumerate() {
        _mm512_storeu_si512(tile[r].as_mut_ptr() as *mut _, _mm512_sub_epi32(*acc, sums));
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel(_: &[i8], _: &[i8], _: &mut [[i32; NR]; MR]) {
    unreachable!("PackedI8::new returns None off x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel_vnni(_: &[i8], _: &[i8], _: &[i32], _: &mut [[i32; NR]; MR]) {
    unreachable!("PackedI8::new returns None off x86_64")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::cpu::test_tensor;
    use candle_core::Device;
    use candle_core::Module;

    #[test]
    fn round_half_away_is_round() {
        let below_half = 0.5f32.next_down();
        let mut values = vec![0.0, -0.0, 0.5, -0.5, 1.5, -2.5, below_half, -below_half, 126.5];
        values.extend((0..20_000).map(|i| (i as f32 - 10_000.0) * 0.0137));
        values.extend([127.49999, -127.5, f32::NAN, 1e30, -1e30]);
        for v in values {
            let (want, got) = (v.round(), round_half_away(v));
            assert!(want == got || (want.is_nan() && got.is_nan()), "{v}: {want} vs {got}");
        }
    }

    /// The same product in plain integer arithmetic on the same quantized values.
    fn reference(w: &[Vec<f32>], x: &[Vec<f32>], bias: &[f32]) -> Vec<Vec<f32>> {
        let quant = |v: &[f32], max: f32| {
            let amax = v.iter().fold(0f32, |a, x| a.max(x.abs()));
            let d = if amax > 0.0 { amax / max } else { 1.0 };
            let q: Vec<i32> = v.iter().map(|x| (x / d).round().clamp(-max, max) as i32).collect();
            (q, d)
        };
        x.iter()
            .map(|xr| {
                let (qx, dx) = quant(xr, QMAX);
                w.iter()
                    .zip(bias)
                    .map(|(wr, b)| {
                        let (qw, dw) = quant(wr, QMAX);
                        let dot: i32 = qx.iter().zip(&qw).map(|(a, b)| a * b).sum();
                        dot as f32 * dx * dw + b
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn equals_integer_arithmetic_on_ragged_shapes() {
        if !PackedI8::supported() {
            eprintln!("SKIP: this CPU has no AVX2");
            return;
        }
        for (m, k, n) in [(1, 8, 16), (5, 30, 37), (9, 513, 70)] {
            let w = test_tensor(&[n, k], 1, 0.2);
            let b = test_tensor(&[n], 2, 0.2);
            let x = test_tensor(&[m, k], 3, 2.0);
            let packed = PackedI8::new(&w, Some(&b)).unwrap().unwrap();
            let got = packed.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            let want = reference(
                &w.to_vec2().unwrap(),
                &x.to_vec2().unwrap(),
                &b.to_vec1().unwrap(),
            );
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "m={m} k={k} n={n}: {g} vs {w}");
            }
            // And close to the f32 product.
            let exact = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            let err = (packed.forward(&x).unwrap() - &exact).unwrap().abs().unwrap();
            let err = err.max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = exact.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(err < 0.05 * scale, "m={m} k={k} n={n}: error {err} of {scale}");
        }
    }

    /// Every kernel set this CPU has gives the AVX2 kernel's bits (the VNNI kernel's integer
    /// sums are the same exact numbers), and a row's outputs do not depend on how many rows are
    /// multiplied with it or on what they hold.
    #[test]
    fn kernel_sets_and_row_counts_agree() {
        if !PackedI8::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (k, n) in [(8, 16), (30, 37), (513, 70), (1024, 33)] {
            let w = test_tensor(&[n, k], 7 + k as u64, 0.3);
            let b = test_tensor(&[n], 8, 0.2);
            let packed = PackedI8::new(&w, Some(&b)).unwrap().unwrap();
            crate::kernels::cpu::check_sets_and_rows(k, n, |set, x, m| {
                let mut dst = vec![0f32; m * n];
                packed.matmul_with(set, x, m, &mut dst);
                dst
            });
        }
    }

    /// Weights and activations at ±127 everywhere: the largest sums, where a saturating or
    /// wrapping kernel would go wrong, equal on every kernel set.
    #[test]
    fn extreme_values_agree_across_sets() {
        if !PackedI8::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let (k, n) = (4096, 16);
        let w: Vec<f32> = (0..n * k).map(|i| if (i / k + i) % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let w = Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap();
        let packed = PackedI8::new(&w, None).unwrap().unwrap();
        let x: Vec<f32> = (0..2 * k).map(|i| if i % 5 == 0 { -1.0 } else { 1.0 }).collect();
        let want: Vec<f32> = {
            let mut dst = vec![0f32; 2 * n];
            packed.matmul_with(crate::kernels::cpu::KernelSet::Avx2, &x, 2, &mut dst);
            dst
        };
        // Row 0, output 0: Σ x·w in ±1 units, times the scales (1/127 each).
        let exact: i32 = (0..k)
            .map(|i| {
                let wi = if i % 3 == 0 { -1 } else { 1 };
                let xi = if i % 5 == 0 { -1 } else { 1 };
                wi * xi * 127 * 127
            })
            .sum();
        assert_eq!(want[0], exact as f32 * (1.0 / 127.0) * (1.0 / 127.0));
        for set in crate::kernels::cpu::sets_to_test() {
            let mut dst = vec![0f32; 2 * n];
            packed.matmul_with(set, &x, 2, &mut dst);
            assert_eq!(dst, want, "{}", set.name());
        }
    }

    #[test]
    fn a_nan_input_gives_nan_outputs() {
        if !PackedI8::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let w = test_tensor(&[18, 8], 4, 2.0);
        let packed = PackedI8::new(&w, None).unwrap().unwrap();
        let mut x = vec![0.5f32; 16];
        x[3] = f32::NAN;
        let y = packed
            .forward(&Tensor::from_vec(x, (2, 8), &Device::Cpu).unwrap())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!(y[0].iter().all(|v| v.is_nan()), "{:?}", y[0]);
        assert!(y[1].iter().all(|v| v.is_finite()), "{:?}", y[1]);
    }

    #[test]
    fn rows_are_the_dequantized_weights() {
        if !PackedI8::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let w = test_tensor(&[19, 10], 5, 2.0);
        let packed = PackedI8::new(&w, None).unwrap().unwrap();
        let ids = Tensor::new(&[[2u32, 18]], &Device::Cpu).unwrap();
        let rows = packed.rows(&ids).unwrap();
        // Row i times a one-hot input j is the layer's output j for input e_i... check via
        // forward: e_i · W^T = column i of W^T = dequantized W[., i] up to the activation scale.
        let eye = Tensor::eye(10, candle_core::DType::F32, &Device::Cpu).unwrap();
        let cols = packed.forward(&eye).unwrap().t().unwrap(); // (19, 10): dequantized W
        let want = candle_nn::Embedding::new(cols.contiguous().unwrap(), 10)
            .forward(&ids)
            .unwrap();
        let diff = (rows - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        assert!(packed.rows(&Tensor::new(&[19u32], &Device::Cpu).unwrap()).is_err());
    }
}
