//! The budgeted schedule: epochs, batches and how many steps the budget buys.

use std::ops::Range;

use crate::error::{Result, SamplerError, require};
use crate::table::check_len;

/// A budgeted training schedule after Arazo et al. ("How Important is
/// Importance Sampling for Deep Budgeted Training?", BMVC 2021): the epoch
/// count stays fixed and each epoch uses `budget · len` samples, in batches
/// of `batch_size` (the last batch of an epoch may be smaller).
///
/// The budget is thus a fraction of the full schedule's optimiser steps:
/// [`Schedule::budget_steps`] is `epochs · ⌈round(budget · len) / batch⌉`,
/// which equals [`Schedule::full_steps`] at budget 1 and
/// `budget · full_steps` whenever `budget · len` fills whole batches; in
/// general it can exceed `⌊budget · full_steps⌋` by at most one partial
/// batch per epoch.
///
/// ```
/// use isdet_sampler::Schedule;
///
/// let schedule = Schedule::new(1280, 128, 10, 0.3)?;
/// assert_eq!(schedule.samples_per_epoch(), 384);
/// assert_eq!(schedule.steps_per_epoch(), 3);
/// assert_eq!((schedule.budget_steps(), schedule.full_steps()), (30, 100));
/// let slot = schedule.slot(4).unwrap();
/// assert_eq!((slot.epoch, slot.range), (1, 128..256));
/// assert!(schedule.slot(30).is_none());
/// # Ok::<(), isdet_sampler::SamplerError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    len: usize,
    batch_size: usize,
    epochs: u32,
    budget: f64,
}

/// Where an optimiser step falls in a [`Schedule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The epoch, from 0.
    pub epoch: u32,
    /// The positions within the epoch's `samples_per_epoch` samples that
    /// this step trains on.
    pub range: Range<usize>,
}

impl Schedule {
    /// A schedule over `len` samples (1 to 2³²−1), `batch_size` ≥ 1,
    /// `epochs` ≥ 1 and `budget` in (0, 1].
    pub fn new(len: usize, batch_size: usize, epochs: u32, budget: f64) -> Result<Self> {
        check_len(len)?;
        require::<SamplerError>(
            batch_size >= 1,
            "batch_size",
            batch_size as f64,
            "at least 1",
        )?;
        require::<SamplerError>(epochs >= 1, "epochs", epochs.into(), "at least 1")?;
        require::<SamplerError>(
            budget > 0.0 && budget <= 1.0,
            "budget",
            budget,
            "a fraction in (0, 1]",
        )?;
        Ok(Self {
            len,
            batch_size,
            epochs,
            budget,
        })
    }

    /// The number of samples in the dataset.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a schedule covers at least one sample.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples per optimiser step (the last step of an epoch may take fewer).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The number of epochs.
    pub fn epochs(&self) -> u32 {
        self.epochs
    }

    /// The budget, a fraction of the full schedule.
    pub fn budget(&self) -> f64 {
        self.budget
    }

    /// Samples trained on per epoch: `round(budget · len)`, at least 1.
    pub fn samples_per_epoch(&self) -> usize {
        ((self.budget * self.len as f64).round() as usize).clamp(1, self.len)
    }

    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        self.samples_per_epoch().div_ceil(self.batch_size) as u64
    }

    /// Optimiser steps the budget buys over all epochs.
    pub fn budget_steps(&self) -> u64 {
        u64::from(self.epochs) * self.steps_per_epoch()
    }

    /// Optimiser steps of the full schedule (uniform sampling at budget 1).
    pub fn full_steps(&self) -> u64 {
        u64::from(self.epochs) * self.len.div_ceil(self.batch_size) as u64
    }

    /// The epoch and batch positions of optimiser step `step`, `None` once
    /// the schedule is over.
    pub fn slot(&self, step: u64) -> Option<Slot> {
        let per_epoch = self.steps_per_epoch();
        let epoch = u32::try_from(step / per_epoch)
            .ok()
            .filter(|&e| e < self.epochs)?;
        let start = (step % per_epoch) as usize * self.batch_size;
        let end = (start + self.batch_size).min(self.samples_per_epoch());
        Some(Slot {
            epoch,
            range: start..end,
        })
    }
}
