//! The weight gradient of a convolution by shifted planes without a patch
//! matrix: vectors along the output channels.
//!
//! `dW[o][c][t] = Σ_q dY[o][q] · plane(c, t)[q + shift_t]` over the output
//! pixels `q` whose shifted pixel lies inside the image. The im2col route
//! writes every input pixel `k²` times into a patch matrix, which the
//! `gemm` crate then packs again: on the detector's 12 × 12 maps those two
//! passes cost about as much as the product itself. Here the output
//! gradient is transposed once (`dYᵀ`, a pixel's `C_out` values side by
//! side), and an AVX-512 micro-kernel holds a tile of up to 8 input
//! channels × 4 vectors of 16 output channels in registers: for each tap
//! and each output pixel inside the tap's window it loads the pixel's
//! output-gradient vectors and adds their products with the tile's
//! input pixels, each a broadcast read where it lies in the NCHW input
//! (at stride `s`, every `s`-th pixel of a row: no phase planes). A
//! tap's window is a rectangle of each image's output (the pixels whose
//! shifted pixel is inside), walked row by row, so the padding costs
//! nothing and no lane is masked but the last vector's past `C_out`.
//!
//! An earlier attempt vectorised along the pixels instead (16 pixels a
//! lane, one sum across lanes per weight at the end of each unit): those
//! reductions, 24 a tile, cost more than the patch matrix saved (issue
//! 15's notes in docs/performance.md).

use super::Geom;
use super::direct::{LANES, lanes_below, window};

/// Vectors of output channels per tile, at most.
const RV: usize = 4;
/// Input channels per tile, at most: 8, or 6 with 4 vectors of output
/// channels ([`channels_per_tile`]).
const RC: usize = 8;

/// Input channels per tile beside `rv` vectors of output channels: at most
/// 24 accumulators, so that they, the `rv` output-gradient vectors and the
/// broadcast fit the 32 vector registers.
fn channels_per_tile(rv: usize) -> usize {
    RC.min(24 / rv)
}

/// Whether this kernel computes the weight gradient of `g`: where the
/// direct kernel computes its input gradient
/// ([`direct::applies`](super::direct::applies): a stride-1 "same"
/// convolution of at least 16 input channels;
/// [`direct::applies_strided`](super::direct::applies_strided): a strided
/// one by shifted planes of at least 16 input and output channels; on a
/// CPU with AVX-512F).
///
/// Measured and left out (per op, `cargo bench -p isdet-kernels --bench
/// kernels`): narrow layers, whose few accumulators wait on each other
/// (the detector's 3-channel stem: 1.3–1.9 ms by GEMM, 3.1–4.7 ms with
/// this kernel). Strided layers lost while their input gradient still
/// needed the patch matrix (convnet-ref's 32 → 64 at 32 × 32, batch 32:
/// 3.9–4.4 ms for the backward by GEMM, 3.8–8.3 ms with this kernel); with
/// the input gradient by phases they gain (docs/performance.md).
pub(super) fn applies(g: &Geom) -> bool {
    super::direct::applies(g) || super::direct::applies_strided(g)
}

/// What every tile of one unit shares.
struct Unit<'a> {
    /// The unit's input, NCHW: `imgs × C_in × H × W`.
    x: &'a [f32],
    /// The output gradient transposed: `imgs·H_out·W_out × C_out`.
    dy_t: &'a [f32],
    /// Per tap: its phase plane and shift (see [`Geom::tap_shifts`]).
    taps: &'a [(usize, isize, isize)],
    imgs: usize,
    cin: usize,
    cout: usize,
    stride: usize,
    ho: usize,
    wo: usize,
    /// The input's width.
    w: usize,
}

/// Adds one unit's weight gradient into `dw_t`, laid out as the GEMM
/// route accumulates it (transposed, `C_in·k² × C_out`): `x` holds the
/// unit's `imgs` NCHW input images, and `dy_t` its output gradient
/// transposed (pixel-major: `imgs·H_out·W_out` rows of `C_out`). The
/// input pixels are broadcast one by one, so a strided convolution reads
/// them where they lie, every `s`-th of a row, without phase planes.
///
/// # Panics
///
/// If the buffers do not have those lengths, or [`applies`] does not admit
/// `g` (which includes a CPU without AVX-512F).
pub(super) fn accumulate(g: &Geom, imgs: usize, x: &[f32], dy_t: &[f32], dw_t: &mut [f32]) {
    assert!(
        applies(g),
        "weight gradient by channels: a convolution the kernel does not apply to"
    );
    let (hw, taps) = (g.hwo(), g.tap_shifts());
    assert_eq!(x.len(), imgs * g.cin * g.h * g.w, "weight gradient: input");
    assert_eq!(
        dy_t.len(),
        imgs * hw * g.cout,
        "weight gradient: output gradient"
    );
    assert_eq!(dw_t.len(), g.ckk() * g.cout, "weight gradient: dW");
    let unit = Unit {
        x,
        dy_t,
        taps: &taps,
        imgs,
        cin: g.cin,
        cout: g.cout,
        stride: g.stride,
        ho: g.ho,
        wo: g.wo,
        w: g.w,
    };
    // Output channels in blocks of equal vector counts (96 channels as
    // two blocks of 3 vectors rather than 4 + 2).
    let vectors = g.cout.div_ceil(LANES);
    let per_block = vectors.div_ceil(vectors.div_ceil(RV));
    let dw = dw_t.as_mut_ptr();
    for v0 in (0..vectors).step_by(per_block) {
        let rv = per_block.min(vectors - v0);
        let per_tile = channels_per_tile(rv);
        for c0 in (0..g.cin).step_by(per_tile) {
            let rc = per_tile.min(g.cin - c0);
            for t in 0..taps.len() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `applies` checked AVX-512F; the tile reads and
                // writes within the buffers whose lengths are asserted
                // above (see `avx512::tile`).
                #[allow(unsafe_code)]
                unsafe {
                    avx512::dispatch(&unit, rc, rv, c0, v0 * LANES, t, dw);
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (&unit, rc, rv, c0, t, dw);
            }
        }
    }
    super::sgemm::count_flops(g.cout, g.ckk(), imgs * hw);
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::{LANES, RC, RV, Unit, lanes_below, window};
    use std::arch::x86_64::*;

    /// Runs the micro-kernel for `rc ≤ RC` input channels from `c0` and
    /// `rv ≤ RV` vectors of output channels from `o0`, tap `t`, each size
    /// its own instance (so that the accumulators are registers).
    ///
    /// # Safety
    ///
    /// AVX-512F must be available; the channels and the tap must exist,
    /// and `dw` holds `C_in·k² × C_out` floats.
    pub(super) unsafe fn dispatch(
        u: &Unit,
        rc: usize,
        rv: usize,
        c0: usize,
        o0: usize,
        t: usize,
        dw: *mut f32,
    ) {
        macro_rules! sizes {
            ($($c:literal),*) => {
                match rv {
                    $(1 if rc == $c => unsafe { tile::<$c, 1>(u, c0, o0, t, dw) },)*
                    $(2 if rc == $c => unsafe { tile::<$c, 2>(u, c0, o0, t, dw) },)*
                    $(3 if rc == $c => unsafe { tile::<$c, 3>(u, c0, o0, t, dw) },)*
                    $(4 if rc == $c => unsafe { tile::<$c, 4>(u, c0, o0, t, dw) },)*
                    _ => unreachable!("tile size"),
                }
            };
        }
        sizes!(1, 2, 3, 4, 5, 6, 7, 8)
    }
    const _: () = assert!(RC == 8 && RV == 4, "dispatch lists sizes up to 8 × 4");

    /// One tile: `C` input channels × `V` vectors of output channels, tap
    /// `t`, summed over the unit's pixels inside the tap's window, then
    /// added into `dw`.
    ///
    /// Reads: the window's pixels are inside their images, so every
    /// shifted pixel read is inside its plane; the output gradient's loads
    /// keep to the lanes below `C_out`. Writes: the lanes below `C_out` of
    /// rows `(c·k² + t)` of `dw`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const C: usize, const V: usize>(
        u: &Unit,
        c0: usize,
        o0: usize,
        t: usize,
        dw: *mut f32,
    ) {
        let (phase, sy, sx) = u.taps[t];
        let ((ylo, yhi), (xlo, xhi)) = (window(u.ho, sy), window(u.wo, sx));
        let (s, hw) = (u.stride, u.ho * u.wo);
        // Output pixel `(y, j)` reads input pixel `(s·(y + sy) + ry, s·(j +
        // sx) + rx)` (`H = s·H_out`, `W = s·W_out`: shifted planes).
        let (ry, rx) = (phase / s, phase % s);
        let mut keep = [0u16; V];
        for (v, k) in keep.iter_mut().enumerate() {
            *k = lanes_below(u.cout, o0 + v * LANES);
        }
        let plane_stride = s * s * hw;
        let mut acc = [[_mm512_setzero_ps(); V]; C];
        for img in 0..u.imgs {
            // Channel `c0`'s plane in this image.
            let plane = u.x.as_ptr().wrapping_add((img * u.cin + c0) * plane_stride);
            for y in ylo..yhi {
                let q = img * hw + y * u.wo + xlo;
                let dyp = u.dy_t.as_ptr().wrapping_add(q * u.cout + o0);
                let iy = (s as isize * (y as isize + sy) + ry as isize) * u.w as isize;
                let xp = plane.wrapping_offset(iy + s as isize * (xlo as isize + sx) + rx as isize);
                for j in 0..xhi - xlo {
                    let mut d = [_mm512_setzero_ps(); V];
                    for (v, d) in d.iter_mut().enumerate() {
                        // SAFETY: pixel `q + j` of the unit, the lanes
                        // below `C_out`.
                        *d = unsafe {
                            _mm512_maskz_loadu_ps(keep[v], dyp.wrapping_add(j * u.cout + v * LANES))
                        };
                    }
                    for (i, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: the shifted pixel of `q + j` in channel
                        // `c0 + i`'s plane: inside it (the window).
                        let b =
                            _mm512_set1_ps(unsafe { *xp.wrapping_add(i * plane_stride + s * j) });
                        for (a, d) in acc.iter_mut().zip(&d) {
                            *a = _mm512_fmadd_ps(b, *d, *a);
                        }
                    }
                }
            }
        }
        let kk = u.taps.len();
        for (i, acc) in acc.iter().enumerate() {
            let row = dw.wrapping_add(((c0 + i) * kk + t) * u.cout + o0);
            for (v, a) in acc.iter().enumerate() {
                let p = row.wrapping_add(v * LANES);
                // SAFETY: the lanes below `C_out` of row `(c0 + i)·k² + t`.
                unsafe {
                    let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(keep[v], p), *a);
                    _mm512_mask_storeu_ps(p, keep[v], sum);
                }
            }
        }
    }
}
