//! What our own CPU kernels (`q5_0`, `q8_0`, `packed_f32`, `packed_i8`, and the beam
//! search's vector log-softmax) share: the check for the instructions they need, the output
//! buffer their threads write into, and reading embedding rows back from a packed weight matrix.
//!
//! Not for: the kernels themselves, or anything candle already provides.

use candle_core::{Device, Result, Tensor};

/// Whether this CPU has AVX2 and FMA, which every one of our kernels requires (x86-64-v3).
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// An output buffer written by several kernel threads at disjoint indices.
pub(crate) struct SharedOut(*mut f32);

// SAFETY: the pointer is only written through `at`/`write`, at indices that the work split gives
// to exactly one thread, and the buffer outlives the pool call that uses it.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(crate) fn new(dst: &mut [f32]) -> Self {
        Self(dst.as_mut_ptr())
    }

    /// # Safety
    /// `i` is in bounds of the buffer.
    pub(crate) unsafe fn at(&self, i: usize) -> *mut f32 {
        self.0.add(i)
    }

    /// # Safety
    /// `i` is in bounds and no other thread writes index `i`.
    pub(crate) unsafe fn write(&self, i: usize, v: f32) {
        *self.0.add(i) = v;
    }
}

/// The rows of `ids` (any shape, integer ids) of an `n` x `k` matrix whose row `i` `row(i, out)`
/// writes: `(ids.., k)` f32. An id outside the matrix is an error.
pub(crate) fn gather_rows(
    ids: &Tensor,
    n: usize,
    k: usize,
    row: impl Fn(usize, &mut [f32]),
) -> Result<Tensor> {
    let flat = ids
        .flatten_all()?
        .to_dtype(candle_core::DType::U32)?
        .to_vec1::<u32>()?;
    let mut out = vec![0f32; flat.len() * k];
    for (&id, dst) in flat.iter().zip(out.chunks_exact_mut(k)) {
        if id as usize >= n {
            candle_core::bail!("token id {id} outside a table of {n} rows");
        }
        row(id as usize, dst);
    }
    let mut dims = ids.dims().to_vec();
    dims.push(k);
    Tensor::from_vec(out, dims, &Device::Cpu)
}

/// `xs` (.., k) f32 on the CPU through `matmul(x, m, dst)`, which fills `dst` (m, n) from the m
/// rows of `x`: (.., n). The shape check and reshaping every kernel's `forward` needs.
pub(crate) fn forward_rows(
    xs: &Tensor,
    k: usize,
    n: usize,
    matmul: impl FnOnce(&[f32], usize, &mut [f32]),
) -> Result<Tensor> {
    let mut dims = xs.dims().to_vec();
    if dims.last() != Some(&k) {
        candle_core::bail!("linear layer of {k} inputs given {:?}", xs.shape());
    }
    let x = xs.flatten_all()?.to_vec1::<f32>()?;
    let m = x.len() / k;
    let mut dst = vec![0f32; m * n];
    matmul(&x, m, &mut dst);
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    Tensor::from_vec(dst, dims, &Device::Cpu)
}

/// A layer's bias (`(n,)`) as f32 values, checked against its `n` outputs.
pub(crate) fn read_bias(bias: Option<&Tensor>, n: usize) -> Result<Option<Vec<f32>>> {
    let Some(bias) = bias else {
        return Ok(None);
    };
    let values = bias.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    if values.len() != n {
        candle_core::bail!("bias of {} values for {n} outputs", values.len());
    }
    Ok(Some(values))
}

/// Calls `f` with the values of `t` (f32, on the CPU) in row-major order, read in place where
/// `t` is already contiguous f32: packing a weight matrix then holds no third copy of it.
pub(crate) fn with_f32_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.to_dtype(candle_core::DType::F32)?.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(cpu), Some((start, end))) => {
            Ok(f(&cpu.as_slice::<f32>()?[start..end]))
        }
        _ => candle_core::bail!("expected a tensor on the CPU"),
    }
}

/// Test inputs for the kernels: the same values on every run, so a tolerance that holds once
/// holds always (a fresh random draw per run made one bound flaky).
#[cfg(test)]
pub(crate) fn test_tensor(shape: &[usize], seed: u64, amp: f32) -> Tensor {
    let len = shape.iter().product();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f32> = (0..len)
        .map(|_| {
            // A 64-bit LCG; the top 24 bits give a uniform value in [0, 1).
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * unit - 1.0) * amp
        })
        .collect();
    Tensor::from_vec(values, shape, &candle_core::Device::Cpu).expect("shape matches length")
}
