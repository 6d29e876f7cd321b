//! Direct convolution of stride-1 "same" convolutions, without a patch
//! matrix.
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
//! 180° and its channels swapped ([`Packed::turned`], [`Taps::turned`]).
//! The weight gradient stays an im2col GEMM.
//!
//! Units of several small images lay their planes out channel-major
//! (`[channel][image][pixel]`), so that a vector of 16 lanes may span
//! images (the masks keep every lane inside its own image).
//!
//! Only x86-64 CPUs with AVX-512F run this path ([`available`]); others
//! keep the im2col route ([`Kernels::Gemm`](crate::Kernels::Gemm) forces
//! it everywhere).

use std::mem::MaybeUninit;

use super::Geom;

/// Output channels per micro-kernel tile.
const RO: usize = 4;
/// Vectors of 16 output pixels per micro-kernel tile.
const RP: usize = 6;
/// Lanes per vector.
const LANES: usize = 16;

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
}

impl Taps {
    /// The taps of the forward of `g` (a [`Geom::shifted_planes`]
    /// convolution).
    pub(super) fn of(g: &Geom) -> Self {
        Taps {
            taps: g.tap_shifts(),
            phases: g.phases(),
            ho: g.ho,
            wo: g.wo,
        }
    }

    /// Output pixels per image.
    pub(super) fn pixels(&self) -> usize {
        self.ho * self.wo
    }

    /// For each vector of 16 of the `imgs · H_out · W_out` output pixels
    /// and each tap, the lanes whose shifted pixel lies inside its image
    /// (and before the end): `masks[v · taps + t]`.
    fn masks(&self, imgs: usize) -> Vec<u16> {
        let (hw, len) = (self.ho * self.wo, imgs * self.ho * self.wo);
        let mut masks = vec![0u16; len.div_ceil(LANES) * self.taps.len()];
        for q in 0..len {
            let p = q % hw;
            let (y, x) = ((p / self.wo) as isize, (p % self.wo) as isize);
            for (t, &(_, dy, dx)) in self.taps.iter().enumerate() {
                let (sy, sx) = (y + dy, x + dx);
                if sy >= 0 && sx >= 0 && sy < self.ho as isize && sx < self.wo as isize {
                    masks[(q / LANES) * self.taps.len() + t] |= 1 << (q % LANES);
                }
            }
        }
        masks
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
    pub(super) fn turned(&self) -> Self {
        debug_assert_eq!(self.phases, 1, "only stride-1 convolutions turn");
        Taps {
            taps: self
                .taps
                .iter()
                .rev()
                .map(|&(p, dy, dx)| (p, -dy, -dx))
                .collect(),
            ..self.clone()
        }
    }
}

/// Weights packed for the micro-kernel: blocks of [`RO`] output channels
/// (the last may be narrower), each `[tap][input channel][channel of the
/// block]`.
#[derive(Debug)]
pub(super) struct Packed {
    data: Vec<f32>,
    cout: usize,
    cin: usize,
    taps: usize,
}

impl Packed {
    /// `w` (`C_out × C_in × k × k`) for the forward.
    pub(super) fn forward(w: &[f32], cout: usize, cin: usize, taps: usize) -> Self {
        Self::pack(cout, cin, taps, |o, c, t| w[(o * cin + c) * taps + t])
    }

    /// `w` for the input gradient of a stride-1 convolution: output channel
    /// `c`, input channel `o`, tap `t` is `w[o][c][taps − 1 − t]`.
    pub(super) fn turned(w: &[f32], cout: usize, cin: usize, taps: usize) -> Self {
        Self::pack(cin, cout, taps, |c, o, t| {
            w[(o * cin + c) * taps + taps - 1 - t]
        })
    }

    /// Output channels.
    pub(super) fn outputs(&self) -> usize {
        self.cout
    }

    fn pack(cout: usize, cin: usize, taps: usize, at: impl Fn(usize, usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(cout * cin * taps);
        for o0 in (0..cout).step_by(RO) {
            let rows = RO.min(cout - o0);
            for t in 0..taps {
                for c in 0..cin {
                    data.extend((o0..o0 + rows).map(|o| at(o, c, t)));
                }
            }
        }
        Packed {
            data,
            cout,
            cin,
            taps,
        }
    }
}

/// The convolution of one unit: `planes` holds `C_in · s²` planes of
/// `imgs · H_out · W_out` pixels each (channel-major: plane `(c, phase)`
/// then image then pixel); `out` receives `C_out` rows of as many pixels,
/// every element written, and is returned initialised.
///
/// # Panics
///
/// If the buffers do not have those lengths, or the CPU lacks AVX-512F
/// ([`available`]).
pub(super) fn conv<'o>(
    taps: &Taps,
    w: &Packed,
    imgs: usize,
    planes: &[f32],
    out: &'o mut [MaybeUninit<f32>],
) -> &'o mut [f32] {
    let len = imgs * taps.ho * taps.wo;
    assert_eq!(w.taps, taps.taps.len(), "direct conv: taps");
    assert_eq!(
        planes.len(),
        w.cin * taps.phases * len,
        "direct conv: planes"
    );
    assert_eq!(out.len(), w.cout * len, "direct conv: output");
    assert!(available(), "direct conv: no AVX-512F");
    let masks = taps.masks(imgs);
    let offsets = taps.offsets(len);
    let vectors = len.div_ceil(LANES);
    let tile = Tile {
        planes,
        channel: taps.phases * len,
        offsets: &offsets,
        masks: &masks,
        cin: w.cin,
        len,
    };
    for v0 in (0..vectors).step_by(RP) {
        let rp = RP.min(vectors - v0);
        for o0 in (0..w.cout).step_by(RO) {
            let ro = RO.min(w.cout - o0);
            let block = &w.data[o0 * w.cin * w.taps..][..ro * w.cin * w.taps];
            let rows = &mut out[o0 * len..(o0 + ro) * len];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available` checked AVX-512F; the tile reads and
            // writes within its buffers (see `avx512::tile`).
            #[allow(unsafe_code)]
            unsafe {
                avx512::dispatch(&tile, v0, ro, rp, block, rows);
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (&tile, v0, ro, rp, block, rows);
        }
    }
    super::sgemm::count_flops(w.cout, len, w.cin * w.taps);
    // SAFETY: the tiles cover every vector of every block of output
    // channels, and each stores every lane below `len` of its rows: all
    // `C_out · len` elements are written.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

/// What every tile of one unit shares.
struct Tile<'a> {
    planes: &'a [f32],
    /// Floats between consecutive input channels' planes.
    channel: usize,
    offsets: &'a [isize],
    masks: &'a [u16],
    cin: usize,
    /// Output pixels per channel.
    len: usize,
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::{LANES, RO, RP, Tile};
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Runs the micro-kernel for `ro ≤ RO` output channels and `rp ≤ RP`
    /// vectors from vector `v0`, each size its own instance.
    ///
    /// # Safety
    ///
    /// AVX-512F must be available; `block` is the tile's packed weights
    /// (`ro · taps · C_in`) and `rows` its `ro` output rows of `len`.
    pub(super) unsafe fn dispatch(
        t: &Tile,
        v0: usize,
        ro: usize,
        rp: usize,
        block: &[f32],
        rows: &mut [MaybeUninit<f32>],
    ) {
        // One instance per tile size, so that the accumulators are
        // registers.
        macro_rules! by_vectors {
            ($o:literal) => {
                match rp {
                    1 => unsafe { tile::<$o, 1>(t, v0, block, rows) },
                    2 => unsafe { tile::<$o, 2>(t, v0, block, rows) },
                    3 => unsafe { tile::<$o, 3>(t, v0, block, rows) },
                    4 => unsafe { tile::<$o, 4>(t, v0, block, rows) },
                    5 => unsafe { tile::<$o, 5>(t, v0, block, rows) },
                    6 => unsafe { tile::<$o, 6>(t, v0, block, rows) },
                    _ => unreachable!("tile vectors"),
                }
            };
        }
        const _: () = assert!(RO == 4 && RP == 6);
        match ro {
            1 => by_vectors!(1),
            2 => by_vectors!(2),
            3 => by_vectors!(3),
            4 => by_vectors!(4),
            _ => unreachable!("tile rows"),
        }
    }

    /// One tile: `O` output channels × `P` vectors from vector `v0`.
    ///
    /// Loads: every lane a mask admits is inside `planes` (the masks admit
    /// only shifted pixels inside their image, whose planes lie in
    /// `planes`); the other lanes' addresses may lie outside, which a
    /// masked load never touches (AVX-512 suppresses their faults), so the
    /// pointers are formed with wrapping arithmetic. Stores: lanes below
    /// `len` of the `O` rows of `rows`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const O: usize, const P: usize>(
        t: &Tile,
        v0: usize,
        block: &[f32],
        rows: &mut [MaybeUninit<f32>],
    ) {
        let taps = t.offsets.len();
        debug_assert_eq!(block.len(), O * taps * t.cin);
        debug_assert_eq!(rows.len(), O * t.len);
        let q0 = v0 * LANES;
        let mut acc = [[_mm512_setzero_ps(); P]; O];
        let base = t.planes.as_ptr();
        for (tap, &off) in t.offsets.iter().enumerate() {
            let mut m = [0u16; P];
            for (j, m) in m.iter_mut().enumerate() {
                *m = t.masks[(v0 + j) * taps + tap];
            }
            let src = base.wrapping_offset(q0 as isize + off);
            let ws = &block[tap * t.cin * O..][..t.cin * O];
            for (c, w) in ws.chunks_exact(O).enumerate() {
                let p = src.wrapping_add(c * t.channel);
                let mut x = [_mm512_setzero_ps(); P];
                for j in 0..P {
                    // SAFETY: see the function's comment on loads.
                    x[j] = unsafe { _mm512_maskz_loadu_ps(m[j], p.wrapping_add(j * LANES)) };
                }
                for r in 0..O {
                    let wv = _mm512_set1_ps(w[r]);
                    for j in 0..P {
                        acc[r][j] = _mm512_fmadd_ps(wv, x[j], acc[r][j]);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = rows[r * t.len..].as_mut_ptr().cast::<f32>();
            for (j, a) in acc.iter().enumerate() {
                let q = q0 + j * LANES;
                let n = (t.len - q).min(LANES);
                let keep = if n == LANES {
                    u16::MAX
                } else {
                    (1u16 << n) - 1
                };
                // SAFETY: the lanes stored are `q .. q + n`, within the row.
                unsafe { _mm512_mask_storeu_ps(row.add(q), keep, *a) };
            }
        }
    }
}
