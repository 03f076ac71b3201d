//! What our own CPU kernels (`q5_0`, `q8_0`, `packed_f32`, `packed_i8`, and the beam
//! search's vector log-softmax) share: the check for the instructions they need, the output
//! buffer their threads write into, and reading embedding rows back from a packed weight matrix.
//!
//! Not for: the kernels themselves, or anything candle already provides.

use candle_core::{Device, Result, Tensor};

/// The instruction sets our kernels are written for, lowest first. Each kernel runs the best
/// variant it has at or below [`kernel_set`]; a set above a kernel's best runs its best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelSet {
    /// No SIMD kernel of ours: the callers keep candle's paths.
    Portable,
    /// AVX2 and FMA (x86-64-v3, what the binary is built for).
    Avx2,
    /// AVX-512 F, BW, DQ and VL as well.
    Avx512,
    /// AVX-512 with VNNI (`vpdpbusd`) as well.
    Avx512Vnni,
}

impl KernelSet {
    /// Every set, lowest first.
    pub const ALL: [Self; 4] = [Self::Portable, Self::Avx2, Self::Avx512, Self::Avx512Vnni];

    /// The name `TRANSBRIEF_KERNELS` takes and `--version` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
            Self::Avx512Vnni => "avx512-vnni",
        }
    }

    /// The set of that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name.trim())
    }

    /// The best set this CPU runs (probed once per process: [`check_set`] asks at every
    /// matmul).
    pub fn detected() -> Self {
        static DETECTED: std::sync::OnceLock<KernelSet> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(Self::probe)
    }

    fn probe() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if !(has!("avx2") && has!("fma")) {
                return Self::Portable;
            }
            if !(has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl")) {
                return Self::Avx2;
            }
            if has!("avx512vnni") {
                Self::Avx512Vnni
            } else {
                Self::Avx512
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self::Portable
        }
    }
}

/// The environment variable that caps the kernel set (`portable`, `avx2`, `avx512`,
/// `avx512-vnni`), so that tests and users can run a lower set's kernels on a CPU that has a
/// higher one. A set above what the CPU has is capped to what it has.
pub const KERNELS_ENV: &str = "TRANSBRIEF_KERNELS";

/// The kernel set in use: the CPU's best, capped by [`KERNELS_ENV`]. Read once per process.
pub fn kernel_set() -> KernelSet {
    choice().0
}

/// Logs the kernel set in use (info), and a [`KERNELS_ENV`] that names no set (a warning), for
/// a program's start-up once its logging is set up: [`kernel_set`] itself logs nothing, as it may
/// first run before that (`transbrief --version` names the set).
pub fn log_kernel_set() {
    let (set, problem) = choice();
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    tracing::info!("kernels: {}", set.name());
}

/// The kernel set in use, and what was wrong with [`KERNELS_ENV`], if anything.
fn choice() -> &'static (KernelSet, Option<String>) {
    static SET: std::sync::OnceLock<(KernelSet, Option<String>)> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let detected = KernelSet::detected();
        match std::env::var(KERNELS_ENV) {
            Ok(v) => match KernelSet::from_name(&v) {
                Some(asked) => (asked.min(detected), None),
                None => (
                    detected,
                    Some(format!(
                        "{KERNELS_ENV}={v:?} is not a kernel set (portable, avx2, avx512, \
                         avx512-vnni); using {}",
                        detected.name()
                    )),
                ),
            },
            Err(_) => (detected, None),
        }
    })
}

/// Whether our AVX2 + FMA kernels run: the CPU has them (x86-64-v3) and [`KERNELS_ENV`] does
/// not ask for the portable paths.
pub(crate) fn has_avx2_fma() -> bool {
    kernel_set() >= KernelSet::Avx2
}

/// Panics unless our SIMD kernels can run with `set` here: at least [`KernelSet::Avx2`] and at
/// most what the CPU has (running a higher set's instructions would be undefined behaviour).
pub(crate) fn check_set(set: KernelSet) {
    assert!(
        KernelSet::Avx2 <= set && set <= KernelSet::detected(),
        "kernel set {} asked for on a CPU with {}",
        set.name(),
        KernelSet::detected().name()
    );
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

    /// The `len` values from `i`, to write.
    ///
    /// # Safety
    /// `i..i + len` is in bounds, and no other thread reads or writes it while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row(&self, i: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(i), len)
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

/// The kernel sets a kernel test runs: those from AVX2 up that this CPU has. Prints `SKIP:` for
/// each one it lacks.
#[cfg(test)]
pub(crate) fn sets_to_test() -> Vec<KernelSet> {
    let have = KernelSet::detected();
    let mut sets = Vec::new();
    for set in KernelSet::ALL.into_iter().filter(|&s| s >= KernelSet::Avx2) {
        if set <= have {
            sets.push(set);
        } else {
            eprintln!("SKIP: this CPU has no {} kernels", set.name());
        }
    }
    sets
}

/// Checks a kernel, `matmul(set, x, m)` giving the `m * n` outputs of the `m` rows of `x` (rows
/// of `k` values): every set of [`sets_to_test`] gives the bits of [`KernelSet::Avx2`], and each
/// row's outputs are the bits of that row multiplied alone, for m in {1, 2, 3, 5, 8, 9, 16, 17}
/// (the GGUF kernels' decode path in one and two passes, and their prompt path) and whatever
/// the other rows hold.
#[cfg(test)]
pub(crate) fn check_sets_and_rows(
    k: usize,
    n: usize,
    matmul: impl Fn(KernelSet, &[f32], usize) -> Vec<f32>,
) {
    const ROWS: usize = 17;
    // Rows of different magnitudes, so that rows tiled together differ in scale.
    let x: Vec<f32> = (0..ROWS)
        .flat_map(|r| {
            let row = test_tensor(&[k], 100 + r as u64, 0.1 + r as f32);
            row.to_vec1::<f32>().expect("f32 row")
        })
        .collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let sets = sets_to_test();
    if sets.is_empty() {
        return;
    }
    let alone: Vec<Vec<u32>> = (0..ROWS)
        .map(|r| bits(&matmul(KernelSet::Avx2, &x[r * k..][..k], 1)))
        .collect();
    for set in sets {
        for m in [1, 2, 3, 5, 8, 9, 16, 17] {
            // The first m rows, and the last m (other neighbours for most rows).
            for first in [0, ROWS - m] {
                let got = matmul(set, &x[first * k..][..m * k], m);
                assert_eq!(got.len(), m * n);
                for (r, out) in got.chunks_exact(n).enumerate() {
                    assert_eq!(
                        bits(out),
                        alone[first + r],
                        "{}: {k} inputs, {n} outputs, row {} of {m} from row {first}",
                        set.name(),
                        r
                    );
                }
            }
        }
    }
}
