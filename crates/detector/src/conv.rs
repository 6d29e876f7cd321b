//! A fast 2-D convolution for training on the CPU.
//!
//! Stock candle 0.11 runs a convolution's input gradient through a direct
//! loop (`conv_transpose2d`) and its weight gradient through a convolution
//! whose "kernel" is the whole output-gradient map; both are an order of
//! magnitude slower than a GEMM. Here the forward pass and both gradients
//! are GEMMs over the whole batch at once:
//!
//! * `col = im2col(x)` is the `(C_in·k·k) × (N·H_out·W_out)` matrix of input
//!   patches (the batch folded into the columns, so every GEMM is large);
//! * forward: `Y = W · col` (`W` is `C_out × C_in·k·k`), then `Y` is
//!   permuted to NCHW with the bias added on the way;
//! * backward, from the output gradient `dY` (permuted to `C_out × N·HW`):
//!   `dW = dY · colᵀ`, `db = rows of dY summed`,
//!   `dx = col2im(Wᵀ · dY)`.
//!
//! The forward is a candle custom op ([`CustomOp2`], or [`CustomOp3`] with a
//! bias) whose backward is one more custom op computing all gradients in one
//! pass. Only f32 tensors on the CPU take this path; any other device or
//! dtype uses candle's own `conv2d` (so CUDA runs are unchanged).
//!
//! The implementation is chosen by [`ConvImpl`]: the environment variable
//! `ISDET_CONV` (`stock` or `fast`, default `fast`) sets the default, and
//! [`set_default_conv_impl`] overrides it inside a process (benchmarks and
//! tests compare both paths in one run).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Which convolution implementation [`conv2d`] (and every convolution of
/// the models) uses on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvImpl {
    /// candle's own `conv2d` and its built-in backward.
    Stock,
    /// The im2col + GEMM custom op of this module (f32 on the CPU only;
    /// other devices and dtypes fall back to [`ConvImpl::Stock`]).
    Fast,
}

impl ConvImpl {
    /// Parses `stock` or `fast` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stock" => Some(ConvImpl::Stock),
            "fast" => Some(ConvImpl::Fast),
            _ => None,
        }
    }

    /// The lower-case name (`stock` or `fast`).
    pub fn name(self) -> &'static str {
        match self {
            ConvImpl::Stock => "stock",
            ConvImpl::Fast => "fast",
        }
    }
}

/// 0: no override; 1: stock; 2: fast.
static OVERRIDE: AtomicU8 = AtomicU8::new(0);
static FROM_ENV: OnceLock<ConvImpl> = OnceLock::new();

/// The implementation the models' convolutions use: the value set by
/// [`set_default_conv_impl`] if any, else `ISDET_CONV` (`stock` or `fast`,
/// read once), else [`ConvImpl::Fast`]. An unrecognised `ISDET_CONV` value
/// is reported once on stderr and ignored.
pub fn default_conv_impl() -> ConvImpl {
    match OVERRIDE.load(Ordering::Relaxed) {
        1 => ConvImpl::Stock,
        2 => ConvImpl::Fast,
        _ => *FROM_ENV.get_or_init(|| match std::env::var("ISDET_CONV") {
            Ok(v) => ConvImpl::parse(&v).unwrap_or_else(|| {
                eprintln!("ISDET_CONV={v:?} is neither `stock` nor `fast`; using `fast`");
                ConvImpl::Fast
            }),
            Err(_) => ConvImpl::Fast,
        }),
    }
}

/// Overrides the process-wide default (`None` goes back to `ISDET_CONV`).
pub fn set_default_conv_impl(imp: Option<ConvImpl>) {
    let v = match imp {
        None => 0,
        Some(ConvImpl::Stock) => 1,
        Some(ConvImpl::Fast) => 2,
    };
    OVERRIDE.store(v, Ordering::Relaxed);
}

/// A 2-D convolution of an NCHW input `x` with an OIHW square kernel `w`,
/// plus an optional per-output-channel `bias`, with the same stride and
/// zero padding on both axes (no dilation, one group).
///
/// [`ConvImpl::Fast`] takes the GEMM path for f32 tensors on the CPU and
/// falls back to candle's own convolution elsewhere.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    imp: ConvImpl,
) -> candle_core::Result<Tensor> {
    let fast = imp == ConvImpl::Fast
        && x.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && bias.is_none_or(|b| b.dtype() == DType::F32);
    if !fast {
        let y = x.conv2d(w, padding, stride, 1, 1)?;
        return match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        };
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
    let op = ConvFwd { stride, padding };
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

    /// Columns of the patch matrix (the whole batch).
    fn cols(&self) -> usize {
        self.n * self.hwo()
    }

    /// A 1×1 stride-1 unpadded convolution: the patch matrix of one image
    /// is the image itself.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

/// Rayon tasks get at least this many floats of work each.
const GRAIN: usize = 8192;

fn min_len(chunk: usize) -> usize {
    (GRAIN / chunk.max(1)).max(1)
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, name: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{name}: only f32 is supported");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{name}: expects contiguous inputs"),
    }
}

/// The patch matrix: `col[(c·k + ky)·k + kx][img·HWo + oy·Wo + ox] =
/// x[img][c][oy·s + ky − p][ox·s + kx − p]` (zero outside the image).
fn im2col(g: &Geom, x: &[f32], col: &mut [f32]) {
    let (hw, hwo, cols) = (g.h * g.w, g.hwo(), g.cols());
    col.par_chunks_mut(cols)
        .with_min_len(min_len(cols))
        .enumerate()
        .for_each(|(r, row)| {
            let (c, ky, kx) = (r / (g.k * g.k), (r / g.k) % g.k, r % g.k);
            for img in 0..g.n {
                let src = &x[(img * g.cin + c) * hw..][..hw];
                let dst = &mut row[img * hwo..][..hwo];
                patch_row(g, src, dst, ky, kx);
            }
        });
}

/// The valid output columns `[lo, hi)` of kernel column `kx` for stride 1
/// (input column `ox + kx − p`).
fn valid_cols(g: &Geom, kx: usize) -> (usize, usize) {
    let lo = g.pad.saturating_sub(kx).min(g.wo);
    let hi = (g.w + g.pad).saturating_sub(kx).min(g.wo).max(lo);
    (lo, hi)
}

/// The input row of output row `oy` and kernel row `ky`, if inside.
fn input_row(g: &Geom, oy: usize, ky: usize) -> Option<usize> {
    (oy * g.stride + ky)
        .checked_sub(g.pad)
        .filter(|&iy| iy < g.h)
}

fn patch_row(g: &Geom, src: &[f32], dst: &mut [f32], ky: usize, kx: usize) {
    for oy in 0..g.ho {
        let d = &mut dst[oy * g.wo..][..g.wo];
        let Some(iy) = input_row(g, oy, ky) else {
            d.fill(0.0);
            continue;
        };
        let srow = &src[iy * g.w..][..g.w];
        if g.stride == 1 {
            let (lo, hi) = valid_cols(g, kx);
            d[..lo].fill(0.0);
            d[hi..].fill(0.0);
            if hi > lo {
                let s0 = lo + kx - g.pad;
                d[lo..hi].copy_from_slice(&srow[s0..s0 + (hi - lo)]);
            }
        } else {
            for (ox, v) in d.iter_mut().enumerate() {
                *v = (ox * g.stride + kx)
                    .checked_sub(g.pad)
                    .and_then(|ix| srow.get(ix))
                    .copied()
                    .unwrap_or(0.0);
            }
        }
    }
}

/// The adjoint of [`im2col`]: sums the patch-matrix gradient back into the
/// NCHW input gradient `dx` (overwritten).
fn col2im(g: &Geom, dcol: &[f32], dx: &mut [f32]) {
    let (hw, hwo, cols) = (g.h * g.w, g.hwo(), g.cols());
    dx.par_chunks_mut(hw)
        .with_min_len(min_len(hw * g.k * g.k))
        .enumerate()
        .for_each(|(i, plane)| {
            let (img, c) = (i / g.cin, i % g.cin);
            plane.fill(0.0);
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let r = (c * g.k + ky) * g.k + kx;
                    let src = &dcol[r * cols + img * hwo..][..hwo];
                    for oy in 0..g.ho {
                        let Some(iy) = input_row(g, oy, ky) else {
                            continue;
                        };
                        let s = &src[oy * g.wo..][..g.wo];
                        let prow = &mut plane[iy * g.w..][..g.w];
                        if g.stride == 1 {
                            let (lo, hi) = valid_cols(g, kx);
                            if hi > lo {
                                let p0 = lo + kx - g.pad;
                                for (p, v) in prow[p0..p0 + (hi - lo)].iter_mut().zip(&s[lo..hi]) {
                                    *p += v;
                                }
                            }
                        } else {
                            for (ox, v) in s.iter().enumerate() {
                                if let Some(p) = (ox * g.stride + kx)
                                    .checked_sub(g.pad)
                                    .and_then(|ix| prow.get_mut(ix))
                                {
                                    *p += v;
                                }
                            }
                        }
                    }
                }
            }
        });
}

/// `(C, N, HW)` → `(N, C, HW)`, adding `bias[c]` if given.
fn cn_to_nc(src: &[f32], dst: &mut [f32], n: usize, c: usize, hw: usize, bias: Option<&[f32]>) {
    dst.par_chunks_mut(hw)
        .with_min_len(min_len(hw))
        .enumerate()
        .for_each(|(i, d)| {
            let (img, ch) = (i / c, i % c);
            let s = &src[(ch * n + img) * hw..][..hw];
            match bias {
                Some(b) => {
                    for (d, s) in d.iter_mut().zip(s) {
                        *d = s + b[ch];
                    }
                }
                None => d.copy_from_slice(s),
            }
        });
}

/// `(N, C, HW)` → `(C, N, HW)`.
fn nc_to_cn(src: &[f32], dst: &mut [f32], n: usize, c: usize, hw: usize) {
    dst.par_chunks_mut(hw)
        .with_min_len(min_len(hw))
        .enumerate()
        .for_each(|(i, d)| {
            let (ch, img) = (i / n, i % n);
            d.copy_from_slice(&src[(img * c + ch) * hw..][..hw]);
        });
}

/// Forward of the fast convolution (`(x, w)` or `(x, w, bias)`).
#[derive(Debug, Clone, Copy)]
struct ConvFwd {
    stride: usize,
    padding: usize,
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
        let xs = contiguous(x.0, x.1, NAME)?;
        let ws = contiguous(w.0, w.1, NAME)?;
        let bs = match bias {
            Some((s, l)) => Some(contiguous(s, l, NAME)?),
            None => None,
        };
        let (ckk, cols, hwo) = (g.ckk(), g.cols(), g.hwo());
        // The patch matrix (the input itself for a pointwise conv of one image).
        let owned_col;
        let col: &[f32] = if g.pointwise() && g.n == 1 {
            xs
        } else if g.pointwise() {
            let mut c = vec![0f32; ckk * cols];
            nc_to_cn(xs, &mut c, g.n, g.cin, hwo);
            owned_col = c;
            &owned_col
        } else {
            let mut c = vec![0f32; ckk * cols];
            im2col(&g, xs, &mut c);
            owned_col = c;
            &owned_col
        };
        let mut y = vec![0f32; g.cout * cols];
        let mut tmp = if g.n == 1 {
            Vec::new()
        } else {
            vec![0f32; g.cout * cols]
        };
        let dst = if g.n == 1 { &mut y } else { &mut tmp };
        // Y (C_out × N·HWo) = W (C_out × ckk) · col (ckk × N·HWo)
        sgemm::gemm(
            (g.cout, cols, ckk),
            sgemm::MatMut::new(dst, cols, 1),
            false,
            sgemm::Mat::new(ws, ckk, 1),
            sgemm::Mat::new(col, cols, 1),
        );
        if g.n == 1 {
            if let Some(b) = bs {
                for (row, bv) in y.chunks_mut(hwo).zip(b) {
                    row.iter_mut().for_each(|v| *v += bv);
                }
            }
        } else {
            cn_to_nc(&tmp, &mut y, g.n, g.cout, hwo, bs);
        }
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.ho, g.wo))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        let need_dx = x.track_op();
        let op = ConvBwd {
            stride: self.stride,
            padding: self.padding,
            need_dx,
            has_bias: bias.is_some(),
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
        "fast-conv2d"
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
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, None, grad)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for ConvFwd {
    fn name(&self) -> &'static str {
        "fast-conv2d-bias"
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
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(x, w, Some(b), grad)?;
        Ok((dx, Some(dw), db))
    }
}

/// All gradients of the fast convolution in one pass, from `(x, w, dY)`:
/// one flat tensor `[dx (if needed) | dw | db (if a bias)]`.
#[derive(Debug, Clone, Copy)]
struct ConvBwd {
    stride: usize,
    padding: usize,
    need_dx: bool,
    has_bias: bool,
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
        let xs = contiguous(s1, l1, NAME)?;
        let ws = contiguous(s2, l2, NAME)?;
        let dys = contiguous(s3, l3, NAME)?;
        let (ckk, cols, hwo) = (g.ckk(), g.cols(), g.hwo());
        let x_len = if self.need_dx { xs.len() } else { 0 };
        let b_len = if self.has_bias { g.cout } else { 0 };
        let mut out = vec![0f32; x_len + ws.len() + b_len];
        let (dx, rest) = out.split_at_mut(x_len);
        let (dw, db) = rest.split_at_mut(ws.len());

        // dY as C_out × N·HWo.
        let owned_dy;
        let dy: &[f32] = if g.n == 1 {
            dys
        } else {
            let mut t = vec![0f32; g.cout * cols];
            nc_to_cn(dys, &mut t, g.n, g.cout, hwo);
            owned_dy = t;
            &owned_dy
        };
        if self.has_bias {
            db.par_iter_mut()
                .zip(dy.par_chunks(cols))
                .for_each(|(b, row)| *b = row.iter().sum());
        }

        // The patch matrix, whose buffer is reused for its gradient.
        let mut col = if g.pointwise() && g.n == 1 {
            Vec::new()
        } else {
            vec![0f32; ckk * cols]
        };
        if g.pointwise() && g.n > 1 {
            nc_to_cn(xs, &mut col, g.n, g.cin, hwo);
        } else if !g.pointwise() {
            im2col(&g, xs, &mut col);
        }
        let col_ref: &[f32] = if g.pointwise() && g.n == 1 { xs } else { &col };
        // dW (C_out × ckk) = dY (C_out × N·HWo) · colᵀ (N·HWo × ckk)
        sgemm::gemm(
            (g.cout, ckk, cols),
            sgemm::MatMut::new(dw, ckk, 1),
            false,
            sgemm::Mat::new(dy, cols, 1),
            sgemm::Mat::new(col_ref, 1, cols),
        );

        if self.need_dx {
            // dcol (ckk × N·HWo) = Wᵀ (ckk × C_out) · dY (C_out × N·HWo)
            let wt = sgemm::Mat::new(ws, 1, ckk);
            let dyr = sgemm::Mat::new(dy, cols, 1);
            if g.pointwise() && g.n == 1 {
                sgemm::gemm(
                    (ckk, cols, g.cout),
                    sgemm::MatMut::new(dx, cols, 1),
                    false,
                    wt,
                    dyr,
                );
            } else {
                sgemm::gemm(
                    (ckk, cols, g.cout),
                    sgemm::MatMut::new(&mut col, cols, 1),
                    false,
                    wt,
                    dyr,
                );
                if g.pointwise() {
                    cn_to_nc(&col, dx, g.n, g.cin, hwo, None);
                } else {
                    col2im(&g, &col, dx);
                }
            }
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// A safe, bounds-checked wrapper of the `gemm` crate's f32 matrix product.
#[allow(unsafe_code)]
mod sgemm {
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

    fn parallelism() -> gemm::Parallelism {
        match candle_core::utils::get_num_threads() {
            0 | 1 => gemm::Parallelism::None,
            n => gemm::Parallelism::Rayon(n),
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
        let as_isize = |s: usize| isize::try_from(s).expect("stride fits isize");
        // SAFETY: the checks above put every element the product reads
        // (lhs `(m-1)·rs + (k-1)·cs`, rhs `(k-1)·rs + (n-1)·cs` at most) and
        // writes (dst `(m-1)·rs + (n-1)·cs` at most, all distinct) inside
        // the borrowed slices, all strides are non-negative, and `dst` is a
        // unique borrow, so it cannot alias `lhs` or `rhs` (shared borrows).
        // `gemm::gemm` reads and writes nothing else. T = f32 is one of the
        // types `gemm` supports.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.data.as_mut_ptr(),
                as_isize(dst.cs),
                as_isize(dst.rs),
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
                parallelism(),
            );
        }
    }
}
