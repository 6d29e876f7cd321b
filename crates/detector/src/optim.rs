//! Optimisation pieces candle lacks: SGD with momentum, Nesterov and weight
//! decay that skips norm and bias parameters; AdamW; gradient clipping by
//! global norm; linear warm-up.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, Storage, Tensor};

use crate::error::{DetectorError, Result};
use crate::params::{Param, ParamKind};

/// An optimiser over a fixed set of parameters.
pub trait Optimizer {
    /// Applies one update from `grads` (parameters without a gradient are
    /// left alone).
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedules call this every step).
    fn set_learning_rate(&mut self, lr: f64);
    /// The optimiser's state (momentum buffers, moments, step count) as
    /// named tensors, so that a resumed run continues exactly.
    fn state(&self) -> Result<HashMap<String, Tensor>>;
    /// Restores a state written by [`Optimizer::state`] of an optimiser of
    /// the same kind over the same parameters. A tensor of another shape is
    /// an error naming it and both shapes.
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
}

/// `buffers[i]` of `params[i]`, named `{prefix}.{param name}`.
fn named_buffers(
    prefix: &str,
    params: &[Param],
    buffers: &[Option<Tensor>],
    out: &mut HashMap<String, Tensor>,
) {
    for (p, b) in params.iter().zip(buffers) {
        if let Some(b) = b {
            out.insert(format!("{prefix}.{}", p.name), b.clone());
        }
    }
}

/// Reads the buffers named `{prefix}.{param name}` back; missing ones stay
/// empty (the parameter had no gradient yet).
fn restore_buffers(
    prefix: &str,
    params: &[Param],
    buffers: &mut [Option<Tensor>],
    state: &HashMap<String, Tensor>,
) -> Result<()> {
    for (p, b) in params.iter().zip(buffers.iter_mut()) {
        let name = format!("{prefix}.{}", p.name);
        *b = match state.get(&name) {
            Some(t) if t.dims() == p.var.dims() => {
                Some(t.to_device(p.var.device())?.to_dtype(p.var.dtype())?)
            }
            Some(t) => {
                return Err(DetectorError::Config(format!(
                    "optimiser state {name} has shape {:?} but the parameter has {:?}",
                    t.dims(),
                    p.var.dims()
                )));
            }
            None => None,
        };
    }
    Ok(())
}

fn decays(p: &Param) -> bool {
    p.kind == ParamKind::Weight
}

/// SGD as PyTorch defines it (dampening 0): `g ← ∇ + λ·θ` (weights only),
/// `v ← μ·v + g`, step `g + μ·v` (Nesterov) or `v`; `θ ← θ − lr·step`.
#[derive(Debug)]
pub struct Sgd {
    params: Vec<Param>,
    velocity: Vec<Option<Tensor>>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl Sgd {
    /// SGD over `params` (buffers are skipped).
    pub fn new(
        params: Vec<Param>,
        lr: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    ) -> Result<Self> {
        if !(lr >= 0.0 && (0.0..1.0).contains(&momentum) && weight_decay >= 0.0)
            || (nesterov && momentum == 0.0)
        {
            return Err(DetectorError::Config(format!(
                "SGD needs lr >= 0, momentum in [0, 1) (> 0 for Nesterov), weight decay >= 0; got {lr}, {momentum}, {weight_decay}"
            )));
        }
        let params: Vec<Param> = params
            .into_iter()
            .filter(|p| p.kind != ParamKind::Buffer)
            .collect();
        let velocity = vec![None; params.len()];
        Ok(Sgd {
            params,
            velocity,
            lr,
            momentum,
            nesterov,
            weight_decay,
        })
    }

    /// One parameter's update by tensor ops (any device and dtype).
    fn update_by_ops(&self, p: &Param, v: &mut Option<Tensor>, g: &Tensor) -> Result<()> {
        let theta = p.var.as_tensor();
        let mut g = g.clone();
        if self.weight_decay > 0.0 && decays(p) {
            // Detached again: `theta` is a variable, so the sum would
            // record an op and chain every step's velocity to the last.
            g = (g + (theta * self.weight_decay)?)?.detach();
        }
        let update = if self.momentum > 0.0 {
            let nv = match v.take() {
                Some(old) => ((old * self.momentum)? + &g)?,
                None => g.clone(),
            };
            let u = if self.nesterov {
                (&g + (&nv * self.momentum)?)?
            } else {
                nv.clone()
            };
            *v = Some(nv);
            u
        } else {
            g
        };
        p.var.set(&(theta - (update * self.lr)?)?)?;
        Ok(())
    }

    /// One parameter's update in one pass over contiguous f32 CPU
    /// tensors, with the same arithmetic in the same order as
    /// [`Sgd::update_by_ops`] (`x * c` there is candle's affine `x·c + 0`),
    /// so both give the same bits; `None` (nothing done) for any other
    /// tensor. Six tensor ops per parameter, each a pass and an
    /// allocation, were a serial 2% of the detector's step.
    fn update_fused(&self, p: &Param, v: &mut Option<Tensor>, g: &Tensor) -> Result<Option<()>> {
        let wd = (self.weight_decay > 0.0 && decays(p)).then_some(self.weight_decay as f32);
        let momentum = (self.momentum > 0.0).then_some(self.momentum as f32);
        let (nesterov, lr) = (self.nesterov, self.lr as f32);
        let theta = p.var.as_tensor();
        let fused = with_f32(theta, |theta| {
            with_f32(g, |g| {
                let update = |old: Option<&[f32]>| {
                    (theta.len() == g.len() && old.is_none_or(|o| o.len() == g.len()))
                        .then(|| sgd_f32(theta, g, old, wd, momentum, nesterov, lr))
                };
                match v.as_ref() {
                    Some(o) => with_f32(o, |o| update(Some(o))).flatten(),
                    None => update(None),
                }
            })
        });
        let Some(Some(Some((new_theta, new_v)))) = fused else {
            return Ok(None);
        };
        let (shape, dev) = (theta.shape().clone(), theta.device().clone());
        if let Some(nv) = new_v {
            *v = Some(Tensor::from_vec(nv, shape.clone(), &dev)?);
        }
        p.var.set(&Tensor::from_vec(new_theta, shape, &dev)?)?;
        Ok(Some(()))
    }
}

/// Runs `f` on the values of a contiguous f32 CPU tensor (`None` for
/// another tensor).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    let (a, b) = layout.contiguous_offsets()?;
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Some(f(&v[a..b])),
        _ => None,
    }
}

/// The SGD update of one parameter: `(θ', v')` from `θ`, its gradient and
/// its old velocity (`v'` only with momentum). Each product `x·c` is
/// computed as `x·c + 0`, as candle's affine does (which turns −0 into
/// +0). The loops run over zipped slices, so that they vectorise.
fn sgd_f32(
    theta: &[f32],
    grad: &[f32],
    old: Option<&[f32]>,
    wd: Option<f32>,
    momentum: Option<f32>,
    nesterov: bool,
    lr: f32,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let n = theta.len();
    let mut out = vec![0f32; n];
    let grad_of = |t: f32, g0: f32| match wd {
        Some(wd) => g0 + (t * wd + 0.0),
        None => g0,
    };
    let Some(m) = momentum else {
        for ((o, &t), &g0) in out.iter_mut().zip(theta).zip(grad) {
            *o = t - (grad_of(t, g0) * lr + 0.0);
        }
        return (out, None);
    };
    let step = |t: f32, g: f32, nv: f32| {
        let u = if nesterov { g + (nv * m + 0.0) } else { nv };
        t - (u * lr + 0.0)
    };
    let mut v = vec![0f32; n];
    match old {
        // Without an old velocity `v' = g` (not `μ·0 + g`, which is +0
        // where `g` is −0).
        None => {
            for (((o, nv), &t), &g0) in out.iter_mut().zip(&mut v).zip(theta).zip(grad) {
                let g = grad_of(t, g0);
                *nv = g;
                *o = step(t, g, g);
            }
        }
        Some(old) => {
            let it = out
                .iter_mut()
                .zip(&mut v)
                .zip(theta.iter().zip(grad).zip(old));
            for ((o, nv), ((&t, &g0), &ov)) in it {
                let g = grad_of(t, g0);
                *nv = (ov * m + 0.0) + g;
                *o = step(t, g, *nv);
            }
        }
    }
    (out, Some(v))
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for i in 0..self.params.len() {
            let p = &self.params[i];
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            // candle leaves a variable's gradient attached to the forward
            // graph; a momentum buffer built from it would keep every
            // step's activations alive (memory grows without bound).
            let g = g.detach();
            let mut v = self.velocity[i].take();
            let done = self.update_fused(p, &mut v, &g)?;
            if done.is_none() {
                self.update_by_ops(p, &mut v, &g)?;
            }
            self.velocity[i] = v;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        named_buffers("velocity", &self.params, &self.velocity, &mut out);
        Ok(out)
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        restore_buffers("velocity", &self.params, &mut self.velocity, state)
    }
}

/// AdamW (Loshchilov & Hutter 2019): decoupled weight decay on weights only.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<Param>,
    m: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
    t: i32,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    /// AdamW over `params` (buffers are skipped), β = (0.9, 0.999), ε = 1e-8.
    pub fn new(params: Vec<Param>, lr: f64, weight_decay: f64) -> Result<Self> {
        if !(lr >= 0.0 && weight_decay >= 0.0) {
            return Err(DetectorError::Config(format!(
                "AdamW needs lr >= 0 and weight decay >= 0; got {lr}, {weight_decay}"
            )));
        }
        let params: Vec<Param> = params
            .into_iter()
            .filter(|p| p.kind != ParamKind::Buffer)
            .collect();
        let n = params.len();
        Ok(AdamW {
            params,
            m: vec![None; n],
            v: vec![None; n],
            t: 0,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
        })
    }

    /// The bias corrections `1 − β₁ᵗ`, `1 − β₂ᵗ` of the current step.
    fn corrections(&self) -> (f64, f64) {
        let (b1, b2) = self.betas;
        (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t))
    }

    /// Parameter `i`'s update by tensor ops (any device and dtype).
    fn update_by_ops(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let ((b1, b2), (c1, c2)) = (self.betas, self.corrections());
        let p = &self.params[i];
        let m = match self.m[i].take() {
            Some(m) => ((m * b1)? + (g * (1.0 - b1))?)?,
            None => (g * (1.0 - b1))?,
        };
        let v = match self.v[i].take() {
            Some(v) => ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?,
            None => (g.sqr()? * (1.0 - b2))?,
        };
        let mut theta = p.var.as_tensor().clone();
        if self.weight_decay > 0.0 && decays(p) {
            theta = (&theta * (1.0 - self.lr * self.weight_decay))?;
        }
        let step = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
        p.var.set(&(theta - (step * self.lr)?)?)?;
        self.m[i] = Some(m);
        self.v[i] = Some(v);
        Ok(())
    }

    /// Parameter `i`'s update in one pass over contiguous f32 CPU tensors,
    /// with the arithmetic of [`AdamW::update_by_ops`] in the same order
    /// (candle's `x * c`, `x / c` and `x + c` are its affine `x·c' + a` in
    /// f32), so both give the same bits; `None` (nothing done) for any
    /// other tensor. Seventeen tensor ops per parameter, each a pass and
    /// an allocation, were a serial stretch of every training step.
    fn update_fused(&mut self, i: usize, g: &Tensor) -> Result<Option<()>> {
        let ((b1, b2), (c1, c2)) = (self.betas, self.corrections());
        let p = &self.params[i];
        let c = AdamConsts {
            b1: b1 as f32,
            one_b1: (1.0 - b1) as f32,
            b2: b2 as f32,
            one_b2: (1.0 - b2) as f32,
            decay: (self.weight_decay > 0.0 && decays(p))
                .then_some((1.0 - self.lr * self.weight_decay) as f32),
            inv_c1: (1.0 / c1) as f32,
            inv_c2: (1.0 / c2) as f32,
            eps: self.eps as f32,
            lr: self.lr as f32,
        };
        let theta = p.var.as_tensor();
        let (old_m, old_v) = (self.m[i].as_ref(), self.v[i].as_ref());
        // Both moments or neither (they are created together).
        if old_m.is_some() != old_v.is_some() {
            return Ok(None);
        }
        let fused = with_f32(theta, |theta| {
            with_f32(g, |g| {
                let moments = old_m.zip(old_v);
                let run = |old: Option<(&[f32], &[f32])>| {
                    let n = theta.len();
                    (g.len() == n && old.is_none_or(|(m, v)| m.len() == n && v.len() == n))
                        .then(|| adamw_f32(theta, g, old, &c))
                };
                match moments {
                    Some((m, v)) => {
                        with_f32(m, |m| with_f32(v, |v| run(Some((m, v)))).flatten()).flatten()
                    }
                    None => run(None),
                }
            })
        });
        let Some(Some(Some((new_theta, m, v)))) = fused else {
            return Ok(None);
        };
        let (shape, dev) = (theta.shape().clone(), theta.device().clone());
        self.m[i] = Some(Tensor::from_vec(m, shape.clone(), &dev)?);
        self.v[i] = Some(Tensor::from_vec(v, shape.clone(), &dev)?);
        p.var.set(&Tensor::from_vec(new_theta, shape, &dev)?)?;
        Ok(Some(()))
    }
}

/// The f32 constants of one AdamW update, as candle's affine casts them.
struct AdamConsts {
    b1: f32,
    one_b1: f32,
    b2: f32,
    one_b2: f32,
    /// `1 − lr·wd` where the parameter decays.
    decay: Option<f32>,
    inv_c1: f32,
    inv_c2: f32,
    eps: f32,
    lr: f32,
}

/// The AdamW update of one parameter: `(θ', m', v')` from `θ`, its
/// gradient and its old moments, each step written as
/// [`AdamW::update_by_ops`]'s ops compute it (`x·c + a` for candle's
/// affine), in one loop that vectorises.
fn adamw_f32(
    theta: &[f32],
    grad: &[f32],
    old: Option<(&[f32], &[f32])>,
    c: &AdamConsts,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = theta.len();
    let (mut out, mut m, mut v) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let update = |t: f32, nm: f32, nv: f32| {
        let t = match c.decay {
            Some(d) => t * d + 0.0,
            None => t,
        };
        let den = (nv * c.inv_c2 + 0.0).sqrt() * 1.0 + c.eps;
        let step = (nm * c.inv_c1 + 0.0) / den;
        t - (step * c.lr + 0.0)
    };
    let new = out.iter_mut().zip(m.iter_mut().zip(&mut v));
    match old {
        None => {
            for ((o, (nm, nv)), (&t, &g)) in new.zip(theta.iter().zip(grad)) {
                *nm = g * c.one_b1 + 0.0;
                *nv = (g * g) * c.one_b2 + 0.0;
                *o = update(t, *nm, *nv);
            }
        }
        Some((om, ov)) => {
            let olds = theta.iter().zip(grad).zip(om.iter().zip(ov));
            for ((o, (nm, nv)), ((&t, &g), (&pm, &pv))) in new.zip(olds) {
                *nm = (pm * c.b1 + 0.0) + (g * c.one_b1 + 0.0);
                *nv = (pv * c.b2 + 0.0) + ((g * g) * c.one_b2 + 0.0);
                *o = update(t, *nm, *nv);
            }
        }
    }
    (out, m, v)
}

impl Optimizer for AdamW {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        for i in 0..self.params.len() {
            let Some(g) = grads.get(self.params[i].var.as_tensor()) else {
                continue;
            };
            // Detached for the reason given in `Sgd::step`.
            let g = g.detach();
            if self.update_fused(i, &g)?.is_none() {
                self.update_by_ops(i, &g)?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        named_buffers("m", &self.params, &self.m, &mut out);
        named_buffers("v", &self.params, &self.v, &mut out);
        out.insert("t".into(), Tensor::new(&[i64::from(self.t)], &Device::Cpu)?);
        Ok(out)
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        restore_buffers("m", &self.params, &mut self.m, state)?;
        restore_buffers("v", &self.params, &mut self.v, state)?;
        let t = match state.get("t") {
            Some(t) => t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?,
            None => vec![0],
        };
        self.t = t.first().copied().unwrap_or(0).try_into().map_err(|_| {
            DetectorError::Config(format!("optimiser state t = {t:?} is out of range"))
        })?;
        Ok(())
    }
}

/// Scales the gradients of `params` so their global L2 norm is at most
/// `max_norm`; returns the norm before clipping. A non-finite norm is an
/// error (the caller names the step).
pub fn clip_grad_norm(grads: &mut GradStore, params: &[Param], max_norm: f64) -> Result<f64> {
    let mut sq = 0.0f64;
    for p in params {
        if let Some(g) = grads.get(p.var.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if !norm.is_finite() {
        return Err(DetectorError::Input(format!("gradient norm is {norm}")));
    }
    if norm > max_norm && norm > 0.0 {
        let scale = max_norm / norm;
        for p in params {
            if let Some(g) = grads.remove(p.var.as_tensor()) {
                grads.insert(p.var.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Linear warm-up factor: rises from `start` to 1 over `warmup_steps`.
pub fn warmup_factor(step: u64, warmup_steps: u64, start: f64) -> f64 {
    if step >= warmup_steps || warmup_steps == 0 {
        1.0
    } else {
        start + (1.0 - start) * step as f64 / warmup_steps as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamStore;

    /// The fused update gives the same bits as the tensor ops, for every
    /// combination of momentum, Nesterov and weight decay, over steps with
    /// and without an old velocity, and gradients holding −0.
    #[test]
    fn fused_sgd_matches_the_tensor_ops_bit_for_bit() {
        for (momentum, nesterov, wd) in [
            (0.0, false, 0.0),
            (0.0, false, 1e-2),
            (0.9, false, 0.0),
            (0.9, false, 5e-4),
            (0.9, true, 1e-4),
        ] {
            fused_and_ops_agree(
                &format!("momentum {momentum} nesterov {nesterov} wd {wd}"),
                |fused| {
                    let ps = two_params();
                    let mut sgd = Sgd::new(ps.trainable(), 0.1, momentum, nesterov, wd).unwrap();
                    let mut seen = Vec::new();
                    for step in 0..3 {
                        for i in 0..sgd.params.len() {
                            let p = &sgd.params[i];
                            let g = test_grad(p, step);
                            let mut v = sgd.velocity[i].take();
                            if fused {
                                assert!(sgd.update_fused(p, &mut v, &g).unwrap().is_some());
                            } else {
                                sgd.update_by_ops(p, &mut v, &g).unwrap();
                            }
                            sgd.velocity[i] = v;
                        }
                        seen.extend(sgd.params.iter().map(|p| values(p.var.as_tensor())));
                        seen.extend(sgd.velocity.iter().flatten().map(values));
                    }
                    seen
                },
            );
        }
    }

    /// The fused AdamW update gives the same bits as the tensor ops, with
    /// and without weight decay (which skips biases), over steps with and
    /// without old moments, and gradients holding −0.
    #[test]
    fn fused_adamw_matches_the_tensor_ops_bit_for_bit() {
        for wd in [0.0, 1e-4, 5e-2] {
            fused_and_ops_agree(&format!("wd {wd}"), |fused| {
                let ps = two_params();
                let mut adam = AdamW::new(ps.trainable(), 6e-3, wd).unwrap();
                let mut seen = Vec::new();
                for step in 0..4 {
                    adam.t += 1;
                    for i in 0..adam.params.len() {
                        let g = test_grad(&adam.params[i], step);
                        if fused {
                            assert!(adam.update_fused(i, &g).unwrap().is_some());
                        } else {
                            adam.update_by_ops(i, &g).unwrap();
                        }
                    }
                    seen.extend(adam.params.iter().map(|p| values(p.var.as_tensor())));
                    seen.extend(adam.m.iter().chain(&adam.v).flatten().map(values));
                }
                seen
            });
        }
    }

    /// A weight (decayed) and a bias (not decayed).
    fn two_params() -> ParamStore {
        let mut ps = ParamStore::new(3, &Device::Cpu);
        ps.normal("w", &[4, 3], 0.5).unwrap();
        ps.constant("b", &[4], 0.25, ParamKind::Bias).unwrap();
        ps
    }

    /// A gradient for `p` at `step`, holding a −0.
    fn test_grad(p: &Param, step: usize) -> Tensor {
        let g: Vec<f32> = (0..p.var.elem_count())
            .map(|j| match j {
                0 => -0.0,
                _ => (j * 7 + step) as f32 * 0.01 - 0.05,
            })
            .collect();
        Tensor::from_vec(g, p.var.shape(), &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// `run(true)` (the fused update) and `run(false)` (the tensor ops)
    /// record the same bits.
    fn fused_and_ops_agree(what: &str, run: impl Fn(bool) -> Vec<Vec<f32>>) {
        let bits = |r: Vec<Vec<f32>>| -> Vec<Vec<u32>> {
            r.iter()
                .map(|v| v.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(run(true)), bits(run(false)), "{what}");
    }
}
