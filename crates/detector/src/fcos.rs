//! The FCOS-style single-stage anchor-free detector: a residual backbone, a
//! three-level feature pyramid (strides 8, 16, 32) and a shared head tower.

use candle_core::{Device, Tensor, Var};
use isdet_kernels::{Kernels, add_relu, upsample_nearest};
use serde::{Deserialize, Serialize};

use crate::assign::Locations;
use crate::error::{DetectorError, Result};
use crate::layers::{Conv, ConvNorm, NormKind};
use crate::params::{ParamKind, ParamStore};

/// The architecture of a detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FcosConfig {
    /// Number of object classes.
    pub num_classes: usize,
    /// Side of the square input (a multiple of 32).
    pub input_size: usize,
    /// Stem width, then the widths of the four backbone stages (strides 4,
    /// 8, 16, 32); the last three feed the pyramid.
    pub widths: [usize; 5],
    /// Residual blocks per stage.
    pub blocks: [usize; 4],
    /// Channels of the pyramid and the head.
    pub fpn_channels: usize,
    /// Convolutions in each head tower (classification and regression).
    pub head_convs: usize,
    /// Normalisation of the backbone and pyramid.
    pub norm: NormKind,
    /// Normalisation of the head towers (FCOS uses GroupNorm).
    pub head_norm: NormKind,
    /// Centre-sampling radius in strides.
    pub center_radius: f32,
}

impl FcosConfig {
    /// `tiny` (~0.4 M parameters): the default for CPU runs.
    pub fn tiny(num_classes: usize, input_size: usize) -> Self {
        FcosConfig {
            num_classes,
            input_size,
            widths: [16, 24, 48, 64, 96],
            blocks: [1, 1, 1, 1],
            fpn_channels: 48,
            head_convs: 2,
            norm: NormKind::Batch,
            head_norm: NormKind::Group(8),
            center_radius: 1.5,
        }
    }

    /// `small` (a few M parameters): for GPU runs.
    pub fn small(num_classes: usize, input_size: usize) -> Self {
        FcosConfig {
            widths: [32, 64, 128, 192, 256],
            blocks: [1, 2, 2, 2],
            fpn_channels: 128,
            head_convs: 4,
            head_norm: NormKind::Group(16),
            ..FcosConfig::tiny(num_classes, input_size)
        }
    }

    /// The preset called `name` (`tiny` or `small`).
    pub fn preset(name: &str, num_classes: usize, input_size: usize) -> Result<Self> {
        match name {
            "tiny" => Ok(FcosConfig::tiny(num_classes, input_size)),
            "small" => Ok(FcosConfig::small(num_classes, input_size)),
            other => Err(DetectorError::Config(format!(
                "unknown detector preset {other:?} (expected tiny or small)"
            ))),
        }
    }

    /// The pyramid strides.
    pub fn strides(&self) -> [usize; 3] {
        [8, 16, 32]
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DetectorError::Config(m));
        if self.num_classes == 0 {
            return bad("a detector needs at least one class".into());
        }
        if self.input_size == 0 || !self.input_size.is_multiple_of(32) {
            return bad(format!(
                "input size {} is not a positive multiple of 32",
                self.input_size
            ));
        }
        if self.widths.contains(&0) || self.fpn_channels == 0 || self.blocks.contains(&0) {
            return bad("widths, blocks and fpn_channels must be positive".into());
        }
        Ok(())
    }
}

/// A residual basic block (two 3×3 convolutions), with a 1×1 projection
/// when the shape changes.
#[derive(Debug, Clone)]
struct BasicBlock {
    a: ConvNorm,
    b: ConvNorm,
    shortcut: Option<ConvNorm>,
}

impl BasicBlock {
    fn new(
        ps: &mut ParamStore,
        name: &str,
        cin: usize,
        cout: usize,
        stride: usize,
        norm: NormKind,
    ) -> Result<Self> {
        let shortcut = if cin != cout || stride != 1 {
            Some(ConvNorm::new(
                ps,
                &format!("{name}.short"),
                (cin, cout, 1, stride),
                norm,
                false,
            )?)
        } else {
            None
        };
        Ok(BasicBlock {
            a: ConvNorm::new(ps, &format!("{name}.a"), (cin, cout, 3, stride), norm, true)?,
            b: ConvNorm::new(ps, &format!("{name}.b"), (cout, cout, 3, 1), norm, false)?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor, train: bool, k: Kernels) -> Result<Tensor> {
        let y = self.b.forward(&self.a.forward(x, train, k)?, train, k)?;
        let s = match &self.shortcut {
            Some(c) => c.forward(x, train, k)?,
            None => x.clone(),
        };
        Ok(add_relu(&y, &s, k)?)
    }
}

/// The raw head outputs of a batch, levels concatenated finest first
/// (the order of [`Locations`]).
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// Classification logits `[B, L, C]`.
    pub cls_logits: Tensor,
    /// Regression `(l, t, r, b)` in strides, non-negative, `[B, L, 4]`.
    pub ltrb: Tensor,
    /// Centre-ness logits `[B, L]`.
    pub ctr_logits: Tensor,
}

/// The detector.
#[derive(Debug)]
pub struct Fcos {
    config: FcosConfig,
    params: ParamStore,
    stem: ConvNorm,
    stages: Vec<Vec<BasicBlock>>,
    lateral: Vec<Conv>,
    output: Vec<ConvNorm>,
    cls_tower: Vec<ConvNorm>,
    reg_tower: Vec<ConvNorm>,
    cls_pred: Conv,
    reg_pred: Conv,
    ctr_pred: Conv,
    scales: Vec<Var>,
    locations: Locations,
    kernels: Kernels,
}

impl Fcos {
    /// A detector with weights drawn from `seed` (Kaiming-normal convs,
    /// N(0, 0.01²) prediction layers, classification bias prior 0.01).
    pub fn new(config: FcosConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut ps = ParamStore::new(seed, device);
        let (w, norm) = (config.widths, config.norm);
        let stem = ConvNorm::new(&mut ps, "stem", (3, w[0], 3, 2), norm, true)?;
        let mut stages = Vec::new();
        for s in 0..4 {
            let mut blocks = Vec::new();
            for k in 0..config.blocks[s] {
                let (cin, stride) = if k == 0 { (w[s], 2) } else { (w[s + 1], 1) };
                blocks.push(BasicBlock::new(
                    &mut ps,
                    &format!("stage{s}.{k}"),
                    cin,
                    w[s + 1],
                    stride,
                    norm,
                )?);
            }
            stages.push(blocks);
        }
        let f = config.fpn_channels;
        let mut lateral = Vec::new();
        let mut output = Vec::new();
        for (i, &c) in w[2..].iter().enumerate() {
            lateral.push(Conv::new(
                &mut ps,
                &format!("fpn.lateral{i}"),
                (c, f, 1, 1),
                Some(0.0),
            )?);
            output.push(ConvNorm::new(
                &mut ps,
                &format!("fpn.out{i}"),
                (f, f, 3, 1),
                norm,
                true,
            )?);
        }
        let tower = |ps: &mut ParamStore, name: &str| -> Result<Vec<ConvNorm>> {
            (0..config.head_convs)
                .map(|i| {
                    ConvNorm::new(
                        ps,
                        &format!("head.{name}{i}"),
                        (f, f, 3, 1),
                        config.head_norm,
                        true,
                    )
                })
                .collect()
        };
        let cls_tower = tower(&mut ps, "cls")?;
        let reg_tower = tower(&mut ps, "reg")?;
        let prior = -((1.0f32 - 0.01) / 0.01).ln();
        let cls_pred = Conv::new_normal(
            &mut ps,
            "head.cls_pred",
            (f, config.num_classes, 3),
            0.01,
            prior,
        )?;
        let reg_pred = Conv::new_normal(&mut ps, "head.reg_pred", (f, 4, 3), 0.01, 0.0)?;
        let ctr_pred = Conv::new_normal(&mut ps, "head.ctr_pred", (f, 1, 3), 0.01, 0.0)?;
        let scales = (0..3)
            .map(|i| ps.constant(&format!("head.scale{i}"), &[1], 1.0, ParamKind::Bias))
            .collect::<Result<Vec<_>>>()?;
        let locations = Locations::new(config.input_size, &config.strides())?;
        Ok(Fcos {
            config,
            params: ps,
            stem,
            stages,
            lateral,
            output,
            cls_tower,
            reg_tower,
            cls_pred,
            reg_pred,
            ctr_pred,
            scales,
            locations,
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
    pub fn config(&self) -> &FcosConfig {
        &self.config
    }

    /// The parameters (for optimisers and checkpoints).
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The locations the outputs are laid out on.
    pub fn locations(&self) -> &Locations {
        &self.locations
    }

    /// Runs the network on an NCHW batch of `input_size²` images; `train`
    /// selects BatchNorm's batch statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<HeadOutput> {
        let (_, c, h, w) = x.dims4()?;
        if c != 3 || h != self.config.input_size || w != self.config.input_size {
            return Err(DetectorError::Input(format!(
                "expected [B, 3, {s}, {s}] images, got {:?}",
                x.dims(),
                s = self.config.input_size
            )));
        }
        let k = self.kernels;
        let mut y = self.stem.forward(x, train, k)?;
        let mut feats = Vec::new();
        for (s, blocks) in self.stages.iter().enumerate() {
            for b in blocks {
                y = b.forward(&y, train, k)?;
            }
            if s >= 1 {
                feats.push(y.clone());
            }
        }
        let pyramid = self.pyramid(&feats, train)?;
        let (mut cls, mut reg, mut ctr) = (Vec::new(), Vec::new(), Vec::new());
        for (level, p) in pyramid.iter().enumerate() {
            let mut c = p.clone();
            for layer in &self.cls_tower {
                c = layer.forward(&c, train, k)?;
            }
            let mut r = p.clone();
            for layer in &self.reg_tower {
                r = layer.forward(&r, train, k)?;
            }
            cls.push(flatten_level(&self.cls_pred.forward(&c, k)?)?);
            let scaled = self
                .reg_pred
                .forward(&r, k)?
                .broadcast_mul(self.scales[level].as_tensor())?;
            reg.push(flatten_level(&scaled.relu()?)?);
            ctr.push(flatten_level(&self.ctr_pred.forward(&r, k)?)?.squeeze(2)?);
        }
        Ok(HeadOutput {
            cls_logits: Tensor::cat(&cls, 1)?,
            ltrb: Tensor::cat(&reg, 1)?,
            ctr_logits: Tensor::cat(&ctr, 1)?,
        })
    }

    /// Top-down pyramid: lateral 1×1 projections, nearest ×2 upsampling and
    /// addition, then a 3×3 smoothing block per level.
    fn pyramid(&self, feats: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        let mut out = vec![None; feats.len()];
        let mut top: Option<Tensor> = None;
        for i in (0..feats.len()).rev() {
            let k = self.kernels;
            let mut p = self.lateral[i].forward(&feats[i], k)?;
            if let Some(t) = &top {
                let (_, _, h, w) = p.dims4()?;
                p = (p + upsample_nearest(t, h, w, k)?)?;
            }
            top = Some(p.clone());
            out[i] = Some(self.output[i].forward(&p, train, k)?);
        }
        out.into_iter()
            .map(|p| p.ok_or_else(|| DetectorError::Config("empty pyramid level".into())))
            .collect()
    }
}

/// `[B, C, H, W]` → `[B, H·W, C]`.
fn flatten_level(t: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = t.dims4()?;
    Ok(t.permute((0, 2, 3, 1))?.reshape((b, h * w, c))?)
}
