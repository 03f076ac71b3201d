//! f32 linear layers, `y = x W^T + b`, with the weights packed once at load time for an AVX2/FMA
//! matrix-multiply kernel.
//!
//! What it is for: the encoder-decoder families' matmuls on the CPU. candle's `x @ W^T` hands the
//! weights to the `gemm` crate in their stored `(out, in)` layout, and `gemm` repacks them at
//! every call: for beam search, where each step multiplies 64 rows by the whole 59k-word LM head,
//! that repacking was a sixth of the run. Here the weights are laid out once, in panels of 16
//! outputs with the 16 values of each input index side by side, so the kernel streams them as
//! they lie. Only the activations, which are small, are packed per call.
//!
//! Each output value is summed in one fixed order (the input index ascending, in blocks of
//! `KC`, 256), whatever the number of threads, so results do not depend on `--threads`.
//!
//! With AVX-512 ([`KernelSet::Avx512`] and up), one kernel call covers two neighbouring panels
//! (32 outputs, two 16-float registers per row): the same fused multiply-adds, value for value
//! and in the same order, so the outputs are the bits of the AVX2 kernel, at half the
//! instructions on a CPU whose vector units are 512 bits wide.
//!
//! Not for: GPUs, CPUs without AVX2 and FMA ([`PackedF32::supported`]), or int8 weights
//! (`super::packed_i8`).

use candle_core::{Result, Tensor};

use super::cpu::{KernelSet, SharedOut};

/// Outputs per weight panel (two 8-float registers).
const NR: usize = 16;
/// Activation rows per kernel call.
const MR: usize = 6;
/// Input values per block: a block of a weight panel (16 KiB) stays in L1 while every row block
/// of the activations passes over it.
const KC: usize = 256;
/// Bytes of packed activations worked on together (a share of a 512 KiB L2).
const L2_ACTIVATIONS: usize = 192 * 1024;

/// A weight matrix of `n` outputs by `k` inputs, in panels of [`NR`] outputs.
#[derive(Debug)]
pub struct PackedF32 {
    /// `ceil(n / NR)` panels of `k * NR` values; `panel[p][i * NR + j] = W[p * NR + j][i]`,
    /// zero where `p * NR + j >= n`.
    panels: Vec<f32>,
    bias: Option<Vec<f32>>,
    n: usize,
    k: usize,
}

impl PackedF32 {
    /// Whether this CPU runs the kernel.
    pub fn supported() -> bool {
        super::cpu::has_avx2_fma()
    }

    /// Packs `weight` (`(n, k)`, f32) and `bias` (`(n,)`). `None` when the kernel cannot run
    /// here (no AVX2/FMA, or a tensor not on the CPU): the caller keeps candle's matmul.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Option<Self>> {
        if !Self::supported() || !weight.device().is_cpu() {
            return Ok(None);
        }
        let (n, k) = weight.dims2()?;
        if k == 0 {
            candle_core::bail!("linear layer of 0 inputs");
        }
        let mut panels = vec![0f32; n.div_ceil(NR) * k * NR];
        super::cpu::with_f32_values(weight, |w| {
            for (row, values) in w.chunks_exact(k).enumerate() {
                let panel = &mut panels[(row / NR) * k * NR..][..k * NR];
                for (i, &v) in values.iter().enumerate() {
                    panel[i * NR + row % NR] = v;
                }
            }
        })?;
        let bias = super::cpu::read_bias(bias, n)?;
        Ok(Some(Self { panels, bias, n, k }))
    }

    /// Row `row` of the weight matrix (`W[row]`, `k` values), read back from the panels.
    fn weight_row(&self, row: usize, out: &mut [f32]) {
        let panel = &self.panels[(row / NR) * self.k * NR..][..self.k * NR];
        for (i, o) in out.iter_mut().enumerate() {
            *o = panel[i * NR + row % NR];
        }
    }

    /// The weight rows of `ids` (any shape, integer ids): `(ids.., k)`. This lets an embedding
    /// table tied to this matrix share its one packed copy.
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        super::cpu::gather_rows(ids, self.n, self.k, |row, out| self.weight_row(row, out))
    }

    /// Number of outputs.
    pub fn out_dim(&self) -> usize {
        self.n
    }

    /// Number of inputs.
    pub fn in_dim(&self) -> usize {
        self.k
    }

    /// `xs @ W^T + b` for `xs` of shape (.., k) on the CPU: (.., n).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        super::cpu::forward_rows(xs, self.k, self.n, |x, m, dst| self.matmul(x, m, dst))
    }

    /// `dst (m, n) = x (m, k) · W^T + b` with the kernels of [`super::cpu::kernel_set`].
    pub fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]) {
        self.matmul_with(super::cpu::kernel_set(), x, m, dst)
    }

    /// `dst (m, n) = x (m, k) · W^T + b` with the kernels of `set`, split by weight panels over
    /// candle's kernel threads.
    pub fn matmul_with(&self, set: KernelSet, x: &[f32], m: usize, dst: &mut [f32]) {
        super::cpu::check_set(set);
        let wide = set >= KernelSet::Avx512;
        let (n, k) = (self.n, self.k);
        assert_eq!(x.len(), m * k);
        assert_eq!(dst.len(), m * n);
        if m == 0 || n == 0 {
            return;
        }
        let a = pack_rows(x, m, k);
        let out = SharedOut::new(dst);
        let panels = n.div_ceil(NR);
        // Row blocks are taken in groups whose activations (all `k` inputs) fit in L2, so a
        // long input (the encoder's rows) is read from cache by every panel.
        let blocks = m.div_ceil(MR);
        let group = (L2_ACTIVATIONS / (k * MR * 4)).clamp(1, blocks);
        let panel = |p: usize| {
            let cols = NR.min(n - p * NR);
            let bias = self.bias.as_ref().map(|b| &b[p * NR..p * NR + cols]);
            (&self.panels[p * k * NR..][..k * NR], cols, bias)
        };
        let work = |range: std::ops::Range<usize>| {
            for g in (0..blocks).step_by(group) {
                let mut p = range.start;
                while p < range.end {
                    // Two panels per call with AVX-512, while this work item has two left.
                    let pair = wide && p + 1 < range.end;
                    let (b0, cols0, bias0) = panel(p);
                    let second = pair.then(|| panel(p + 1));
                    for k0 in (0..k).step_by(KC) {
                        let kc = KC.min(k - k0);
                        let first = k0 == 0;
                        for mb in g..blocks.min(g + group) {
                            let block = &a[mb * k * MR..][..k * MR];
                            let tile = Tile {
                                a: &block[k0 * MR..][..kc * MR],
                                b: &b0[k0 * NR..][..kc * NR],
                                rows: MR.min(m - mb * MR),
                                cols: cols0,
                                first,
                                bias: if first { bias0 } else { None },
                            };
                            // SAFETY: row mb*MR and column p*NR are within the (m, n) output.
                            let c = unsafe { out.at(mb * MR * n + p * NR) };
                            match second {
                                // SAFETY: `set` is at least AVX-512 (checked by `check_set`),
                                // and the pair of tiles covers rows mb*MR.. and columns
                                // p*NR..(p+2)*NR of dst (the second panel's own `cols`), in
                                // bounds, which only this work item (owning panels p and p+1)
                                // writes.
                                Some((b1, cols1, bias1)) => unsafe {
                                    tile.run_pair(
                                        &b1[k0 * NR..][..kc * NR],
                                        cols1,
                                        if first { bias1 } else { None },
                                        c,
                                        n,
                                    )
                                },
                                // SAFETY: `new` packs only where AVX2 and FMA are present; the
                                // tile covers rows mb*MR.. and columns p*NR.. of dst, in
                                // bounds, and only this work item (which owns panel p) writes
                                // those columns.
                                None => unsafe { tile.run(c, n) },
                            }
                        }
                    }
                    p += if pair { 2 } else { 1 };
                }
            }
        };
        // The threads share out whole pairs of panels with AVX-512, so that which panels are
        // paired does not depend on the number of threads.
        let unit = if wide { 2 } else { 1 };
        candle_core::utils::barrier_pool().execute_chunked(panels.div_ceil(unit), |r| {
            work(r.start * unit..(r.end * unit).min(panels))
        });
    }
}

/// `x` (m, k) in blocks of [`MR`] rows, each block `k * MR` values with the rows of one input
/// index side by side; rows past `m` are zero.
fn pack_rows(x: &[f32], m: usize, k: usize) -> Vec<f32> {
    let blocks = m.div_ceil(MR);
    let mut a = vec![0f32; blocks * k * MR];
    for (r, row) in x.chunks_exact(k).enumerate() {
        let block = &mut a[(r / MR) * k * MR..][..k * MR];
        for (i, &v) in row.iter().enumerate() {
            block[i * MR + r % MR] = v;
        }
    }
    a
}

/// One kernel call: an MR x NR tile of the output over `kc` input values.
struct Tile<'a> {
    /// `kc * MR` packed activations.
    a: &'a [f32],
    /// `kc * NR` packed weights.
    b: &'a [f32],
    /// Valid rows and columns of the tile (the rest is padding).
    rows: usize,
    cols: usize,
    /// The first input block: start from the bias (or zero), not from dst.
    first: bool,
    bias: Option<&'a [f32]>,
}

impl Tile<'_> {
    /// # Safety
    /// AVX2 and FMA are present; `c` points at the tile's top-left value in a row-major buffer
    /// with row stride `ldc`, and rows `..self.rows`, columns `..self.cols` are in bounds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run(&self, c: *mut f32, ldc: usize) {
        use std::arch::x86_64::*;
        let kc = self.b.len() / NR;
        debug_assert_eq!(self.a.len(), kc * MR);
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let (a, b) = (self.a.as_ptr(), self.b.as_ptr());
        for i in 0..kc {
            let b0 = _mm256_loadu_ps(b.add(i * NR));
            let b1 = _mm256_loadu_ps(b.add(i * NR + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(i * MR + r));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
        let mut start = [0f32; NR];
        if let Some(bias) = self.bias {
            start[..bias.len()].copy_from_slice(bias);
        }
        if self.cols == NR {
            // A full-width tile: add and store whole registers (the same sums as below).
            let start = [
                _mm256_loadu_ps(start.as_ptr()),
                _mm256_loadu_ps(start.as_ptr().add(8)),
            ];
            for (r, acc) in acc.iter().enumerate().take(self.rows) {
                let row = c.add(r * ldc);
                for (h, acc) in acc.iter().enumerate() {
                    let at = row.add(h * 8);
                    let base = if self.first {
                        start[h]
                    } else {
                        _mm256_loadu_ps(at)
                    };
                    _mm256_storeu_ps(at, _mm256_add_ps(base, *acc));
                }
            }
            return;
        }
        for (r, acc) in acc.iter().enumerate().take(self.rows) {
            let row = c.add(r * ldc);
            let mut vals = [0f32; NR];
            _mm256_storeu_ps(vals.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(vals.as_mut_ptr().add(8), acc[1]);
            for (j, v) in vals.iter().enumerate().take(self.cols) {
                let base = if self.first { start[j] } else { *row.add(j) };
                *row.add(j) = base + v;
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run(&self, _: *mut f32, _: usize) {
        unreachable!("PackedF32::new returns None off x86_64")
    }

    /// This tile and the one of the next panel (`b1`, `cols1` valid columns, `bias1`) in one
    /// pass: each row's 32 sums in two 16-float registers, each value summed exactly as
    /// [`Tile::run`] sums it.
    ///
    /// # Safety
    /// AVX-512F is present; `c` points at the tile's top-left value in a row-major buffer with
    /// row stride `ldc`, and rows `..self.rows`, columns `..NR + cols1` are in bounds.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_pair(
        &self,
        b1: &[f32],
        cols1: usize,
        bias1: Option<&[f32]>,
        c: *mut f32,
        ldc: usize,
    ) {
        use std::arch::x86_64::*;
        let kc = self.b.len() / NR;
        debug_assert_eq!(self.a.len(), kc * MR);
        debug_assert_eq!(b1.len(), kc * NR);
        debug_assert_eq!(self.cols, NR);
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (a, b0, b1p) = (self.a.as_ptr(), self.b.as_ptr(), b1.as_ptr());
        for i in 0..kc {
            let w0 = _mm512_loadu_ps(b0.add(i * NR));
            let w1 = _mm512_loadu_ps(b1p.add(i * NR));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(i * MR + r));
                acc[0] = _mm512_fmadd_ps(av, w0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, w1, acc[1]);
            }
        }
        let mut start = [[0f32; NR]; 2];
        for (s, bias) in start.iter_mut().zip([self.bias, bias1]) {
            if let Some(bias) = bias {
                s[..bias.len()].copy_from_slice(bias);
            }
        }
        for (r, acc) in acc.iter().enumerate().take(self.rows) {
            let row = c.add(r * ldc);
            for (h, (acc, cols)) in acc.iter().zip([NR, cols1]).enumerate() {
                let at = row.add(h * NR);
                if cols == NR {
                    let base = if self.first {
                        _mm512_loadu_ps(start[h].as_ptr())
                    } else {
                        _mm512_loadu_ps(at)
                    };
                    _mm512_storeu_ps(at, _mm512_add_ps(base, *acc));
                } else {
                    let mut vals = [0f32; NR];
                    _mm512_storeu_ps(vals.as_mut_ptr(), *acc);
                    for (j, v) in vals.iter().enumerate().take(cols) {
                        let base = if self.first { start[h][j] } else { *at.add(j) };
                        *at.add(j) = base + v;
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run_pair(&self, _: &[f32], _: usize, _: Option<&[f32]>, _: *mut f32, _: usize) {
        unreachable!("PackedF32::new returns None off x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cpu::test_tensor;
    use candle_core::Device;
    use candle_core::Module;

    fn check(m: usize, k: usize, n: usize, bias: bool) {
        if !PackedF32::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let w = test_tensor(&[n, k], 1, 0.2);
        let b = test_tensor(&[n], 2, 0.2);
        let x = test_tensor(&[2, m, k], 3, 2.0);
        let packed = PackedF32::new(&w, bias.then_some(&b)).unwrap().unwrap();
        let got = packed.forward(&x).unwrap();
        let mut want = x.broadcast_matmul(&w.t().unwrap()).unwrap();
        if bias {
            want = want.broadcast_add(&b).unwrap();
        }
        assert_eq!(got.dims(), want.dims());
        let err = (got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(err <= 1e-5 * scale.max(1.0), "m={m} k={k} n={n}: max error {err}");
    }

    #[test]
    fn matches_candles_matmul_on_ragged_shapes() {
        // Rows not a multiple of 6, outputs not a multiple of 16, inputs over one block.
        check(5, 40, 37, true);
        check(7, 300, 33, false);
        check(1, 512, 16, true);
        check(13, 513, 100, true);
    }

    /// A row's outputs do not depend on how many rows are multiplied with it or on what they
    /// hold, and every kernel set gives the AVX2 kernel's bits (with AVX-512, two panels a
    /// call: 100 outputs are 3 pairs of panels and a lone ragged one; 30 outputs, a pair whose
    /// second panel is ragged).
    #[test]
    fn row_counts_agree() {
        if !PackedF32::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        for (k, n) in [(40, 37), (513, 100), (70, 30)] {
            let w = test_tensor(&[n, k], 3 + k as u64, 0.5);
            let b = test_tensor(&[n], 4, 0.5);
            let packed = PackedF32::new(&w, Some(&b)).unwrap().unwrap();
            crate::kernels::cpu::check_sets_and_rows(k, n, |set, x, m| {
                let mut dst = vec![0f32; m * n];
                packed.matmul_with(set, x, m, &mut dst);
                dst
            });
        }
    }

    #[test]
    fn rows_read_back_from_the_panels() {
        if !PackedF32::supported() {
            eprintln!("SKIP: this CPU has no AVX2/FMA");
            return;
        }
        let w = test_tensor(&[21, 9], 4, 2.0);
        let packed = PackedF32::new(&w, None).unwrap().unwrap();
        let ids = Tensor::new(&[[3u32, 0, 20], [17, 16, 3]], &Device::Cpu).unwrap();
        let got = packed.rows(&ids).unwrap();
        let want = candle_nn::Embedding::new(w, 9).forward(&ids).unwrap();
        assert_eq!(got.dims(), &[2, 3, 9]);
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        let outside = Tensor::new(&[21u32], &Device::Cpu).unwrap();
        assert!(packed.rows(&outside).is_err());
    }
}
