//! Our own CPU kernels, where candle's are missing or slow, and the crate's one choice of
//! instructions ([`cpu::kernel_set`]: portable, AVX2, AVX-512, AVX-512 VNNI; the CPU's best,
//! capped by `TRANSBRIEF_KERNELS`):
//! - [`packed_f32`]: f32 weights packed once into panels, for the seq2seq linear layers;
//! - [`packed_i8`]: int8 weights with one scale per row and activations quantized per row (as
//!   CTranslate2's `int8`);
//! - [`q5_0`] and [`q8_0`]: GGUF Q5_0 (which candle has no SIMD kernel for) and Q8_0 matrices,
//!   with [`q8_acts`], the Q8_0 activation blocks both multiply;
//! - [`softmax`]: the vector log-softmax beam search ranks by;
//! - [`kquants`]: the decoding steps of GGUF Q4_K and Q6_K matrices (prompts stay on candle's);
//! - [`decode_attention`]: a decoding step's attention over its cache, every sequence of a
//!   batched pass at once;
//! - [`attention_softmax`]: the softmax of a prompt's attention scores, candle's bits over the
//!   kernel threads;
//! - [`activation`]: feed-forward activations (the seq2seq families', the chat models' SiLU),
//!   candle's bits over the kernel threads.
//!
//! Each kernel is exact about what it computes (the tests compare with candle's arithmetic or
//! with a scalar version) and runs only where [`cpu::has_avx2_fma`] says so (the kernel set is
//! AVX2 or above); the callers fall back to candle otherwise. The binary is built for x86-64-v3:
//! AVX-512 code sits behind `#[target_feature]` and runs only where [`cpu::kernel_set`] says so.
//! Which kernels have which variants:
//! - `packed_i8`, `q5_0`, `q8_0`: AVX2, and AVX-512 VNNI (`vpdpbusd`); AVX-512 without VNNI runs
//!   the AVX2 code. The integer sums are exact and the f32 arithmetic after them is the same on
//!   every set, so outputs are bit-identical across sets;
//! - `packed_f32`: AVX2, and AVX-512 (pairs of panels);
//! - `kquants`, `softmax`: AVX2 only;
//! - `decode_attention`, `attention_softmax`, `activation`: plain Rust, the same on every CPU.
//!
//! Every kernel computes an output row from its activation row alone, with the same arithmetic
//! whatever the number of rows (decoding one sequence or a batch, a prompt), so a row's outputs
//! do not depend on the rows beside it. The tests check both properties on every set the CPU
//! has.
//!
//! Not for: layers or architectures (`crate::nn`, `crate::models`). Nothing here imports from the
//! rest of the crate but errors.

pub mod activation;
pub mod attention_softmax;
pub mod cpu;
pub mod decode_attention;
pub mod kquants;
pub mod packed_f32;
pub mod packed_i8;
pub mod q5_0;
pub(crate) mod q8_acts;
pub mod q8_0;
pub mod softmax;
