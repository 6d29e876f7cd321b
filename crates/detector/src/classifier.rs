//! A small pre-activation ResNet (He et al. 2016, "Identity Mappings") for
//! 28×28 and 32×32 inputs, with per-sample soft-target cross-entropy.

use candle_core::{D, Device, Tensor, Var};
use isdet_kernels::Kernels;
use serde::{Deserialize, Serialize};

use crate::error::{DetectorError, Result};
use crate::layers::{Conv, Norm, NormKind};
use crate::params::{ParamKind, ParamStore};

/// The architecture of a classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Input channels (1 for MNIST-style data, 3 for RGB).
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Widths of the three stages (strides 1, 2, 2).
    pub widths: [usize; 3],
    /// Pre-activation blocks per stage.
    pub blocks: [usize; 3],
    /// Normalisation.
    pub norm: NormKind,
}

impl ClassifierConfig {
    /// The default small network (~0.2 M parameters).
    pub fn small(in_channels: usize, num_classes: usize) -> Self {
        ClassifierConfig {
            in_channels,
            num_classes,
            widths: [16, 32, 64],
            blocks: [2, 2, 2],
            norm: NormKind::Batch,
        }
    }
}

#[derive(Debug)]
struct PreActBlock {
    n1: Norm,
    c1: Conv,
    n2: Norm,
    c2: Conv,
    short: Option<Conv>,
}

impl PreActBlock {
    fn forward(&self, x: &Tensor, train: bool, k: Kernels) -> Result<Tensor> {
        let a = self.n1.forward_relu(x, train, true, k)?;
        let s = match &self.short {
            Some(c) => c.forward(&a, k)?,
            None => x.clone(),
        };
        let y = self.c1.forward(&a, k)?;
        let y = self
            .c2
            .forward(&self.n2.forward_relu(&y, train, true, k)?, k)?;
        Ok((y + s)?)
    }
}

/// The classifier.
#[derive(Debug)]
pub struct Classifier {
    config: ClassifierConfig,
    params: ParamStore,
    stem: Conv,
    blocks: Vec<PreActBlock>,
    norm: Norm,
    fc_weight: Var,
    fc_bias: Var,
    kernels: Kernels,
}

impl Classifier {
    /// A classifier with weights drawn from `seed`.
    pub fn new(config: ClassifierConfig, seed: u64, device: &Device) -> Result<Self> {
        if config.num_classes == 0 || config.widths.contains(&0) || config.blocks.contains(&0) {
            return Err(DetectorError::Config(format!(
                "invalid classifier {config:?}"
            )));
        }
        let mut ps = ParamStore::new(seed, device);
        let w = config.widths;
        let stem = Conv::new(&mut ps, "stem", (config.in_channels, w[0], 3, 1), None)?;
        let mut blocks = Vec::new();
        let mut cin = w[0];
        for (s, (&cout, &n)) in w.iter().zip(&config.blocks).enumerate() {
            for k in 0..n {
                let stride = if k == 0 && s > 0 { 2 } else { 1 };
                let name = format!("stage{s}.{k}");
                let short = if cin != cout || stride != 1 {
                    Some(Conv::new(
                        &mut ps,
                        &format!("{name}.short"),
                        (cin, cout, 1, stride),
                        None,
                    )?)
                } else {
                    None
                };
                blocks.push(PreActBlock {
                    n1: Norm::new(&mut ps, &format!("{name}.n1"), cin, config.norm)?,
                    c1: Conv::new(&mut ps, &format!("{name}.c1"), (cin, cout, 3, stride), None)?,
                    n2: Norm::new(&mut ps, &format!("{name}.n2"), cout, config.norm)?,
                    c2: Conv::new(&mut ps, &format!("{name}.c2"), (cout, cout, 3, 1), None)?,
                    short,
                });
                cin = cout;
            }
        }
        let norm = Norm::new(&mut ps, "final.norm", cin, config.norm)?;
        let fc_weight = ps.normal(
            "fc.weight",
            &[config.num_classes, cin],
            (1.0 / cin as f32).sqrt(),
        )?;
        let fc_bias = ps.constant("fc.bias", &[config.num_classes], 0.0, ParamKind::Bias)?;
        Ok(Classifier {
            config,
            params: ps,
            stem,
            blocks,
            norm,
            fc_weight,
            fc_bias,
            kernels: Kernels::default(),
        })
    }

    /// The same model running on the given kernels ([`Kernels::Fast`] by
    /// default; [`Kernels::Stock`] is candle's own ops, the reference).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// The architecture.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// The parameters.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Logits `[B, classes]` of an NCHW batch.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let k = self.kernels;
        let mut y = self.stem.forward(x, k)?;
        for b in &self.blocks {
            y = b.forward(&y, train, k)?;
        }
        let y = self.norm.forward_relu(&y, train, true, k)?;
        let pooled = y.mean(D::Minus1)?.mean(D::Minus1)?;
        Ok(pooled
            .matmul(&self.fc_weight.as_tensor().t()?)?
            .broadcast_add(self.fc_bias.as_tensor())?)
    }
}

/// Per-sample cross-entropy against soft targets `[B, C]` (one-hot, or the
/// mixed labels of mixup/cutmix/RICAP): `−Σ_c y_c · log_softmax(x)_c`,
/// shape `[B]`.
pub fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    Ok((logp * targets)?.sum(D::Minus1)?.neg()?)
}

/// Per-sample class probabilities `[B, C]` (detached).
pub fn class_probabilities(logits: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::softmax(&logits.detach(), D::Minus1)?)
}
