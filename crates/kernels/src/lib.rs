//! # isdet-kernels
//!
//! Fast CPU training kernels for [candle](https://github.com/huggingface/candle)
//! models, as candle custom ops with their own backward passes: a 2-D
//! convolution (with a fused ReLU) by im2col + GEMM, and on AVX-512 CPUs
//! by direct kernels for convolutions by shifted planes (stride-1 "same"
//! ones, and strided ones whose input is `s` times their output, `k ≥ s`),
//! a fused
//! normalisation (BatchNorm or GroupNorm) + ReLU, nearest-neighbour
//! upsampling with a block-sum gradient, and a one-op residual
//! `relu(a + b)`. They know nothing of any model: any candle user who
//! trains on the CPU can call them.
//!
//! Which implementation runs is a value, [`Kernels`], passed to every op:
//! [`Kernels::Fast`] takes these kernels for f32 tensors on the CPU (any
//! other device or dtype falls back to candle's own ops, so CUDA runs are
//! unchanged); [`Kernels::Gemm`] takes them with every convolution an
//! im2col GEMM; [`Kernels::Stock`] always takes candle's ops, the
//! reference the property tests compare against.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use isdet_kernels::{Kernels, conv2d_relu};
//!
//! let x = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &Device::Cpu)?;
//! let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (8, 3, 3, 3), &Device::Cpu)?)?;
//! let fast = conv2d_relu(&x, w.as_tensor(), None, 1, 1, Kernels::Fast)?;
//! let stock = conv2d_relu(&x, w.as_tensor(), None, 1, 1, Kernels::Stock)?;
//! let diff = (fast.clone() - stock)?.abs()?.max_all()?.to_scalar::<f32>()?;
//! assert!(diff < 1e-4);
//! let grads = fast.sum_all()?.backward()?;
//! assert!(grads.get(w.as_tensor()).is_some());
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! All ops return candle's own error type: the only failures are shape
//! mismatches and candle errors, which candle already names.
#![deny(missing_docs)]

mod act;
mod conv;
mod norm;
mod par;
mod upsample;

use candle_core::{DType, Tensor};

pub use act::add_relu;
pub use conv::{conv2d, conv2d_relu, gemm_flops};
pub use norm::{NormOutput, NormStats, norm_relu};
pub use upsample::upsample_nearest;

/// Keeps freed memory in the process instead of returning it to the
/// kernel; call it once, first thing, in a program that trains.
///
/// # Safety
///
/// No other thread may exist yet: glibc's `mallopt` writes allocator
/// parameters that other threads read without a lock (it is MT-Unsafe).
///
/// A training step allocates and frees the same large activation and
/// gradient buffers every step. glibc serves buffers above its mmap
/// threshold with fresh mappings and trims freed heap memory, so every
/// step pays a page fault per 4 KiB of each buffer again. Raising both
/// thresholds (the effect of
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…:glibc.malloc.trim_threshold=…`)
/// lets the heap reuse them; see docs/performance.md. A `GLIBC_TUNABLES`
/// set by the user is left to rule; other platforms are left as they are.
#[allow(unsafe_code)]
pub unsafe fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // glibc's largest accepted mmap threshold on 64-bit is 32 MiB.
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: `mallopt` only sets allocator parameters, both values are
        // in range, and the caller runs it before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// Which implementation the ops of this crate run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// candle's own ops and their built-in backward passes.
    Stock,
    /// The custom ops of this crate for f32 tensors on the CPU (other
    /// devices and dtypes fall back to [`Kernels::Stock`]): on CPUs with
    /// AVX-512F, the forward and both gradients of stride-1 "same"
    /// convolutions of at least 16 input channels, and of strided
    /// convolutions whose input is `s` times their output with `k ≥ s`
    /// (the forward from 16 input channels, the gradients from 16 channels
    /// in and out), by
    /// direct kernels (no patch matrix), every other product as in
    /// [`Kernels::Gemm`].
    #[default]
    Fast,
    /// The custom ops with every convolution an im2col GEMM (the `gemm`
    /// crate's product over a patch matrix), on every CPU.
    Gemm,
    /// [`Kernels::Gemm`] with stride-1 3×3 convolutions by Winograd
    /// F(2×2, 3×3) in the forward and both gradients (2.25× fewer
    /// multiplies). Opt-in while it is measured: the committed study
    /// results were trained on [`Kernels::Fast`], and a different
    /// summation order changes a run's numbers.
    Winograd,
}

impl Kernels {
    /// Parses `stock`, `fast`, `gemm` or `winograd` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stock" => Some(Kernels::Stock),
            "fast" => Some(Kernels::Fast),
            "gemm" => Some(Kernels::Gemm),
            "winograd" => Some(Kernels::Winograd),
            _ => None,
        }
    }

    /// The lower-case name (`stock`, `fast`, `gemm` or `winograd`).
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Stock => "stock",
            Kernels::Fast => "fast",
            Kernels::Gemm => "gemm",
            Kernels::Winograd => "winograd",
        }
    }

    /// Whether these tensors take the fast kernels: any but
    /// [`Kernels::Stock`], and every tensor f32 on the CPU.
    pub fn fast_on(self, tensors: &[&Tensor]) -> bool {
        self != Kernels::Stock
            && tensors
                .iter()
                .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
    }
}
