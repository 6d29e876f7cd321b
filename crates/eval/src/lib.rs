//! # isdet-eval
//!
//! How isdet measures a model and a run: COCO box metrics through hotcoco
//! (bit-identical to pycocotools: the 12 summary statistics `AP`, `AP50`,
//! `AP75`, `APs`, `APm`, `APl`, `AR1`, `AR10`, `AR100`, `ARs`, `ARm`, `ARl`
//! and per-class AP), top-1 accuracy for classification, and metrics of a
//! whole training curve: the cost to reach a target (in optimiser steps,
//! backward passes, images or seconds), the mean metric over a cost range,
//! and, across seeds, means with 95% bootstrap intervals and paired
//! bootstrap comparisons.
//!
//! It has no candle dependency: anything that can write COCO results can be
//! scored with it.
//!
//! ```
//! use isdet_eval::{CostAxis, CurvePoint, CocoResult, GroundTruth, GtImage, cost_to_target, evaluate_boxes};
//!
//! let mut gt = GroundTruth::new([(1, "square".to_string())]);
//! let image = GtImage { id: 7, width: 64, height: 64, file_name: "7.png".into() };
//! gt.add_image(image, [(1, [10.0, 10.0, 20.0, 20.0], false)])?;
//! let found = CocoResult { image_id: 7, category_id: 1, bbox: [10.0, 10.0, 20.0, 20.0], score: 0.9 };
//! let metrics = evaluate_boxes(&gt, &[found])?;
//! assert!((metrics.get("AP50").unwrap() - 1.0).abs() < 1e-12);
//!
//! let curve = [
//!     CurvePoint { steps: 100.0, metric: 0.2, ..Default::default() },
//!     CurvePoint { steps: 200.0, metric: 0.6, ..Default::default() },
//! ];
//! assert_eq!(cost_to_target(&curve, 0.4, CostAxis::Steps), Some(150.0));
//! # Ok::<(), isdet_eval::EvalError>(())
//! ```
#![deny(missing_docs)]

mod accuracy;
mod coco;
mod curve;
mod error;
mod stats;

pub use accuracy::top1_accuracy;
pub use coco::{
    BoxMetrics, GroundTruth, GtAnnotation, GtCategory, GtImage, STAT_NAMES, evaluate_boxes,
    evaluate_files, read_results, summary_lines, write_json_atomic, write_results,
};
pub use curve::{
    CostAxis, CurvePoint, cost_to_target, final_metric, mean_metric_over_cost, metric_at_cost,
};
pub use error::{EvalError, Result};
pub use isdet_data::CocoResult;
pub use stats::{
    DEFAULT_RESAMPLES, FEW_SEEDS, PairedComparison, SeedSummary, TInterval, paired_bootstrap,
    paired_t_interval, student_t_quantile, summarize_seeds, t_interval,
};
