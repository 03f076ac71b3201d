//! Feed-forward activations (Swish, SiLU, GELU, ReLU) on f32 CPU tensors, split over candle's
//! kernel threads: the encoder-decoder families' (`crate::models::bart`, `crate::models::t5`)
//! and the SiLU of the chat models' gated feed-forward (`crate::nn::causal`).
//!
//! What it is for: candle maps an activation over a tensor on one thread. In a beam-search step
//! of a pooled batch (hundreds of rows, 2048 feed-forward values each), or a prompt of a chat
//! model (hundreds of rows, 4864 values each for Qwen2.5-0.5B), that map, with its `exp`, ran
//! while the other kernel threads waited. Each value here is computed by candle's own
//! scalar formula (the `UnaryOpT` of the op, or candle-nn's composition for Swish), so the
//! outputs are candle's bits; only the split over threads is ours.
//!
//! Not for: other dtypes, GPUs, or the activations candle-nn composes in ways not written out
//! here ([`map`] returns `None`; [`apply`] then takes candle's path).

use candle_core::op::UnaryOpT;
use candle_core::{DType, Result, Tensor};
use candle_nn::Activation;

use super::cpu::SharedOut;

/// Values per work item of the thread split; tensors of at most this many values stay on the
/// calling thread.
const CHUNK: usize = 16 * 1024;

/// The scalar function candle computes for `act` on f32, where it is one.
fn scalar(act: Activation) -> Option<fn(f32) -> f32> {
    use candle_core::op;
    Some(match act {
        // candle-nn: `xs * sigmoid(xs)`, the sigmoid being `(exp(-x) + 1).recip()`.
        Activation::Swish => |x: f32| x * ((-x).exp() + 1.0).recip(),
        Activation::Silu => op::Silu::f32,
        Activation::Gelu => op::GeluErf::f32,
        Activation::NewGelu | Activation::GeluPytorchTanh => op::Gelu::f32,
        Activation::Relu => op::Relu::f32,
        _ => return None,
    })
}

/// `act(xs)` for an f32 tensor on the CPU, over the kernel threads; `None` for other tensors
/// or activations.
pub fn map(xs: &Tensor, act: Activation) -> Result<Option<Tensor>> {
    let Some(f) = scalar(act) else {
        return Ok(None);
    };
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return Ok(None);
    }
    let mut out = Vec::new();
    super::cpu::with_f32_values(xs, |x| {
        out = vec![0f32; x.len()];
        if x.len() <= CHUNK {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = f(v);
            }
            return;
        }
        let shared = SharedOut::new(&mut out);
        candle_core::utils::barrier_pool().execute_chunked(x.len().div_ceil(CHUNK), |items| {
            let start = items.start * CHUNK;
            let end = (items.end * CHUNK).min(x.len());
            // SAFETY: work items cover disjoint ranges of `out`, in bounds.
            let dst = unsafe { shared.row(start, end - start) };
            for (o, &v) in dst.iter_mut().zip(&x[start..end]) {
                *o = f(v);
            }
        });
    })?;
    Tensor::from_vec(out, xs.shape(), xs.device()).map(Some)
}

/// `act(xs)`: through [`map`] where it applies, through candle otherwise.
pub fn apply(xs: &Tensor, act: Activation) -> Result<Tensor> {
    match map(xs, act)? {
        Some(ys) => Ok(ys),
        None => xs.apply(&act),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::test_tensor;
    use candle_core::Module;

    /// Every activation [`map`] takes gives candle's bits, on a tensor small enough for one
    /// thread and on one split over the kernel threads.
    #[test]
    fn gives_candles_bits() {
        for len in [1000, 3 * CHUNK + 17] {
            let xs = test_tensor(&[len], 7, 12.0);
            for act in [
                Activation::Swish,
                Activation::Silu,
                Activation::Gelu,
                Activation::NewGelu,
                Activation::GeluPytorchTanh,
                Activation::Relu,
            ] {
                let got = map(&xs, act).unwrap().expect("handled");
                let want = act.forward(&xs).unwrap();
                let bits = |t: &Tensor| -> Vec<u32> {
                    t.to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
                };
                assert_eq!(bits(&got), bits(&want), "{act:?}, {len} values");
            }
        }
        let xs = test_tensor(&[10], 1, 1.0);
        assert!(map(&xs, Activation::Mish).unwrap().is_none());
    }
}
