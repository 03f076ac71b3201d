//! Linear layers of the encoder-decoder families, in the form their weights are held:
//! - f32: packed for our AVX2/FMA kernel (`super::packed_f32`), or candle-nn's `Linear` where
//!   that cannot run (no AVX2/FMA, GPUs);
//! - int8: on the CPU with AVX2, one scale per weight row and activations quantized per row at
//!   each call (`super::packed_i8`), as CTranslate2's `int8` compute type does for the same
//!   layers; elsewhere GGML's Q8_0 blocks (32 weights, one f16 scale) through candle's quantized
//!   matmul.
//!
//! Not for: layer norms or the attention arithmetic itself, which stay f32. A tied embedding
//! table reads its rows from its LM head's copy ([`QLinear::rows`]).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use std::sync::Arc;

use super::packed_f32::PackedF32;
use super::packed_i8::PackedI8;

/// How the weights of linear layers are held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinearKind {
    /// As stored: f32 (the parity tests' reference).
    #[default]
    F32,
    /// Quantized to int8 at load time (see the module docs for the two layouts).
    Q8_0,
}

/// A linear layer, `y = x W^T + b`, in one of the [`LinearKind`]s.
#[derive(Debug, Clone)]
pub enum QLinear {
    F32(Linear),
    /// f32 weights packed for [`PackedF32`] (the CPU with AVX2 and FMA).
    Packed(Arc<PackedF32>),
    /// int8 weights with one scale per row, packed for [`PackedI8`] (the CPU with AVX2).
    I8(Arc<PackedI8>),
    Q8 {
        weight: QMatMul,
        /// The same blocks, for [`QLinear::rows`].
        table: Arc<QTensor>,
        bias: Option<Tensor>,
    },
}

impl QLinear {
    /// Wraps `weight` (`(out, in)`) and `bias` (`(out,)`) as `kind`. Q8_0 needs `in` to be a
    /// multiple of 32; other shapes stay f32.
    pub fn new(weight: Tensor, bias: Option<Tensor>, kind: LinearKind) -> Result<Self> {
        let in_dim = weight.dim(1)?;
        if kind == LinearKind::Q8_0 {
            if let Some(packed) = PackedI8::new(&weight, bias.as_ref())? {
                return Ok(Self::I8(Arc::new(packed)));
            }
        }
        match kind {
            LinearKind::Q8_0 if in_dim % 32 == 0 => {
                let table = Arc::new(QTensor::quantize(&weight, GgmlDType::Q8_0)?);
                Ok(Self::Q8 {
                    weight: QMatMul::from_arc(table.clone())?,
                    table,
                    bias,
                })
            }
            _ => match PackedF32::new(&weight, bias.as_ref())? {
                Some(packed) => Ok(Self::Packed(Arc::new(packed))),
                None => Ok(Self::F32(Linear::new(weight, bias))),
            },
        }
    }
}

impl QLinear {
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

impl Module for QLinear {
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
) -> Result<QLinear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    QLinear::new(weight, bias, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn int8_weights_stay_close_to_f32() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.05, (48, 64), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.05, 48, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 5, 64), &dev).unwrap();
        let f = QLinear::new(w.clone(), Some(b.clone()), LinearKind::F32).unwrap();
        let q = QLinear::new(w, Some(b), LinearKind::Q8_0).unwrap();
        assert!(matches!(q, QLinear::Q8 { .. } | QLinear::I8(_)));
        let yf = f.forward(&x).unwrap();
        let yq = q.forward(&x).unwrap();
        assert_eq!(yf.dims(), yq.dims());
        let err = (yf - yq).unwrap().abs().unwrap().max_all().unwrap();
        let err = err.to_scalar::<f32>().unwrap();
        // Two int8 roundings of 64-term dot products of magnitude ~0.4: well under 0.02.
        assert!(err < 0.02, "max error {err}");
        assert!(
            err > 0.0,
            "int8 path gave f32's exact result: not quantized?"
        );
    }
}
