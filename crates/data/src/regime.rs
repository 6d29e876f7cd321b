//! The knobs of a mnist-det data regime (redundant clips, empty frames,
//! label noise, missing boxes, a long tail of classes), their checks, and
//! the arithmetic that turns a share into an exact count.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::idx::LabelledImages;

/// How the training (and holdout) frames of a mnist-det set depart from
/// clean, balanced, unique scenes. Validation scenes never do. Every knob
/// is off by default, and with all of them off the set is byte-identical
/// to one made before the knobs existed.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Regime {
    /// Frames per clip (K; 0 or 1: off). Frames come in clips of K
    /// near-duplicates: frame 0 is a plain scene and each later frame moves,
    /// rescales and rebrightens its digits a little.
    pub clip_frames: usize,
    /// Share of the frames, in [0, 1], that hold no object (whole clips).
    pub empty_share: f32,
    /// Share of the annotated boxes, in [0, 1], whose class is replaced by
    /// another class.
    pub label_noise: f32,
    /// Share of the drawn digits, in [0, 1], left out of the annotations
    /// while they stay in the image.
    pub missing_share: f32,
    /// Ratio (≥ 1; 1: off) of the commonest class's frequency to the
    /// rarest's; frequencies fall geometrically from digit 0 to digit 9.
    pub long_tail: f32,
}

impl Default for Regime {
    fn default() -> Self {
        Regime {
            clip_frames: 0,
            empty_share: 0.0,
            label_noise: 0.0,
            missing_share: 0.0,
            long_tail: 1.0,
        }
    }
}

impl Regime {
    /// True when every knob is off: the frames are plain scenes.
    pub fn is_off(&self) -> bool {
        self.clip_len() == 1
            && self.empty_share == 0.0
            && self.label_noise == 0.0
            && self.missing_share == 0.0
            && self.long_tail == 1.0
    }

    /// Frames per clip, at least 1.
    pub fn clip_len(&self) -> usize {
        self.clip_frames.max(1)
    }

    /// Fails, naming the knob, on a share outside [0, 1], a `long_tail`
    /// below 1, or a non-finite value.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("empty_share", self.empty_share),
            ("label_noise", self.label_noise),
            ("missing_share", self.missing_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} = {v} must lie in [0, 1]"));
            }
        }
        if !(self.long_tail >= 1.0 && self.long_tail.is_finite()) {
            return bad(format!(
                "long_tail = {} must be a finite ratio >= 1 (1: balanced classes)",
                self.long_tail
            ));
        }
        Ok(())
    }

    /// Fails when the digits cannot serve this regime: label noise needs
    /// two classes to swap between, a long tail needs digits of every
    /// class.
    pub fn validate_for(&self, source: &LabelledImages, classes: usize) -> Result<()> {
        self.validate()?;
        if self.label_noise > 0.0 && classes < 2 {
            return bad(format!(
                "label_noise needs at least 2 classes, the set has {classes}"
            ));
        }
        let absent = (0..classes).find(|&c| !source.labels.contains(&(c as u8)));
        if let (true, Some(c)) = (self.long_tail > 1.0, absent) {
            return bad(format!(
                "long_tail needs digits of every class, the source has none of class {c}"
            ));
        }
        Ok(())
    }
}

fn bad(message: String) -> Result<()> {
    Err(DataError::Config(format!("mnist-det regime: {message}")))
}

/// `round(share × total)`, halves rounded up: the exact count a share asks
/// for. The share is taken as the decimal it prints as (`0.35`, not the
/// f32 nearest to it, 0.3499999940…), so that 0.35 of 10 is 4 as a user
/// reckons it.
pub fn share_count(share: f32, total: usize) -> usize {
    let decimal: f64 = share.to_string().parse().unwrap_or(share as f64);
    // The nudge lifts products such as 0.35 × 10 = 3.4999999999999996
    // back to the half they are meant to be.
    (decimal * total as f64 + 1e-9).round() as usize
}

/// The class shares of a long tail over `classes` classes: class `c` has
/// weight `ratio^(-c / (classes - 1))`, so class 0 is the commonest and the
/// last class `ratio` times rarer; the shares sum to 1.
pub fn long_tail_shares(classes: usize, ratio: f32) -> Vec<f64> {
    let steps = classes.saturating_sub(1).max(1) as f64;
    let weights: Vec<f64> = (0..classes)
        .map(|c| (ratio as f64).powf(-(c as f64) / steps))
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| w / sum).collect()
}

/// Splits `total` into whole counts proportional to `shares` by the
/// largest-remainder rule (ties go to the lower index): every count is its
/// exact quota rounded down or up, and the counts sum to `total`.
pub fn apportion(total: usize, shares: &[f64]) -> Vec<usize> {
    let quotas: Vec<f64> = shares.iter().map(|s| s * total as f64).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let left = total.saturating_sub(counts.iter().sum());
    for &i in order.iter().cycle().take(left) {
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_keeps_the_total_and_each_quota_within_one() {
        for (total, shares) in [
            (10, vec![0.5, 0.3, 0.2]),
            (7, vec![1.0 / 3.0; 3]),
            (1001, long_tail_shares(10, 10.0)),
            (0, vec![0.4, 0.6]),
        ] {
            let counts = apportion(total, &shares);
            assert_eq!(counts.iter().sum::<usize>(), total, "{shares:?}");
            for (n, s) in counts.iter().zip(&shares) {
                assert!((*n as f64 - s * total as f64).abs() < 1.0, "{counts:?}");
            }
        }
        assert_eq!(apportion(7, &[1.0 / 3.0; 3]), vec![3, 2, 2]);
    }

    #[test]
    fn share_counts_round_halves_up_as_decimals() {
        for (share, total, want) in [
            (0.35, 10, 4),
            (0.25, 10, 3),
            (0.1, 1000, 100),
            (0.0, 50, 0),
            (1.0, 37, 37),
            (0.3333, 3, 1),
        ] {
            assert_eq!(share_count(share, total), want, "{share} of {total}");
        }
    }

    #[test]
    fn long_tail_falls_geometrically_to_the_ratio() {
        let s = long_tail_shares(10, 8.0);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((s[0] / s[9] - 8.0).abs() < 1e-9);
        for w in s.windows(2) {
            assert!((w[0] / w[1] - 8f64.powf(1.0 / 9.0)).abs() < 1e-9);
        }
        assert_eq!(long_tail_shares(3, 1.0), vec![1.0 / 3.0; 3]);
    }

    #[test]
    fn bad_knobs_are_named() {
        let cases = [
            (
                Regime {
                    empty_share: 1.5,
                    ..Regime::default()
                },
                "empty_share",
            ),
            (
                Regime {
                    label_noise: -0.1,
                    ..Regime::default()
                },
                "label_noise",
            ),
            (
                Regime {
                    missing_share: f32::NAN,
                    ..Regime::default()
                },
                "missing_share",
            ),
            (
                Regime {
                    long_tail: 0.5,
                    ..Regime::default()
                },
                "long_tail",
            ),
            (
                Regime {
                    long_tail: f32::INFINITY,
                    ..Regime::default()
                },
                "long_tail",
            ),
        ];
        for (regime, field) in cases {
            let err = regime.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        assert!(Regime::default().validate().is_ok());
        assert!(Regime::default().is_off());
        assert!(
            Regime {
                clip_frames: 1,
                ..Regime::default()
            }
            .is_off()
        );
        assert!(
            !Regime {
                clip_frames: 2,
                ..Regime::default()
            }
            .is_off()
        );
    }
}
