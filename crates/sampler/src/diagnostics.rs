//! Diagnostics that say whether importance sampling can pay in a run, for
//! any strategy: the variance reduction τ a score table would bring, how
//! unevenly draws spread over ids, and each strategy's own state.

use serde::{Deserialize, Serialize};

/// The variance reduction τ that importance sampling by `scores` would
/// bring over uniform sampling of the same ids (Katharopoulos & Fleuret,
/// "Not All Samples Are Created Equal", ICML 2018, and their code): with
/// `g = scores / Σ scores` and `u = 1/n`,
/// `τ = (1 − ‖g − u‖² / ‖g‖²)^(−1/2)`, which equals `sqrt(n · ‖g‖²)`, the
/// form computed here (no cancellation). 1 for uniform or all-zero scores
/// (and for no scores), `sqrt(n)` when one score holds all the mass.
/// Scores are taken as they come: a negative or non-finite score gives a
/// meaningless τ, so pass a score table's (checked) values.
///
/// ```
/// use isdet_sampler::variance_reduction;
///
/// assert!((variance_reduction(&[2.0, 2.0, 2.0]) - 1.0).abs() < 1e-12);
/// assert!((variance_reduction(&[0.0, 0.0, 0.0, 5.0]) - 2.0).abs() < 1e-12);
/// ```
pub fn variance_reduction(scores: &[f64]) -> f64 {
    let total: f64 = scores.iter().sum();
    if scores.is_empty() || total <= 0.0 {
        return 1.0;
    }
    let norm2: f64 = scores.iter().map(|s| (s / total).powi(2)).sum();
    (scores.len() as f64 * norm2).sqrt()
}

/// The Gini coefficient of `counts` (how often each id was drawn): how
/// unevenly draws spread over ids.
///
/// `G = Σ_i Σ_j |x_i − x_j| / (2 n² x̄)`, computed from the sorted counts
/// as `G = 2 Σ_k k·x_(k) / (n Σ x) − (n + 1) / n` (k = 1…n, ascending).
/// 0 when every id was drawn equally often (and for no ids or no draws);
/// `(n − 1) / n`, which tends to 1, when one id has every draw. Uniform
/// sampling without replacement over whole epochs gives 0; a draw with
/// replacement gives a positive value even when uniform, which is why
/// with-replacement methods must be read against uniform with
/// replacement.
///
/// ```
/// use isdet_sampler::gini;
///
/// assert_eq!(gini(&[3, 3, 3]), 0.0);
/// assert_eq!(gini(&[0, 0, 0, 4]), 0.75);
/// assert_eq!(gini(&[1, 2, 3, 4]), 0.25);
/// ```
pub fn gini(counts: &[u32]) -> f64 {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if counts.is_empty() || total == 0 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    // Integer arithmetic up to the last division, so that equal counts
    // give exactly 0.
    let ranked: u128 = sorted
        .iter()
        .enumerate()
        .map(|(k, &c)| (k as u128 + 1) * u128::from(c))
        .sum();
    let n = counts.len() as u128;
    let numerator = 2 * ranked - (n + 1) * u128::from(total);
    numerator as f64 / (n as f64 * total as f64)
}

/// A strategy's own diagnostics, for logs and `metrics.jsonl`: `None` where
/// a strategy has no such state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyDiagnostics {
    /// Whether importance sampling is on (presampling: the EMA of τ above
    /// τ_th).
    pub importance_on: Option<bool>,
    /// The EMA of the estimated variance reduction τ (presampling).
    pub tau_ema: Option<f64>,
    /// The threshold τ_th the EMA must exceed (presampling).
    pub tau_threshold: Option<f64>,
}
