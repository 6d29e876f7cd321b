//! Per-sample state of Active Bias's threshold closeness.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::error::{HeuristicsError, Result, require};
use crate::rules::threshold_closeness;

/// The running mean `p̄` of each sample's true-class probability over its
/// visits, for Active Bias's threshold closeness `p̄(1 − p̄)` (Chang et al.
/// 2017), in 8 bytes per sample.
///
/// The mean is weighted: a visit recorded with weight `w` moves the mean by
/// `w / W` of the way to the new probability, `W` the total weight so far.
/// Weight 1 for every visit gives the plain running mean. Weights let a
/// mixed image (mixup, CutMix, RICAP) credit each of its source samples by
/// its mixing share (λ and 1 − λ, or area shares), instead of crediting the
/// whole image to one original id as Arazo et al.'s code does (docs/methods.md,
/// "Pitfalls").
///
/// ```
/// use isdet_heuristics::RunningTrueClassMean;
///
/// let mut state = RunningTrueClassMean::new(3)?;
/// state.record(1, 0.2, 1.0)?;
/// state.record(1, 0.6, 1.0)?;
/// // p̄ = (0.2 + 0.6) / 2 = 0.4 and p̄(1 − p̄) = 0.24.
/// assert!((state.mean(1).unwrap() - 0.4).abs() < 1e-6);
/// assert!((state.closeness(1).unwrap() - 0.24).abs() < 1e-6);
/// assert_eq!(state.mean(0), None);
/// # Ok::<(), isdet_heuristics::HeuristicsError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RunningTrueClassMean {
    mean: Vec<f32>,
    weight: Vec<f32>,
}

impl RunningTrueClassMean {
    /// A state over `len` samples (ids `0..len`), none seen.
    pub fn new(len: usize) -> Result<Self> {
        require::<HeuristicsError>(len > 0, "num_samples", len as f64, "at least 1")?;
        Ok(Self {
            mean: vec![0.0; len],
            weight: vec![0.0; len],
        })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// Always false: a state covers at least one sample.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }

    fn check_id(&self, id: usize) -> Result<()> {
        if id < self.len() {
            Ok(())
        } else {
            Err(HeuristicsError::IdOutOfRange {
                id,
                len: self.len(),
            })
        }
    }

    /// Records one visit of sample `id` with true-class probability `p` in
    /// [0, 1] and weight `weight` (finite, ≥ 0; 0 records nothing).
    pub fn record(&mut self, id: usize, p: f32, weight: f32) -> Result<()> {
        self.check_id(id)?;
        if !(0.0..=1.0).contains(&p) {
            return Err(HeuristicsError::InvalidValue {
                field: "p_true",
                index: id,
                value: f64::from(p),
                expected: "a probability in [0, 1]",
            });
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(HeuristicsError::InvalidValue {
                field: "weight",
                index: id,
                value: f64::from(weight),
                expected: "a finite weight >= 0",
            });
        }
        if weight == 0.0 {
            return Ok(());
        }
        let total = self.weight[id] + weight;
        let m = &mut self.mean[id];
        *m += (weight / total) * (p - *m);
        // Rounding must not carry the mean outside [0, 1].
        *m = m.clamp(0.0, 1.0);
        self.weight[id] = total;
        Ok(())
    }

    /// Sample `id`'s running mean `p̄`, `None` when never recorded or out of
    /// range.
    pub fn mean(&self, id: usize) -> Option<f32> {
        (*self.weight.get(id)? > 0.0).then(|| self.mean[id])
    }

    /// The total weight recorded for sample `id` (its visit count when
    /// every weight is 1); 0 when out of range.
    pub fn weight(&self, id: usize) -> f32 {
        self.weight.get(id).copied().unwrap_or(0.0)
    }

    /// Sample `id`'s threshold closeness `p̄(1 − p̄)`, `None` when never
    /// recorded or out of range.
    pub fn closeness(&self, id: usize) -> Option<f32> {
        self.mean(id).map(threshold_closeness)
    }

    /// The state as named CPU tensors `mean` and `weight` (both `[len]`),
    /// the form a checkpoint stores.
    pub fn to_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let n = self.len();
        let tensor = |field: &'static str, v: &[f32]| {
            Tensor::from_slice(v, n, &Device::Cpu)
                .map_err(|source| HeuristicsError::Tensor { field, source })
        };
        Ok(HashMap::from([
            ("mean".to_string(), tensor("mean", &self.mean)?),
            ("weight".to_string(), tensor("weight", &self.weight)?),
        ]))
    }

    /// The state [`to_tensors`](Self::to_tensors) stored. Recording each
    /// mean with its total weight into an empty state reproduces it
    /// exactly, so a resumed run scores as the uninterrupted one.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let read = |field: &'static str| -> Result<Vec<f32>> {
            let t = tensors
                .get(field)
                .ok_or_else(|| HeuristicsError::ShapeMismatch {
                    field,
                    expected: "a tensor of the running means' state".into(),
                    found: "none".into(),
                })?;
            t.to_vec1::<f32>()
                .map_err(|source| HeuristicsError::Tensor { field, source })
        };
        let (mean, weight) = (read("mean")?, read("weight")?);
        if mean.len() != weight.len() {
            return Err(HeuristicsError::ShapeMismatch {
                field: "weight",
                expected: format!("[{}]", mean.len()),
                found: format!("[{}]", weight.len()),
            });
        }
        let mut state = Self::new(mean.len())?;
        for (id, (&m, &w)) in mean.iter().zip(&weight).enumerate() {
            state.record(id, m, w)?;
        }
        Ok(state)
    }
}
