//! # isdet-detector
//!
//! The candle models of isdet and everything needed to train them: an
//! FCOS-style single-stage anchor-free detector ([`Fcos`]), a small
//! pre-activation ResNet classifier ([`Classifier`]), FCOS target assignment
//! ([`assign()`]), the losses with per-image values and class probabilities
//! from one forward pass ([`fcos_loss`]), decoding with NMS ([`decode()`]),
//! optimisers candle lacks ([`Sgd`], [`AdamW`], [`clip_grad_norm`]) and
//! checkpoints. The CPU kernels the models run on are `isdet-kernels`,
//! chosen per model with `with_kernels` ([`Kernels::Fast`] by default).
//!
//! Weights are drawn from the project's own seeded generator: the same seed
//! gives the same model. The device is one value passed in; the `cuda`
//! feature enables candle's CUDA backend.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use isdet_data::{Annotation, BBox};
//! use isdet_detector::{Fcos, FcosConfig, Optimizer, Sgd, assign, fcos_loss};
//!
//! let model = Fcos::new(FcosConfig::tiny(2, 64), 0, &Device::Cpu)?;
//! let images = Tensor::zeros((2, 3, 64, 64), candle_core::DType::F32, &Device::Cpu)?;
//! let boxes = vec![Annotation { bbox: BBox::new(8.0, 8.0, 40.0, 30.0), class: 1, crowd: false }];
//! let targets = assign(model.locations(), &[&boxes[..], &[]], 2, 1.5)?;
//! let out = model.forward(&images, true)?;
//! let loss = fcos_loss(&out, &targets, None)?;
//! assert_eq!(loss.per_image.len(), 2);
//! let mut sgd = Sgd::new(model.params().trainable(), 0.01, 0.9, false, 1e-4)?;
//! sgd.step(&loss.objective.backward()?)?;
//! # Ok::<(), isdet_detector::DetectorError>(())
//! ```
#![deny(missing_docs)]

pub mod assign;
pub mod checkpoint;
mod classifier;
pub mod decode;
mod detect;
mod error;
mod fcos;
mod layers;
pub mod loss;
mod optim;
mod params;

pub use assign::{Locations, Targets, assign};
pub use classifier::{Classifier, ClassifierConfig, class_probabilities, soft_cross_entropy};
pub use decode::{DecodeConfig, Detection, decode, nms, to_coco_results};
pub use error::{DetectorError, Result};
pub use fcos::{Fcos, FcosConfig, HeadOutput};
pub use isdet_data::CocoResult;
pub use isdet_kernels::Kernels;
pub use layers::NormKind;
pub use loss::{LossOutput, fcos_loss};
pub use optim::{AdamW, Optimizer, Sgd, clip_grad_norm, warmup_factor};
pub use params::{Param, ParamKind, ParamStore};
