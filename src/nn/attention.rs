//! Multi-head attention shared by the encoder-decoder families (BART/Marian and T5): the four
//! projections, splitting into heads, and attention over a [`KeyValue`] (a step's own keys, a
//! cached self-attention prefix, or the encoder's cross-attention keys).
//!
//! A decoding step on the CPU (one new position per row, f32, and no bias or one shared by the
//! heads) goes through [`crate::kernels::decode_attention`], every row and head of the batch
//! split over the kernel threads and the caches read in place. Everything else (the encoder, a
//! per-head bias such as T5's relative positions, GPUs) goes through candle's matrix products.
//!
//! Not for: position schemes or masks, which each family computes and passes in as an additive
//! bias.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::linear::{linear_b, LinearKind, Linear};

use crate::generate::KeyValue;
use crate::kernels::decode_attention;

/// Weight names and shape of one attention block.
pub(crate) struct Spec<'a> {
    pub d_model: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub bias: bool,
    /// Names of the query, key, value and output projections.
    pub names: [&'a str; 4],
    /// Factor applied to the queries (`head_dim ** -0.5` for BART, 1 for T5).
    pub scaling: f64,
    /// How the projection weights are held.
    pub kind: LinearKind,
}

#[derive(Debug, Clone)]
pub(crate) struct MultiHead {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl MultiHead {
    pub(crate) fn new(spec: Spec, vb: &VarBuilder) -> Result<Self> {
        let inner = spec.heads * spec.head_dim;
        let [q, k, v, o] = spec.names;
        Ok(Self {
            q: linear_b(spec.d_model, inner, spec.bias, spec.kind, vb.pp(q))?,
            k: linear_b(spec.d_model, inner, spec.bias, spec.kind, vb.pp(k))?,
            v: linear_b(spec.d_model, inner, spec.bias, spec.kind, vb.pp(v))?,
            o: linear_b(inner, spec.d_model, spec.bias, spec.kind, vb.pp(o))?,
            heads: spec.heads,
            head_dim: spec.head_dim,
            scaling: spec.scaling,
        })
    }

    /// `(b, len, heads * head_dim)` -> `(b, heads, len, head_dim)`.
    fn split(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, len, _) = xs.dims3()?;
        xs.reshape((b, len, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values of `xs`, `(b, heads, len, head_dim)` each.
    pub(crate) fn key_value(&self, xs: &Tensor) -> Result<KeyValue> {
        Ok(KeyValue {
            key: self.split(&xs.apply(&self.k)?)?,
            value: self.split(&xs.apply(&self.v)?)?,
        })
    }

    /// Attends from `xs` to `kv`, with an optional additive bias broadcastable to
    /// `(kv_b, heads, q_len, k_len)` (padding mask, relative positions).
    ///
    /// `kv` may have fewer rows than `xs` when consecutive rows of `xs` share one row of `kv`
    /// (the beams of one input attending to its encoder output): `xs` is then viewed as
    /// `(kv_b, group * len, d)`, the shared rows' queries side by side.
    pub(crate) fn attend(
        &self,
        xs: &Tensor,
        kv: &KeyValue,
        bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        match self.decode_step(xs, kv, bias)? {
            Some(out) => Ok(out),
            None => self.attend_matmul(xs, kv, bias),
        }
    }

    /// [`Self::attend`] through candle's matrix products.
    fn attend_matmul(&self, xs: &Tensor, kv: &KeyValue, bias: Option<&Tensor>) -> Result<Tensor> {
        let (rows, len, d) = xs.dims3()?;
        let kv_rows = kv.key.dim(0)?;
        if kv_rows != rows {
            if kv_rows == 0 || rows % kv_rows != 0 {
                candle_core::bail!("{rows} query rows cannot share {kv_rows} key/value rows");
            }
            let grouped = xs.reshape((kv_rows, rows / kv_rows * len, d))?;
            return self.attend_matmul(&grouped, kv, bias)?.reshape((rows, len, d));
        }
        let (b, len, _) = (rows, len, d);
        let q = xs.apply(&self.q)?;
        let q = if self.scaling == 1.0 {
            q
        } else {
            (q * self.scaling)?
        };
        let scores = self.split(&q)?.matmul(&kv.key.t()?)?;
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores)?
            .matmul(&kv.value)?
            .transpose(1, 2)?
            .reshape((b, len, self.heads * self.head_dim))?
            .apply(&self.o)
    }

    /// [`Self::attend`] through [`decode_attention`] where it applies: `xs` one position per row
    /// on the CPU, f32 keys and values whose positions lie densely in each head, and no bias or
    /// one of shape `(kv_rows, 1, 1, k_len)` (the encoder's padding mask). `None` elsewhere.
    fn decode_step(
        &self,
        xs: &Tensor,
        kv: &KeyValue,
        bias: Option<&Tensor>,
    ) -> Result<Option<Tensor>> {
        let (rows, len, _) = xs.dims3()?;
        let (kv_rows, heads, k_len, head_dim) = kv.key.dims4()?;
        let dense = |t: &Tensor| {
            let stride = t.stride();
            t.dtype() == DType::F32
                && t.dims4().ok() == Some((kv_rows, heads, k_len, head_dim))
                && stride[3] == 1
                && stride[2] == head_dim
        };
        let usable = len == 1
            && xs.device().is_cpu()
            && kv.key.device().is_cpu()
            && kv.value.device().is_cpu()
            && xs.dtype() == DType::F32
            && kv_rows > 0
            && rows % kv_rows == 0
            && k_len > 0
            && (heads, head_dim) == (self.heads, self.head_dim)
            && dense(&kv.key)
            && dense(&kv.value)
            && kv.key.stride()[1] == kv.value.stride()[1]
            && bias.is_none_or(|b| {
                b.dtype() == DType::F32 && b.dims4().ok() == Some((kv_rows, 1, 1, k_len))
            });
        if !usable {
            return Ok(None);
        }
        let q = xs.apply(&self.q)?;
        let q = if self.scaling == 1.0 {
            q
        } else {
            (q * self.scaling)?
        };
        let q = q.flatten_all()?.to_vec1::<f32>()?;
        let mask = bias
            .map(|b| b.flatten_all()?.to_vec1::<f32>())
            .transpose()?;
        let (k_storage, k_layout) = kv.key.storage_and_layout();
        let (v_storage, v_layout) = kv.value.storage_and_layout();
        let k = decode_attention::cache_values(&k_storage, k_layout.start_offset())?;
        let v = decode_attention::cache_values(&v_storage, v_layout.start_offset())?;
        let (k_rows, v_rows) = (k_layout.stride()[0], v_layout.stride()[0]);
        let group = rows / kv_rows;
        let q_dim = heads * head_dim;
        let steps: Vec<decode_attention::Step> = (0..rows)
            .map(|r| {
                let g = r / group;
                decode_attention::Step {
                    q: &q[r * q_dim..][..q_dim],
                    k: &k[g * k_rows..],
                    v: &v[g * v_rows..],
                    head_stride: k_layout.stride()[1],
                    len: k_len,
                    mask: mask.as_ref().map(|m| &m[g * k_len..][..k_len]),
                }
            })
            .collect();
        let shape = decode_attention::Heads {
            heads,
            kv_heads: heads,
            head_dim,
            scale: 1.0,
        };
        let out = decode_attention::attend(&steps, shape);
        Tensor::from_vec(out, (rows, 1, q_dim), xs.device())?
            .apply(&self.o)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::test_tensor;
    use candle_core::Device;
    use std::collections::HashMap;

    fn multi_head(heads: usize, head_dim: usize) -> MultiHead {
        let d = heads * head_dim;
        let mut tensors = HashMap::new();
        for (i, name) in ["q", "k", "v", "o"].into_iter().enumerate() {
            let seed = 10 * i as u64;
            tensors.insert(format!("{name}.weight"), test_tensor(&[d, d], seed, 0.3));
            tensors.insert(format!("{name}.bias"), test_tensor(&[d], seed + 1, 0.1));
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let spec = Spec {
            d_model: d,
            heads,
            head_dim,
            bias: true,
            names: ["q", "k", "v", "o"],
            scaling: (head_dim as f64).powf(-0.5),
            kind: LinearKind::F32,
        };
        MultiHead::new(spec, &vb).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap()
    }

    /// A decoding step through the decode-attention kernel gives candle's matrix products'
    /// attention: over a cache view with room past its filled positions (self-attention), and
    /// over keys shared by groups of rows with a padding mask (cross-attention of beams).
    #[test]
    fn decode_steps_match_the_matrix_products() {
        let (heads, head_dim, rows, group) = (4, 8, 6, 3);
        let attn = multi_head(heads, head_dim);
        let xs = test_tensor(&[rows, 1, heads * head_dim], 1, 1.0);

        let room = test_tensor(&[rows, heads, 12, head_dim], 2, 1.0);
        let view = KeyValue {
            key: room.narrow(2, 0, 7).unwrap(),
            value: (room.narrow(2, 0, 7).unwrap() * 0.5).unwrap().contiguous().unwrap(),
        };
        // The value tensor is contiguous (head stride 7 positions), the key a view (12): the
        // strides differ, so this falls back; the same view for both goes through the kernel.
        assert!(attn.decode_step(&xs, &view, None).unwrap().is_none());
        let view = KeyValue {
            key: view.key.clone(),
            value: view.key.clone(),
        };
        let fast = attn.decode_step(&xs, &view, None).unwrap().expect("kernel path");
        let slow = attn.attend_matmul(&xs, &view, None).unwrap();
        assert_eq!(fast.dims(), slow.dims());
        assert!(max_diff(&fast, &slow) < 1e-5, "self-attention: {}", max_diff(&fast, &slow));

        let inputs = rows / group;
        let cross = KeyValue {
            key: test_tensor(&[inputs, heads, 5, head_dim], 3, 1.0),
            value: test_tensor(&[inputs, heads, 5, head_dim], 4, 1.0),
        };
        let keep = Tensor::new(&[[1f32, 1., 1., 0., 0.], [1., 1., 1., 1., 1.]], &Device::Cpu).unwrap();
        let mask = crate::generate::additive_mask(&keep).unwrap();
        let fast = attn.decode_step(&xs, &cross, Some(&mask)).unwrap().expect("kernel path");
        let slow = attn.attend_matmul(&xs, &cross, Some(&mask)).unwrap();
        assert!(max_diff(&fast, &slow) < 1e-5, "cross-attention: {}", max_diff(&fast, &slow));

        // A bias per head (T5's relative positions) is not the kernel's.
        let per_head = test_tensor(&[1, heads, 1, 7], 5, 1.0);
        assert!(attn.decode_step(&xs, &view, Some(&per_head)).unwrap().is_none());
    }
}
