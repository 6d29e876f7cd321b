//! Optimisation pieces candle lacks: SGD with momentum, Nesterov and weight
//! decay that skips norm and bias parameters; AdamW; gradient clipping by
//! global norm; linear warm-up.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};

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
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (p, v) in self.params.iter().zip(self.velocity.iter_mut()) {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            // candle leaves a variable's gradient attached to the forward
            // graph; a momentum buffer built from it would keep every
            // step's activations alive (memory grows without bound).
            let g = g.detach();
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
}

impl Optimizer for AdamW {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let (b1, b2) = self.betas;
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        for (i, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            // Detached for the reason given in `Sgd::step`.
            let g = &g.detach();
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
