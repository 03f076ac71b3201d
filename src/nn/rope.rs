//! Rotary position embeddings (RoPE), as tables computed once per model.
//!
//! Not for: where an architecture applies them (`crate::models`).

use candle_core::{DType, Device, Result, Tensor};

/// Rotary position embedding tables (NeoX layout: halves, not interleaved pairs).
#[derive(Debug)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    /// Tables for positions `0..max_len` of heads of `head_dim`, with base frequency `theta`.
    pub fn new(head_dim: usize, theta: f32, max_len: usize, device: &Device) -> Result<Self> {
        let inv_freq: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / theta.powf(i as f32 / head_dim as f32))
            .collect();
        let n = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, n), device)?;
        let positions = Tensor::arange(0u32, max_len as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_len, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
        })
    }

    /// Rotates `xs` (batch, heads, seq, head_dim), whose first position is `pos`.
    pub fn apply(&self, xs: &Tensor, pos: usize) -> Result<Tensor> {
        let seq = xs.dim(2)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        candle_nn::rotary_emb::rope(xs, &cos, &sin)
    }
}
