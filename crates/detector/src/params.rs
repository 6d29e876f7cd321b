//! Parameters: drawn from the project's own seeded generator (candle's CPU
//! generator cannot be seeded), named, and marked for weight decay or not.

use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::Result;

/// What a parameter is, which decides its weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A convolution or linear weight: decayed.
    Weight,
    /// A bias: not decayed.
    Bias,
    /// A normalisation scale or shift: not decayed.
    Norm,
    /// Running statistics (BatchNorm mean/variance): saved, never trained.
    Buffer,
}

/// One named parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted name, unique within a model (the checkpoint key).
    pub name: String,
    /// The variable.
    pub var: Var,
    /// Its kind.
    pub kind: ParamKind,
}

/// All parameters of a model, in creation order, and the seeded generator
/// that draws their initial values.
#[derive(Debug)]
pub struct ParamStore {
    params: Vec<Param>,
    rng: ChaCha8Rng,
    device: Device,
}

impl ParamStore {
    /// An empty store whose initial values are a pure function of `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        ParamStore {
            params: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
        }
    }

    /// The device parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every parameter, buffers included.
    pub fn all(&self) -> &[Param] {
        &self.params
    }

    /// The variables an optimiser updates (everything but buffers).
    pub fn trainable(&self) -> Vec<Param> {
        self.params
            .iter()
            .filter(|p| p.kind != ParamKind::Buffer)
            .cloned()
            .collect()
    }

    /// Number of trainable scalars.
    pub fn count(&self) -> usize {
        self.params
            .iter()
            .filter(|p| p.kind != ParamKind::Buffer)
            .map(|p| p.var.elem_count())
            .sum()
    }

    fn push(
        &mut self,
        name: String,
        values: Vec<f32>,
        shape: &[usize],
        kind: ParamKind,
    ) -> Result<Var> {
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &self.device)?)?;
        self.params.push(Param {
            name,
            var: var.clone(),
            kind,
        });
        Ok(var)
    }

    /// A weight drawn from N(0, std²).
    pub fn normal(&mut self, name: &str, shape: &[usize], std: f32) -> Result<Var> {
        let n: usize = shape.iter().product();
        let dist = Normal::new(0.0f32, std.max(1e-12))
            .map_err(|e| crate::DetectorError::Config(format!("{name}: {e}")))?;
        let values = (0..n).map(|_| dist.sample(&mut self.rng)).collect();
        self.push(name.to_string(), values, shape, ParamKind::Weight)
    }

    /// A convolution weight `[out, in, k, k]` with Kaiming-normal
    /// initialisation for ReLU (std = sqrt(2 / fan_in)).
    pub fn kaiming(&mut self, name: &str, shape: &[usize]) -> Result<Var> {
        let fan_in: usize = shape[1..].iter().product();
        self.normal(name, shape, (2.0 / fan_in as f32).sqrt())
    }

    /// A tensor filled with `value`, of the given kind.
    pub fn constant(
        &mut self,
        name: &str,
        shape: &[usize],
        value: f32,
        kind: ParamKind,
    ) -> Result<Var> {
        let n: usize = shape.iter().product();
        self.push(name.to_string(), vec![value; n], shape, kind)
    }

    /// The parameter called `name`, if any.
    pub fn find(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}
