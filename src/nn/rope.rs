//! Rotary position embeddings (RoPE), as tables computed once per model, in the variants that
//! llama.cpp's GGUF architectures use: NeoX halves or interleaved pairs, partial rotation
//! (`rope.dimension_count` below the head size), per-frequency factors (Llama 3.1's
//! `rope_freqs.weight`, Phi-3's `rope_factors_*`), linear position scaling (Gemma 3's
//! `rope.scaling.factor`) and an attention factor that scales cos and sin.
//!
//! The angle of position `p` and pair `i` is `p * freq_scale * base^(-2i/n_rot) / factor[i]`,
//! which is what ggml's `rope_ext` computes when YaRN extrapolation is off.
//!
//! Not for: where an architecture applies them (`crate::models`).

use candle_core::{DType, Device, Result, Tensor};

/// How the rotated dimensions are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimension `i` with `i + n_rot/2` (GPT-NeoX; llama.cpp's `ROPE_TYPE_NEOX`: Qwen, Gemma,
    /// Phi-3).
    Neox,
    /// Dimension `2i` with `2i + 1` (llama.cpp's `ROPE_TYPE_NORM`: the `llama` architecture,
    /// whose converter permutes Q and K so that this equals Hugging Face's halves).
    Interleaved,
}

/// Everything that shapes a rotary table.
#[derive(Debug, Clone)]
pub struct RopeConfig {
    pub style: RopeStyle,
    /// The head size; dimensions from `n_rot` on pass through unrotated.
    pub head_dim: usize,
    /// How many leading dimensions of a head are rotated (even, at most `head_dim`).
    pub n_rot: usize,
    /// The base frequency (`rope.freq_base`).
    pub base: f32,
    /// Positions are multiplied by this (1 / the linear scaling factor).
    pub freq_scale: f32,
    /// One divisor per rotated pair, when the model has frequency factors.
    pub factors: Option<Vec<f32>>,
    /// cos and sin are multiplied by this (1 unless the model's rope scaling says otherwise).
    pub attn_factor: f32,
}

impl RopeConfig {
    /// Plain NeoX rotation of whole heads, as Qwen2 uses.
    pub fn neox(head_dim: usize, base: f32) -> Self {
        Self {
            style: RopeStyle::Neox,
            head_dim,
            n_rot: head_dim,
            base,
            freq_scale: 1.0,
            factors: None,
            attn_factor: 1.0,
        }
    }
}

/// Rotary position embedding tables for positions `0..max_len`.
#[derive(Debug)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    style: RopeStyle,
    head_dim: usize,
    n_rot: usize,
}

impl Rope {
    /// Tables for positions `0..max_len` of heads of `head_dim`, with base frequency `theta`
    /// (NeoX halves, whole heads).
    pub fn new(head_dim: usize, theta: f32, max_len: usize, device: &Device) -> Result<Self> {
        Self::with(&RopeConfig::neox(head_dim, theta), max_len, device)
    }

    /// Tables for positions `0..max_len` as `cfg` says.
    pub fn with(cfg: &RopeConfig, max_len: usize, device: &Device) -> Result<Self> {
        let n_rot = cfg.n_rot;
        if n_rot == 0 || !n_rot.is_multiple_of(2) || n_rot > cfg.head_dim {
            candle_core::bail!(
                "rotary dimension {n_rot} does not fit heads of {}",
                cfg.head_dim
            );
        }
        let pairs = n_rot / 2;
        if let Some(f) = &cfg.factors {
            if f.len() < pairs {
                candle_core::bail!(
                    "rope frequency factors have {} values, expected {pairs}",
                    f.len()
                );
            }
        }
        let inv_freq: Vec<f32> = (0..pairs)
            .map(|i| {
                let f = 1.0 / cfg.base.powf((2 * i) as f32 / n_rot as f32);
                let factor = cfg.factors.as_ref().map_or(1.0, |f| f[i]);
                f * cfg.freq_scale / factor
            })
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, pairs), device)?;
        let positions = Tensor::arange(0u32, max_len as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_len, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        let (mut cos, mut sin) = (angles.cos()?, angles.sin()?);
        if cfg.attn_factor != 1.0 {
            cos = (cos * cfg.attn_factor as f64)?;
            sin = (sin * cfg.attn_factor as f64)?;
        }
        Ok(Self {
            cos,
            sin,
            style: cfg.style,
            head_dim: cfg.head_dim,
            n_rot,
        })
    }

    /// Rotates `xs` (batch, heads, seq, head_dim), whose first position is `pos`.
    pub fn apply(&self, xs: &Tensor, pos: usize) -> Result<Tensor> {
        let seq = xs.dim(2)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let rotate = |x: &Tensor| match self.style {
            RopeStyle::Neox => candle_nn::rotary_emb::rope(x, &cos, &sin),
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, &cos, &sin),
        };
        if self.n_rot == self.head_dim {
            return rotate(xs);
        }
        let head = rotate(&xs.narrow(3, 0, self.n_rot)?.contiguous()?)?;
        let tail = xs.narrow(3, self.n_rot, self.head_dim - self.n_rot)?;
        Tensor::cat(&[&head, &tail], 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables against the formula, written out: pair `i` of position `p` turns by
    /// `p * scale * base^(-2i/n) / factor[i]`, and for NeoX pairs dimension `i` with `i + n/2`;
    /// interleaved pairs `2i` with `2i + 1`; dimensions past `n_rot` are left as they were.
    #[test]
    fn rotations_follow_the_formula_in_every_variant() {
        let dev = Device::Cpu;
        let (head_dim, n_rot, seq) = (8usize, 4usize, 3usize);
        let xs: Vec<f32> = (0..head_dim * seq).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Tensor::from_vec(xs.clone(), (1, 1, seq, head_dim), &dev).unwrap();
        for style in [RopeStyle::Neox, RopeStyle::Interleaved] {
            let cfg = RopeConfig {
                style,
                head_dim,
                n_rot,
                base: 100.0,
                freq_scale: 0.5,
                factors: Some(vec![1.0, 4.0]),
                attn_factor: 1.5,
            };
            let rope = Rope::with(&cfg, 8, &dev).unwrap();
            let pos0 = 2;
            let got = rope.apply(&x, pos0).unwrap().flatten_all().unwrap();
            let got = got.to_vec1::<f32>().unwrap();
            for s in 0..seq {
                let row = &xs[s * head_dim..(s + 1) * head_dim];
                let mut want = row.to_vec();
                for i in 0..n_rot / 2 {
                    let theta = (pos0 + s) as f32 * 0.5 * 100f32.powf(-((2 * i) as f32) / 4.0)
                        / [1.0, 4.0][i];
                    let (a, b) = match style {
                        RopeStyle::Neox => (i, i + n_rot / 2),
                        RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                    };
                    let (c, sn) = (theta.cos() * 1.5, theta.sin() * 1.5);
                    want[a] = row[a] * c - row[b] * sn;
                    want[b] = row[a] * sn + row[b] * c;
                }
                for d in 0..head_dim {
                    let g = got[s * head_dim + d];
                    assert!((g - want[d]).abs() < 1e-5, "{style:?} pos {s} dim {d}: {g} vs {}", want[d]);
                }
            }
        }
    }
}
