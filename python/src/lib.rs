//! The extension module `isdet._isdet`: isdet's sampler behind a small
//! Python class. The pure-Python package `isdet` (python/isdet) wraps it
//! with the names users see; this crate only converts between Python and
//! `isdet-sampler` and turns its errors into Python exceptions that carry
//! the Rust message.

use candle_core::{Device, Tensor};
use isdet_heuristics::{ForwardOutputs, ScoringConfig, Targets};
use isdet_sampler::{Planned, Sampler, Schedule, StepPlan, Strategy, StrategyConfig};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A plan as Python sees it: `(kind, ids, weights, score_only)`, `kind`
/// being `"train"` or `"score_first"` (then `ids` are the candidates).
type PlanTuple = (&'static str, Vec<usize>, Vec<f32>, Vec<usize>);

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn train_tuple(plan: &StepPlan) -> PlanTuple {
    (
        "train",
        plan.train().to_vec(),
        plan.weights().to_vec(),
        plan.score_only().to_vec(),
    )
}

/// The sampler of one training run (see `isdet.Sampler`).
#[pyclass(module = "isdet._isdet", unsendable)]
struct RawSampler {
    inner: Sampler<Box<dyn Strategy>>,
}

#[pymethods]
impl RawSampler {
    /// `strategy` is the JSON of a strategy configuration, with the names
    /// of isdet's TOML files (`{"kind": "weighted_without_replacement",
    /// "epsilon": 0.1}`).
    #[new]
    fn new(
        n: usize,
        batch_size: usize,
        epochs: u32,
        budget: f64,
        strategy: &str,
        seed: u64,
    ) -> PyResult<Self> {
        let config: StrategyConfig =
            serde_json::from_str(strategy).map_err(|e| value_error(format!("strategy: {e}")))?;
        let schedule = Schedule::new(n, batch_size, epochs, budget).map_err(value_error)?;
        let inner = Sampler::configured(schedule, &config, seed).map_err(value_error)?;
        Ok(RawSampler { inner })
    }

    /// The next plan, or `None` once the budget is spent.
    fn plan(&mut self) -> PyResult<Option<PlanTuple>> {
        let planned = self.inner.plan().map_err(value_error)?;
        Ok(planned.map(|planned| match planned {
            Planned::Train(plan) => train_tuple(&plan),
            Planned::ScoreFirst(ids) => ("score_first", ids, Vec::new(), Vec::new()),
        }))
    }

    /// Records one score per id (finite, non-negative).
    fn record(&mut self, ids: Vec<usize>, scores: Vec<f32>) -> PyResult<()> {
        self.inner.record(&ids, &scores).map_err(value_error)
    }

    /// After a `score_first` plan and its `record`: the plan to train on.
    fn select(&mut self) -> PyResult<PlanTuple> {
        Ok(train_tuple(&self.inner.select().map_err(value_error)?))
    }

    /// The budget's counters.
    fn budget<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = self.inner.budget();
        let d = PyDict::new(py);
        d.set_item("optimiser_steps", b.optimiser_steps())?;
        d.set_item("forward_passes", b.forward_passes())?;
        d.set_item("backward_passes", b.backward_passes())?;
        d.set_item("images_seen", b.images_seen())?;
        d.set_item("limit_steps", b.limit())?;
        d.set_item("full_steps", self.inner.schedule().full_steps())?;
        Ok(d)
    }

    /// Plans handed out so far.
    fn steps_planned(&self) -> u64 {
        self.inner.steps_planned()
    }
}

/// One score per sample from a forward pass's outputs, by isdet's Rust
/// heuristics (`config` is the JSON of a scoring configuration:
/// `{"heuristic": {"kind": "entropy"}, "aggregation": {"kind": "max"}}`).
/// `probs` holds `prod(probs_shape)` values, `[B, C]` (classification,
/// softmax) or `[B, L, C]` (detection, sigmoid, with `mask` `[B, L]` and
/// the loss `parts` `[B][3]`).
#[pyfunction]
#[pyo3(signature = (config, losses, probs, probs_shape, parts=None, mask=None, labels=None, location_labels=None))]
#[allow(clippy::too_many_arguments)] // one keyword argument each, from Python
fn score_batch(
    config: &str,
    losses: Vec<f32>,
    probs: Vec<f32>,
    probs_shape: Vec<usize>,
    parts: Option<Vec<[f32; 3]>>,
    mask: Option<Vec<f32>>,
    labels: Option<Vec<u32>>,
    location_labels: Option<Vec<i64>>,
) -> PyResult<Vec<f32>> {
    let config: ScoringConfig =
        serde_json::from_str(config).map_err(|e| value_error(format!("scoring: {e}")))?;
    let cpu = Device::Cpu;
    let probs = Tensor::from_vec(probs, probs_shape, &cpu).map_err(value_error)?;
    let mask = match mask {
        Some(mask) => {
            let locations = probs.dims().get(1).copied().unwrap_or(1);
            Some(Tensor::from_vec(mask, (losses.len(), locations), &cpu).map_err(value_error)?)
        }
        None => None,
    };
    let outputs = match (&parts, &mask) {
        (Some(parts), Some(mask)) => ForwardOutputs::detection(&losses, parts, &probs, mask),
        (None, None) => ForwardOutputs::classification(&losses, &probs),
        _ => {
            return Err(value_error(
                "detection scoring needs both parts and mask; classification neither",
            ));
        }
    };
    let outputs = match (&labels, &location_labels) {
        (Some(labels), _) => outputs.with_targets(Targets::Classes(labels)),
        (None, Some(labels)) => outputs.with_targets(Targets::LocationLabels(labels)),
        (None, None) => outputs,
    };
    isdet_heuristics::score_batch(&config, &outputs).map_err(value_error)
}

/// The module.
#[pymodule]
fn _isdet(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RawSampler>()?;
    m.add_function(wrap_pyfunction!(score_batch, m)?)?;
    Ok(())
}
