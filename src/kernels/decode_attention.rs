//! Attention of one new position (a decoding step) over a sequence's cached keys and values, on
//! the CPU, for every sequence of a batched pass at once: the work is split by (sequence, head)
//! over candle's kernel threads.
//!
//! What it is for: a decoding step's attention is small (one query row per head against a few
//! hundred cached positions). Through candle's tensor ops it was a chain of small matrix
//! products, each packing its operands, run one sequence after the other on one thread while
//! the other kernel threads waited: at 8 sequences a pass, a fifth of the step on 2 cores.
//!
//! The arithmetic, per head: score `j` = (q · k_j) × scale + mask_j, the dot product in eight
//! lanes of fused multiply-adds (lane `i` sums the products of dimensions `i`, `i + 8`, ...)
//! added up in a fixed order; the softmax as ggml computes it: the max subtracted, `exp` from the
//! platform's `f32::exp`, the sum in f64 in position order, each weight multiplied by its
//! reciprocal; then out = Σ_j p_j v_j by fused multiply-adds in position order. It is plain Rust,
//! the same on every CPU and kernel set, and a head's result depends only on its own query,
//! keys, values and mask: not on the other sequences of the pass, or on how the work is split.
//!
//! Its callers: the GGUF chat models' decoding steps (`crate::nn::causal`), and the
//! encoder-decoder families' (`crate::nn::attention`: each beam's self-attention cache, and the
//! encoder output its input's beams share, with the padding mask as `mask`).
//!
//! Not for: several new positions of one sequence (a prompt, an encoder pass), which go through
//! candle's matrix products; GPUs.

use super::cpu::SharedOut;

/// Lanes of the dot products.
const LANES: usize = 8;

/// One sequence's new position: its query, after the rotation and any scaling, and the keys and
/// values of every position it attends to (itself included) as the cache holds them.
pub struct Step<'a> {
    /// `heads × head_dim` values, head by head.
    pub q: &'a [f32],
    /// Keys: position `j` of KV head `g` at `g * head_stride + j * head_dim`.
    pub k: &'a [f32],
    /// Values, laid out as `k`.
    pub v: &'a [f32],
    /// Values between one KV head's positions and the next head's.
    pub head_stride: usize,
    /// Positions attended to.
    pub len: usize,
    /// Added to the scores (0 or -inf, `len` values), where some positions are hidden (a
    /// sliding window).
    pub mask: Option<&'a [f32]>,
}

/// The f32 values of a cache's storage from `at` (its layout's start offset), to read in place
/// as a [`Step`]'s keys or values. An error for other dtypes and devices.
pub fn cache_values(storage: &candle_core::Storage, at: usize) -> candle_core::Result<&[f32]> {
    match storage {
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => Ok(&v[at..]),
        _ => candle_core::bail!("decode attention reads f32 CPU caches"),
    }
}

/// The shape of a layer's attention.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// The scores are multiplied by this before the mask and the softmax.
    pub scale: f32,
}

/// The attention output of each step, `heads × head_dim` values a step, one after the other,
/// head by head (as the output projection takes them).
///
/// Panics if a step's slices are too short for its `len` and the shape (a caller's bug).
pub fn attend(steps: &[Step<'_>], shape: Heads) -> Vec<f32> {
    let Heads {
        heads,
        kv_heads,
        head_dim,
        ..
    } = shape;
    assert!(kv_heads > 0 && heads.is_multiple_of(kv_heads), "{heads} heads over {kv_heads}");
    for s in steps {
        assert!(s.q.len() >= heads * head_dim, "query of {} values", s.q.len());
        let last = (kv_heads - 1) * s.head_stride + s.len * head_dim;
        assert!(s.len > 0 && s.k.len() >= last && s.v.len() >= last, "keys/values too short");
        assert!(s.mask.is_none_or(|m| m.len() >= s.len), "mask too short");
    }
    let mut out = vec![0f32; steps.len() * heads * head_dim];
    let shared = SharedOut::new(&mut out);
    let items = |range: std::ops::Range<usize>| {
        let mut scores = Vec::new();
        for item in range {
            let (s, h) = (item / heads, item % heads);
            // SAFETY: item `(s, h)` alone writes its `head_dim` values, in bounds of `out`.
            let dst = unsafe { shared.row(item * head_dim, head_dim) };
            head(&steps[s], h, shape, &mut scores, dst);
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(steps.len() * heads, items);
    out
}

/// Head `h` of one step into `dst` (`head_dim` values); `scores` is scratch.
fn head(step: &Step<'_>, h: usize, shape: Heads, scores: &mut Vec<f32>, dst: &mut [f32]) {
    let d = shape.head_dim;
    let g = h / (shape.heads / shape.kv_heads);
    let q = &step.q[h * d..][..d];
    let keys = &step.k[g * step.head_stride..][..step.len * d];
    let values = &step.v[g * step.head_stride..][..step.len * d];
    scores.clear();
    scores.extend(keys.chunks_exact(d).map(|k| dot(q, k) * shape.scale));
    if let Some(mask) = step.mask {
        for (s, m) in scores.iter_mut().zip(mask) {
            *s += m;
        }
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += f64::from(*s);
    }
    let inv = (1.0 / sum) as f32;
    dst.fill(0.0);
    for (p, v) in scores.iter().zip(values.chunks_exact(d)) {
        let p = p * inv;
        for (o, v) in dst.iter_mut().zip(v) {
            *o = p.mul_add(*v, *o);
        }
    }
}

/// q · k in [`LANES`] lanes, then the lanes in order.
fn dot(q: &[f32], k: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let (qc, kc) = (q.chunks_exact(LANES), k.chunks_exact(LANES));
    let (qt, kt) = (qc.remainder(), kc.remainder());
    for (q, k) in qc.zip(kc) {
        for i in 0..LANES {
            lanes[i] = q[i].mul_add(k[i], lanes[i]);
        }
    }
    for (i, (q, k)) in qt.iter().zip(kt).enumerate() {
        lanes[i] = q.mul_add(*k, lanes[i]);
    }
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// The attention of one head written out in f64: softmax(q·K × scale + mask) · V.
    fn reference(step: &Step<'_>, h: usize, shape: Heads) -> Vec<f64> {
        let d = shape.head_dim;
        let g = h / (shape.heads / shape.kv_heads);
        let q = &step.q[h * d..][..d];
        let at = |t: &[f32], j: usize| t[g * step.head_stride + j * d..][..d].to_vec();
        let scores: Vec<f64> = (0..step.len)
            .map(|j| {
                let k = at(step.k, j);
                let s: f64 = q.iter().zip(&k).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
                s * f64::from(shape.scale) + step.mask.map_or(0.0, |m| f64::from(m[j]))
            })
            .collect();
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        (0..d)
            .map(|i| (0..step.len).map(|j| e[j] / sum * f64::from(at(step.v, j)[i])).sum())
            .collect()
    }

    #[test]
    fn matches_the_definition_for_grouped_heads_windows_and_ragged_dims() {
        for (heads, kv_heads, head_dim) in [(14, 2, 64), (4, 4, 12), (8, 1, 256)] {
            let shape = Heads {
                heads,
                kv_heads,
                head_dim,
                scale: 1.0 / (head_dim as f32).sqrt(),
            };
            let room = 40;
            let k = values(kv_heads * room * head_dim, 1);
            let v = values(kv_heads * room * head_dim, 2);
            let q: Vec<Vec<f32>> = (0..3).map(|s| values(heads * head_dim, 10 + s)).collect();
            let hidden = |j: usize| if j < 5 { f32::NEG_INFINITY } else { 0.0 };
            let mask: Vec<f32> = (0..33).map(hidden).collect();
            let steps: Vec<Step> = [(1, None), (33, Some(&mask[..])), (40, None)]
                .iter()
                .zip(&q)
                .map(|(&(len, mask), q)| Step {
                    q,
                    k: &k,
                    v: &v,
                    head_stride: room * head_dim,
                    len,
                    mask,
                })
                .collect();
            let out = attend(&steps, shape);
            for (s, step) in steps.iter().enumerate() {
                for h in 0..heads {
                    let want = reference(step, h, shape);
                    let got = &out[(s * heads + h) * head_dim..][..head_dim];
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(*g) - w).abs() < 1e-5,
                            "{heads}/{kv_heads}x{head_dim} step {s} head {h} [{i}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// A step's output is the same bits alone, beside other steps, and in another order.
    #[test]
    fn a_step_does_not_depend_on_the_others() {
        let shape = Heads {
            heads: 6,
            kv_heads: 2,
            head_dim: 20,
            scale: 0.3,
        };
        let kv: Vec<(Vec<f32>, Vec<f32>)> = (0..4)
            .map(|s| (values(2 * 30 * 20, 100 + s), values(2 * 30 * 20, 200 + s)))
            .collect();
        let q: Vec<Vec<f32>> = (0..4).map(|s| values(6 * 20, 300 + s)).collect();
        let step = |s: usize| Step {
            q: &q[s],
            k: &kv[s].0,
            v: &kv[s].1,
            head_stride: 30 * 20,
            len: 10 + 5 * s,
            mask: None,
        };
        let alone: Vec<Vec<u32>> = (0..4)
            .map(|s| attend(&[step(s)], shape).iter().map(|f| f.to_bits()).collect())
            .collect();
        for order in [[0, 1, 2, 3], [3, 1, 0, 2]] {
            let steps: Vec<Step> = order.iter().map(|&s| step(s)).collect();
            let out = attend(&steps, shape);
            for (i, &s) in order.iter().enumerate() {
                let got: Vec<u32> = out[i * 120..][..120].iter().map(|f| f.to_bits()).collect();
                assert_eq!(got, alone[s], "step {s} at {i}");
            }
        }
    }
}
