//! Our own CPU kernels, where candle's are missing or slow, and the crate's one CPU-feature
//! check ([`cpu::has_avx2_fma`]):
//! - [`packed_f32`]: f32 weights packed once into panels, for the seq2seq linear layers;
//! - [`packed_i8`]: int8 weights with one scale per row and activations quantized per row (as
//!   CTranslate2's `int8`);
//! - [`q5_0`] and [`q8_0`]: GGUF Q5_0 (which candle has no SIMD kernel for) and Q8_0 matrices,
//!   with [`q8_acts`], the Q8_0 activation blocks both multiply;
//! - [`softmax`]: the vector log-softmax beam search ranks by.
//!
//! Each kernel is exact about what it computes (the tests compare with candle's arithmetic or
//! with a scalar version) and runs only where [`cpu::has_avx2_fma`] says so; the callers fall
//! back to candle otherwise.
//!
//! Not for: layers or architectures (`crate::nn`, `crate::models`). Nothing here imports from the
//! rest of the crate but errors.

pub mod cpu;
pub mod packed_f32;
pub mod packed_i8;
pub mod q5_0;
pub(crate) mod q8_acts;
pub mod q8_0;
pub mod softmax;
