//! The key/value cache of decoder-only models: one preallocated buffer per layer, written in
//! place, and cut back to a shared prefix without freeing ([`KvCache::truncate`]). The masks are
//! in `crate::nn::causal`.
//!
//! Not for: the encoder-decoder caches of beam search (`crate::generate`), which reorder rows.

use candle_core::{Result, Tensor};

/// Keys and values of one layer, preallocated to the model's `max_len` on first use and
/// written in place.
#[derive(Debug, Clone)]
pub struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
    cap: usize,
}

impl LayerCache {
    /// Writes `k` and `v` (batch, heads, seq, head_dim) after what the layer holds, and returns
    /// the keys and values of every position so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let seq = k.dim(2)?;
        let alloc = |t: &Tensor| -> Result<Tensor> {
            let (b, h, _, d) = t.dims4()?;
            Tensor::zeros((b, h, self.cap, d), t.dtype(), t.device())
        };
        if self.k.is_none() {
            self.k = Some(alloc(k)?);
            self.v = Some(alloc(v)?);
        }
        let (Some(kc), Some(vc)) = (&self.k, &self.v) else {
            unreachable!("allocated just above")
        };
        kc.slice_set(k, 2, self.len)?;
        vc.slice_set(v, 2, self.len)?;
        self.len += seq;
        Ok((kc.narrow(2, 0, self.len)?, vc.narrow(2, 0, self.len)?))
    }
}

/// The per-sequence state of a decoder-only model: what it has read so far, layer by layer.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything after the first `len` tokens (a shared prompt prefix, say); the
    /// memory is kept and overwritten by what comes next.
    pub fn truncate(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.len = layer.len.min(len);
        }
    }
}

impl KvCache {
    /// An empty cache of `num_layers` layers, each with room for `cap` positions (allocated on
    /// first use).
    pub fn new(num_layers: usize, cap: usize) -> Self {
        Self {
            layers: (0..num_layers)
                .map(|_| LayerCache {
                    k: None,
                    v: None,
                    len: 0,
                    cap,
                })
                .collect(),
        }
    }

    /// The layers, in order, for a forward pass to write.
    pub fn layers_mut(&mut self) -> &mut [LayerCache] {
        &mut self.layers
    }
}

impl LayerCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
