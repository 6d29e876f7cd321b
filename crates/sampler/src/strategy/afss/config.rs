//! AFSS's parameters, with the paper's values as defaults, and the tiers
//! they define.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SamplerError, require};

/// Parameters of [`Afss`](super::Afss); the defaults are those of Xie et
/// al. (arXiv 2603.17684, 2026).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AfssConfig {
    /// An image whose learning sufficiency is above this is easy (0.85).
    pub easy_threshold: f64,
    /// An image whose learning sufficiency is below this is hard (0.55);
    /// from here to `easy_threshold`, both included, it is medium.
    pub hard_threshold: f64,
    /// Share of the easy images trained each epoch, in (0, 1] (0.02).
    pub easy_share: f64,
    /// Share of the medium images trained each epoch, in (0, 1] (0.4).
    pub medium_share: f64,
    /// An easy image unused for at least this many epochs is due for
    /// review (≥ 1; 10).
    pub review_after: u32,
    /// At most this share of the easy images' quota goes to due reviews,
    /// longest-unused first; the rest is drawn at random (in [0, 1]; 0.5).
    pub review_cap: f64,
    /// A medium image unused for at least this many epochs is always
    /// trained (≥ 1; 3).
    pub cover_after: u32,
    /// Every image is scored again before every `refresh_every`-th epoch
    /// (≥ 1; 5); until the first refresh every image counts as hard.
    pub refresh_every: u32,
}

impl Default for AfssConfig {
    fn default() -> Self {
        Self {
            easy_threshold: 0.85,
            hard_threshold: 0.55,
            easy_share: 0.02,
            medium_share: 0.4,
            review_after: 10,
            review_cap: 0.5,
            cover_after: 3,
            refresh_every: 5,
        }
    }
}

/// How well an image is learnt, by its learning sufficiency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Above the easy threshold: reviewed sparsely.
    Easy,
    /// Between the thresholds: trained partly.
    Medium,
    /// Below the hard threshold (or not scored yet): trained every epoch.
    Hard,
}

impl AfssConfig {
    /// Checks the thresholds, shares and periods.
    pub fn validate(&self) -> Result<()> {
        require::<SamplerError>(
            (0.0..=1.0).contains(&self.hard_threshold),
            "hard_threshold",
            self.hard_threshold,
            "a sufficiency in [0, 1]",
        )?;
        require::<SamplerError>(
            self.easy_threshold >= self.hard_threshold && self.easy_threshold <= 1.0,
            "easy_threshold",
            self.easy_threshold,
            "a sufficiency in [hard_threshold, 1]",
        )?;
        for (name, share) in [
            ("easy_share", self.easy_share),
            ("medium_share", self.medium_share),
        ] {
            // A share of 0 could leave an epoch with no image at all.
            require::<SamplerError>(
                share > 0.0 && share <= 1.0,
                name,
                share,
                "a share in (0, 1]",
            )?;
        }
        require::<SamplerError>(
            (0.0..=1.0).contains(&self.review_cap),
            "review_cap",
            self.review_cap,
            "a share of the easy quota in [0, 1]",
        )?;
        for (name, epochs) in [
            ("review_after", self.review_after),
            ("cover_after", self.cover_after),
            ("refresh_every", self.refresh_every),
        ] {
            require::<SamplerError>(epochs >= 1, name, epochs.into(), "at least 1 epoch")?;
        }
        Ok(())
    }

    /// The tier of an image of learning sufficiency `sufficiency`.
    pub fn tier(&self, sufficiency: f32) -> Tier {
        // Compared in f32, the scores' precision, so that a score of 0.85
        // is not above a threshold of 0.85.
        if sufficiency > self.easy_threshold as f32 {
            Tier::Easy
        } else if sufficiency >= self.hard_threshold as f32 {
            Tier::Medium
        } else {
            Tier::Hard
        }
    }

    /// Whether every image is scored again before AFSS epoch `epoch`: at
    /// epochs `refresh_every`, `2·refresh_every`, …
    pub fn refreshes_before(&self, epoch: u32) -> bool {
        epoch > 0 && epoch.is_multiple_of(self.refresh_every)
    }
}
