//! A fused CPU normalisation (BatchNorm or GroupNorm) with an optional
//! ReLU, for training.
//!
//! Built from tensor ops, a training-mode BatchNorm is a dozen passes over
//! the activation forward and about twice that backward, several of them
//! candle reductions over non-trailing dimensions, which run single-threaded
//! through a slow generic loop. Here the forward pass is two passes per
//! `H×W` plane (statistics, then `y = x·a + b`, ReLU fused), and the
//! backward pass is two more (per-plane sums, then `dx`), all on candle's
//! CPU worker pool.
//!
//! Statistics are per channel over `(N, H, W)` (BatchNorm with batch
//! statistics), per `(image, group)` (GroupNorm), or given (BatchNorm with
//! running statistics, in evaluation).

use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::par::{
    f32_slice, fill_parts_uninit, init_chunks, lock, run_units, split_mut, write_all,
};

/// Where the normalisation statistics come from.
#[derive(Debug, Clone)]
pub enum NormStats {
    /// Per channel over the batch (BatchNorm, training).
    Batch,
    /// Per image over groups of channels (GroupNorm).
    Group(usize),
    /// Given per-channel mean and variance (BatchNorm, evaluation).
    Fixed {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel (biased) variance.
        var: Vec<f32>,
    },
}

/// The result of [`norm_relu`]: the output and, for batch statistics, the
/// per-channel mean and biased variance of the input.
pub struct NormOutput {
    /// The normalised (and rectified) output.
    pub y: Tensor,
    /// With [`NormStats::Batch`]: the per-channel mean and biased variance.
    pub batch_stats: Option<(Vec<f32>, Vec<f32>)>,
}

/// `relu?((x − mean)/√(var + eps) · gamma + beta)` on an NCHW f32 CPU
/// tensor, with gradients for `x`, `gamma` and `beta`.
pub fn norm_relu(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    stats: NormStats,
    eps: f64,
    relu: bool,
) -> candle_core::Result<NormOutput> {
    let (_, c, _, _) = x.dims4()?;
    if gamma.dims() != [c] || beta.dims() != [c] {
        candle_core::bail!(
            "norm: {c} channels but scale {:?} and shift {:?}",
            gamma.dims(),
            beta.dims()
        );
    }
    if let NormStats::Group(g) = stats
        && (g == 0 || !c.is_multiple_of(g))
    {
        candle_core::bail!("norm: {c} channels do not split into {g} groups");
    }
    if let NormStats::Fixed { mean, var } = &stats
        && (mean.len() != c || var.len() != c)
    {
        candle_core::bail!(
            "norm: {c} channels but {} means and {} variances",
            mean.len(),
            var.len()
        );
    }
    let batch = matches!(stats, NormStats::Batch);
    let op = NormFwd {
        stats,
        eps,
        relu,
        computed: Arc::new(OnceLock::new()),
    };
    let computed = op.computed.clone();
    let (x, gamma, beta) = (x.contiguous()?, gamma.contiguous()?, beta.contiguous()?);
    let y = if x.track_op() || gamma.track_op() || beta.track_op() {
        x.apply_op3(&gamma, &beta, op)?
    } else {
        x.apply_op3_no_bwd(&gamma, &beta, &op)?
    };
    let batch_stats = if batch {
        let s = computed
            .get()
            .ok_or_else(|| candle_core::Error::Msg("norm: statistics were not computed".into()))?;
        Some((s.mean.clone(), s.var.clone()))
    } else {
        None
    };
    Ok(NormOutput { y, batch_stats })
}

/// Statistics of one forward pass: per statistics set (a channel for
/// BatchNorm, an `(image, group)` for GroupNorm) the mean, the biased
/// variance and `1/√(var + eps)`.
#[derive(Debug)]
struct Computed {
    mean: Vec<f32>,
    var: Vec<f32>,
    rstd: Vec<f32>,
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    hw: usize,
}

impl Dims {
    fn of(l: &Layout) -> candle_core::Result<Self> {
        let (n, c, h, w) = l.shape().dims4()?;
        Ok(Dims { n, c, hw: h * w })
    }

    /// Planes per unit of work (≥ 16 K floats each).
    fn planes_per_unit(&self) -> usize {
        (16384 / self.hw.max(1)).max(1)
    }
}

struct NormFwd {
    stats: NormStats,
    eps: f64,
    relu: bool,
    computed: Arc<OnceLock<Computed>>,
}

impl NormFwd {
    /// The statistics set of plane `(img, ch)`.
    fn set_of(&self, d: &Dims, img: usize, ch: usize) -> usize {
        match self.stats {
            NormStats::Group(g) => img * g + ch / (d.c / g),
            _ => ch,
        }
    }

    fn compute_stats(&self, d: &Dims, x: &[f32]) -> Computed {
        let fixed = |mean: &[f32], var: &[f32]| Computed {
            mean: mean.to_vec(),
            var: var.to_vec(),
            rstd: var
                .iter()
                .map(|v| (1.0 / (f64::from(*v) + self.eps).sqrt()) as f32)
                .collect(),
        };
        if let NormStats::Fixed { mean, var } = &self.stats {
            return fixed(mean, var);
        }
        // Per-plane mean and sum of squared deviations (two passes over a
        // plane in cache), then combined exactly (Chan et al.).
        let planes = d.n * d.c;
        let mut plane = vec![(0f64, 0f64); planes];
        let per = d.planes_per_unit();
        let parts: Vec<Mutex<&mut [(f64, f64)]>> = plane.chunks_mut(per).map(Mutex::new).collect();
        run_units(parts.len(), |u| {
            let mut part = parts[u].lock().unwrap_or_else(|e| e.into_inner());
            for (i, out) in part.iter_mut().enumerate() {
                let p = &x[(u * per + i) * d.hw..][..d.hw];
                let mean = lanes(p, |v| v) / d.hw as f64;
                let m = mean as f32;
                *out = (mean, lanes(p, |v| (v - m) * (v - m)));
            }
        });
        drop(parts);
        let sets = match self.stats {
            NormStats::Group(g) => d.n * g,
            _ => d.c,
        };
        let mut members: Vec<Vec<(f64, f64)>> = vec![Vec::new(); sets];
        for (i, &pm) in plane.iter().enumerate() {
            members[self.set_of(d, i / d.c, i % d.c)].push(pm);
        }
        let (mut mean, mut var) = (Vec::with_capacity(sets), Vec::with_capacity(sets));
        for m in &members {
            let k = m.len().max(1) as f64;
            let mu = m.iter().map(|p| p.0).sum::<f64>() / k;
            let m2 = m
                .iter()
                .map(|p| p.1 + d.hw as f64 * (p.0 - mu).powi(2))
                .sum::<f64>();
            mean.push(mu as f32);
            var.push((m2 / (k * d.hw as f64).max(1.0)) as f32);
        }
        fixed(&mean, &var)
    }
}

impl CustomOp3 for NormFwd {
    fn name(&self) -> &'static str {
        "fused-norm"
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
        let d = Dims::of(l1)?;
        let (x, gamma, beta) = (
            f32_slice(s1, l1, "fused norm")?,
            f32_slice(s2, l2, "fused norm")?,
            f32_slice(s3, l3, "fused norm")?,
        );
        let st = self.compute_stats(&d, x);
        let per = d.planes_per_unit();
        let y = fill_parts_uninit(x.len(), x.len(), per * d.hw, |u, part| {
            init_chunks(part, d.hw, |i, out| {
                let p = u * per + i;
                let (img, ch) = (p / d.c, p % d.c);
                let s = self.set_of(&d, img, ch);
                let a = st.rstd[s] * gamma[ch];
                let b = beta[ch] - st.mean[s] * a;
                let src = &x[p * d.hw..][..d.hw];
                if self.relu {
                    write_all(out, src.iter().map(|v| (v * a + b).max(0.0)))
                } else {
                    write_all(out, src.iter().map(|v| v * a + b))
                }
            })
        });
        // A forward pass computes its statistics once; a second evaluation
        // of the same op would compute the same values.
        let _ = self.computed.set(st);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let st = self
            .computed
            .get()
            .ok_or_else(|| candle_core::Error::Msg("fused norm: backward before forward".into()))?;
        let need_dx = x.track_op();
        let op = NormBwd {
            fwd: self,
            st,
            gamma: gamma.to_vec1::<f32>()?,
            need_dx,
        };
        let flat = x.apply_op3_no_bwd(res, &grad.contiguous()?, &op)?;
        let c = gamma.elem_count();
        let off = if need_dx { x.elem_count() } else { 0 };
        let dx = if need_dx {
            Some(flat.narrow(0, 0, off)?.reshape(x.shape())?)
        } else {
            None
        };
        let dgamma = flat.narrow(0, off, c)?;
        let dbeta = flat.narrow(0, off + c, c)?;
        Ok((dx, Some(dgamma), Some(dbeta)))
    }
}

/// The gradients of [`NormFwd`] from `(x, y, dy)`: one flat tensor
/// `[dx (if needed) | dgamma | dbeta]`.
struct NormBwd<'a> {
    fwd: &'a NormFwd,
    st: &'a Computed,
    gamma: Vec<f32>,
    need_dx: bool,
}

impl CustomOp3 for NormBwd<'_> {
    fn name(&self) -> &'static str {
        "fused-norm-backward"
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
        let d = Dims::of(l1)?;
        let (x, y, dy) = (
            f32_slice(s1, l1, "fused norm")?,
            f32_slice(s2, l2, "fused norm")?,
            f32_slice(s3, l3, "fused norm")?,
        );
        if y.len() != x.len() || dy.len() != x.len() {
            candle_core::bail!("fused norm backward: shapes differ");
        }
        let (fwd, st, gamma) = (self.fwd, self.st, &self.gamma);
        let relu = fwd.relu;
        let per = d.planes_per_unit();
        // Per plane: Σ dz and Σ dz·x̂.
        let planes = d.n * d.c;
        let mut sums = vec![0f32; 2 * planes];
        let parts = split_mut(&mut sums, 2 * per);
        run_units(parts.len(), |u| {
            let mut part = lock(&parts[u]);
            for (i, out) in part.chunks_mut(2).enumerate() {
                let p = u * per + i;
                let s = fwd.set_of(&d, p / d.c, p % d.c);
                let (mean, rstd) = (st.mean[s], st.rstd[s]);
                let r = p * d.hw..(p + 1) * d.hw;
                let (s1, s2) = plane_sums(&x[r.clone()], &y[r.clone()], &dy[r], mean, relu);
                out[0] = s1 as f32;
                out[1] = (s2 * f64::from(rstd)) as f32;
            }
        });
        drop(parts);
        let c = d.c;
        let mut dgamma = vec![0f64; c];
        let mut dbeta = vec![0f64; c];
        for (p, s) in sums.chunks(2).enumerate() {
            dbeta[p % c] += f64::from(s[0]);
            dgamma[p % c] += f64::from(s[1]);
        }
        let mut out = Vec::new();
        if self.need_dx {
            // dx = rstd·(γ·dz − A − x̂·B), with A and B the means over the
            // statistics set of γ·dz and γ·dz·x̂ (zero for given statistics).
            let sets = st.mean.len();
            let (mut a, mut b) = (vec![0f64; sets], vec![0f64; sets]);
            let mut count = vec![0f64; sets];
            if !matches!(fwd.stats, NormStats::Fixed { .. }) {
                for (p, s) in sums.chunks(2).enumerate() {
                    let (img, ch) = (p / c, p % c);
                    let set = fwd.set_of(&d, img, ch);
                    a[set] += f64::from(gamma[ch]) * f64::from(s[0]);
                    b[set] += f64::from(gamma[ch]) * f64::from(s[1]);
                    count[set] += d.hw as f64;
                }
                for ((a, b), k) in a.iter_mut().zip(&mut b).zip(&count) {
                    *a /= k.max(1.0);
                    *b /= k.max(1.0);
                }
            }
            // Room for dgamma and dbeta after dx, so that they need no copy.
            out = fill_parts_uninit(x.len(), x.len() + 2 * c, per * d.hw, |u, part| {
                init_chunks(part, d.hw, |i, o| {
                    let p = u * per + i;
                    let (img, ch) = (p / c, p % c);
                    let s = fwd.set_of(&d, img, ch);
                    let (mean, rstd) = (st.mean[s], st.rstd[s]);
                    // dx = k1·dz + k2·(x − mean) + k3
                    let k1 = rstd * gamma[ch];
                    let k2 = -(rstd * rstd) * b[s] as f32;
                    let k3 = -rstd * a[s] as f32;
                    let r = p * d.hw..(p + 1) * d.hw;
                    let it = x[r.clone()].iter().zip(&y[r.clone()]).zip(&dy[r]);
                    write_all(
                        o,
                        it.map(|((&xv, &yv), &g)| {
                            let g = if relu && yv <= 0.0 { 0.0 } else { g };
                            k1 * g + k2 * (xv - mean) + k3
                        }),
                    )
                })
            });
        }
        out.extend(dgamma.iter().map(|&v| v as f32));
        out.extend(dbeta.iter().map(|&v| v as f32));
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// `Σ f(v)` over a plane, in eight f32 lanes (vectorised) summed in f64.
pub(crate) fn lanes(p: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0f32; 8];
    let chunks = p.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(f(v))).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    tail + acc.iter().map(|&a| f64::from(a)).sum::<f64>()
}

/// The eight-lane loop of [`plane_sums`] in SSE2 (every x86-64 has it),
/// lane for lane the same arithmetic as the portable loop (`dz = 0` where
/// `y ≤ 0`, `s1 += dz`, `s2 += dz·(x − mean)`). Written out because LLVM
/// turns the portable loop's mask into a branch per lane, which
/// mispredicts on about half of a ReLU mask (the loop was 8% of the
/// detector's step at one thread).
#[cfg(target_arch = "x86_64")]
fn sse2_lanes(
    xc: std::slice::ChunksExact<'_, f32>,
    yc: std::slice::ChunksExact<'_, f32>,
    gc: std::slice::ChunksExact<'_, f32>,
    mean: f32,
    relu: bool,
    s1: &mut [f32; 8],
    s2: &mut [f32; 8],
) {
    use std::arch::x86_64::{
        __m128, _mm_add_ps, _mm_andnot_ps, _mm_cmple_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps,
        _mm_setzero_ps, _mm_storeu_ps, _mm_sub_ps,
    };
    // SAFETY: SSE and SSE2 are part of the x86-64 baseline, so every CPU
    // this code runs on has the instructions; each load reads four floats
    // at `4·h` (h < 2) of a chunk of eight, and each store writes four at
    // `4·h` of an eight-float array.
    #[allow(unsafe_code)]
    unsafe {
        let load = |c: &[f32], at: usize| -> __m128 { _mm_loadu_ps(c[at..at + 4].as_ptr()) };
        let (mean_v, zero) = (_mm_set1_ps(mean), _mm_setzero_ps());
        let mut acc1 = [load(&s1[..], 0), load(&s1[..], 4)];
        let mut acc2 = [load(&s2[..], 0), load(&s2[..], 4)];
        for ((xs, ys), gs) in xc.zip(yc).zip(gc) {
            for h in 0..2 {
                let (x, y, g) = (load(xs, 4 * h), load(ys, 4 * h), load(gs, 4 * h));
                // `andnot(y ≤ 0, g)`: +0 where masked, `g` elsewhere (also
                // where `y` is NaN, as the portable `y <= 0.0` test).
                let g = if relu {
                    _mm_andnot_ps(_mm_cmple_ps(y, zero), g)
                } else {
                    g
                };
                acc1[h] = _mm_add_ps(acc1[h], g);
                acc2[h] = _mm_add_ps(acc2[h], _mm_mul_ps(g, _mm_sub_ps(x, mean_v)));
            }
        }
        for h in 0..2 {
            _mm_storeu_ps(s1[4 * h..4 * h + 4].as_mut_ptr(), acc1[h]);
            _mm_storeu_ps(s2[4 * h..4 * h + 4].as_mut_ptr(), acc2[h]);
        }
    }
}

/// `(Σ dz, Σ dz·(x − mean))` over a plane, with `dz = dy` masked by the
/// ReLU (`y > 0`) if fused; eight f32 lanes summed in f64.
fn plane_sums(x: &[f32], y: &[f32], dy: &[f32], mean: f32, relu: bool) -> (f64, f64) {
    let (mut s1, mut s2) = ([0f32; 8], [0f32; 8]);
    let (xc, yc, gc) = (x.chunks_exact(8), y.chunks_exact(8), dy.chunks_exact(8));
    let (mut t1, mut t2) = (0f64, 0f64);
    for ((&xv, &yv), &g) in xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .zip(gc.remainder())
    {
        let g = if relu && yv <= 0.0 { 0.0 } else { g };
        t1 += f64::from(g);
        t2 += f64::from(g * (xv - mean));
    }
    #[cfg(target_arch = "x86_64")]
    sse2_lanes(xc, yc, gc, mean, relu, &mut s1, &mut s2);
    #[cfg(not(target_arch = "x86_64"))]
    for ((xs, ys), gs) in xc.zip(yc).zip(gc) {
        for (l, (&xv, &yv)) in xs.iter().zip(ys).enumerate() {
            let g = if relu && yv <= 0.0 { 0.0 } else { gs[l] };
            s1[l] += g;
            s2[l] += g * (xv - mean);
        }
    }
    let sum = |a: [f32; 8]| a.iter().map(|&v| f64::from(v)).sum::<f64>();
    (t1 + sum(s1), t2 + sum(s2))
}
