//! Winograd F(2×2, 3×3) for stride-1 3×3 convolutions.
//!
//! Each 2×2 block of output pixels (a *tile*) is computed from the 4×4
//! input patch under it as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin & Gray,
//! 2016): 16 multiplies per tile and channel pair instead of the 36 of a
//! direct or im2col convolution. Summed over input channels, the 16
//! element-wise products become 16 matrix products, one per position `ξ`
//! of the 4×4 transformed tile: `M[ξ] (C_out × T) = U[ξ] (C_out × C_in) ·
//! V[ξ] (C_in × T)` for the unit's `T` tiles, 2.25× fewer GEMM flops than
//! the im2col product. The transforms are additions only (the weight's
//! has halves), and they replace im2col's 9× copy of the input with a 4×
//! one.
//!
//! The input gradient of a stride-1 3×3 convolution with padding `p ≤ 2`
//! is itself such a convolution: of the output gradient, with the kernel
//! turned by 180° and its channel axes swapped, and padding `2 − p`
//! ([`transform_weights`] with `flipped`). The weight gradient follows from
//! the same factorisation ([`weight_grad_unit`]): since each tile's output
//! is `Aᵀ (U ⊙ V) A`, the gradient of `U` is `Σ_tiles (A dY Aᵀ) ⊙ V` (16
//! products `dU[ξ] = Z[ξ] · V[ξ]ᵀ`) and that of the kernel `Gᵀ dU G`.
//!
//! The f32 error is bounded by tests against the stock convolution
//! (`tests/fast_conv.rs`): the transforms add at most 9 terms of the input
//! and weight per tile, so the error grows like a few ulps of the largest
//! partial sums, the same order as the GEMM path's.

use super::{Epilogue, sgemm, with_scratch};

/// Positions of a transformed tile.
const XI: usize = 16;

/// Fewest input and output channels for which a convolution takes this
/// path. With fewer, the 16 GEMMs are too short in their inner dimension
/// to pay for the transforms: convnet-ref's 3-channel stem made its step
/// 15–50% slower (session 10, `bench train-step --net convnet-ref --batch
/// 32 --size 64 --threads 1`, under load).
pub(super) const MIN_CHANNELS: usize = 16;

/// The shapes of one stride-1 3×3 convolution, per image.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wino {
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    pad: usize,
    ho: usize,
    wo: usize,
    /// Tile rows and columns: `⌈ho / 2⌉`, `⌈wo / 2⌉`.
    th: usize,
    tw: usize,
}

impl Wino {
    /// The convolution of `cin`-channel `h × w` images to `cout` channels
    /// with zero padding `pad`, or `None` when its output would be empty.
    pub(super) fn new(cin: usize, h: usize, w: usize, cout: usize, pad: usize) -> Option<Self> {
        let ho = (h + 2 * pad).checked_sub(2).filter(|&v| v > 0)?;
        let wo = (w + 2 * pad).checked_sub(2).filter(|&v| v > 0)?;
        Some(Wino {
            cin,
            h,
            w,
            cout,
            pad,
            ho,
            wo,
            th: ho.div_ceil(2),
            tw: wo.div_ceil(2),
        })
    }

    fn tiles(&self) -> usize {
        self.th * self.tw
    }
}

/// `U = G g Gᵀ` of every kernel of an OIHW 3×3 weight `w` (`cout × cin`
/// kernels), as 16 matrices of `cout × cin` (`ξ`-major). With `flipped`,
/// the weight of the input gradient instead: each kernel turned by 180°
/// and the matrices `cin × cout`.
pub(super) fn transform_weights(w: &[f32], cout: usize, cin: usize, flipped: bool) -> Vec<f32> {
    let (rows, cols) = if flipped { (cin, cout) } else { (cout, cin) };
    let mut u = vec![0f32; XI * rows * cols];
    for (k, g) in w.chunks_exact(9).enumerate().take(cout * cin) {
        let (co, ci) = (k / cin, k % cin);
        let mut g: [f32; 9] = g.try_into().expect("3×3 kernel");
        let at = if flipped {
            g.reverse();
            ci * cols + co
        } else {
            co * cols + ci
        };
        for (xi, v) in kernel_tile(&g).into_iter().enumerate() {
            u[xi * rows * cols + at] = v;
        }
    }
    u
}

/// `G g Gᵀ` of one row-major 3×3 kernel, row-major 4×4, with
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
fn kernel_tile(g: &[f32; 9]) -> [f32; XI] {
    // G applied to each column of g, then to each row of the result.
    let col = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut gg = [[0f32; 3]; 4];
    for j in 0..3 {
        let t = col(g[j], g[3 + j], g[6 + j]);
        for i in 0..4 {
            gg[i][j] = t[i];
        }
    }
    let mut u = [0f32; XI];
    for (i, r) in gg.iter().enumerate() {
        u[4 * i..4 * i + 4].copy_from_slice(&col(r[0], r[1], r[2]));
    }
    u
}

/// The convolution of a unit of `imgs` NCHW images `x` with transformed
/// weights `u` (from [`transform_weights`]), written to `out` (NCHW, every
/// element written) through the epilogue.
pub(super) fn conv_unit(
    s: &Wino,
    imgs: usize,
    x: &[f32],
    u: &[f32],
    out: &mut [f32],
    epi: Epilogue<'_>,
) {
    let t = imgs * s.tiles();
    assert_eq!(x.len(), imgs * s.cin * s.h * s.w, "winograd input");
    assert_eq!(out.len(), imgs * s.cout * s.ho * s.wo, "winograd output");
    assert_eq!(u.len(), XI * s.cout * s.cin, "winograd weights");
    with_scratch(XI * s.cin * t, |v| {
        transform_input(s, imgs, x, v);
        with_scratch(XI * s.cout * t, |m| {
            for xi in 0..XI {
                // M[ξ] (C_out × T) = U[ξ] (C_out × C_in) · V[ξ] (C_in × T)
                sgemm::gemm(
                    (s.cout, t, s.cin),
                    sgemm::MatMut::new(&mut m[xi * s.cout * t..][..s.cout * t], t, 1),
                    false,
                    sgemm::Mat::new(&u[xi * s.cout * s.cin..][..s.cout * s.cin], s.cin, 1),
                    sgemm::Mat::new(&v[xi * s.cin * t..][..s.cin * t], t, 1),
                );
            }
            transform_output(s, imgs, m, out, epi);
        });
    });
}

/// Adds the weight gradient of a unit of `imgs` images (NCHW input `x`,
/// NCHW output gradient `dy`) to `dw` (OIHW, `cout × cin × 3 × 3`).
pub(super) fn weight_grad_unit(s: &Wino, imgs: usize, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let t = imgs * s.tiles();
    assert_eq!(x.len(), imgs * s.cin * s.h * s.w, "winograd input");
    assert_eq!(
        dy.len(),
        imgs * s.cout * s.ho * s.wo,
        "winograd output gradient"
    );
    assert_eq!(dw.len(), s.cout * s.cin * 9, "winograd weight gradient");
    with_scratch(XI * s.cin * t, |v| {
        transform_input(s, imgs, x, v);
        with_scratch(XI * s.cout * t, |z| {
            transform_output_grad(s, imgs, dy, z);
            with_scratch(XI * s.cout * s.cin, |du| {
                for xi in 0..XI {
                    // dU[ξ] (C_out × C_in) = Z[ξ] (C_out × T) · V[ξ]ᵀ (T × C_in)
                    sgemm::gemm(
                        (s.cout, s.cin, t),
                        sgemm::MatMut::new(
                            &mut du[xi * s.cout * s.cin..][..s.cout * s.cin],
                            s.cin,
                            1,
                        ),
                        false,
                        sgemm::Mat::new(&z[xi * s.cout * t..][..s.cout * t], t, 1),
                        sgemm::Mat::new(&v[xi * s.cin * t..][..s.cin * t], 1, t),
                    );
                }
                let pairs = s.cout * s.cin;
                for (k, g) in dw.chunks_exact_mut(9).enumerate() {
                    let tile: [f32; XI] = std::array::from_fn(|xi| du[xi * pairs + k]);
                    for (d, v) in g.iter_mut().zip(kernel_grad(&tile)) {
                        *d += v;
                    }
                }
            });
        });
    });
}

/// `Gᵀ dU G` of one row-major 4×4 tile gradient: the gradient of the 3×3
/// kernel `g` whose transform is `G g Gᵀ` (see [`kernel_tile`]).
fn kernel_grad(du: &[f32; XI]) -> [f32; 9] {
    // Gᵀ applied to each column of dU, then to each row of the result.
    let col =
        |a: f32, b: f32, c: f32, d: f32| [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
    let mut h = [[0f32; 4]; 3];
    for j in 0..4 {
        let t = col(du[j], du[4 + j], du[8 + j], du[12 + j]);
        for i in 0..3 {
            h[i][j] = t[i];
        }
    }
    let mut g = [0f32; 9];
    for (i, r) in h.iter().enumerate() {
        g[3 * i..3 * i + 3].copy_from_slice(&col(r[0], r[1], r[2], r[3]));
    }
    g
}

/// `Z = A dY Aᵀ` of every tile and output channel (the adjoint of
/// [`transform_output`]), as 16 matrices of `C_out × T`; the outputs a
/// clipped last tile row or column lacks count as zero.
fn transform_output_grad(s: &Wino, imgs: usize, dy: &[f32], z: &mut [f32]) {
    let t_all = imgs * s.tiles();
    let hw = s.ho * s.wo;
    let width = 2 * s.tw;
    let mut rows = vec![0f32; 2 * width];
    let mut comb = vec![0f32; 4 * width];
    for img in 0..imgs {
        for co in 0..s.cout {
            let plane = &dy[(img * s.cout + co) * hw..][..hw];
            for ty in 0..s.th {
                for (r, row) in rows.chunks_exact_mut(width).enumerate() {
                    let oy = 2 * ty + r;
                    if oy < s.ho {
                        row[..s.wo].copy_from_slice(&plane[oy * s.wo..][..s.wo]);
                        row[s.wo..].fill(0.0);
                    } else {
                        row.fill(0.0);
                    }
                }
                // A · (2 × width rows): [r0, r0 + r1, r0 − r1, −r1].
                let (r0, r1) = rows.split_at(width);
                let (c0, rest) = comb.split_at_mut(width);
                let (c1, rest) = rest.split_at_mut(width);
                let (c2, c3) = rest.split_at_mut(width);
                for j in 0..width {
                    c0[j] = r0[j];
                    c1[j] = r0[j] + r1[j];
                    c2[j] = r0[j] - r1[j];
                    c3[j] = -r1[j];
                }
                // · Aᵀ per tile: (a, b) → [a, a + b, a − b, −b].
                let base = img * s.tiles() + ty * s.tw;
                for (i, ci) in comb.chunks_exact(width).enumerate() {
                    let at = |j: usize| ((4 * i + j) * s.cout + co) * t_all + base;
                    let (z0, z1, z2, z3) = (at(0), at(1), at(2), at(3));
                    for tx in 0..s.tw {
                        let (a, b) = (ci[2 * tx], ci[2 * tx + 1]);
                        z[z0 + tx] = a;
                        z[z1 + tx] = a + b;
                        z[z2 + tx] = a - b;
                        z[z3 + tx] = -b;
                    }
                }
            }
        }
    }
}

/// `V = Bᵀ d B` of every tile and channel, as 16 matrices of `C_in × T`,
/// with `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`.
/// The rows of a tile row are combined across the whole width first
/// (vectorised), then the columns per tile.
fn transform_input(s: &Wino, imgs: usize, x: &[f32], v: &mut [f32]) {
    let t_all = imgs * s.tiles();
    let width = 2 * s.tw + 2;
    let mut rows = vec![0f32; 4 * width];
    let mut comb = vec![0f32; 4 * width];
    for img in 0..imgs {
        for c in 0..s.cin {
            let plane = &x[(img * s.cin + c) * s.h * s.w..][..s.h * s.w];
            for ty in 0..s.th {
                for (r, row) in rows.chunks_exact_mut(width).enumerate() {
                    // Input row 2·ty + r − pad, columns −pad … width − pad − 1.
                    match (2 * ty + r).checked_sub(s.pad).filter(|&iy| iy < s.h) {
                        None => row.fill(0.0),
                        Some(iy) => {
                            let lo = s.pad.min(width);
                            let n = s.w.min(width - lo);
                            row[..lo].fill(0.0);
                            row[lo..lo + n].copy_from_slice(&plane[iy * s.w..][..n]);
                            row[lo + n..].fill(0.0);
                        }
                    }
                }
                let (d0, rest) = rows.split_at(width);
                let (d1, rest) = rest.split_at(width);
                let (d2, d3) = rest.split_at(width);
                let (t0, rest) = comb.split_at_mut(width);
                let (t1, rest) = rest.split_at_mut(width);
                let (t2, t3) = rest.split_at_mut(width);
                for j in 0..width {
                    t0[j] = d0[j] - d2[j];
                    t1[j] = d1[j] + d2[j];
                    t2[j] = d2[j] - d1[j];
                    t3[j] = d1[j] - d3[j];
                }
                let base = img * s.tiles() + ty * s.tw;
                for (i, ti) in comb.chunks_exact(width).enumerate() {
                    let at = |j: usize| ((4 * i + j) * s.cin + c) * t_all + base;
                    let (v0, v1, v2, v3) = (at(0), at(1), at(2), at(3));
                    for tx in 0..s.tw {
                        let q = &ti[2 * tx..2 * tx + 4];
                        v[v0 + tx] = q[0] - q[2];
                        v[v1 + tx] = q[1] + q[2];
                        v[v2 + tx] = q[2] - q[1];
                        v[v3 + tx] = q[1] - q[3];
                    }
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` of every tile and output channel, with
/// `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`, written to the NCHW output (the
/// last tile row and column clipped when the output size is odd), each row
/// through the epilogue.
fn transform_output(s: &Wino, imgs: usize, m: &[f32], out: &mut [f32], epi: Epilogue<'_>) {
    let t_all = imgs * s.tiles();
    let hw = s.ho * s.wo;
    let mut y = vec![0f32; 4 * s.tw];
    for img in 0..imgs {
        for co in 0..s.cout {
            let plane = &mut out[(img * s.cout + co) * hw..][..hw];
            for ty in 0..s.th {
                let base = img * s.tiles() + ty * s.tw;
                let e: [&[f32]; XI] =
                    std::array::from_fn(|xi| &m[(xi * s.cout + co) * t_all + base..][..s.tw]);
                let (y0, rest) = y.split_at_mut(s.tw);
                let (y1, rest) = rest.split_at_mut(s.tw);
                let (y2, y3) = rest.split_at_mut(s.tw);
                for tx in 0..s.tw {
                    let p0 = |j: usize| e[j][tx] + e[4 + j][tx] + e[8 + j][tx];
                    let p1 = |j: usize| e[4 + j][tx] - e[8 + j][tx] - e[12 + j][tx];
                    y0[tx] = p0(0) + p0(1) + p0(2);
                    y1[tx] = p0(1) - p0(2) - p0(3);
                    y2[tx] = p1(0) + p1(1) + p1(2);
                    y3[tx] = p1(1) - p1(2) - p1(3);
                }
                for (dy, (left, right)) in [(0, (&*y0, &*y1)), (1, (&*y2, &*y3))] {
                    let oy = 2 * ty + dy;
                    if oy >= s.ho {
                        break;
                    }
                    let row = &mut plane[oy * s.wo..][..s.wo];
                    for (ox, o) in row.iter_mut().enumerate() {
                        *o = if ox % 2 == 0 {
                            left[ox / 2]
                        } else {
                            right[ox / 2]
                        };
                    }
                    epi.apply(row, co);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct convolution, for reference.
    fn direct(s: &Wino, imgs: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; imgs * s.cout * s.ho * s.wo];
        for img in 0..imgs {
            for co in 0..s.cout {
                for oy in 0..s.ho {
                    for ox in 0..s.wo {
                        let mut acc = 0f64;
                        for ci in 0..s.cin {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = (oy + ky) as isize - s.pad as isize;
                                    let ix = (ox + kx) as isize - s.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((img * s.cin + ci) * s.h + iy as usize) * s.w
                                        + ix as usize];
                                    let wv = w[((co * s.cin + ci) * 3 + ky) * 3 + kx];
                                    acc += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                        y[((img * s.cout + co) * s.ho + oy) * s.wo + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    /// Deterministic values in [−1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_the_direct_convolution_at_odd_and_even_sizes_and_every_padding() {
        // (images, C_in, H, W, C_out, padding)
        for (imgs, cin, h, w, cout, pad) in [
            (1, 1, 4, 4, 1, 0),
            (2, 3, 5, 7, 4, 1),
            (1, 5, 6, 6, 3, 1),
            (3, 2, 3, 9, 2, 2),
            (2, 4, 8, 5, 6, 0),
            (1, 2, 1, 1, 2, 1),
        ] {
            let s = Wino::new(cin, h, w, cout, pad).expect("non-empty");
            let x = values(imgs * cin * h * w, 1);
            let wt = values(cout * cin * 9, 2);
            let u = transform_weights(&wt, cout, cin, false);
            let mut y = vec![f32::NAN; imgs * cout * s.ho * s.wo];
            conv_unit(&s, imgs, &x, &u, &mut y, Epilogue::NONE);
            let want = direct(&s, imgs, &x, &wt);
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{imgs}×{cin}×{h}×{w}→{cout} p{pad} at {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn weight_gradient_matches_the_direct_correlation_of_input_and_output_gradient() {
        for (imgs, cin, h, w, cout, pad) in
            [(2, 3, 5, 7, 4, 1), (1, 2, 6, 6, 3, 0), (2, 2, 3, 4, 2, 2)]
        {
            let s = Wino::new(cin, h, w, cout, pad).expect("non-empty");
            let x = values(imgs * cin * h * w, 4);
            let dy = values(imgs * cout * s.ho * s.wo, 5);
            let mut dw = vec![0.5f32; cout * cin * 9];
            weight_grad_unit(&s, imgs, &x, &dy, &mut dw);
            for co in 0..cout {
                for ci in 0..cin {
                    for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                        let mut want = 0f64;
                        for img in 0..imgs {
                            for oy in 0..s.ho {
                                for ox in 0..s.wo {
                                    let (iy, ix) =
                                        ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
                                    if iy >= h || ix >= w {
                                        continue;
                                    }
                                    want += f64::from(x[((img * cin + ci) * h + iy) * w + ix])
                                        * f64::from(
                                            dy[((img * cout + co) * s.ho + oy) * s.wo + ox],
                                        );
                                }
                            }
                        }
                        // Added to what was there (0.5).
                        let got = dw[((co * cin + ci) * 3 + ky) * 3 + kx] - 0.5;
                        assert!(
                            (f64::from(got) - want).abs() < 1e-4,
                            "{co},{ci},{ky},{kx}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn flipped_weights_are_the_turned_kernels_with_channels_swapped() {
        let (cout, cin) = (3, 2);
        let w = values(cout * cin * 9, 3);
        let mut turned = vec![0f32; w.len()];
        for co in 0..cout {
            for ci in 0..cin {
                for k in 0..9 {
                    turned[(ci * cout + co) * 9 + k] = w[(co * cin + ci) * 9 + 8 - k];
                }
            }
        }
        assert_eq!(
            transform_weights(&w, cout, cin, true),
            transform_weights(&turned, cin, cout, false)
        );
    }
}
