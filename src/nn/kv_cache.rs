//! The key/value cache of decoder-only models: one buffer per layer, written in place and grown
//! as the sequence grows, and cut back to a shared prefix without freeing
//! ([`KvCache::truncate`]). The masks are
//! in `crate::nn::causal`.
//!
//! Not for: the encoder-decoder caches of beam search (`crate::generate`), which reorder rows.

use candle_core::{Result, Tensor};

/// Keys and values of one layer, written in place into buffers that grow (doubling, up to the
/// model's `max_len`) as the sequence does, so that a cache holds memory for the positions it
/// has used rather than for the whole context.
#[derive(Debug, Clone)]
pub struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
    /// The most positions the buffers may grow to.
    cap: usize,
}

/// Positions a buffer starts with.
const FIRST_ROOM: usize = 256;

impl LayerCache {
    /// Writes `k` and `v` (batch, heads, seq, head_dim) after what the layer holds, and returns
    /// the keys and values of every position so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let seq = k.dim(2)?;
        let needed = self.len + seq;
        let room = self.k.as_ref().map_or(Ok(0), |t| t.dim(2))?;
        if needed > room {
            let grown = needed
                .max(2 * room)
                .max(FIRST_ROOM)
                .min(self.cap.max(needed));
            let grow = |old: &Option<Tensor>, t: &Tensor| -> Result<Tensor> {
                let (b, h, _, d) = t.dims4()?;
                let fresh = Tensor::zeros((b, h, grown, d), t.dtype(), t.device())?;
                if let Some(old) = old {
                    fresh.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
                Ok(fresh)
            };
            self.k = Some(grow(&self.k, k)?);
            self.v = Some(grow(&self.v, v)?);
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
    /// An empty cache of `num_layers` layers, each growing to at most `cap` positions as it is
    /// written.
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

    /// A copy of what the cache holds, in buffers of its own that are exactly that long: a
    /// computed prompt prefix kept to be [`restore`](Self::restore)d into other caches.
    pub fn snapshot(&self) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let copy = |t: &Option<Tensor>| -> Result<Option<Tensor>> {
                    t.as_ref()
                        .map(|t| t.narrow(2, 0, l.len)?.force_contiguous())
                        .transpose()
                };
                Ok(LayerCache {
                    k: copy(&l.k)?,
                    v: copy(&l.v)?,
                    len: l.len,
                    cap: l.cap,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers })
    }

    /// Replaces what the cache holds with a copy of `from`'s positions (a [`snapshot`]), written
    /// into this cache's own buffers: the same bits a forward pass over those tokens wrote.
    ///
    /// [`snapshot`]: Self::snapshot
    pub fn restore(&mut self, from: &KvCache) -> Result<()> {
        if from.layers.len() != self.layers.len() {
            candle_core::bail!(
                "a cache of {} layers cannot take a snapshot of {}",
                self.layers.len(),
                from.layers.len()
            )
        }
        self.truncate(0);
        for (layer, from) in self.layers.iter_mut().zip(&from.layers) {
            if let (Some(k), Some(v), true) = (&from.k, &from.v, from.len > 0) {
                layer.append(&k.narrow(2, 0, from.len)?, &v.narrow(2, 0, from.len)?)?;
            }
        }
        Ok(())
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
