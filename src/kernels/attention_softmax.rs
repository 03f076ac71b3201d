//! The softmax of a prompt's attention scores over their last dimension, on the CPU: the bits
//! of candle-nn's `softmax_last_dim`, with the rows split over candle's kernel threads and no
//! `exp` computed for a hidden position.
//!
//! What it is for: in a prompt's attention (`crate::nn::causal`), every query row has a score
//! for every position, and the causal mask hides about half of them (-inf). candle's softmax
//! takes `exp` of every score, on rayon's threads, which the kernel threads, spinning between
//! two matrix products, compete with on a small machine. (The encoder-decoder models' attention,
//! `crate::nn::attention`, keeps candle's: its rows are a step's single query per beam, and this
//! one measured no faster there.)
//!
//! Not for: a decoding step's attention (`super::decode_attention`), beam search's log-softmax
//! (`super::softmax`), GPUs (the caller keeps candle's op there).

use candle_core::cpu::kernels::VecOps;
use candle_core::{Device, Result, Tensor};

use super::cpu::SharedOut;

/// Rows below which the softmax stays on the calling thread.
const PARALLEL_ROWS: usize = 64;

/// The softmax of `scores` (f32, on the CPU) over its last dimension.
pub fn softmax_last_dim(scores: &Tensor) -> Result<Tensor> {
    let dims = scores.dims().to_vec();
    let Some(&width) = dims.last() else {
        candle_core::bail!("softmax of a scalar")
    };
    if width == 0 || scores.elem_count() == 0 {
        return Ok(scores.clone());
    }
    let mut dst = vec![0f32; scores.elem_count()];
    super::cpu::with_f32_values(scores, |src| {
        let rows = src.len() / width;
        let out = SharedOut::new(&mut dst);
        let work = |range: std::ops::Range<usize>| {
            for r in range {
                // SAFETY: row `r` of `dst` is written by this thread alone (rows are split
                // between threads), and `dst` outlives the pool call.
                let d = unsafe { out.row(r * width, width) };
                row(&src[r * width..(r + 1) * width], d);
            }
        };
        if rows < PARALLEL_ROWS {
            work(0..rows);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(rows, work);
        }
    })?;
    Tensor::from_vec(dst, dims, &Device::Cpu)
}

/// One row: `dst` = softmax(`src`), as candle-nn computes it.
fn row(src: &[f32], dst: &mut [f32]) {
    let max = src[1..].iter().fold(src[0], |m, &s| m.max(s));
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = if s == f32::NEG_INFINITY {
            0.0
        } else {
            (s - max).exp()
        };
    }
    let mut sum = 0f32;
    // SAFETY: `dst` holds `dst.len()` values, and `sum` is one.
    unsafe { f32::vec_reduce_sum(dst.as_ptr(), &mut sum, dst.len()) };
    for d in dst.iter_mut() {
        *d /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_candles_bits_with_masked_positions_and_every_split() {
        // Rows of a prompt's scores: a causal mask (-inf above the diagonal), a sliding window
        // (-inf below it too), and rows without any; widths that are and are not multiples of
        // the summation's lanes; enough rows to be split over the threads.
        for (rows, width) in [(3, 5), (70, 33), (200, 130), (130, 8)] {
            let base = super::super::cpu::test_tensor(&[rows, width], 7 + width as u64, 6.0);
            let mut values = base.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for r in 0..rows {
                for c in 0..width {
                    let causal = c > r % width;
                    let window = r % 3 == 1 && c + 4 < r % width;
                    if causal || window {
                        values[r * width + c] = f32::NEG_INFINITY;
                    }
                }
            }
            let scores = Tensor::from_vec(values, (rows, width), &Device::Cpu).unwrap();
            let want = candle_nn::ops::softmax_last_dim(&scores).unwrap();
            let got = softmax_last_dim(&scores).unwrap();
            let bits = |t: &Tensor| {
                let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                v.into_iter().map(f32::to_bits).collect::<Vec<_>>()
            };
            assert_eq!(got.dims(), want.dims());
            assert!(bits(&got) == bits(&want), "{rows}x{width}: other bits than candle's");
        }
    }
}
