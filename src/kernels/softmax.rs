//! The log-softmax of a row of logits, eight lanes at a time on AVX2/FMA (with a vector `exp`),
//! and the scalar version it must agree with: what beam search ranks its continuations by.
//!
//! Not for: logits processors or the ranking itself (`crate::generate`).

/// The log-softmax of one row of logits, written into `out` (resized to fit). A NaN logit makes
/// the whole row NaN.
pub fn log_softmax_into(logits: &[f32], out: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx2_fma() {
        // SAFETY: the instructions were just checked for.
        unsafe { log_softmax_avx2(logits, out) };
        return;
    }
    log_softmax_scalar(logits, out);
}

fn log_softmax_scalar(logits: &[f32], out: &mut Vec<f32>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Accumulated in f64: over a 50k vocabulary an f32 running sum drifts by ~1e-5, which shifts
    // a whole row and can reorder near-tied beams; f64 stays within f32 rounding of the truth.
    let sum: f64 = logits.iter().map(|&s| f64::from((s - max).exp())).sum();
    let log_sum = sum.ln() as f32;
    out.clear();
    out.extend(logits.iter().map(|&s| s - max - log_sum));
}

/// [`log_softmax_scalar`] eight lanes at a time: the same max, the exponentials from
/// [`exp_avx2`] (within 2 ulp of libm's), summed in f64 lanes, and the same subtraction.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_softmax_avx2(logits: &[f32], out: &mut Vec<f32>) {
    use std::arch::x86_64::*;
    let chunks = logits.chunks_exact(8);
    let tail = chunks.remainder();
    // `max_ps(v, m)` returns m where v is NaN: NaNs are skipped, as `f32::max` skips them.
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in chunks.clone() {
        m = _mm256_max_ps(_mm256_loadu_ps(c.as_ptr()), m);
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), m);
    let max = lanes
        .iter()
        .chain(tail)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let vmax = _mm256_set1_ps(max);
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for c in chunks {
        let e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), vmax));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    let mut sums = [0f64; 4];
    _mm256_storeu_pd(sums.as_mut_ptr(), _mm256_add_pd(lo, hi));
    let sum: f64 = sums.iter().sum::<f64>()
        + tail
            .iter()
            .map(|&s| f64::from((s - max).exp()))
            .sum::<f64>();
    let log_sum = sum.ln() as f32;
    out.clear();
    out.reserve(logits.len());
    let vlog = _mm256_set1_ps(log_sum);
    let dst = out.spare_capacity_mut().as_mut_ptr() as *mut f32;
    for (i, c) in logits.chunks_exact(8).enumerate() {
        let v = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), vmax), vlog);
        _mm256_storeu_ps(dst.add(i * 8), v);
    }
    let done = logits.len() - tail.len();
    for (i, &s) in tail.iter().enumerate() {
        *dst.add(done + i) = s - max - log_sum;
    }
    // SAFETY: all `logits.len()` values were written above, within the reserved capacity.
    out.set_len(logits.len());
}

/// e^x in eight lanes: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-7 polynomial
/// (Cephes' `expf` coefficients), scaled by 2^n through the exponent bits. Below about -87.3
/// (and for -inf) it stays at about 1e-38, the smallest normal float, which leaves a sum that
/// holds e^0 = 1 unchanged; above 88.4 it saturates; NaN stays NaN.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn exp_avx2(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    // NaN is kept: min/max return their second operand when either is NaN.
    let x = _mm256_max_ps(_mm256_set1_ps(-87.336_55), x);
    let x = _mm256_min_ps(_mm256_set1_ps(88.376_26), x);
    let n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    // r = x - n ln 2, with ln 2 in two parts so that n·(first part) is exact.
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    // 2^n: n + 127 in the exponent field (n ≥ -126 after the clamp, so never below 1).
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
        23,
    ));
    _mm256_mul_ps(p, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_exp_is_within_two_ulp_of_libm() {
        if !super::super::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        use std::arch::x86_64::*;
        let mut worst = 0f32;
        // Every 1/1000 from -87 to 0 (the scores minus their max), and some positive values.
        let xs: Vec<f32> = (-87_000..2_000).map(|i| i as f32 / 1000.0).collect();
        for c in xs.chunks_exact(8) {
            let mut got = [0f32; 8];
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), exp_avx2(_mm256_loadu_ps(c.as_ptr()))) };
            for (x, g) in c.iter().zip(got) {
                let want = x.exp();
                worst = worst.max(((g - want) / want).abs());
            }
        }
        assert!(worst <= 2.0 * f32::EPSILON, "worst relative error {worst}");
        let mut edge = [0f32; 8];
        let ins = [f32::NEG_INFINITY, -1000.0, f32::NAN, 0.0, 1.0, -1.0, 88.0, -87.0];
        unsafe { _mm256_storeu_ps(edge.as_mut_ptr(), exp_avx2(_mm256_loadu_ps(ins.as_ptr()))) };
        assert!(edge[0] < 1.2e-38 && edge[0] >= 0.0 && edge[1] < 1.2e-38);
        assert!(edge[2].is_nan());
        assert_eq!(edge[3], 1.0);
        assert!(edge[6].is_finite());
    }

    /// The vector log-softmax against the scalar one: the same max and subtraction, sums that
    /// differ only in the last bits of the exponentials.
    #[test]
    fn vector_and_scalar_log_softmax_agree() {
        if !super::super::cpu::has_avx2_fma() {
            eprintln!("SKIP: this CPU has no AVX2/FMA (both would be the scalar path)");
            return;
        }
        let mut state = 7u64;
        let row: Vec<f32> = (0..1003)
            .map(|i| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                if i % 97 == 5 {
                    f32::NEG_INFINITY
                } else {
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 30.0 - 15.0
                }
            })
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        log_softmax_into(&row, &mut a);
        log_softmax_scalar(&row, &mut b);
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x == y || (x - y).abs() <= 1e-6, "[{i}] {x} vs {y}");
        }
        assert_eq!(a[5], f32::NEG_INFINITY);
        // One NaN logit makes the whole row NaN, both ways.
        let mut nan = row.clone();
        nan[500] = f32::NAN;
        log_softmax_into(&nan, &mut a);
        log_softmax_scalar(&nan, &mut b);
        assert!(a.iter().chain(&b).all(|v| v.is_nan()));
    }

    #[test]
    fn log_softmax_normalizes() {
        let mut s = Vec::new();
        log_softmax_into(&[1.0f32, 2.0, 3.0], &mut s);
        let total: f32 = s.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        let best = s.iter().enumerate().fold(0, |b, (i, v)| if *v > s[b] { i } else { b });
        assert_eq!(best, 2);
    }
}
