//! Linear layers of the encoder-decoder families, in the form their weights are held:
//! - f32: packed for our AVX2/FMA kernel (`crate::kernels::packed_f32`), or candle-nn's `Linear` where
//!   that cannot run (no AVX2/FMA, GPUs);
//! - int8: on the CPU with AVX2 and FMA, one scale per weight row and activations quantized per row at
//!   each call (`crate::kernels::packed_i8`), as CTranslate2's `int8` compute type does for the same
//!   layers; elsewhere GGML's Q8_0 blocks (32 weights, one f16 scale) through candle's quantized
//!   matmul.
//!
//! Not for: layer norms or the attention arithmetic itself, which stay f32. A tied embedding
//! table reads its rows from its LM head's copy ([`Linear::rows`]).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear as CandleLinear, VarBuilder};
use std::sync::Arc;

use crate::kernels::packed_f32::PackedF32;
use crate::kernels::packed_i8::PackedI8;

/// How the weights of linear layers are held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinearKind {
    /// As stored: f32 (the parity tests' reference).
    #[default]
    F32,
    /// Quantized to int8 at load time (see the module docs for the two layouts).
    Int8,
}

/// A linear layer, `y = x W^T + b`, in one of the [`LinearKind`]s.
#[derive(Debug, Clone)]
pub enum Linear {
    F32(CandleLinear),
    /// f32 weights packed for [`PackedF32`] (the CPU with AVX2 and FMA).
    Packed(Arc<PackedF32>),
    /// int8 weights with one scale per row, packed for [`PackedI8`] (the CPU with AVX2/FMA).
    I8(Arc<PackedI8>),
    Q8 {
        weight: QMatMul,
        /// The same blocks, for [`Linear::rows`].
        table: Arc<QTensor>,
        bias: Option<Tensor>,
    },
}

impl Linear {
    /// Wraps `weight` (`(out, in)`) and `bias` (`(out,)`) as `kind`. Without our int8 kernel,
    /// Q8_0 blocks need `in` to be a multiple of 32; other shapes then stay f32.
    pub fn new(weight: Tensor, bias: Option<Tensor>, kind: LinearKind) -> Result<Self> {
        let in_dim = weight.dim(1)?;
        if kind == LinearKind::Int8 {
            if let Some(packed) = PackedI8::new(&weight, bias.as_ref())? {
                return Ok(Self::I8(Arc::new(packed)));
            }
        }
        match kind {
            LinearKind::Int8 if in_dim % 32 == 0 => {
                let table = Arc::new(QTensor::quantize(&weight, GgmlDType::Q8_0)?);
                Ok(Self::Q8 {
                    weight: QMatMul::from_arc(table.clone())?,
                    table,
                    bias,
                })
            }
            _ => match PackedF32::new(&weight, bias.as_ref())? {
                Some(packed) => Ok(Self::Packed(Arc::new(packed))),
                None => Ok(Self::F32(CandleLinear::new(weight, bias))),
            },
        }
    }
}

impl Linear {
    /// The weight rows of `ids` (`(ids.., in)`), read from this layer's own copy, so that an
    /// embedding table tied to it need not hold a second one. `None` for candle's f32 `Linear`
    /// (its weight tensor serves as the table directly).
    pub fn rows(&self, ids: &Tensor) -> Option<Result<Tensor>> {
        match self {
            Self::F32(_) => None,
            Self::Packed(packed) => Some(packed.rows(ids)),
            Self::I8(packed) => Some(packed.rows(ids)),
            Self::Q8 { table, .. } => Some(table.embedding(ids)),
        }
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::F32(linear) => linear.forward(xs),
            Self::Packed(packed) => packed.forward(xs),
            Self::I8(packed) => packed.forward(xs),
            Self::Q8 { weight, bias, .. } => {
                let ys = weight.forward(&xs.contiguous()?)?;
                match bias {
                    Some(b) => ys.broadcast_add(b),
                    None => Ok(ys),
                }
            }
        }
    }
}

/// Reads `weight` (and `bias` when `bias` is true) under `vb`, as candle-nn's `linear_b` does.
pub fn linear_b(
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    kind: LinearKind,
    vb: VarBuilder,
) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Linear::new(weight, bias, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::test_tensor;

    #[test]
    fn int8_weights_stay_within_the_rounding_bound_of_f32() {
        let (n, k, m) = (48, 200, 15);
        let w = test_tensor(&[n, k], 1, 0.08);
        let b = test_tensor(&[n], 2, 0.05);
        let x = test_tensor(&[3, 5, k], 3, 1.5);
        let wv = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let xv = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let f = Linear::new(w.clone(), Some(b.clone()), LinearKind::F32).unwrap();
        let q = Linear::new(w, Some(b), LinearKind::Int8).unwrap();
        assert!(matches!(q, Linear::Q8 { .. } | Linear::I8(_)));
        let yf = f.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let yq = q.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(yf.len(), m * n);
        let max_abs = |v: &[f32]| v.iter().fold(0f32, |a, b| a.max(b.abs()));
        let mut any_differs = false;
        for r in 0..m {
            let xr = &xv[r * k..][..k];
            let dx = max_abs(xr) / 127.0 / 2.0;
            for j in 0..n {
                let wj = &wv[j * k..][..k];
                let dw = max_abs(wj) / 127.0 / 2.0;
                // Each product x·w becomes (x ± dx)(w ± dw): per-row (or finer, per-block)
                // rounding of both sides to 8 bits bounds the error of the sum by this.
                let bound: f32 = xr
                    .iter()
                    .zip(wj)
                    .map(|(a, b)| a.abs() * dw + b.abs() * dx + dx * dw)
                    .sum();
                let (a, b) = (yf[r * n + j], yq[r * n + j]);
                assert!(
                    (a - b).abs() <= bound + 1e-4,
                    "output ({r}, {j}): f32 {a}, int8 {b}, bound {bound}"
                );
                any_differs |= a != b;
            }
        }
        assert!(any_differs, "int8 path gave f32's exact results: not quantized?");
    }
}
