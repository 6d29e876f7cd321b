//! Metrics of a training curve: the final value, the cost to reach a
//! target, and the area under metric-versus-cost.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// One evaluation of a run: the metric and every cost counter at that
/// moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Optimiser steps taken.
    pub steps: f64,
    /// Per-sample backward passes.
    pub backward: f64,
    /// Per-sample forward passes (training and scoring).
    pub forward: f64,
    /// Images loaded.
    pub images: f64,
    /// Seconds of training (evaluation excluded).
    pub seconds: f64,
    /// The metric (AP, top-1, …).
    pub metric: f64,
}

/// Which cost a curve is read against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CostAxis {
    /// Optimiser steps.
    Steps,
    /// Per-sample backward passes.
    Backward,
    /// Per-sample forward passes.
    Forward,
    /// Images loaded.
    Images,
    /// Seconds of training.
    Seconds,
}

impl CostAxis {
    /// Every axis, in report order.
    pub const ALL: [CostAxis; 5] = [
        CostAxis::Steps,
        CostAxis::Backward,
        CostAxis::Forward,
        CostAxis::Images,
        CostAxis::Seconds,
    ];

    /// The point's cost on this axis.
    pub fn of(self, p: &CurvePoint) -> f64 {
        match self {
            CostAxis::Steps => p.steps,
            CostAxis::Backward => p.backward,
            CostAxis::Forward => p.forward,
            CostAxis::Images => p.images,
            CostAxis::Seconds => p.seconds,
        }
    }

    /// A label for tables and plot axes.
    pub fn label(self) -> &'static str {
        match self {
            CostAxis::Steps => "optimiser steps",
            CostAxis::Backward => "backward passes",
            CostAxis::Forward => "forward passes",
            CostAxis::Images => "images seen",
            CostAxis::Seconds => "seconds",
        }
    }
}

/// The metric at `cost` on `axis`, linear between the evaluations around
/// it; `None` outside the curve's range.
pub fn metric_at_cost(points: &[CurvePoint], axis: CostAxis, cost: f64) -> Option<f64> {
    let after = points.iter().position(|p| axis.of(p) >= cost)?;
    let b = &points[after];
    if axis.of(b) == cost {
        return Some(b.metric);
    }
    let a = points.get(after.checked_sub(1)?)?;
    let (ca, cb) = (axis.of(a), axis.of(b));
    Some(a.metric + (cost - ca) / (cb - ca) * (b.metric - a.metric))
}

/// The metric of the last point.
pub fn final_metric(points: &[CurvePoint]) -> Option<f64> {
    points.last().map(|p| p.metric)
}

/// The cost at which the curve first reaches `target`, interpolated
/// linearly between the last evaluation below the target and the first at
/// or above it; `None` if it never does. A curve that starts at or above
/// the target costs its first point's cost.
pub fn cost_to_target(points: &[CurvePoint], target: f64, axis: CostAxis) -> Option<f64> {
    let first = points.iter().position(|p| p.metric >= target)?;
    if first == 0 {
        return Some(axis.of(&points[0]));
    }
    let (a, b) = (&points[first - 1], &points[first]);
    let (ca, cb) = (axis.of(a), axis.of(b));
    let t = (target - a.metric) / (b.metric - a.metric);
    Some(ca + t * (cb - ca))
}

/// The area under metric-versus-cost by the trapezoid rule, divided by
/// the cost span: the curve's mean metric over its cost range, comparable
/// between runs of different lengths only over a common range, so give
/// `up_to` (e.g. the shortest run's cost) to cut every curve there.
/// Needs two points with increasing costs.
pub fn mean_metric_over_cost(
    points: &[CurvePoint],
    axis: CostAxis,
    up_to: Option<f64>,
) -> Result<f64> {
    let mut xy: Vec<(f64, f64)> = points.iter().map(|p| (axis.of(p), p.metric)).collect();
    if let Some(limit) = up_to
        && let Some(cut) = xy.iter().position(|&(x, _)| x > limit)
    {
        if cut > 0 {
            let (x0, y0) = xy[cut - 1];
            let (x1, y1) = xy[cut];
            let y = y0 + (limit - x0) / (x1 - x0) * (y1 - y0);
            xy.truncate(cut);
            if x0 < limit {
                xy.push((limit, y));
            }
        } else {
            xy.clear();
        }
    }
    if xy.len() < 2 || xy.windows(2).any(|w| w[1].0 < w[0].0) || xy[0].0 == xy[xy.len() - 1].0 {
        return Err(EvalError::NotEnoughData(format!(
            "area under the curve needs two or more points with increasing {}",
            axis.label()
        )));
    }
    let area: f64 = xy
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum();
    Ok(area / (xy[xy.len() - 1].0 - xy[0].0))
}
