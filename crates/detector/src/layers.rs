//! Building blocks: convolution, normalisation (BatchNorm with train/eval
//! modes, or GroupNorm) and their combination.

use candle_core::{D, Tensor, Var};
use serde::{Deserialize, Serialize};

use isdet_kernels::{Kernels, NormStats, conv2d, norm_relu};

use crate::error::Result;
use crate::params::{ParamKind, ParamStore};

/// Which normalisation the convolutional blocks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// Batch normalisation (batch statistics in training, running
    /// statistics in evaluation).
    Batch,
    /// Group normalisation with at most this many groups (fewer when the
    /// channel count is not divisible); the same in training and evaluation.
    Group(usize),
}

/// A 2-D convolution with a square kernel.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Var,
    bias: Option<Var>,
    stride: usize,
    padding: usize,
}

impl Conv {
    /// A `k × k` convolution from `cin` to `cout` channels; "same" padding.
    /// Weights are Kaiming-normal; the bias (if any) starts at `bias_init`.
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        (cin, cout, k, stride): (usize, usize, usize, usize),
        bias_init: Option<f32>,
    ) -> Result<Self> {
        let weight = ps.kaiming(&format!("{name}.weight"), &[cout, cin, k, k])?;
        let bias = match bias_init {
            Some(v) => Some(ps.constant(&format!("{name}.bias"), &[cout], v, ParamKind::Bias)?),
            None => None,
        };
        Ok(Conv {
            weight,
            bias,
            stride,
            padding: k / 2,
        })
    }

    /// A convolution whose weights are drawn from N(0, std²) (heads).
    pub fn new_normal(
        ps: &mut ParamStore,
        name: &str,
        (cin, cout, k): (usize, usize, usize),
        std: f32,
        bias_init: f32,
    ) -> Result<Self> {
        let weight = ps.normal(&format!("{name}.weight"), &[cout, cin, k, k], std)?;
        let bias = ps.constant(&format!("{name}.bias"), &[cout], bias_init, ParamKind::Bias)?;
        Ok(Conv {
            weight,
            bias: Some(bias),
            stride: 1,
            padding: k / 2,
        })
    }

    /// Applies the convolution to an NCHW tensor with the given kernels
    /// (the fast ones fall back to candle's on non-CPU devices).
    pub fn forward(&self, x: &Tensor, imp: Kernels) -> Result<Tensor> {
        Ok(conv2d(
            x,
            self.weight.as_tensor(),
            self.bias.as_ref().map(Var::as_tensor),
            self.stride,
            self.padding,
            imp,
        )?)
    }
}

/// A normalisation layer over NCHW tensors.
#[derive(Debug, Clone)]
pub struct Norm {
    kind: NormKind,
    groups: usize,
    weight: Var,
    bias: Var,
    running_mean: Option<Var>,
    running_var: Option<Var>,
}

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

impl Norm {
    /// A normalisation of `channels` channels (scale 1, shift 0).
    pub fn new(ps: &mut ParamStore, name: &str, channels: usize, kind: NormKind) -> Result<Self> {
        let weight = ps.constant(&format!("{name}.weight"), &[channels], 1.0, ParamKind::Norm)?;
        let bias = ps.constant(&format!("{name}.bias"), &[channels], 0.0, ParamKind::Norm)?;
        let (running_mean, running_var, groups) = match kind {
            NormKind::Batch => (
                Some(ps.constant(
                    &format!("{name}.running_mean"),
                    &[channels],
                    0.0,
                    ParamKind::Buffer,
                )?),
                Some(ps.constant(
                    &format!("{name}.running_var"),
                    &[channels],
                    1.0,
                    ParamKind::Buffer,
                )?),
                1,
            ),
            NormKind::Group(g) => (
                None,
                None,
                (1..=g.max(1))
                    .rev()
                    .find(|d| channels.is_multiple_of(*d))
                    .unwrap_or(1),
            ),
        };
        Ok(Norm {
            kind,
            groups,
            weight,
            bias,
            running_mean,
            running_var,
        })
    }

    /// Normalises `x`, then applies a ReLU if `relu`; `train` selects batch
    /// statistics (and updates the running ones) for BatchNorm. With
    /// [`Kernels::Fast`] f32 CPU tensors go through one fused op.
    pub fn forward_relu(
        &self,
        x: &Tensor,
        train: bool,
        relu: bool,
        imp: Kernels,
    ) -> Result<Tensor> {
        if imp.fast_on(&[x, &self.weight]) {
            return self.forward_fused(x, train, relu);
        }
        let y = self.forward_stock(x, train)?;
        Ok(if relu { y.relu()? } else { y })
    }

    fn forward_fused(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let stats = match (self.kind, &self.running_mean, &self.running_var) {
            (NormKind::Batch, Some(_), Some(_)) if train => NormStats::Batch,
            (NormKind::Batch, Some(rm), Some(rv)) => NormStats::Fixed {
                mean: rm.as_detached_tensor().to_vec1::<f32>()?,
                var: rv.as_detached_tensor().to_vec1::<f32>()?,
            },
            _ => NormStats::Group(self.groups),
        };
        let out = norm_relu(
            x,
            self.weight.as_tensor(),
            self.bias.as_tensor(),
            stats,
            EPS,
            relu,
        )?;
        if let (Some((mean, var)), Some(rm), Some(rv)) =
            (out.batch_stats, &self.running_mean, &self.running_var)
        {
            let c = mean.len();
            let mean = Tensor::from_vec(mean, c, x.device())?;
            let var = Tensor::from_vec(var, c, x.device())?;
            self.update_running(rm, rv, &mean, &var, x)?;
        }
        Ok(out.y)
    }

    fn forward_stock(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let normed = match (self.kind, &self.running_mean, &self.running_var) {
            (NormKind::Batch, Some(rm), Some(rv)) => {
                if train {
                    let mean = x
                        .mean_keepdim(D::Minus1)?
                        .mean_keepdim(D::Minus2)?
                        .mean_keepdim(0)?;
                    let centred = x.broadcast_sub(&mean)?;
                    let var = centred
                        .sqr()?
                        .mean_keepdim(D::Minus1)?
                        .mean_keepdim(D::Minus2)?
                        .mean_keepdim(0)?;
                    self.update_running(rm, rv, &mean, &var, x)?;
                    centred.broadcast_div(&(var + EPS)?.sqrt()?)?
                } else {
                    let mean = rm.as_detached_tensor().reshape((1, (), 1, 1))?;
                    let var = rv.as_detached_tensor().reshape((1, (), 1, 1))?;
                    x.broadcast_sub(&mean)?
                        .broadcast_div(&(var + EPS)?.sqrt()?)?
                }
            }
            _ => {
                let (b, c, h, w) = x.dims4()?;
                let g = x.reshape((b, self.groups, (c / self.groups) * h * w))?;
                let mean = g.mean_keepdim(D::Minus1)?;
                let centred = g.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                centred
                    .broadcast_div(&(var + EPS)?.sqrt()?)?
                    .reshape((b, c, h, w))?
            }
        };
        let w = self.weight.as_tensor().reshape((1, (), 1, 1))?;
        let b = self.bias.as_tensor().reshape((1, (), 1, 1))?;
        Ok(normed.broadcast_mul(&w)?.broadcast_add(&b)?)
    }

    fn update_running(
        &self,
        rm: &Var,
        rv: &Var,
        mean: &Tensor,
        var: &Tensor,
        x: &Tensor,
    ) -> Result<()> {
        let (b, _, h, w) = x.dims4()?;
        let n = (b * h * w) as f64;
        // The running variance uses the unbiased estimate, as PyTorch does.
        let unbiased = (var.detach().flatten_all()? * (n / (n - 1.0).max(1.0)))?;
        let new_mean =
            ((rm.as_tensor() * (1.0 - MOMENTUM))? + (mean.detach().flatten_all()? * MOMENTUM)?)?;
        let new_var = ((rv.as_tensor() * (1.0 - MOMENTUM))? + (unbiased * MOMENTUM)?)?;
        rm.set(&new_mean)?;
        rv.set(&new_var)?;
        Ok(())
    }
}

/// Convolution, normalisation, then ReLU (optional).
#[derive(Debug, Clone)]
pub struct ConvNorm {
    conv: Conv,
    norm: Norm,
    relu: bool,
}

impl ConvNorm {
    /// A bias-free convolution followed by a normalisation.
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        shape: (usize, usize, usize, usize),
        norm: NormKind,
        relu: bool,
    ) -> Result<Self> {
        Ok(ConvNorm {
            conv: Conv::new(ps, &format!("{name}.conv"), shape, None)?,
            norm: Norm::new(ps, &format!("{name}.norm"), shape.1, norm)?,
            relu,
        })
    }

    /// Applies the block.
    pub fn forward(&self, x: &Tensor, train: bool, imp: Kernels) -> Result<Tensor> {
        self.norm
            .forward_relu(&self.conv.forward(x, imp)?, train, self.relu, imp)
    }
}
