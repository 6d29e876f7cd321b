//! Classification accuracy.

use crate::error::{EvalError, Result};

/// Top-1 accuracy: the share of rows of `scores` (row-major, `classes`
/// columns, any monotone score such as logits or probabilities) whose
/// highest-scoring class is the label. Ties go to the lowest class index.
pub fn top1_accuracy(scores: &[f32], classes: usize, labels: &[u32]) -> Result<f64> {
    if classes == 0 || scores.len() != labels.len() * classes {
        return Err(EvalError::LengthMismatch {
            what: "scores (labels × classes)",
            expected: labels.len() * classes,
            found: scores.len(),
        });
    }
    if labels.is_empty() {
        return Err(EvalError::NotEnoughData(
            "top-1 accuracy of no samples".into(),
        ));
    }
    let mut correct = 0usize;
    for (row, &label) in scores.chunks_exact(classes).zip(labels) {
        let mut best = 0;
        for (k, &s) in row.iter().enumerate() {
            // NaN never wins, so a broken row counts as wrong, not as class 0.
            if s > row[best] || row[best].is_nan() && !s.is_nan() {
                best = k;
            }
        }
        if best == label as usize && !row[best].is_nan() {
            correct += 1;
        }
    }
    Ok(correct as f64 / labels.len() as f64)
}
