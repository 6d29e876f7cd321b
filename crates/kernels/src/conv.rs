//! A fast 2-D convolution for training on the CPU.
//!
//! Stock candle 0.11 runs a convolution's input gradient through a direct
//! loop (`conv_transpose2d`) and its weight gradient through a convolution
//! whose "kernel" is the whole output-gradient map; both are an order of
//! magnitude slower than a GEMM. Here the forward pass and both gradients
//! are GEMMs (the `gemm` crate candle itself uses) over units of a few whole
//! images (enough output pixels per GEMM, at least one unit per thread):
//!
//! * `col = im2col(x)` is the `(C_in·k·k) × (n·H_out·W_out)` matrix of the
//!   unit's input patches (for a 1×1 stride-1 convolution of one image, the
//!   image itself: no copy);
//! * forward: `Y = W · col` (`W` is `C_out × C_in·k·k`), permuted to NCHW
//!   with the bias added on the way;
//! * backward, one pass per unit from the output gradient `dY` (as
//!   `C_out × n·HW`): `dW += dY · colᵀ`, `db += rows of dY summed`,
//!   `dx = col2im(Wᵀ · dY)` (skipped when the input needs no gradient, e.g.
//!   the images).
//!
//! On AVX-512 CPUs ([`Kernels::Fast`]) the convolutions by shifted planes
//! (stride-1 "same" ones, and strided ones whose input is `s` times their
//! output, `k ≥ s`) take direct kernels instead, with no patch matrix: the
//! forward (at least 16 input channels) and the input gradient (at stride
//! `s > 1` at least 16 channels in and out; as the forward at stride 1) in
//! `conv/direct.rs`, the weight gradient in `conv/weight_grad.rs`. A
//! strided convolution's forward reads the input's phase planes, and its
//! input gradient is one stride-1 convolution of the output gradient per
//! phase plane, interleaved into the input gradient.
//!
//! The forward is a candle custom op ([`CustomOp2`], or [`CustomOp3`] with a
//! bias) whose backward is one more custom op computing all gradients in one
//! pass. Units run on candle's own CPU worker pool (the one its element-wise
//! ops use: a second pool would fight it for the cores), each GEMM on one
//! thread; work buffers are reused per thread. Only f32 tensors on the CPU
//! take this path; any other device or dtype uses candle's own `conv2d` (so
//! CUDA runs are unchanged).
//!
//! The caller chooses the implementation with a [`Kernels`] value.

use std::cell::RefCell;
use std::mem::MaybeUninit;

mod direct;
mod weight_grad;
mod winograd;

use crate::Kernels;
use crate::act::relu_grad_at;
use crate::norm::lanes;
use crate::par::{
    as_uninit, f32_slice, fill_parts, fill_parts_uninit, fill_parts_uninit_static, init_chunks,
    interleave2, lock, pool_thread, pool_threads, run_units_static, split_mut, write_all, zeroed,
};

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Storage, Tensor};

/// A 2-D convolution of an NCHW input `x` with an OIHW square kernel `w`,
/// plus an optional per-output-channel `bias`, with the same stride and
/// zero padding on both axes (no dilation, one group).
///
/// [`Kernels::Fast`] takes the GEMM path for f32 tensors on the CPU and
/// falls back to candle's own convolution elsewhere.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    imp: Kernels,
) -> candle_core::Result<Tensor> {
    conv2d_act(x, w, bias, stride, padding, false, imp)
}

/// [`conv2d`] followed by a ReLU. On the fast path the ReLU is applied as
/// the output is written and its mask is one pass in the backward, instead
/// of candle's separate ReLU op (a pass forward, four backward).
pub fn conv2d_relu(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    imp: Kernels,
) -> candle_core::Result<Tensor> {
    conv2d_act(x, w, bias, stride, padding, true, imp)
}

fn conv2d_act(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    relu: bool,
    imp: Kernels,
) -> candle_core::Result<Tensor> {
    let fast = match bias {
        Some(b) => imp.fast_on(&[x, w, b]),
        None => imp.fast_on(&[x, w]),
    };
    if !fast {
        let y = x.conv2d(w, padding, stride, 1, 1)?;
        let y = match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
            None => y,
        };
        return if relu { y.relu() } else { Ok(y) };
    }
    let (_, cin, _, _) = x.dims4()?;
    let (cout, wcin, kh, kw) = w.dims4()?;
    if wcin != cin || kh != kw {
        candle_core::bail!(
            "conv2d: input {:?} and kernel {:?} do not fit (square kernels, one group)",
            x.dims(),
            w.dims()
        );
    }
    if stride == 0 {
        candle_core::bail!("conv2d: stride must be positive");
    }
    let op = ConvFwd {
        stride,
        padding,
        relu,
        winograd: imp == Kernels::Winograd,
        direct: imp == Kernels::Fast,
    };
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    match bias {
        Some(b) => {
            if b.dims() != [cout] {
                candle_core::bail!("conv2d: bias {:?} for {cout} channels", b.dims());
            }
            let b = b.contiguous()?;
            if x.track_op() || w.track_op() || b.track_op() {
                x.apply_op3(&w, &b, op)
            } else {
                x.apply_op3_no_bwd(&w, &b, &op)
            }
        }
        None => {
            if x.track_op() || w.track_op() {
                x.apply_op2(&w, op)
            } else {
                x.apply_op2_no_bwd(&w, &op)
            }
        }
    }
}

/// The shapes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn new(
        x: &Layout,
        w: &Layout,
        stride: usize,
        pad: usize,
        name: &str,
    ) -> candle_core::Result<Self> {
        let (n, cin, h, wd) = x.shape().dims4()?;
        let (cout, wcin, k, k2) = w.shape().dims4()?;
        if wcin != cin || k != k2 || k == 0 || stride == 0 {
            candle_core::bail!(
                "{name}: input {:?} and kernel {:?} do not fit",
                x.dims(),
                w.dims()
            );
        }
        if h + 2 * pad < k || wd + 2 * pad < k {
            candle_core::bail!("{name}: kernel {k} larger than padded input {:?}", x.dims());
        }
        Ok(Geom {
            n,
            cin,
            h,
            w: wd,
            cout,
            k,
            stride,
            pad,
            ho: (h + 2 * pad - k) / stride + 1,
            wo: (wd + 2 * pad - k) / stride + 1,
        })
    }

    /// Rows of the patch matrix.
    fn ckk(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Output pixels per image.
    fn hwo(&self) -> usize {
        self.ho * self.wo
    }

    /// The Winograd shapes of the forward, for a stride-1 3×3 convolution
    /// of at least [`winograd::MIN_CHANNELS`] channels in and out.
    fn winograd_forward(&self) -> Option<winograd::Wino> {
        if self.k != 3 || self.stride != 1 || self.cin.min(self.cout) < winograd::MIN_CHANNELS {
            return None;
        }
        winograd::Wino::new(self.cin, self.h, self.w, self.cout, self.pad)
    }

    /// The Winograd shapes of the backward: the forward's (for the weight
    /// gradient) and the input gradient's (a convolution of the output
    /// gradient with padding `2 − p`), for a stride-1 3×3 convolution with
    /// padding at most 2.
    fn winograd_backward(&self) -> Option<(winograd::Wino, winograd::Wino)> {
        if self.pad > 2 {
            return None;
        }
        let dx = winograd::Wino::new(self.cout, self.ho, self.wo, self.cin, 2 - self.pad)?;
        Some((self.winograd_forward()?, dx))
    }

    /// A convolution whose patch-matrix rows are shifted copies of whole
    /// planes ([`FlatShift`]): the input is `stride` times the output on
    /// both axes and the kernel covers every phase of the stride (`k ≥ s`).
    /// At stride 1 these are the "same" convolutions (`2p = k − 1`) and the
    /// planes are the input's own; at stride `s > 1` they are its `s²`
    /// phase planes ([`split_phases`]), each `H_out × W_out`: input pixel
    /// `(s·i + ry, s·j + rx)` is pixel `(i, j)` of phase `(ry, rx)`.
    fn shifted_planes(&self) -> bool {
        !self.pointwise()
            && self.k >= self.stride
            && self.h == self.ho * self.stride
            && self.w == self.wo * self.stride
    }

    /// Phase planes per channel: `s²` (1 at stride 1).
    fn phases(&self) -> usize {
        self.stride * self.stride
    }

    /// For [`shifted_planes`](Self::shifted_planes), per kernel tap
    /// `(ky, kx)` (in row-major order): the phase plane it reads (within a
    /// channel's `s²`) and its shift. Tap `ky` reads input row `s·oy + ky −
    /// p = s·(oy + dy) + ry` with `dy = ⌊(ky − p) / s⌋`, `ry = (ky − p) mod
    /// s`: row `oy + dy` of a phase-`ry` plane. Patch-matrix row `(c, ky,
    /// kx)` copies plane `c·s² + phase` of its image.
    fn shifted_taps(&self) -> Vec<(usize, FlatShift)> {
        self.tap_shifts()
            .into_iter()
            .map(|(phase, dy, dx)| (phase, FlatShift::new(self.ho, self.wo, dy, dx)))
            .collect()
    }

    /// Per kernel tap, as [`shifted_taps`](Self::shifted_taps): the phase
    /// plane and the shift `(dy, dx)` on it.
    fn tap_shifts(&self) -> Vec<(usize, isize, isize)> {
        let s = self.stride as isize;
        let tap = |kk: usize| {
            let d = kk as isize - self.pad as isize;
            (d.div_euclid(s), d.rem_euclid(s) as usize)
        };
        (0..self.k * self.k)
            .map(|t| {
                let ((dy, ry), (dx, rx)) = (tap(t / self.k), tap(t % self.k));
                (ry * self.stride + rx, dy, dx)
            })
            .collect()
    }

    /// A 1×1 stride-1 unpadded convolution: the patch matrix of one image
    /// is the image itself.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

/// Output pixels a unit's GEMMs should have at least. Small units keep a
/// unit's patch matrix (`C_in·k·k × columns`) in the core's cache between
/// im2col, the forward product and the backward's two products: on the
/// AVX-512 machine of 2026-12-06, 256 took convnet-ref 32 × 64 from 35–36
/// to 31 ms per step and the detector at 32 × 96 from 107 to 97–101 ms
/// against 2,048 (512 and 1,024 in between, 64 and 128 slower again).
const UNIT_COLUMNS: usize = 256;

/// Images per unit of work for this convolution on this machine's pool.
fn images_per_unit(g: &Geom) -> usize {
    unit_images(g.n, g.hwo(), pool_threads())
}

/// Images per unit of work: whole images, at least [`UNIT_COLUMNS`]
/// columns per GEMM, at least one unit per thread when the batch allows,
/// and, when there are only a few units, as many per thread and of equal
/// size. (32 images of 12×12 in units of 15 would make units of 15, 15 and
/// 2, and one of two threads would do 30 of the 32 images.)
fn unit_images(n: usize, hwo: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let per = n
        .div_ceil(threads)
        .min(UNIT_COLUMNS.div_ceil(hwo.max(1)))
        .max(1);
    let units = n.div_ceil(per);
    if units > 4 * threads {
        // Many units: the pool's chunks differ by at most one unit.
        return per;
    }
    n.div_ceil(units.next_multiple_of(threads)).max(1)
}

/// The output positions `[lo, hi)` along one axis whose input position
/// `o·s + kk − p` lies in `[0, len)`.
fn valid_range(out: usize, len: usize, s: usize, kk: usize, p: usize) -> (usize, usize) {
    let lo = p.saturating_sub(kk).div_ceil(s).min(out);
    // o·s + kk − p ≤ len − 1  ⇔  o ≤ (len − 1 + p − kk) / s
    let hi = match (len + p).checked_sub(kk + 1) {
        Some(v) => (v / s + 1).min(out),
        None => 0,
    };
    (lo, hi.max(lo))
}

/// The patch matrix of `imgs` consecutive images (`x` holds exactly them):
/// `col[(c·k + ky)·k + kx][img·HWo + oy·Wo + ox] =
/// x[img][c][oy·s + ky − p][ox·s + kx − p]` (zero outside the image).
fn im2col(g: &Geom, imgs: usize, x: &[f32], col: &mut [f32]) {
    if g.shifted_planes() {
        return im2col_shifted(g, imgs, x, col);
    }
    let (hw, hwo) = (g.h * g.w, g.hwo());
    let cols = imgs * hwo;
    for (r, row) in col.chunks_mut(cols).enumerate() {
        let (c, ky, kx) = (r / (g.k * g.k), (r / g.k) % g.k, r % g.k);
        let (ylo, yhi) = valid_range(g.ho, g.h, g.stride, ky, g.pad);
        let (xlo, xhi) = valid_range(g.wo, g.w, g.stride, kx, g.pad);
        for img in 0..imgs {
            let src = &x[(img * g.cin + c) * hw..][..hw];
            let dst = &mut row[img * hwo..][..hwo];
            dst[..ylo * g.wo].fill(0.0);
            dst[yhi * g.wo..].fill(0.0);
            for oy in ylo..yhi {
                let iy = oy * g.stride + ky - g.pad;
                let srow = &src[iy * g.w..][..g.w];
                let d = &mut dst[oy * g.wo..][..g.wo];
                d[..xlo].fill(0.0);
                d[xhi..].fill(0.0);
                if xhi > xlo {
                    let ix0 = xlo * g.stride + kx - g.pad;
                    if g.stride == 1 {
                        d[xlo..xhi].copy_from_slice(&srow[ix0..ix0 + (xhi - xlo)]);
                    } else if g.stride == 2 {
                        gather2(&mut d[xlo..xhi], &srow[ix0..]);
                    } else {
                        for (v, s) in d[xlo..xhi]
                            .iter_mut()
                            .zip(srow[ix0..].iter().step_by(g.stride))
                        {
                            *v = *s;
                        }
                    }
                }
            }
        }
    }
}

/// A row of the patch matrix, for one image, as a shifted flat copy of a
/// plane as large as the output (the input plane itself for a "same"
/// stride-1 convolution, a phase plane at stride 2; see
/// [`Geom::shifted_planes`]): output pixel `(oy, ox)` reads plane pixel
/// `(oy + dy, ox + dx)`, so element `i` of the output plane reads plane
/// element `i + shift`. The rows `[ylo, yhi)` that see the plane at all are
/// copied in one piece, and the columns the shift wraps round to the
/// neighbouring row (`ox < xlo` or `ox ≥ xhi`) are then set to zero,
/// instead of a copy and two fills per output row (rows of 4 to 48 pixels
/// at the detector's and convnet-ref's sizes).
struct FlatShift {
    /// Output rows `[ylo, yhi)` inside the plane, as flat indices.
    rows: (usize, usize),
    /// Output columns `[xlo, xhi)` inside the plane.
    cols: (usize, usize),
    /// Plane index minus output index.
    shift: isize,
}

impl FlatShift {
    /// The shift by `(dy, dx)` on `ho × wo` planes.
    fn new(ho: usize, wo: usize, dy: isize, dx: isize) -> Self {
        // Output positions o along an axis of `len` with o + d in [0, len).
        let inside = |len: usize, d: isize| {
            let len = len as isize;
            let lo = (-d).clamp(0, len);
            (lo as usize, (len - d).clamp(lo, len) as usize)
        };
        let ((ylo, yhi), cols) = (inside(ho, dy), inside(wo, dx));
        FlatShift {
            rows: (ylo * wo, yhi * wo),
            cols,
            shift: dy * wo as isize + dx,
        }
    }

    /// The output indices `[lo, hi)` (within `rows`) whose input index
    /// `i + shift` lies in a plane of `hw` elements (`lo == hi` if none).
    fn copied(&self, hw: usize) -> (usize, usize) {
        let (a, b) = self.rows;
        let lo = a.max((-self.shift).max(0) as usize).min(b);
        let hi = b.min((hw as isize - self.shift).max(0) as usize).max(lo);
        (lo, hi)
    }

    /// Sets the wrapped columns of the rows inside the image to zero.
    /// `plane` holds output pixels `[p0, p0 + plane.len())`, `p0` a multiple
    /// of `wo`.
    fn zero_wrapped(&self, plane: &mut [f32], wo: usize, p0: usize) {
        let (xlo, xhi) = self.cols;
        if xlo == 0 && xhi == wo {
            return;
        }
        let end = p0 + plane.len();
        let (a, b) = (self.rows.0.clamp(p0, end), self.rows.1.clamp(p0, end));
        // Column by column, as strided stores: the wrapped columns are one
        // or two per row (the padding), and a `fill` per row would be a
        // `memset` call for a single element.
        let rows = &mut plane[a - p0..b - p0];
        for x in (0..xlo).chain(xhi..wo) {
            rows.iter_mut().skip(x).step_by(wo).for_each(|v| *v = 0.0);
        }
    }
}

/// [`im2col`] by shifted planes ([`Geom::shifted_planes`]): at stride 1
/// from the input's planes, at stride `s > 1` from its phase planes.
fn im2col_shifted(g: &Geom, imgs: usize, x: &[f32], col: &mut [f32]) {
    with_planes(g, x, |planes| {
        im2col_from_planes(g, imgs, planes, col, (0, g.hwo()))
    })
}

/// Runs `f` on the planes that [`Geom::shifted_planes`] copies from: the
/// input itself at stride 1, its phase planes ([`split_phases`]) else.
fn with_planes<R>(g: &Geom, x: &[f32], f: impl FnOnce(&[f32]) -> R) -> R {
    if g.stride == 1 {
        return f(x);
    }
    with_scratch(x.len(), |planes| {
        split_phases(g, x, planes);
        f(planes)
    })
}

/// The patch matrix from the `C_in·s²` planes (each `H_out × W_out`) of
/// each of `imgs` images.
/// Only the output pixels `[p0, p1)` of each image (flat indices, whole
/// output rows) are written: `col` is `ckk × imgs·(p1 − p0)`.
fn im2col_from_planes(
    g: &Geom,
    imgs: usize,
    planes: &[f32],
    col: &mut [f32],
    (p0, p1): (usize, usize),
) {
    let (hwo, per_img, taps) = (g.hwo(), g.cin * g.phases(), g.shifted_taps());
    let len = p1 - p0;
    for (r, row) in col.chunks_mut(imgs * len).enumerate() {
        let ((phase, f), c) = (&taps[r % taps.len()], r / taps.len());
        let plane = c * g.phases() + phase;
        let (lo, hi) = f.copied(hwo);
        let (lo, hi) = (lo.clamp(p0, p1) - p0, hi.clamp(p0, p1) - p0);
        for (img, dst) in row.chunks_mut(len).enumerate() {
            let src = &planes[(img * per_img + plane) * hwo..][..hwo];
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            if hi > lo {
                let from = ((p0 + lo) as isize + f.shift) as usize;
                dst[lo..hi].copy_from_slice(&src[from..from + (hi - lo)]);
            }
            f.zero_wrapped(dst, g.wo, p0);
        }
    }
}

/// [`col2im`] by shifted planes: each patch-matrix row's wrapped columns
/// are zeroed in `dcol` (they belong to the padding), the row is added to
/// its plane as one shifted run, and at stride `s > 1` the phase planes'
/// gradients are then interleaved into `dx` (every input pixel is in
/// exactly one phase).
fn col2im_shifted<'d>(
    g: &Geom,
    imgs: usize,
    dcol: &mut [f32],
    dx: &'d mut [MaybeUninit<f32>],
) -> &'d mut [f32] {
    if g.stride == 1 {
        return col2im_to_planes(g, imgs, dcol, dx);
    }
    with_scratch(dx.len(), |planes| {
        // SAFETY: `col2im_to_planes` only writes values through the view.
        #[allow(unsafe_code)]
        let view = unsafe { as_uninit(planes) };
        let planes = col2im_to_planes(g, imgs, dcol, view);
        merge_phases(g, planes, dx)
    })
}

/// The adjoint of [`im2col_from_planes`]: `planes` is overwritten. A
/// phase's unshifted tap (`dy = dx = 0`, which sees the whole plane) is
/// copied rather than added, so only planes without one are zeroed first.
fn col2im_to_planes<'p>(
    g: &Geom,
    imgs: usize,
    dcol: &mut [f32],
    planes: &'p mut [MaybeUninit<f32>],
) -> &'p mut [f32] {
    let (hwo, phases, taps) = (g.hwo(), g.phases(), g.shifted_taps());
    let (per_img, row_len, kk) = (g.cin * phases, imgs * hwo, taps.len());
    let mut whole = vec![None; phases];
    for (t, (phase, f)) in taps.iter().enumerate() {
        if f.shift == 0 && f.rows == (0, hwo) && f.cols == (0, g.wo) {
            whole[*phase] = Some(t);
        }
    }
    let planes = init_chunks(planes, hwo, |i, dst| {
        let (img, plane) = (i / per_img, i % per_img);
        let (c, phase) = (plane / phases, plane % phases);
        match whole[phase] {
            Some(t) => write_all(
                dst,
                dcol[(c * kk + t) * row_len + img * hwo..][..hwo]
                    .iter()
                    .copied(),
            ),
            None => zeroed(dst),
        }
    });
    add_rows_to_planes(g, imgs, dcol, planes, (0, hwo), |t| {
        whole[taps[t].0] == Some(t)
    });
    planes
}

/// Adds patch-matrix gradient rows into their planes (the adjoint of
/// [`im2col_from_planes`] over the same window): each row of `imgs`
/// images' output pixels `[p0, p1)` has its wrapped columns zeroed in
/// `dcol` (they belong to the padding) and is added to its plane as one
/// shifted run. Rows of the taps for which `skip` holds are left out.
fn add_rows_to_planes(
    g: &Geom,
    imgs: usize,
    dcol: &mut [f32],
    planes: &mut [f32],
    (p0, p1): (usize, usize),
    skip: impl Fn(usize) -> bool,
) {
    let (hwo, per_img, taps) = (g.hwo(), g.cin * g.phases(), g.shifted_taps());
    let len = p1 - p0;
    for (r, row) in dcol.chunks_mut(imgs * len).enumerate() {
        let (c, t) = (r / taps.len(), r % taps.len());
        if skip(t) {
            continue;
        }
        let (phase, f) = &taps[t];
        let plane = c * g.phases() + phase;
        let (lo, hi) = f.copied(hwo);
        let (a, b) = (lo.clamp(p0, p1), hi.clamp(p0, p1));
        for (img, src) in row.chunks_mut(len).enumerate() {
            f.zero_wrapped(src, g.wo, p0);
            if b == a {
                continue;
            }
            let dst = &mut planes[(img * per_img + plane) * hwo..][..hwo];
            let to = (a as isize + f.shift) as usize;
            for (p, v) in dst[to..to + (b - a)].iter_mut().zip(&src[a - p0..b - p0]) {
                *p += v;
            }
        }
    }
}

/// Splits NCHW images `x` (`H = s·H_out`, `W = s·W_out`) into their phase
/// planes: `planes[((img·C + c)·s + ry)·s + rx]` is the `H_out × W_out`
/// plane of pixels `(s·i + ry, s·j + rx)` of channel `c`.
fn split_phases(g: &Geom, x: &[f32], planes: &mut [f32]) {
    for (n, row) in x.chunks(g.w).enumerate() {
        let (first, step) = phase_rows(g, n);
        if g.stride == 2 {
            let (even, odd) = planes[first..].split_at_mut(step);
            for ((pair, e), o) in row
                .chunks_exact(2)
                .zip(&mut even[..g.wo])
                .zip(&mut odd[..g.wo])
            {
                (*e, *o) = (pair[0], pair[1]);
            }
            continue;
        }
        for (rx, v) in row.iter().enumerate() {
            planes[first + (rx % g.stride) * step + rx / g.stride] = *v;
        }
    }
}

/// The inverse of [`split_phases`]: writes every pixel of `dx` from its
/// phase plane.
fn merge_phases<'d>(g: &Geom, planes: &[f32], dx: &'d mut [MaybeUninit<f32>]) -> &'d mut [f32] {
    interleave_phase_rows(g, planes, dx, |n| phase_rows(g, n))
}

/// Writes every row of `dx` (input row `n` of all images' channels, in
/// order) from `planes`: `rows(n)` is `(first, step)`, where input row
/// `n`'s pixels `s·j + rx` lie at `first + rx·step + j`.
fn interleave_phase_rows<'d>(
    g: &Geom,
    planes: &[f32],
    dx: &'d mut [MaybeUninit<f32>],
    rows: impl Fn(usize) -> (usize, usize),
) -> &'d mut [f32] {
    let s = g.stride;
    init_chunks(dx, g.w, |n, row| {
        let (first, step) = rows(n);
        if s == 2 {
            return interleave2(
                row,
                &planes[first..][..g.wo],
                &planes[first + step..][..g.wo],
            );
        }
        write_all(
            row,
            (0..g.w).map(|x| planes[first + (x % s) * step + x / s]),
        )
    })
}

/// For input row `n` (of all images' channels, in order): where phase
/// `rx = 0`'s row of it starts in the phase planes, and how far apart the
/// rows of phases `rx` and `rx + 1` are (one plane).
fn phase_rows(g: &Geom, n: usize) -> (usize, usize) {
    let (chan, iy) = (n / g.h, n % g.h);
    let (s, hwo) = (g.stride, g.hwo());
    (((chan * s + iy % s) * s * hwo) + (iy / s) * g.wo, hwo)
}

/// `dst[i] = src[2i]` (written with pairs so that it vectorises).
fn gather2(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let full = n.min(src.len() / 2);
    for (d, pair) in dst[..full].iter_mut().zip(src.chunks_exact(2)) {
        *d = pair[0];
    }
    for (i, d) in dst.iter_mut().enumerate().skip(full) {
        *d = src[2 * i];
    }
}

/// `dst[2i] += src[i]` (written with pairs so that it vectorises).
fn scatter_add2(dst: &mut [f32], src: &[f32]) {
    let full = src.len().min(dst.len() / 2);
    for (pair, v) in dst.chunks_exact_mut(2).zip(&src[..full]) {
        pair[0] += v;
    }
    for (i, v) in src.iter().enumerate().skip(full) {
        dst[2 * i] += v;
    }
}

/// The adjoint of [`im2col`]: sums the patch-matrix gradient of `imgs`
/// images back into their NCHW input gradient `dx` (overwritten).
fn col2im<'d>(
    g: &Geom,
    imgs: usize,
    dcol: &mut [f32],
    dx: &'d mut [MaybeUninit<f32>],
) -> &'d mut [f32] {
    if g.shifted_planes() {
        return col2im_shifted(g, imgs, dcol, dx);
    }
    let dx = zeroed(dx);
    let (hw, hwo) = (g.h * g.w, g.hwo());
    let cols = imgs * hwo;
    for (i, plane) in dx.chunks_mut(hw).enumerate() {
        let (img, c) = (i / g.cin, i % g.cin);
        for ky in 0..g.k {
            let (ylo, yhi) = valid_range(g.ho, g.h, g.stride, ky, g.pad);
            for kx in 0..g.k {
                let (xlo, xhi) = valid_range(g.wo, g.w, g.stride, kx, g.pad);
                if xhi == xlo {
                    continue;
                }
                let r = (c * g.k + ky) * g.k + kx;
                let src = &dcol[r * cols + img * hwo..][..hwo];
                let ix0 = xlo * g.stride + kx - g.pad;
                for oy in ylo..yhi {
                    let iy = oy * g.stride + ky - g.pad;
                    let s = &src[oy * g.wo + xlo..oy * g.wo + xhi];
                    let prow = &mut plane[iy * g.w..][..g.w];
                    if g.stride == 1 {
                        for (p, v) in prow[ix0..ix0 + s.len()].iter_mut().zip(s) {
                            *p += v;
                        }
                    } else if g.stride == 2 {
                        scatter_add2(&mut prow[ix0..], s);
                    } else {
                        for (p, v) in prow[ix0..].iter_mut().step_by(g.stride).zip(s) {
                            *p += v;
                        }
                    }
                }
            }
        }
    }
    dx
}

/// `(C, N, HW)` → `(N, C, HW)` with an epilogue: `bias[c]` added if
/// given, then a ReLU if `relu` ([`Epilogue::NONE`] only moves the data).
/// Every element of `dst` is written; it is returned initialised.
fn cn_to_nc<'d>(
    src: &[f32],
    dst: &'d mut [MaybeUninit<f32>],
    n: usize,
    c: usize,
    hw: usize,
    epi: Epilogue,
) -> &'d mut [f32] {
    init_chunks(dst, hw, |i, d| {
        let (img, ch) = (i / c, i % c);
        epi.write(d, &src[(ch * n + img) * hw..][..hw], ch)
    })
}

/// What the forward adds to a channel's row of the product: a bias, a ReLU.
#[derive(Clone, Copy)]
struct Epilogue<'a> {
    bias: Option<&'a [f32]>,
    relu: bool,
}

impl Epilogue<'_> {
    /// No bias, no ReLU.
    const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        relu: false,
    };

    /// `dst = relu?(src + bias[ch])`, returned initialised.
    fn write<'d>(&self, dst: &'d mut [MaybeUninit<f32>], src: &[f32], ch: usize) -> &'d mut [f32] {
        let b = self.bias.map_or(0.0, |b| b[ch]);
        match (self.bias.is_some(), self.relu) {
            (false, false) => write_all(dst, src.iter().copied()),
            (true, false) => write_all(dst, src.iter().map(|s| s + b)),
            (_, true) => write_all(dst, src.iter().map(|s| (s + b).max(0.0))),
        }
    }

    /// [`apply`](Self::apply) to each channel's row of `hw` pixels of one
    /// image's output.
    fn apply_channels(&self, out: &mut [f32], hw: usize) {
        for (ch, row) in out.chunks_mut(hw).enumerate() {
            self.apply(row, ch);
        }
    }

    /// `row = relu?(row + bias[ch])` in place.
    fn apply(&self, row: &mut [f32], ch: usize) {
        let b = self.bias.map_or(0.0, |b| b[ch]);
        match (self.bias.is_some(), self.relu) {
            (false, false) => {}
            (true, false) => row.iter_mut().for_each(|v| *v += b),
            (_, true) => row.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
        }
    }
}

/// `(N, C, HW)` → `(C, N, HW)`.
fn nc_to_cn(src: &[f32], dst: &mut [f32], n: usize, c: usize, hw: usize) {
    nc_to_cn_masked(src, None, dst, n, c, hw);
}

/// [`nc_to_cn`], with each element zeroed where `relu_out` (laid out as
/// `src`) is not positive: the gradient through a fused ReLU.
fn nc_to_cn_masked(
    src: &[f32],
    relu_out: Option<&[f32]>,
    dst: &mut [f32],
    n: usize,
    c: usize,
    hw: usize,
) {
    for (i, d) in dst.chunks_mut(hw).enumerate() {
        let (ch, img) = (i / n, i % n);
        let at = (img * c + ch) * hw;
        match relu_out {
            Some(r) => relu_mask(&src[at..][..hw], &r[at..][..hw], d),
            None => d.copy_from_slice(&src[at..][..hw]),
        }
    }
}

/// `dst = grad · [out > 0]`, the gradient through a ReLU whose output is
/// `out`.
fn relu_mask(grad: &[f32], out: &[f32], dst: &mut [f32]) {
    for ((d, &g), &o) in dst.iter_mut().zip(grad).zip(out) {
        *d = relu_grad_at(g, o);
    }
}

thread_local! {
    /// Reusable work buffers of this thread (patch matrices, permuted
    /// gradients): allocating them afresh costs a page fault per 4 KiB.
    static SCRATCH: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `len` floats taken from this thread's scratch
/// pool (its contents are unspecified: `f` must write before reading).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    SCRATCH.with(|s| s.borrow_mut().push(buf));
    r
}

/// Whether a unit's patch matrix is its input itself (a pointwise
/// convolution of one image).
fn col_is_input(g: &Geom, imgs: usize) -> bool {
    g.pointwise() && imgs == 1
}

/// Writes the patch matrix of a unit of `imgs` images (`x` holds exactly
/// them) into `col` (`ckk × imgs·HWo`, every element written).
fn fill_col(g: &Geom, imgs: usize, x: &[f32], col: &mut [f32]) {
    if g.pointwise() {
        nc_to_cn(x, col, imgs, g.cin, g.hwo());
    } else {
        im2col(g, imgs, x, col);
    }
}

/// Floats of a block of an image's patch matrix when the whole one is too
/// large for the core's 2 MiB L2 (see [`blocked`]): 512 KiB.
const BLOCK_FLOATS: usize = 1 << 17;

/// Whether a one-image unit of this convolution runs in blocks of output
/// rows: a shifted-planes convolution whose patch matrix per image is more
/// than two blocks (convnet-ref's stem and second layer at 128 px: 27 ×
/// 16,384 and 144 × 4,096 floats).
fn blocked(g: &Geom) -> bool {
    g.shifted_planes() && g.ckk() * g.hwo() > 2 * BLOCK_FLOATS
}

/// The blocks `[p0, p1)` of whole output rows, about [`BLOCK_FLOATS`] of
/// patch matrix each, that cover an image's output.
fn row_blocks(g: &Geom) -> impl Iterator<Item = (usize, usize)> {
    let rows = (BLOCK_FLOATS / g.ckk() / g.wo).max(1);
    let (hwo, step) = (g.hwo(), rows * g.wo);
    (0..hwo)
        .step_by(step)
        .map(move |p0| (p0, (p0 + step).min(hwo)))
}

/// The forward of one image block by block ([`row_blocks`]): each block's
/// patch matrix stays in the core's cache between im2col and the product,
/// where a whole large image's would not (convnet-ref's stem at 128 px is
/// 27 × 16,384 floats).
fn forward_blocked<'o>(
    g: &Geom,
    x: &[f32],
    ws: &[f32],
    out: &'o mut [MaybeUninit<f32>],
    epi: Epilogue,
) -> &'o mut [f32] {
    let (ckk, hwo) = (g.ckk(), g.hwo());
    // The blocks write strided column ranges of every channel's row; the
    // zeroing makes the whole output initialised up front.
    let out = zeroed(out);
    with_planes(g, x, |planes| {
        for (p0, p1) in row_blocks(g) {
            let len = p1 - p0;
            with_scratch(ckk * len, |col| {
                im2col_from_planes(g, 1, planes, col, (p0, p1));
                sgemm::gemm(
                    (g.cout, len, ckk),
                    sgemm::MatMut::new(&mut out[p0..], hwo, 1),
                    false,
                    sgemm::Mat::new(ws, ckk, 1),
                    sgemm::Mat::new(col, len, 1),
                );
            });
            for ch in 0..g.cout {
                epi.apply(&mut out[ch * hwo + p0..ch * hwo + p1], ch);
            }
        }
    });
    out
}

/// The weight gradient (accumulated into `dw_t`, `ckk × C_out`, where
/// given) and the input gradient of one image block by block, as
/// [`forward_blocked`].
/// The input gradient's planes are zeroed first: a block's taps add into
/// the rows next to it.
fn backward_blocked<'d>(
    g: &Geom,
    x: &[f32],
    ws: &[f32],
    dy: &[f32],
    mut dw_t: Option<&mut [f32]>,
    dx: Option<&'d mut [MaybeUninit<f32>]>,
) -> Option<&'d mut [f32]> {
    if dw_t.is_none() && dx.is_none() {
        // Nothing asked (the weight gradient went another way, and the
        // input needs none): no planes, no patch matrices.
        return None;
    }
    let (ckk, hwo) = (g.ckk(), g.hwo());
    // At stride 1 the planes are the input gradient itself; at stride
    // `s > 1` phase planes, interleaved into it at the end.
    let (mut same, mut phased) = match dx {
        Some(d) if g.stride == 1 => (Some(zeroed(d)), None),
        d => (None, d),
    };
    let scratch = if phased.is_some() { x.len() } else { 0 };
    with_planes(g, x, |planes| {
        with_scratch(scratch, |phase_grads| {
            phase_grads.fill(0.0);
            let mut grads: Option<&mut [f32]> = match (&mut same, &phased) {
                (Some(d), _) => Some(&mut **d),
                (None, Some(_)) => Some(&mut *phase_grads),
                (None, None) => None,
            };
            for (p0, p1) in row_blocks(g) {
                let len = p1 - p0;
                let dy_b = sgemm::Mat::new(&dy[p0..], hwo, 1);
                with_scratch(ckk * len, |col| {
                    if let Some(dw_t) = dw_t.as_deref_mut() {
                        im2col_from_planes(g, 1, planes, col, (p0, p1));
                        sgemm::gemm(
                            (g.cout, ckk, len),
                            sgemm::MatMut::new(dw_t, 1, g.cout),
                            true,
                            dy_b,
                            sgemm::Mat::new(col, 1, len),
                        );
                    }
                    if let Some(dp) = grads.as_deref_mut() {
                        // dcol (ckk × len) = Wᵀ · dY, over the patch matrix.
                        sgemm::gemm(
                            (ckk, len, g.cout),
                            sgemm::MatMut::new(col, len, 1),
                            false,
                            sgemm::Mat::new(ws, 1, ckk),
                            dy_b,
                        );
                        add_rows_to_planes(g, 1, col, dp, (p0, p1), |_| false);
                    }
                });
            }
            phased.take().map(|d| merge_phases(g, phase_grads, d))
        })
    })
    .or(same)
}

/// Runs `f` on the planes of a unit of `imgs` images (`x` holds exactly
/// them) for the direct kernel: channel-major (`[plane][image][pixel]`),
/// the input's own planes at stride 1 (the input itself for one image),
/// its phase planes ([`split_phases`]) at stride `s > 1`.
fn with_unit_planes<R>(g: &Geom, imgs: usize, x: &[f32], f: impl FnOnce(&[f32]) -> R) -> R {
    with_planes(g, x, |p| {
        if imgs == 1 {
            return f(p);
        }
        with_scratch(p.len(), |cm| {
            nc_to_cn(p, cm, imgs, g.cin * g.phases(), g.hwo());
            f(cm)
        })
    })
}

/// One unit by the direct kernel from its input planes (laid out as the
/// layout beside them says) into its NCHW output, with the epilogue:
/// written in place where every vector lies within one image
/// ([`direct::PlaneLayout::fits`]: one image a unit, or images of a
/// multiple of 16 pixels), else as channel-major rows permuted to NCHW.
fn direct_unit<'o>(
    taps: &direct::Taps,
    w: &direct::Weights,
    imgs: usize,
    input: (&[f32], direct::PlaneLayout),
    out: &'o mut [MaybeUninit<f32>],
    epi: Epilogue,
) -> &'o mut [f32] {
    let (cout, hwo) = (w.outputs(), taps.pixels());
    if direct::PlaneLayout::fits(hwo, imgs) {
        let output = direct::PlaneLayout::nchw(cout, hwo);
        return direct::conv(taps, w, imgs, input, (out, output), epi.bias, epi.relu);
    }
    with_scratch(out.len(), |tmp| {
        // SAFETY: the direct kernel only writes values through the view.
        #[allow(unsafe_code)]
        let view = unsafe { as_uninit(tmp) };
        let rows = direct::PlaneLayout::channel_major(hwo, imgs * hwo);
        let tmp = direct::conv(taps, w, imgs, input, (view, rows), None, false);
        cn_to_nc(tmp, out, imgs, cout, hwo, epi)
    })
}

/// The input gradient of one unit of a strided shifted-planes convolution
/// ([`direct::applies_strided`]) by the direct kernel: each phase plane of
/// the input is a stride-1 convolution of the output gradient `dy` with
/// the phase's taps ([`direct::Taps::input_grad_phases`]), written
/// channel-major, and the phases are then interleaved into the unit's NCHW
/// input gradient `dx` (every input pixel lies in exactly one phase).
fn input_grad_by_phases<'d>(
    g: &Geom,
    phases: &[std::sync::Arc<direct::Taps>],
    ws: &[f32],
    imgs: usize,
    dy: (&[f32], direct::PlaneLayout),
    dx: &'d mut [MaybeUninit<f32>],
) -> &'d mut [f32] {
    let (hwo, cols) = (g.hwo(), imgs * g.hwo());
    let block = g.cin * cols;
    with_scratch(phases.len() * block, |planes| {
        let rows = direct::PlaneLayout::channel_major(hwo, cols);
        for (taps, part) in phases.iter().zip(planes.chunks_mut(block)) {
            let weights = direct::Weights::phase(ws, g.cout, g.cin, taps);
            // SAFETY: the direct kernel only writes values through the view.
            #[allow(unsafe_code)]
            let view = unsafe { as_uninit(part) };
            direct::conv(taps, &weights, imgs, dy, (view, rows), None, false);
        }
        merge_phase_blocks(g, imgs, planes, dx)
    })
}

/// Writes a unit's NCHW input gradient `dx` from its phase planes laid out
/// as [`input_grad_by_phases`] computes them: phase `ry·s + rx`'s block of
/// `C_in` channel-major rows (`[channel][image][pixel]`, `imgs·HWo` pixels
/// each) holds input pixels `(s·i + ry, s·j + rx)`.
fn merge_phase_blocks<'d>(
    g: &Geom,
    imgs: usize,
    planes: &[f32],
    dx: &'d mut [MaybeUninit<f32>],
) -> &'d mut [f32] {
    let (s, hwo) = (g.stride, g.hwo());
    let cols = imgs * hwo;
    let block = g.cin * cols;
    interleave_phase_rows(g, planes, dx, |n| {
        // Input row `n`: image `n / (C_in·H)`, channel, row `iy`; phase
        // `(iy mod s, rx)` is block `(iy mod s)·s + rx`.
        let (img, c, iy) = (n / (g.cin * g.h), (n / g.h) % g.cin, n % g.h);
        let at = c * cols + img * hwo + (iy / s) * g.wo;
        ((iy % s) * s * block + at, block)
    })
}

/// Pins a backward unit's signature: its input gradient part comes in
/// uninitialised and goes out written, with the same lifetime.
fn unit_fn<F>(f: F) -> F
where
    F: for<'p> Fn(usize, Option<&'p mut [MaybeUninit<f32>]>) -> Option<&'p mut [f32]> + Sync,
{
    f
}

/// Forward of the fast convolution (`(x, w)` or `(x, w, bias)`).
#[derive(Debug, Clone, Copy)]
struct ConvFwd {
    stride: usize,
    padding: usize,
    /// A ReLU on the output (its mask is applied to the incoming gradient).
    relu: bool,
    /// Winograd F(2×2, 3×3) for the forward and both gradients of
    /// stride-1 3×3 convolutions ([`Kernels::Winograd`]).
    winograd: bool,
    /// The direct kernel where it applies ([`Kernels::Fast`]; see
    /// [`direct`]).
    direct: bool,
}

impl ConvFwd {
    fn run(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        const NAME: &str = "fast-conv2d";
        let g = Geom::new(x.1, w.1, self.stride, self.padding, NAME)?;
        let xs = f32_slice(x.0, x.1, NAME)?;
        let ws = f32_slice(w.0, w.1, NAME)?;
        let bs = match bias {
            Some((s, l)) => Some(f32_slice(s, l, NAME)?),
            None => None,
        };
        let (ckk, hwo, chw) = (g.ckk(), g.hwo(), g.cin * g.h * g.w);
        let per = images_per_unit(&g);
        let len = g.n * g.cout * hwo;
        let epi = Epilogue {
            bias: bs,
            relu: self.relu,
        };
        let wino = self.winograd.then(|| g.winograd_forward()).flatten();
        if let Some(s) = wino {
            let wu = winograd::transform_weights(ws, g.cout, g.cin, false);
            let y = fill_parts(len, len, per * g.cout * hwo, |u, out| {
                let imgs = out.len() / (g.cout * hwo).max(1);
                let x_u = &xs[u * per * chw..][..imgs * chw];
                winograd::conv_unit(&s, imgs, x_u, &wu, out, epi);
            });
            return Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.ho, g.wo))));
        }
        if self.direct && (direct::applies(&g) || direct::applies_strided_forward(&g)) {
            let kept = direct::Taps::of(&g, per, false);
            let taps: &direct::Taps = &kept;
            let weights = direct::Weights::forward(ws, g.cout, g.cin, g.k * g.k);
            let y = fill_parts_uninit(len, len, per * g.cout * hwo, |u, out| {
                let imgs = out.len() / (g.cout * hwo).max(1);
                let x_u = &xs[u * per * chw..][..imgs * chw];
                if g.stride == 1 && direct::PlaneLayout::fits(hwo, imgs) {
                    let input = (x_u, direct::PlaneLayout::nchw(g.cin, hwo));
                    return direct_unit(taps, &weights, imgs, input, out, epi);
                }
                with_unit_planes(&g, imgs, x_u, |planes| {
                    let layout = direct::PlaneLayout::phase_planes(hwo, imgs * hwo, g.phases());
                    direct_unit(taps, &weights, imgs, (planes, layout), out, epi)
                })
            });
            return Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.ho, g.wo))));
        }
        // Every unit writes all of its output: no zeroing first.
        let y = fill_parts_uninit(len, len, per * g.cout * hwo, |u, out| {
            let imgs = out.len() / (g.cout * hwo).max(1);
            let cols = imgs * hwo;
            let x_u = &xs[u * per * chw..][..imgs * chw];
            if imgs == 1 && blocked(&g) {
                return forward_blocked(&g, x_u, ws, out, epi);
            }
            let direct = col_is_input(&g, imgs);
            with_scratch(if direct { 0 } else { ckk * cols }, |buf| {
                let col: &[f32] = if direct {
                    x_u
                } else {
                    fill_col(&g, imgs, x_u, buf);
                    buf
                };
                // Y (C_out × imgs·HWo) = W (C_out × ckk) · col (ckk × imgs·HWo)
                let dims = (g.cout, cols, ckk);
                let (lhs, rhs) = (sgemm::Mat::new(ws, ckk, 1), sgemm::Mat::new(col, cols, 1));
                if imgs == 1 {
                    let out = sgemm::gemm_into(dims, out, lhs, rhs);
                    epi.apply_channels(out, hwo);
                    return out;
                }
                with_scratch(g.cout * cols, |tmp| {
                    sgemm::gemm(dims, sgemm::MatMut::new(tmp, cols, 1), false, lhs, rhs);
                    cn_to_nc(tmp, out, imgs, g.cout, hwo, epi)
                })
            })
        });
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.ho, g.wo))))
    }

    fn backward(
        &self,
        (x, w, bias): (&Tensor, &Tensor, Option<&Tensor>),
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let need_dx = x.track_op();
        let op = ConvBwd {
            stride: self.stride,
            padding: self.padding,
            need_dx,
            has_bias: bias.is_some(),
            winograd: self.winograd,
            direct: self.direct,
            // The ReLU's mask is applied as each unit reads its output
            // gradient: no separate pass and buffer over the whole output.
            relu_out: self.relu.then(|| res.clone()),
        };
        let flat = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let mut off = 0;
        let dx = if need_dx {
            off = x.elem_count();
            Some(flat.narrow(0, 0, off)?.reshape(x.shape())?)
        } else {
            None
        };
        let dw = flat.narrow(0, off, w.elem_count())?.reshape(w.shape())?;
        off += w.elem_count();
        let db = match bias {
            Some(b) => Some(flat.narrow(0, off, b.elem_count())?.reshape(b.shape())?),
            None => None,
        };
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for ConvFwd {
    fn name(&self) -> &'static str {
        if self.relu {
            "fast-conv2d-relu"
        } else {
            "fast-conv2d"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward((x, w, None), res, grad)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for ConvFwd {
    fn name(&self) -> &'static str {
        if self.relu {
            "fast-conv2d-bias-relu"
        } else {
            "fast-conv2d-bias"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward((x, w, Some(b)), res, grad)?;
        Ok((dx, Some(dw), db))
    }
}

/// All gradients of the fast convolution in one pass, from `(x, w, dY)`:
/// one flat tensor `[dx (if needed) | dw | db (if a bias)]`.
#[derive(Debug, Clone)]
struct ConvBwd {
    stride: usize,
    padding: usize,
    need_dx: bool,
    has_bias: bool,
    /// The input gradient by Winograd where it applies (see [`ConvFwd`]).
    winograd: bool,
    /// The input gradient by the direct kernel where it applies.
    direct: bool,
    /// The forward's output if it ended in a fused ReLU (its mask
    /// multiplies the incoming gradient).
    relu_out: Option<Tensor>,
}

impl CustomOp3 for ConvBwd {
    fn name(&self) -> &'static str {
        "fast-conv2d-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        const NAME: &str = "fast-conv2d-backward";
        let g = Geom::new(l1, l2, self.stride, self.padding, NAME)?;
        if l3.dims() != [g.n, g.cout, g.ho, g.wo] {
            candle_core::bail!(
                "{NAME}: output gradient {:?}, expected {:?}",
                l3.dims(),
                [g.n, g.cout, g.ho, g.wo]
            );
        }
        let xs = f32_slice(s1, l1, NAME)?;
        let ws = f32_slice(s2, l2, NAME)?;
        let dys = f32_slice(s3, l3, NAME)?;
        // The read guard keeps the ReLU output's storage borrowed.
        let relu_guard = self.relu_out.as_ref().map(Tensor::storage_and_layout);
        let relu_out = match &relu_guard {
            Some((st, l)) => {
                let Storage::Cpu(cs) = &**st else {
                    candle_core::bail!("{NAME}: the ReLU output is not on the CPU");
                };
                if l.dims() != l3.dims() {
                    candle_core::bail!(
                        "{NAME}: ReLU output {:?}, gradient {:?}",
                        l.dims(),
                        l3.dims()
                    );
                }
                Some(f32_slice(cs, l, NAME)?)
            }
            None => None,
        };
        let (ckk, hwo, chw) = (g.ckk(), g.hwo(), g.cin * g.h * g.w);
        let per = images_per_unit(&g);
        let n_units = g.n.div_ceil(per);
        let (wl, bl) = (ws.len(), if self.has_bias { g.cout } else { 0 });
        // Both gradients by Winograd: the input gradient's weights (the
        // turned kernels) once, if it is needed.
        let wino = self.winograd.then(|| g.winograd_backward()).flatten();
        // The GEMM path accumulates each thread's weight gradient
        // transposed, as `ckk × C_out`: the product then packs `dY`
        // (`C_out × cols`) rather than the patch matrix (`ckk × cols`, 9·C_in
        // rows against C_out) to feed the `gemm` crate's micro-kernel, which
        // runs along the output's columns.
        let dw_t = wino.is_none();
        // The input gradient of a stride-1 shifted-planes convolution by
        // the direct kernel: the output gradient convolved with the turned
        // kernel.
        let direct_dx = (self.direct && wino.is_none() && self.need_dx && direct::applies(&g))
            .then(|| {
                let taps = direct::Taps::of(&g, per, true);
                (taps, direct::Weights::turned(ws, g.cout, g.cin, g.k * g.k))
            });
        // The weight gradient of a narrow first layer by the direct kernel.
        let direct_dw =
            (self.direct && wino.is_none() && direct::weight_grad_applies(&g, self.need_dx))
                .then(|| direct::Taps::of(&g, per, false));
        // The input gradient of a strided shifted-planes convolution by the
        // direct kernel, one convolution of the output gradient per phase
        // plane of the input.
        let phased_dx =
            (self.direct && wino.is_none() && self.need_dx && direct::applies_strided(&g))
                .then(|| direct::Taps::input_grad_phases(&g, per));
        // Every other shifted-planes convolution's weight gradient without
        // a patch matrix, by vectors along the output channels.
        let by_channels =
            self.direct && wino.is_none() && direct_dw.is_none() && weight_grad::applies(&g);
        // The input gradient by phases runs only beside the weight gradient
        // by channels (else the patch matrix is built for the weight
        // gradient anyway, and col2im takes the input gradient).
        debug_assert!(phased_dx.is_none() || by_channels);
        let wino_dx_weights = match wino {
            Some(_) if self.need_dx => winograd::transform_weights(ws, g.cout, g.cin, true),
            _ => Vec::new(),
        };
        // Weight (and bias) gradients accumulated per pool thread over its
        // units (fixed per thread, so the sums are deterministic), added up
        // below: one partial per thread rather than per unit keeps the
        // serial sum at the end short.
        let threads = pool_threads();
        let mut partial = vec![0f32; threads * (wl + g.cout)];
        let partials = split_mut(&mut partial, wl + g.cout);
        // The unit's gradients; `dxu` is its images' input gradient.
        let unit = unit_fn(|u, dxu| {
            let imgs = per.min(g.n - u * per);
            let cols = imgs * hwo;
            let mut part = lock(&partials[pool_thread()]);
            let (dw, db) = part.split_at_mut(ws.len());
            // dY of the unit as C_out × imgs·HWo.
            let dy_u = &dys[u * per * g.cout * hwo..][..imgs * g.cout * hwo];
            let x_u = &xs[u * per * chw..][..imgs * chw];
            let relu_u = relu_out.map(|r| &r[u * per * g.cout * hwo..][..imgs * g.cout * hwo]);
            if let Some((sw, sdx)) = &wino {
                let masked = relu_u.map_or(0, |_| dy_u.len());
                return with_scratch(masked, |mbuf| {
                    let dy_u: &[f32] = match relu_u {
                        Some(r) => {
                            relu_mask(dy_u, r, mbuf);
                            mbuf
                        }
                        None => dy_u,
                    };
                    if self.has_bias {
                        for (co, b) in db.iter_mut().enumerate() {
                            *b += (0..imgs)
                                .map(|i| lanes(&dy_u[(i * g.cout + co) * hwo..][..hwo], |v| v))
                                .sum::<f64>() as f32;
                        }
                    }
                    winograd::weight_grad_unit(sw, imgs, x_u, dy_u, dw);
                    dxu.map(|dxu| {
                        let dxu = zeroed(dxu);
                        winograd::conv_unit(sdx, imgs, dy_u, &wino_dx_weights, dxu, Epilogue::NONE);
                        dxu
                    })
                });
            }
            let copy = imgs > 1 || relu_u.is_some();
            with_scratch(if copy { g.cout * cols } else { 0 }, |dybuf| {
                let dy: &[f32] = match (imgs, relu_u) {
                    (1, None) => dy_u,
                    // One image: C_out × HWo is its NCHW layout already.
                    (1, Some(r)) => {
                        relu_mask(dy_u, r, dybuf);
                        dybuf
                    }
                    (_, r) => {
                        nc_to_cn_masked(dy_u, r, dybuf, imgs, g.cout, hwo);
                        dybuf
                    }
                };
                if self.has_bias {
                    // In lanes: a plain `sum()` is one serial chain of
                    // adds (3% of a convnet-ref step).
                    for (b, row) in db.iter_mut().zip(dy.chunks(cols)) {
                        *b += lanes(row, |v| v) as f32;
                    }
                }
                if let Some(taps) = &direct_dw {
                    with_unit_planes(&g, imgs, x_u, |planes| {
                        direct::weight_grad(taps, g.cin, imgs, planes, dy, dw)
                    });
                    return None;
                }
                let dw = if by_channels {
                    with_scratch(cols * g.cout, |dy_t| {
                        transpose(dy, g.cout, cols, dy_t);
                        weight_grad::accumulate(&g, imgs, x_u, dy_t, dw);
                    });
                    None
                } else {
                    Some(dw)
                };
                // A strided convolution's input gradient by phases, its
                // weight gradient done by channels above (`weight_grad`
                // applies wherever `phased_dx` is planned): no patch
                // matrix. (`phased_dx` is only planned where the input
                // needs its gradient: `dxu` is given.)
                if let (Some(phases), None) = (&phased_dx, &dw) {
                    let dy = (dy, direct::PlaneLayout::channel_major(hwo, cols));
                    return Some(input_grad_by_phases(&g, phases, ws, imgs, dy, dxu?));
                }
                if imgs == 1 && blocked(&g) {
                    let Some((taps, turned)) = &direct_dx else {
                        return backward_blocked(&g, x_u, ws, dy, dw, dxu);
                    };
                    if dw.is_some() {
                        backward_blocked(&g, x_u, ws, dy, dw, None);
                    }
                    // dX (C_in × cols) by the direct kernel, from dY as it is.
                    let dy = (dy, direct::PlaneLayout::channel_major(hwo, cols));
                    return Some(direct_unit(taps, turned, imgs, dy, dxu?, Epilogue::NONE));
                }
                let direct = col_is_input(&g, imgs);
                // The patch matrix, for the weight gradient by GEMM, or
                // its gradient, for the input gradient by GEMM.
                let dx_by_gemm = dxu.is_some() && direct_dx.is_none();
                let patches = !direct && (dw.is_some() || dx_by_gemm);
                with_scratch(if patches { ckk * cols } else { 0 }, |buf| {
                    if let Some(dw) = dw {
                        let col: &[f32] = if direct {
                            x_u
                        } else {
                            fill_col(&g, imgs, x_u, buf);
                            buf
                        };
                        // dW (C_out × ckk) += dY (C_out × cols) · colᵀ (cols ×
                        // ckk), accumulated transposed (`ckk × C_out`, see
                        // `dw_t`).
                        sgemm::gemm(
                            (g.cout, ckk, cols),
                            sgemm::MatMut::new(dw, 1, g.cout),
                            true,
                            sgemm::Mat::new(dy, cols, 1),
                            sgemm::Mat::new(col, 1, cols),
                        );
                    }
                    let dxu = dxu?;
                    if let Some((taps, turned)) = &direct_dx {
                        let dy = (dy, direct::PlaneLayout::channel_major(hwo, cols));
                        return Some(direct_unit(taps, turned, imgs, dy, dxu, Epilogue::NONE));
                    }
                    // dcol (ckk × cols) = Wᵀ (ckk × C_out) · dY (C_out × cols),
                    // straight into the input gradient for a pointwise
                    // convolution of one image, else over the patch matrix.
                    let dims = (ckk, cols, g.cout);
                    let (lhs, rhs) = (sgemm::Mat::new(ws, 1, ckk), sgemm::Mat::new(dy, cols, 1));
                    if direct {
                        return Some(sgemm::gemm_into(dims, dxu, lhs, rhs));
                    }
                    sgemm::gemm(dims, sgemm::MatMut::new(buf, cols, 1), false, lhs, rhs);
                    Some(if g.pointwise() {
                        cn_to_nc(buf, dxu, imgs, g.cin, hwo, Epilogue::NONE)
                    } else {
                        col2im(&g, imgs, buf, dxu)
                    })
                })
            })
        });
        // `[dx | dw | db]`: the input gradient is filled by the units, with
        // room for the summed weight and bias gradients after it.
        let mut out = if self.need_dx {
            let len = xs.len();
            // Every unit writes all of its input gradient: no zeroing.
            fill_parts_uninit_static(len, len + wl + bl, per * chw, |u, dxu| {
                unit(u, Some(dxu)).expect("a unit given its input gradient returns it")
            })
        } else {
            run_units_static(n_units, |u| {
                unit(u, None);
            });
            Vec::with_capacity(wl + bl)
        };
        drop(partials);
        // Within the capacity reserved above: no reallocation.
        let x_len = out.len();
        out.resize(x_len + wl + bl, 0.0);
        // The threads' partials summed in thread order into the first,
        // then moved to the output (transposed back if accumulated so).
        let (sum, rest) = partial.split_at_mut(wl + g.cout);
        for p in rest.chunks(wl + g.cout) {
            for (o, v) in sum.iter_mut().zip(p) {
                *o += v;
            }
        }
        let (dw, db) = out[x_len..].split_at_mut(wl);
        if dw_t {
            transpose(&sum[..wl], ckk, g.cout, dw);
        } else {
            dw.copy_from_slice(&sum[..wl]);
        }
        db.copy_from_slice(&sum[wl..wl + bl]);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// `dst` (`cols × rows`) = `src` (`rows × cols`) transposed: whole
/// 16 × 16 blocks in registers on AVX-512 CPUs, the rest in square blocks
/// that keep both sides' cache lines in use (a plain loop writes `dst`
/// with a stride of a whole row per element: the weight gradient's
/// transpose at the end of each backward took about 1 ms of a detector
/// step of 31 ms so, 27 µs per call).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "transpose: lengths"
    );
    let (r16, c16) = if direct::available() {
        (rows / B * B, cols / B * B)
    } else {
        (0, 0)
    };
    #[cfg(target_arch = "x86_64")]
    for r0 in (0..r16).step_by(B) {
        for c0 in (0..c16).step_by(B) {
            // SAFETY: AVX-512F is available (above); the block's 16 rows
            // of 16 from `(r0, c0)` lie inside `src`, its 16 columns'
            // rows inside `dst` (the lengths asserted above).
            #[allow(unsafe_code)]
            unsafe {
                transpose16::block(
                    src.as_ptr().add(r0 * cols + c0),
                    cols,
                    dst.as_mut_ptr().add(c0 * rows + r0),
                    rows,
                );
            }
        }
    }
    // The rest: the columns right of the whole blocks, then the rows
    // below them.
    let scalar = |dst: &mut [f32], (ra, rb): (usize, usize), (ca, cb): (usize, usize)| {
        for r0 in (ra..rb).step_by(B) {
            for c0 in (ca..cb).step_by(B) {
                for c in c0..(c0 + B).min(cb) {
                    let d = &mut dst[c * rows..][r0..(r0 + B).min(rb)];
                    for (r, v) in (r0..).zip(d) {
                        *v = src[r * cols + c];
                    }
                }
            }
        }
    };
    scalar(dst, (0, r16), (c16, cols));
    scalar(dst, (r16, rows), (0, cols));
}

/// The 16 × 16 transpose in registers.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod transpose16 {
    use std::arch::x86_64::*;

    /// Writes the 16 × 16 block at `src` (rows `ld_src` apart) transposed
    /// to `dst` (rows `ld_dst` apart): row `i` of `dst` is column `i` of
    /// `src`. Pairs of rows interleave by 32 bits, then pairs of those by
    /// 64 bits (each 128-bit lane then holds four rows' values of one
    /// column), then the lanes of each four such vectors are transposed.
    ///
    /// # Safety
    ///
    /// AVX-512F must be available, and both blocks lie inside their
    /// buffers.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block(src: *const f32, ld_src: usize, dst: *mut f32, ld_dst: usize) {
        let mut r = [_mm512_setzero_ps(); 16];
        for (i, r) in r.iter_mut().enumerate() {
            // SAFETY: row `i` of the block (the caller's contract).
            *r = unsafe { _mm512_loadu_ps(src.add(i * ld_src)) };
        }
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // u[4g + k], lane L: column 4L + k of rows 4g..4g + 4.
        let mut u = [_mm512_setzero_ps(); 16];
        let (lo, hi) = (
            |a: __m512, b: __m512| {
                _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
            },
            |a: __m512, b: __m512| {
                _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
            },
        );
        for g in 0..4 {
            let t = &t[4 * g..4 * g + 4];
            u[4 * g] = lo(t[0], t[2]);
            u[4 * g + 1] = hi(t[0], t[2]);
            u[4 * g + 2] = lo(t[1], t[3]);
            u[4 * g + 3] = hi(t[1], t[3]);
        }
        for k in 0..4 {
            let (u0, u1, u2, u3) = (u[k], u[4 + k], u[8 + k], u[12 + k]);
            let s0 = _mm512_shuffle_f32x4::<0x88>(u0, u1);
            let s1 = _mm512_shuffle_f32x4::<0xdd>(u0, u1);
            let s2 = _mm512_shuffle_f32x4::<0x88>(u2, u3);
            let s3 = _mm512_shuffle_f32x4::<0xdd>(u2, u3);
            // Column 4L + k for lanes L = 0, 1, 2, 3.
            let cols = [
                _mm512_shuffle_f32x4::<0x88>(s0, s2),
                _mm512_shuffle_f32x4::<0x88>(s1, s3),
                _mm512_shuffle_f32x4::<0xdd>(s0, s2),
                _mm512_shuffle_f32x4::<0xdd>(s1, s3),
            ];
            for (l, c) in cols.iter().enumerate() {
                // SAFETY: row `4L + k` of the block (the caller's contract).
                unsafe { _mm512_storeu_ps(dst.add((4 * l + k) * ld_dst), *c) };
            }
        }
    }
}

/// Floating-point operations (a multiply and an add count as two) that the
/// convolutions of this crate have done in matrix products since the
/// process started, forward and backward: the work a GEMM-bound step
/// cannot avoid. Benchmarks read it around a step to report the step's
/// achieved GFLOP/s. Stock kernels and other devices do not count.
pub fn gemm_flops() -> u64 {
    sgemm::FLOPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A safe, bounds-checked wrapper of the `gemm` crate's f32 matrix product.
#[allow(unsafe_code)]
mod sgemm {
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Floating-point operations of every GEMM so far (see
    /// [`super::gemm_flops`]).
    pub(crate) static FLOPS: AtomicU64 = AtomicU64::new(0);

    /// A read-only strided matrix view: element `(i, j)` is
    /// `data[i·rs + j·cs]`.
    #[derive(Clone, Copy)]
    pub(super) struct Mat<'a> {
        data: &'a [f32],
        rs: usize,
        cs: usize,
    }

    impl<'a> Mat<'a> {
        pub(super) fn new(data: &'a [f32], rs: usize, cs: usize) -> Self {
            Mat { data, rs, cs }
        }

        /// Panics unless every element of a `rows × cols` matrix is inside
        /// the slice.
        fn check(&self, rows: usize, cols: usize) {
            if rows > 0 && cols > 0 {
                let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
                assert!(last < self.data.len(), "gemm operand out of bounds");
            }
        }
    }

    /// A mutable strided matrix view.
    pub(super) struct MatMut<'a> {
        data: &'a mut [f32],
        rs: usize,
        cs: usize,
    }

    impl<'a> MatMut<'a> {
        pub(super) fn new(data: &'a mut [f32], rs: usize, cs: usize) -> Self {
            MatMut { data, rs, cs }
        }
    }

    /// `dst = lhs · rhs` into uninitialised memory: `dst` is exactly the
    /// `m × n` product, row-major (`rs = n`, `cs = 1`), and is returned
    /// initialised.
    ///
    /// # Panics
    ///
    /// If `dst` is not `m·n` long, or as [`gemm`].
    pub(super) fn gemm_into<'a>(
        (m, n, k): (usize, usize, usize),
        dst: &'a mut [MaybeUninit<f32>],
        lhs: Mat<'_>,
        rhs: Mat<'_>,
    ) -> &'a mut [f32] {
        assert_eq!(dst.len(), m * n, "gemm_into: destination is not m·n");
        lhs.check(m, k);
        rhs.check(k, n);
        if k == 0 {
            return crate::par::zeroed(dst);
        }
        // SAFETY: as in `gemm`: every element read lies inside `lhs` and
        // `rhs` (checked), `dst` is a unique borrow of exactly the `m × n`
        // row-major product. With `read_dst` false, `gemm::gemm` sets its
        // alpha to zero and writes every destination element without
        // reading it (its first depth block stores `beta · accumulator`;
        // later blocks read what the first wrote), so `dst` is written in
        // full, never read uninitialised.
        unsafe {
            product(
                (m, n, k),
                dst.as_mut_ptr().cast::<f32>(),
                (n, 1),
                false,
                lhs,
                rhs,
            );
            // SAFETY: `gemm::gemm` wrote all `m·n` elements (above).
            &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32])
        }
    }

    /// `dst = lhs · rhs` (or `dst += lhs · rhs` with `accumulate`), for an
    /// `m × k` lhs and a `k × n` rhs.
    ///
    /// # Panics
    ///
    /// If any element of the three matrices lies outside its slice, or the
    /// destination's strides make distinct elements overlap.
    pub(super) fn gemm(
        (m, n, k): (usize, usize, usize),
        dst: MatMut<'_>,
        accumulate: bool,
        lhs: Mat<'_>,
        rhs: Mat<'_>,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        let last = (m - 1) * dst.rs + (n - 1) * dst.cs;
        assert!(last < dst.data.len(), "gemm destination out of bounds");
        // Distinct (i, j) must map to distinct elements: one stride must
        // step over the whole extent of the other.
        assert!(
            (m == 1 || n == 1 || dst.rs >= n * dst.cs || dst.cs >= m * dst.rs)
                && (m == 1 || dst.rs > 0)
                && (n == 1 || dst.cs > 0),
            "gemm destination strides overlap"
        );
        if k == 0 {
            if !accumulate {
                for i in 0..m {
                    for j in 0..n {
                        dst.data[i * dst.rs + j * dst.cs] = 0.0;
                    }
                }
            }
            return;
        }
        lhs.check(m, k);
        rhs.check(k, n);
        // SAFETY: the checks above put every element the product reads
        // (lhs `(m-1)·rs + (k-1)·cs`, rhs `(k-1)·rs + (n-1)·cs` at most) and
        // writes (dst `(m-1)·rs + (n-1)·cs` at most, all distinct) inside
        // the borrowed slices, all strides are non-negative, and `dst` is a
        // unique borrow, so it cannot alias `lhs` or `rhs` (shared borrows).
        // `gemm::gemm` reads and writes nothing else. T = f32 is one of the
        // types `gemm` supports.
        unsafe {
            product(
                (m, n, k),
                dst.data.as_mut_ptr(),
                (dst.rs, dst.cs),
                accumulate,
                lhs,
                rhs,
            );
        }
    }

    /// Counts an `m × n × k` product in [`FLOPS`] (the direct kernel's
    /// convolutions count as the product they replace).
    pub(super) fn count_flops(m: usize, n: usize, k: usize) {
        // One relaxed add per product (tens per step and thread): free
        // next to the product itself.
        FLOPS.fetch_add(2 * (m * n * k) as u64, Ordering::Relaxed);
    }

    /// The `gemm` crate's product `dst (m × n, strides rs, cs) (+)= lhs ·
    /// rhs`, counted in [`FLOPS`].
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes (and, with `accumulate`, reads) of
    /// every element of the `m × n` matrix, distinct elements at distinct
    /// places, and alias neither operand; `lhs` and `rhs` must hold their
    /// `m × k` and `k × n` elements (checked by the callers).
    unsafe fn product(
        (m, n, k): (usize, usize, usize),
        dst: *mut f32,
        (rs, cs): (usize, usize),
        accumulate: bool,
        lhs: Mat<'_>,
        rhs: Mat<'_>,
    ) {
        count_flops(m, n, k);
        let as_isize = |s: usize| isize::try_from(s).expect("stride fits isize");
        // SAFETY: the caller's contract; T = f32 is one of the types
        // `gemm` supports.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst,
                as_isize(cs),
                as_isize(rs),
                accumulate,
                lhs.data.as_ptr(),
                as_isize(lhs.cs),
                as_isize(lhs.rs),
                rhs.data.as_ptr(),
                as_isize(rhs.cs),
                as_isize(rhs.rs),
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{transpose, unit_images};

    #[test]
    fn transpose_matches_the_definition_on_blocks_and_edges() {
        // Whole 16 × 16 blocks (in registers on AVX-512 CPUs), edges of
        // both kinds, and shapes smaller than a block.
        for (rows, cols) in [
            (16, 16),
            (48, 432),
            (35, 50),
            (17, 16),
            (16, 33),
            (3, 5),
            (1, 40),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        dst[c * rows + r],
                        src[r * cols + c],
                        "{rows} × {cols} at ({r}, {c})"
                    );
                }
            }
        }
    }

    /// The images each thread gets when `units` go round-robin in chunks,
    /// as evenly as candle's pool hands them out.
    fn busiest_thread(n: usize, per: usize, threads: usize) -> usize {
        let units = n.div_ceil(per);
        let per_thread_units = units.div_ceil(threads);
        (0..threads)
            .map(|t| {
                (t * per_thread_units..((t + 1) * per_thread_units).min(units))
                    .map(|u| per.min(n - u * per))
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn few_units_are_shared_evenly_between_threads() {
        // (images, output pixels, threads, images per unit)
        for (n, hwo, threads, expected) in [
            (32, 18, 2, 8),   // not 15: units of 15, 15 and 2
            (32, 144, 2, 2),  // many units: left as they are
            (16, 144, 2, 2),  // already even
            (32, 2304, 2, 1), // large images: one each
            (128, 784, 2, 1),
            (3, 100, 2, 2), // units of 2 and 1
            (1, 9, 2, 1),
            (33, 9, 2, 17),
        ] {
            let per = unit_images(n, hwo, threads);
            assert_eq!(per, expected, "n {n}, hwo {hwo}");
            // With few units no thread does more than its share (or one
            // unit); with many, at most one unit more.
            let slack = if n.div_ceil(per) > 4 * threads {
                per
            } else {
                0
            };
            assert!(
                busiest_thread(n, per, threads) <= n.div_ceil(threads).max(per) + slack,
                "n {n}, hwo {hwo}: uneven"
            );
        }
    }
}
