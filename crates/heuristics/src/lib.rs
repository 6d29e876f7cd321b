//! # isdet-heuristics
//!
//! Turns one training forward pass's outputs into one importance score per
//! sample, for `isdet-sampler` to sample by: the heuristics of docs/methods.md,
//! "Scoring a training sample", computed from what the pass already made
//! (per-sample losses, class probabilities, the location mask), with no
//! extra forward or backward pass. It takes plain slices and candle
//! tensors and knows nothing of the models that made them.
//!
//! - [`Heuristic`]: the sample's loss (total or one detection part), the
//!   uncertainties entropy, margin and least confidence, threshold
//!   closeness (Chang et al. 2017, "Active Bias"), the gradient-norm upper
//!   bound (Katharopoulos & Fleuret 2018) in closed form for softmax
//!   cross-entropy and sigmoid focal loss, the per-visit p-SGD score (Arazo
//!   et al. 2021), AFSS's learning sufficiency (Xie et al. 2026:
//!   min(precision, recall) of an image's detections, see [`sufficiency`])
//!   and uniform.
//! - [`Aggregation`]: per-location values become one image score by mean,
//!   max, sum or top-k mean; [`Aggregation::DETECTION_DEFAULT`] is the
//!   mean of the top 10.
//! - [`ForwardOutputs`] and [`Targets`]: the inputs (with
//!   [`ImageBoxes`] for sufficiency). [`ScoringConfig`]:
//!   the serialisable choice. [`score_batch`] scores statelessly;
//!   [`Scorer`] also keeps the [`RunningTrueClassMean`] that Active Bias
//!   needs on classifiers, and credits mixed images to their sources.
//! - [`rules`]: each formula on one location, for reuse and testing.
//!
//! Scores are finite and non-negative; bad input is an error
//! ([`HeuristicsError`]), never a panic.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use isdet_heuristics::{Aggregation, ForwardOutputs, Heuristic, ScoringConfig, score_batch};
//!
//! // Two detection images, two locations, one class (sigmoid scores).
//! let dev = Device::Cpu;
//! let probs = Tensor::new(&[[[0.5f32], [0.01]], [[0.99], [0.0]]], &dev)?;
//! let mask = Tensor::new(&[[1f32, 1.0], [1.0, 0.0]], &dev)?;
//! let (losses, parts) = ([1.0f32, 0.5], [[0.6f32, 0.3, 0.1], [0.2, 0.2, 0.1]]);
//! let outputs = ForwardOutputs::detection(&losses, &parts, &probs, &mask);
//!
//! let config = ScoringConfig {
//!     heuristic: Heuristic::LeastConfidence,
//!     aggregation: Aggregation::Max,
//! };
//! // Image 0: 1 − max(0.5, 0.5) = 0.5 beats 1 − max(0.01, 0.99) = 0.01.
//! // Image 1: its second location is masked out, leaving 1 − 0.99.
//! let scores = score_batch(&config, &outputs)?;
//! assert!((scores[0] - 0.5).abs() < 1e-6 && (scores[1] - 0.01).abs() < 1e-6);
//!
//! // The same choice from a configuration file.
//! let config: ScoringConfig = serde_json::from_str(
//!     r#"{"heuristic": {"kind": "loss", "part": "classification"}}"#,
//! )?;
//! assert_eq!(score_batch(&config, &outputs)?, vec![0.6, 0.2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod config;
mod error;
mod inputs;
pub mod rules;
mod running;
mod scorer;
pub mod sufficiency;

pub use config::{
    Activation, Aggregation, DETECTION_TOP_K, FOCAL_ALPHA, FOCAL_GAMMA, Heuristic, LossPart,
    SCORE_THRESHOLD, SUFFICIENCY_IOU, SUFFICIENCY_SCORE, ScoringConfig,
};
pub use error::{HeuristicsError, Result};
pub use inputs::{ForwardOutputs, Targets};
pub use isdet_base::InvalidParameter;
pub use running::RunningTrueClassMean;
pub use scorer::{Scorer, score_batch};
pub use sufficiency::{ImageBoxes, Matches, ScoredBox, TruthBox};
