//! Multi-head attention shared by the encoder-decoder families (BART/Marian and T5): the four
//! projections, splitting into heads, and attention over a [`KeyValue`] (a step's own keys, a
//! cached self-attention prefix, or the encoder's cross-attention keys). Not for: position
//! schemes or masks, which each family computes and passes in as an additive bias.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::linear::{linear_b, LinearKind, Linear};

use crate::generate::KeyValue;

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
        let (rows, len, d) = xs.dims3()?;
        let kv_rows = kv.key.dim(0)?;
        if kv_rows != rows {
            if kv_rows == 0 || rows % kv_rows != 0 {
                candle_core::bail!("{rows} query rows cannot share {kv_rows} key/value rows");
            }
            let grouped = xs.reshape((kv_rows, rows / kv_rows * len, d))?;
            return self.attend(&grouped, kv, bias)?.reshape((rows, len, d));
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
}
