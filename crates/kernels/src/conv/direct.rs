//! Direct convolution of convolutions by shifted planes (stride-1 "same"
//! ones, and strided ones whose input is `s` times their output with a
//! kernel of at least `s`), without a patch matrix.
//!
//! Output pixel `q` of channel `o` is `Σ_{c, t} w[o][c][t] · x[c][q +
//! shift_t]` over the input channels `c` and kernel taps `t`, the term
//! left out where the shifted pixel falls outside the image (the
//! padding). This module computes that sum straight from the input planes:
//! an AVX-512 micro-kernel holds a tile of 4 output channels × 6 vectors
//! of 16 output pixels in registers and, for each tap and input channel,
//! loads the tile's 6 shifted input vectors with a per-lane mask (lanes
//! whose shifted pixel is outside the image, or past the unit's end, load
//! zero) and adds their products with 4 broadcast weights.
//!
//! The im2col route copies every input pixel `k²` times into a patch
//! matrix (zeroing the padding's wrapped columns), the `gemm` crate then
//! packs it again, and the input gradient goes back through a patch matrix
//! and col2im; here the masks stand for the padding and each input vector
//! is read where it lies. The same kernel computes the input gradient: it
//! is the convolution of the output gradient with the kernel turned by
//! 180° and its channels swapped ([`Weights::turned`], [`Taps::turned`]).
//!
//! A strided convolution's taps read the input's `s²` phase planes
//! (pixels `(s·i + ry, s·j + rx)`, [`PlaneLayout::phase_planes`]), on which
//! each tap is a shift as at stride 1. Its input gradient is one stride-1
//! convolution of the output gradient per phase plane, with that phase's
//! taps only ([`Taps::input_grad_phases`], [`Weights::phase`]); the
//! phases are then interleaved into the input gradient.
//!
//! The weight gradient of the same convolutions has its own kernel, with
//! vectors along the output channels (`conv/weight_grad.rs`); that of
//! first layers (few input planes, no input gradient,
//! [`weight_grad_applies`]) is summed here, the patch-matrix rows against
//! the output gradient in vectors along the pixels ([`weight_grad`]).
//!
//! At stride 1 the kernel reads its input and writes its output in place,
//! in the tensors' NCHW layout, wherever every vector of 16 pixels lies
//! within one image (one image a unit, or images of a multiple of 16
//! pixels); units of several smaller images lay their planes out
//! channel-major (`[channel][image][pixel]`), so that a vector may span
//! images (the masks keep every lane inside its own image). A strided
//! convolution's input is always copied into phase planes, and its input
//! gradient's phases are written channel-major and then interleaved.
//! [`PlaneLayout`] says which layout a call uses.
//!
//! Only x86-64 CPUs with AVX-512F run this path ([`available`]); others
//! keep the im2col route ([`Kernels::Gemm`](crate::Kernels::Gemm) forces
//! it everywhere).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::Arc;

use super::Geom;

/// Output channels per micro-kernel tile.
const RO: usize = 4;
/// Vectors of 16 output pixels per micro-kernel tile.
const RP: usize = 6;
/// Lanes per vector.
pub(super) const LANES: usize = 16;
/// Patch-matrix rows per weight-gradient tile ([`weight_grad`]): 4 × 3
/// accumulators. Six rows (24 accumulators, the forward's shape) left too
/// few general registers for the rows' offsets and masks, which were
/// reloaded every vector: the tile took 7.4–7.9% of convnet-ref's samples
/// at 32 × 64 against 5.2–6.2% with three rows (each accumulator sums its
/// vectors in the same order either way: the same bits).
const WEIGHT_ROWS: usize = 3;

/// Whether this CPU runs the direct kernel (AVX-512F, checked once).
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| std::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Input channels below which the direct kernel loses to the im2col
/// route: with fewer, each tap's inner loop is too short to carry the
/// tap's masks and addresses (convnet-ref's first layer, 3 channels at
/// 64 × 64, took 1.75 ms per forward against 1.03 ms by im2col).
const MIN_CHANNELS: usize = 16;

/// Whether the direct kernel runs this convolution: a stride-1 "same"
/// one ([`Geom::shifted_planes`]) with at least [`MIN_CHANNELS`] input
/// channels, on a CPU with AVX-512F.
pub(super) fn applies(g: &Geom) -> bool {
    g.stride == 1 && g.shifted_planes() && g.cin >= MIN_CHANNELS && available()
}

/// Whether the direct kernels compute this convolution's gradients: the
/// input gradient phase by phase ([`Taps::input_grad_phases`]) and the
/// weight gradient by output channels (`conv/weight_grad.rs`). A strided
/// shifted-planes convolution (stride `s > 1`, input `s` times the
/// output, `k ≥ s`: [`Geom::shifted_planes`]) with at least
/// [`MIN_CHANNELS`] output channels (the input channels of the
/// convolutions that compute the input gradient) and input channels (the
/// weight gradient's tiles on fewer wait on each other: the 3-channel
/// stem in `weight_grad::applies`), on a CPU with AVX-512F.
pub(super) fn applies_strided(g: &Geom) -> bool {
    applies_strided_forward(g) && g.cout >= MIN_CHANNELS
}

/// Whether the direct kernel runs the forward of this strided
/// convolution from its phase planes ([`PlaneLayout::phase_planes`]): a
/// strided shifted-planes convolution with at least [`MIN_CHANNELS`]
/// input channels, on a CPU with AVX-512F.
pub(super) fn applies_strided_forward(g: &Geom) -> bool {
    g.stride > 1 && g.shifted_planes() && g.cin >= MIN_CHANNELS && available()
}

/// Whether the direct kernel computes this convolution's weight gradient:
/// a shifted-planes one ([`Geom::shifted_planes`], any stride) too narrow
/// for the forward kernel (fewer than [`MIN_CHANNELS`] input planes, as a
/// network's first layer on its 3-channel images) whose input needs no
/// gradient, on a CPU with AVX-512F. Its patch matrix has few rows
/// (`C_in · k²`) and many columns, a shape the `gemm` crate packs at a
/// large cost for little work; the kernel instead sums each row's products
/// in vectors along the pixels and adds them up once per unit.
pub(super) fn weight_grad_applies(g: &Geom, need_dx: bool) -> bool {
    !need_dx && g.shifted_planes() && g.cin * g.phases() < MIN_CHANNELS && available()
}

/// The taps of a convolution by shifted planes ([`Geom::shifted_planes`]):
/// for each, the phase plane it reads (within a channel's `s²`; the one
/// plane at stride 1) and its shift `(dy, dx)` on the `H_out × W_out`
/// planes.
#[derive(Debug, Clone)]
pub(super) struct Taps {
    taps: Vec<(usize, isize, isize)>,
    phases: usize,
    ho: usize,
    wo: usize,
    /// Units of up to this many images take their masks from `masks`.
    imgs: usize,
    /// For each vector of 16 of `imgs` images' output pixels and each tap,
    /// the lanes whose shifted pixel lies inside its image:
    /// `masks[v · taps + t]`. Fewer images use a prefix (the layout
    /// repeats per image); the kernels clear the lanes past a unit's end.
    masks: Vec<u16>,
    /// For the taps of one phase's input gradient
    /// ([`Taps::input_grad_phases`]): each tap's index among the
    /// convolution's `k²` (its weights' place); empty otherwise.
    picked: Vec<usize>,
}

/// The taps of `g` for units of up to `imgs` images, of the kind `what`
/// (0 the forward's, 1 the input gradient's at stride 1, `2 + p` phase
/// `p`'s input gradient), made by `make` the first time: a step meets the
/// same few shapes again and again, and the masks cost a pass over the
/// pixels per tap.
fn kept(g: &Geom, imgs: usize, what: usize, make: impl FnOnce() -> Taps) -> Arc<Taps> {
    type Key = (usize, usize, usize, usize, usize, usize, usize);
    thread_local! {
        static KEPT: RefCell<Vec<(Key, Arc<Taps>)>> = const { RefCell::new(Vec::new()) };
    }
    let key = (g.k, g.stride, g.pad, g.ho, g.wo, imgs, what);
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some((_, taps)) = kept.iter().find(|(k, _)| *k == key) {
            return Arc::clone(taps);
        }
        let taps = Arc::new(make());
        if kept.len() >= 64 {
            kept.clear();
        }
        kept.push((key, Arc::clone(&taps)));
        taps
    })
}

impl Taps {
    /// The taps of the forward of `g` (a [`Geom::shifted_planes`]
    /// convolution), for units of up to `imgs` images, or with `turned`
    /// those of its input gradient ([`Taps::turned`]). Kept per thread
    /// for the shapes seen last: a step meets the same few shapes again
    /// and again, and the masks cost a pass over the pixels per tap.
    pub(super) fn of(g: &Geom, imgs: usize, turned: bool) -> Arc<Self> {
        kept(g, imgs, usize::from(turned), || {
            let taps = Self::with_masks(g.tap_shifts(), g.phases(), (g.ho, g.wo), imgs);
            if turned { taps.turned() } else { taps }
        })
    }

    /// The taps of the convolutions that compute the input gradient of a
    /// strided `g` ([`applies_strided`]) from its output gradient, one per
    /// phase plane of the input (kept per thread, as [`Taps::of`]): input
    /// pixel `(s·i + ry, s·j + rx)` received, in the forward, the taps of
    /// phase `(ry, rx)` ([`Geom::tap_shifts`]), tap `t` from output pixel
    /// `(i − dy_t, j − dx_t)`. Its gradient is therefore a stride-1
    /// convolution of the output gradient, on the `H_out × W_out` grid,
    /// with the phase's taps shifted by `(−dy_t, −dx_t)` and their weights'
    /// channels swapped ([`Weights::phase`]).
    pub(super) fn input_grad_phases(g: &Geom, imgs: usize) -> Vec<Arc<Self>> {
        let shifts = g.tap_shifts();
        (0..g.phases())
            .map(|phase| {
                kept(g, imgs, 2 + phase, || {
                    let picked: Vec<usize> = (0..shifts.len())
                        .filter(|&t| shifts[t].0 == phase)
                        .collect();
                    let taps = picked.iter().map(|&t| (0, -shifts[t].1, -shifts[t].2));
                    let mut taps = Self::with_masks(taps.collect(), 1, (g.ho, g.wo), imgs);
                    taps.picked = picked;
                    taps
                })
            })
            .collect()
    }

    fn with_masks(
        taps: Vec<(usize, isize, isize)>,
        phases: usize,
        (ho, wo): (usize, usize),
        imgs: usize,
    ) -> Self {
        let (hw, kk) = (ho * wo, taps.len());
        let mut masks = vec![0u16; (imgs * hw).div_ceil(LANES) * kk];
        for (t, &(_, dy, dx)) in taps.iter().enumerate() {
            let ((ylo, yhi), (xlo, xhi)) = (window(ho, dy), window(wo, dx));
            for img in 0..imgs {
                for y in ylo..yhi {
                    let row = img * hw + y * wo;
                    for q in row + xlo..row + xhi {
                        masks[(q / LANES) * kk + t] |= 1 << (q % LANES);
                    }
                }
            }
        }
        Taps {
            taps,
            phases,
            ho,
            wo,
            imgs,
            masks,
            picked: Vec::new(),
        }
    }

    /// Output pixels per image.
    pub(super) fn pixels(&self) -> usize {
        self.ho * self.wo
    }

    /// The masks of a unit of `imgs` images, and its output pixels.
    fn unit_masks(&self, imgs: usize) -> (&[u16], usize) {
        assert!(imgs <= self.imgs, "direct conv: a unit larger than planned");
        let len = imgs * self.pixels();
        (&self.masks[..len.div_ceil(LANES) * self.taps.len()], len)
    }

    /// Each tap's offset from an output pixel to the pixel it reads, within
    /// one channel's planes of `len` pixels each.
    fn offsets(&self, len: usize) -> Vec<isize> {
        self.taps
            .iter()
            .map(|&(phase, dy, dx)| (phase * len) as isize + dy * self.wo as isize + dx)
            .collect()
    }

    /// The taps of the convolution that computes this one's input gradient
    /// from its output gradient (stride 1 only): tap `t` turned by 180°.
    fn turned(&self) -> Self {
        debug_assert_eq!(self.phases, 1, "only stride-1 convolutions turn");
        let taps = self.taps.iter().rev().map(|&(p, dy, dx)| (p, -dy, -dx));
        Self::with_masks(taps.collect(), self.phases, (self.ho, self.wo), self.imgs)
    }
}

/// A convolution's weights as the micro-kernel reads them, in place:
/// weight `(o, c, t)` (output channel, input channel, tap) at
/// `w[o·rs + c·cs + t·ts + at]`. A tile's weights for one tap and input
/// channel are then a few broadcasts from as many rows of `w`, all within
/// the few KiB of its output channels' kernels that stay in the core's
/// L1 (packing them per call cost more than it saved: about 17 µs per
/// detector layer).
#[derive(Debug, Clone, Copy)]
pub(super) struct Weights<'a> {
    w: &'a [f32],
    cout: usize,
    cin: usize,
    taps: usize,
    rs: isize,
    cs: isize,
    ts: isize,
    at: isize,
    /// Tap `t`'s index in the kernel (`t` itself where empty).
    picked: &'a [usize],
}

impl<'a> Weights<'a> {
    /// `w` (`C_out × C_in × k × k`) for the forward.
    pub(super) fn forward(w: &'a [f32], cout: usize, cin: usize, taps: usize) -> Self {
        assert_eq!(w.len(), cout * cin * taps, "direct conv: weights");
        Weights {
            w,
            cout,
            cin,
            taps,
            rs: (cin * taps) as isize,
            cs: taps as isize,
            ts: 1,
            at: 0,
            picked: &[],
        }
    }

    /// `w` for the input gradient of a stride-1 convolution: output channel
    /// `c`, input channel `o`, tap `t` is `w[o][c][taps − 1 − t]` (the
    /// kernel turned by 180°, its channels swapped).
    pub(super) fn turned(w: &'a [f32], cout: usize, cin: usize, taps: usize) -> Self {
        assert_eq!(w.len(), cout * cin * taps, "direct conv: weights");
        Weights {
            w,
            cout: cin,
            cin: cout,
            taps,
            rs: taps as isize,
            cs: (cin * taps) as isize,
            ts: -1,
            at: taps as isize - 1,
            picked: &[],
        }
    }

    /// `w` (`C_out × C_in × k²`) for one phase's input gradient of a
    /// strided convolution ([`Taps::input_grad_phases`], whose taps
    /// `phase` holds): output channel `c`, input channel `o`, tap `j` is
    /// `w[o][c][picked_j]`.
    pub(super) fn phase(w: &'a [f32], cout: usize, cin: usize, phase: &'a Taps) -> Self {
        let kk = w.len() / (cout * cin).max(1);
        assert_eq!(w.len(), cout * cin * kk, "direct conv: weights");
        assert!(
            phase.picked.len() == phase.taps.len() && phase.picked.iter().all(|&t| t < kk),
            "direct conv: a phase's taps"
        );
        Weights {
            w,
            cout: cin,
            cin: cout,
            taps: phase.taps.len(),
            rs: kk as isize,
            cs: (cin * kk) as isize,
            ts: 1,
            at: 0,
            picked: &phase.picked,
        }
    }

    /// Tap `t`'s offset from the tile's first weight.
    fn tap_offset(&self, t: usize) -> isize {
        let t = self.picked.get(t).copied().unwrap_or(t);
        t as isize * self.ts
    }

    /// Output channels.
    pub(super) fn outputs(&self) -> usize {
        self.cout
    }
}

/// Where a unit's values lie in a buffer of planes: value `(image i,
/// channel c, pixel p)` at `i·image + c·channel + p`. Channel-major planes
/// (`[channel][image][pixel]`, [`PlaneLayout::channel_major`]) let a vector
/// span images; NCHW ([`PlaneLayout::nchw`]) is the tensors' own layout,
/// read and written in place when every vector lies within one image
/// ([`PlaneLayout::fits`]), so that no permutation is needed around the
/// kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlaneLayout {
    image: usize,
    channel: usize,
}

impl PlaneLayout {
    /// Channel-major planes of `len` unit pixels per channel, images of
    /// `hw` pixels.
    pub(super) fn channel_major(hw: usize, len: usize) -> Self {
        PlaneLayout {
            image: hw,
            channel: len,
        }
    }

    /// NCHW: `channels` planes of `hw` pixels per image.
    pub(super) fn nchw(channels: usize, hw: usize) -> Self {
        PlaneLayout {
            image: channels * hw,
            channel: hw,
        }
    }

    /// The `s²` phase planes of each channel ([`Geom::shifted_planes`] at
    /// stride `s`), channel-major: `[channel][phase][image][pixel]` with
    /// `len` unit pixels per plane, images of `hw` pixels (one image a
    /// unit is [`split_phases`](super::split_phases)'s layout).
    pub(super) fn phase_planes(hw: usize, len: usize, phases: usize) -> Self {
        PlaneLayout {
            image: hw,
            channel: phases * len,
        }
    }

    /// Whether the kernel can use NCHW planes of `hw`-pixel images in units
    /// of `imgs`: every vector of 16 pixels within one image (or one image
    /// a unit, where NCHW is channel-major).
    pub(super) fn fits(hw: usize, imgs: usize) -> bool {
        imgs == 1 || hw.is_multiple_of(LANES)
    }

    /// Whether a vector may span images here: channel-major, each
    /// channel's images one after the other (`image` = the pixels of one).
    fn spans_images(&self, hw: usize) -> bool {
        self.image == hw
    }

    /// The offset of unit pixel `q` (image `q / hw`) in channel 0.
    fn at(&self, hw: usize, q: usize) -> isize {
        ((q / hw) * self.image + q % hw) as isize
    }
}

/// The convolution of one unit of `imgs` images: `planes` holds the
/// `C_in · s²` planes of its input (`imgs · H_out · W_out` pixels each,
/// laid out as `input` says), `out` receives its `C_out` output planes
/// (laid out as `output` says, every element written) with the epilogue
/// applied (`relu?(sum + bias[o])`), and is returned initialised.
///
/// # Panics
///
/// If the buffers do not have those lengths, a layout other than
/// channel-major has vectors that span images ([`PlaneLayout::fits`]),
/// strided taps (several phases) read a layout other than
/// [`PlaneLayout::phase_planes`], or the CPU lacks AVX-512F
/// ([`available`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv<'o>(
    taps: &Taps,
    w: &Weights,
    imgs: usize,
    (planes, input): (&[f32], PlaneLayout),
    (out, output): (&'o mut [MaybeUninit<f32>], PlaneLayout),
    bias: Option<&[f32]>,
    relu: bool,
) -> &'o mut [f32] {
    let (masks, len) = taps.unit_masks(imgs);
    let hw = taps.pixels();
    assert_eq!(w.taps, taps.taps.len(), "direct conv: taps");
    assert_eq!(
        planes.len(),
        w.cin * taps.phases * len,
        "direct conv: planes"
    );
    assert_eq!(out.len(), w.cout * len, "direct conv: output");
    // Several phases a channel: only in phase planes.
    assert!(
        taps.phases == 1 || input == PlaneLayout::phase_planes(hw, len, taps.phases),
        "direct conv: phases outside phase planes"
    );
    for l in [input, output] {
        assert!(
            l.spans_images(hw) || PlaneLayout::fits(hw, imgs),
            "direct conv: vectors span images"
        );
    }
    assert!(bias.is_none_or(|b| b.len() == w.cout), "direct conv: bias");
    assert!(available(), "direct conv: no AVX-512F");
    let offsets = taps.offsets(len);
    let vectors = len.div_ceil(LANES);
    let tile = Tile {
        planes,
        input,
        offsets: &offsets,
        masks,
        cin: w.cin,
        len,
        hw,
        output,
        bias,
        relu,
    };
    let out_ptr = out.as_mut_ptr().cast::<f32>();
    for v0 in (0..vectors).step_by(RP) {
        let rp = RP.min(vectors - v0);
        for o0 in (0..w.cout).step_by(RO) {
            let ro = RO.min(w.cout - o0);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available` checked AVX-512F; the tile reads and
            // writes within its buffers (see `avx512::tile`).
            #[allow(unsafe_code)]
            unsafe {
                avx512::dispatch(&tile, v0, ro, rp, w, o0, out_ptr);
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (&tile, v0, ro, rp, w, out_ptr);
        }
    }
    super::sgemm::count_flops(w.cout, len, w.cin * w.taps);
    // SAFETY: the tiles cover every vector of every block of output
    // channels, and each stores every lane below `len` of its channels:
    // all `C_out · len` values, each at its own place of `out` (a layout
    // maps (image, channel, pixel) one to one onto the buffer).
    #[allow(unsafe_code)]
    unsafe {
        &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

/// Adds one unit's weight gradient into `dw_t`, laid out as the GEMM
/// route accumulates it (transposed, `C_in·k² × C_out`):
/// `dw_t[c·k² + t][o] += Σ_q dy[o][q] · plane(c, t)[q + shift_t]` over the
/// unit's output pixels `q` (`planes` as for [`conv`], `dy` the `C_out`
/// rows of the output gradient).
///
/// # Panics
///
/// If the buffers do not have those lengths, or the CPU lacks AVX-512F.
pub(super) fn weight_grad(
    taps: &Taps,
    cin: usize,
    imgs: usize,
    planes: &[f32],
    dy: &[f32],
    dw_t: &mut [f32],
) {
    let (masks, len) = taps.unit_masks(imgs);
    let kk = taps.taps.len();
    let cout = dy.len() / len.max(1);
    assert_eq!(planes.len(), cin * taps.phases * len, "direct dW: planes");
    assert_eq!(dy.len(), cout * len, "direct dW: output gradient");
    assert_eq!(dw_t.len(), cin * kk * cout, "direct dW: weight gradient");
    assert!(available(), "direct dW: no AVX-512F");
    let offsets = taps.offsets(len);
    // Patch-matrix row `c·k² + t`: its plane's offset and its tap.
    let rows: Vec<(isize, usize)> = (0..cin * kk)
        .map(|r| {
            let (c, t) = (r / kk, r % kk);
            ((c * taps.phases * len) as isize + offsets[t], t)
        })
        .collect();
    let sums = WeightTile {
        planes,
        dy,
        rows: &rows,
        masks,
        taps: kk,
        len,
    };
    for o0 in (0..cout).step_by(RO) {
        let ro = RO.min(cout - o0);
        for r0 in (0..rows.len()).step_by(WEIGHT_ROWS) {
            let rr = WEIGHT_ROWS.min(rows.len() - r0);
            let mut tile = [[0f32; RP]; RO];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available` checked AVX-512F; the tile reads within
            // its buffers (see `avx512::weight_tile`).
            #[allow(unsafe_code)]
            unsafe {
                avx512::weight_dispatch(&sums, o0, r0, ro, rr, &mut tile);
            }
            for (i, row) in tile.iter().enumerate().take(ro) {
                for (j, v) in row.iter().enumerate().take(rr) {
                    dw_t[(r0 + j) * cout + o0 + i] += v;
                }
            }
        }
    }
    super::sgemm::count_flops(cout, cin * kk, len);
}

/// What every weight-gradient tile of one unit shares.
struct WeightTile<'a> {
    planes: &'a [f32],
    dy: &'a [f32],
    /// Per patch-matrix row: the offset of its plane's pixel from the
    /// output pixel, and its tap.
    rows: &'a [(isize, usize)],
    masks: &'a [u16],
    taps: usize,
    /// Output pixels per channel.
    len: usize,
}

/// The output positions `o` along an axis of `len` whose shifted position
/// `o + d` lies inside it: `[lo, hi)`, a tap's window on that axis.
pub(super) fn window(len: usize, d: isize) -> (usize, usize) {
    let len = len as isize;
    (
        (-d).clamp(0, len) as usize,
        (len - d).clamp(0, len) as usize,
    )
}

/// The lanes of the vector at index `q` that lie below `len` (`q < len`).
pub(super) fn lanes_below(len: usize, q: usize) -> u16 {
    match len - q {
        n if n >= LANES => u16::MAX,
        n => (1u16 << n) - 1,
    }
}

/// What every tile of one unit shares.
struct Tile<'a> {
    planes: &'a [f32],
    input: PlaneLayout,
    offsets: &'a [isize],
    masks: &'a [u16],
    cin: usize,
    /// Output pixels per channel.
    len: usize,
    /// Pixels per image.
    hw: usize,
    output: PlaneLayout,
    bias: Option<&'a [f32]>,
    relu: bool,
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::{LANES, RO, RP, Tile, WeightTile, Weights, lanes_below};
    use std::arch::x86_64::*;

    /// `$f::<O, P>($args)` for run-time tile sizes `O ≤ RO`, `P ≤ RP`: one
    /// instance per size, so that the accumulators are registers.
    macro_rules! by_size {
        ($o:expr, $p:expr, $f:ident($($arg:expr),*)) => {
            match ($o, $p) {
                (1, 1) => unsafe { $f::<1, 1>($($arg),*) },
                (1, 2) => unsafe { $f::<1, 2>($($arg),*) },
                (1, 3) => unsafe { $f::<1, 3>($($arg),*) },
                (1, 4) => unsafe { $f::<1, 4>($($arg),*) },
                (1, 5) => unsafe { $f::<1, 5>($($arg),*) },
                (1, 6) => unsafe { $f::<1, 6>($($arg),*) },
                (2, 1) => unsafe { $f::<2, 1>($($arg),*) },
                (2, 2) => unsafe { $f::<2, 2>($($arg),*) },
                (2, 3) => unsafe { $f::<2, 3>($($arg),*) },
                (2, 4) => unsafe { $f::<2, 4>($($arg),*) },
                (2, 5) => unsafe { $f::<2, 5>($($arg),*) },
                (2, 6) => unsafe { $f::<2, 6>($($arg),*) },
                (3, 1) => unsafe { $f::<3, 1>($($arg),*) },
                (3, 2) => unsafe { $f::<3, 2>($($arg),*) },
                (3, 3) => unsafe { $f::<3, 3>($($arg),*) },
                (3, 4) => unsafe { $f::<3, 4>($($arg),*) },
                (3, 5) => unsafe { $f::<3, 5>($($arg),*) },
                (3, 6) => unsafe { $f::<3, 6>($($arg),*) },
                (4, 1) => unsafe { $f::<4, 1>($($arg),*) },
                (4, 2) => unsafe { $f::<4, 2>($($arg),*) },
                (4, 3) => unsafe { $f::<4, 3>($($arg),*) },
                (4, 4) => unsafe { $f::<4, 4>($($arg),*) },
                (4, 5) => unsafe { $f::<4, 5>($($arg),*) },
                (4, 6) => unsafe { $f::<4, 6>($($arg),*) },
                _ => unreachable!("tile size"),
            }
        };
    }
    const _: () = assert!(RO == 4 && RP == 6, "by_size lists sizes up to 4 × 6");

    /// Runs the micro-kernel for `ro ≤ RO` output channels and `rp ≤ RP`
    /// vectors from vector `v0`, each size its own instance.
    ///
    /// # Safety
    ///
    /// AVX-512F must be available; `o0 + ro` output channels of `w` must
    /// exist, and `out` holds the unit's `C_out · len` outputs as `t.output`
    /// lays them out.
    pub(super) unsafe fn dispatch(
        t: &Tile,
        v0: usize,
        ro: usize,
        rp: usize,
        w: &Weights,
        o0: usize,
        out: *mut f32,
    ) {
        by_size!(ro, rp, tile(t, v0, w, o0, out))
    }

    /// One tile: `O` output channels × `P` vectors from vector `v0`.
    ///
    /// Loads: every lane a mask admits is inside `planes` (the masks admit
    /// only shifted pixels inside their image, whose planes lie in
    /// `planes`); the other lanes' addresses may lie outside, which a
    /// masked load never touches (AVX-512 suppresses their faults), so the
    /// pointers are formed with wrapping arithmetic. Stores: lanes below
    /// `len` of the `O` output channels, each at its place in `out`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const O: usize, const P: usize>(
        t: &Tile,
        v0: usize,
        w: &Weights,
        o0: usize,
        out: *mut f32,
    ) {
        let taps = t.offsets.len();
        debug_assert!(o0 + O <= w.cout && w.cin == t.cin && w.taps == taps);
        let q0 = v0 * LANES;
        // Per vector: the lanes below `len`, and its first pixel's offset
        // in the input's and the output's channel 0 (a vector lies within
        // one image unless the layout is channel-major, where the offset
        // runs on across images).
        let (mut keep, mut at_in, mut at_out) = ([0u16; P], [0isize; P], [0isize; P]);
        for j in 0..P {
            let q = q0 + j * LANES;
            keep[j] = lanes_below(t.len, q);
            at_in[j] = t.input.at(t.hw, q);
            at_out[j] = t.output.at(t.hw, q);
        }
        let mut acc = [[_mm512_setzero_ps(); P]; O];
        let base = t.planes.as_ptr();
        // Weight `(o0 + r, c, tap)` is at `wp + r·rs + c·cs + tap_offset(tap)`:
        // inside `w.w` for every channel and tap of the tile (see `Weights`).
        let wp = w.w.as_ptr().wrapping_offset(w.at + o0 as isize * w.rs);
        // The vectors one after the other in the planes (always so in
        // channel-major planes): one address for all, the others at fixed
        // displacements from it, which leaves the loop enough registers
        // (six addresses, one per vector, did not fit beside the weights'
        // and were reloaded from the stack every channel).
        let contiguous = (1..P).all(|j| at_in[j] == at_in[0] + (j * LANES) as isize);
        for (tap, &off) in t.offsets.iter().enumerate() {
            let mut m = [0u16; P];
            let mut src = [base; P];
            for j in 0..P {
                m[j] = t.masks[(v0 + j) * taps + tap] & keep[j];
                src[j] = base.wrapping_offset(at_in[j] + off);
            }
            let mut wc = wp.wrapping_offset(w.tap_offset(tap));
            let fma = |acc: &mut [[__m512; P]; O], x: &[__m512; P], wc: *const f32| {
                for (r, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: a weight of the tile (above).
                    let wv = _mm512_set1_ps(unsafe { *wc.wrapping_offset(r as isize * w.rs) });
                    for (a, x) in acc.iter_mut().zip(x) {
                        *a = _mm512_fmadd_ps(wv, *x, *a);
                    }
                }
            };
            if contiguous {
                let mut at = src[0];
                for _ in 0..t.cin {
                    let mut x = [_mm512_setzero_ps(); P];
                    for j in 0..P {
                        // SAFETY: see the function's comment on loads.
                        x[j] = unsafe { _mm512_maskz_loadu_ps(m[j], at.wrapping_add(j * LANES)) };
                    }
                    fma(&mut acc, &x, wc);
                    at = at.wrapping_add(t.input.channel);
                    wc = wc.wrapping_offset(w.cs);
                }
                continue;
            }
            for c in 0..t.cin {
                let cc = c * t.input.channel;
                let mut x = [_mm512_setzero_ps(); P];
                for j in 0..P {
                    // SAFETY: see the function's comment on loads.
                    x[j] = unsafe { _mm512_maskz_loadu_ps(m[j], src[j].wrapping_add(cc)) };
                }
                fma(&mut acc, &x, wc);
                wc = wc.wrapping_offset(w.cs);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let ch = out.wrapping_add((o0 + r) * t.output.channel);
            let b = t.bias.map(|b| _mm512_set1_ps(b[o0 + r]));
            for (j, a) in acc.iter().enumerate() {
                // `relu?(sum + bias)`, as `Epilogue::apply` computes it.
                let mut a = *a;
                if let Some(b) = b {
                    a = _mm512_add_ps(a, b);
                }
                if t.relu {
                    a = _mm512_max_ps(a, _mm512_setzero_ps());
                }
                // SAFETY: the lanes stored are those below `len` of output
                // channel `o0 + r` at vector `j`'s pixels: inside `out`.
                unsafe { _mm512_mask_storeu_ps(ch.wrapping_offset(at_out[j]), keep[j], a) };
            }
        }
    }

    /// [`dispatch`] for the weight gradient: `ro ≤ RO` output channels ×
    /// `rr ≤ RP` patch-matrix rows into `sums`.
    ///
    /// # Safety
    ///
    /// AVX-512F must be available; `o0 + ro` output channels and `r0 + rr`
    /// rows must exist.
    pub(super) unsafe fn weight_dispatch(
        t: &WeightTile,
        o0: usize,
        r0: usize,
        ro: usize,
        rr: usize,
        sums: &mut [[f32; RP]; RO],
    ) {
        by_size!(ro, rr, weight_tile(t, o0, r0, sums))
    }

    /// One weight-gradient tile: `O` output channels × `R` patch-matrix
    /// rows, each product summed over the unit's pixels in a vector, then
    /// across its lanes. Loads of the planes as in [`tile`]; the output
    /// gradient's loads keep to the lanes below `len` of its rows.
    #[target_feature(enable = "avx512f")]
    unsafe fn weight_tile<const O: usize, const R: usize>(
        t: &WeightTile,
        o0: usize,
        r0: usize,
        sums: &mut [[f32; RP]; RO],
    ) {
        debug_assert!((o0 + O) * t.len <= t.dy.len() && r0 + R <= t.rows.len());
        let mut acc = [[_mm512_setzero_ps(); R]; O];
        let (planes, dy) = (t.planes.as_ptr(), t.dy.as_ptr());
        for v in 0..t.len.div_ceil(LANES) {
            let q = v * LANES;
            let keep = lanes_below(t.len, q);
            let mut d = [_mm512_setzero_ps(); O];
            for (i, d) in d.iter_mut().enumerate() {
                // SAFETY: the lanes below `len` of row `o0 + i` of `dy`.
                *d = unsafe { _mm512_maskz_loadu_ps(keep, dy.add((o0 + i) * t.len + q)) };
            }
            for (j, &(off, tap)) in t.rows[r0..r0 + R].iter().enumerate() {
                let m = t.masks[v * t.taps + tap] & keep;
                // SAFETY: see `tile`'s comment on loads.
                let x =
                    unsafe { _mm512_maskz_loadu_ps(m, planes.wrapping_offset(q as isize + off)) };
                for (a, d) in acc.iter_mut().zip(&d) {
                    a[j] = _mm512_fmadd_ps(*d, x, a[j]);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (j, a) in acc.iter().enumerate() {
                sums[i][j] = _mm512_reduce_add_ps(*a);
            }
        }
    }
}
