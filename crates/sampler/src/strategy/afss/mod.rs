//! AFSS (Xie et al. 2026): skip what the detector has learnt, review it
//! now and then, refresh what it has learnt periodically.

mod config;
mod epoch;

pub use config::{AfssConfig, Tier};
pub use epoch::AfssEpoch;

use super::{PlanContext, Strategy};
use crate::error::{Result, SamplerError};
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// The Anti-Forgetting Sampling Strategy (Xie, Dong, Han, Cheng, "Does YOLO
/// Really Need to See Every Training Image in Every Epoch?", arXiv
/// 2603.17684, 2026).
///
/// Each image's learning sufficiency is min(precision, recall) of the
/// detector's detections on it, in [0, 1]: the run's score (heuristic
/// `sufficiency`). By it an image is easy (above 0.85), medium (0.55 to
/// 0.85) or hard (below 0.55). Each AFSS epoch trains on (the paper's
/// Ω = (A_f' ∪ A_r) ∪ (B_f ∪ B_r) ∪ D³):
/// - every hard image;
/// - medium images ("short-term coverage"): every one unused for 3 epochs
///   or more (the paper's `t − 1 − ep_i ≥ 3`), then random others up to
///   40% of the medium images;
/// - easy images ("continuous review"): 2% of them, of which at most half
///   are due reviews — unused for 10 epochs or more, longest-unused
///   first — and the rest random.
///
/// The epoch's images are shuffled (seeded) and trained on in batches of
/// the schedule's batch size, weight 1. Before every 5th epoch (epochs 5,
/// 10, …) sufficiency is refreshed: every training image is forwarded once
/// without gradients and scored — [`Planned::ScoreFirst`] chunks of
/// `batch_size` ids in id order, whose [`Strategy::select`] returns a plan
/// with no training ids (no optimiser step; the forward passes are
/// charged). Tiers come from the last refresh only: scores recorded during
/// training (augmented images) do not move an image between tiers. Until
/// the first refresh every image counts as hard, so the first 5 epochs
/// train on every image (the warm-up).
///
/// The budget: the schedule's optimiser steps. AFSS epochs are shorter
/// than N, so AFSS runs as many of its own epochs as the steps buy and the
/// [`Sampler`](crate::Sampler) stops it exactly at the budget, possibly
/// inside an epoch. Epochs are AFSS's own, not the schedule's (whose
/// length is budget·N): every hard image is trained in every AFSS epoch,
/// whatever the budget.
///
/// Choices where the paper is silent or does not fit isdet: quotas are
/// `⌈share · pool⌉` (a non-empty pool always gets a place, so no epoch is
/// empty); the due-review cap is `⌊0.5 · quota⌋`; never-used images count
/// as the longest unused; refresh chunks go in id order; the first refresh
/// is before epoch 5, not after epoch 0; a score outside [0, 1] at a
/// refresh is an error ([`SamplerError::InvalidSufficiency`]).
#[derive(Clone, Debug)]
pub struct Afss {
    config: AfssConfig,
    sufficiency: Option<Vec<f32>>,
    refresh: Option<Refresh>,
    refreshes: u32,
    used: Vec<u32>,
    epoch: Option<AfssEpoch>,
    ids: Vec<u32>,
    cursor: usize,
}

/// A refresh in progress: the epoch it is for, the next id to hand out,
/// and the scores read so far.
#[derive(Clone, Debug)]
struct Refresh {
    epoch: u32,
    next: usize,
    scores: Vec<f32>,
}

impl Afss {
    /// The strategy, after checking `config`.
    pub fn new(config: AfssConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            sufficiency: None,
            refresh: None,
            refreshes: 0,
            used: Vec::new(),
            epoch: None,
            ids: Vec::new(),
            cursor: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AfssConfig {
        &self.config
    }

    /// The current AFSS epoch: its tier sizes and what it trains on;
    /// `None` before the first plan.
    pub fn epoch(&self) -> Option<&AfssEpoch> {
        self.epoch.as_ref()
    }

    /// How many refreshes have completed.
    pub fn refreshes(&self) -> u32 {
        self.refreshes
    }

    /// Every image's learning sufficiency as of the last refresh; `None`
    /// before the first.
    pub fn sufficiency(&self) -> Option<&[f32]> {
        self.sufficiency.as_deref()
    }

    /// The tier of image `id` (hard before the first refresh); `None` when
    /// out of range after it.
    pub fn tier(&self, id: usize) -> Option<Tier> {
        match &self.sufficiency {
            None => Some(Tier::Hard),
            Some(s) => s.get(id).map(|&v| self.config.tier(v)),
        }
    }

    /// The last AFSS epoch image `id` was trained in (drawn into), `None`
    /// when never.
    pub fn last_used(&self, id: usize) -> Option<u32> {
        self.used.get(id).and_then(|&u| u.checked_sub(1))
    }

    fn start_epoch(&mut self, ctx: &PlanContext<'_>, epoch: u32) {
        let n = ctx.table.len();
        let tiers: Vec<Tier> = (0..n)
            .map(|id| self.tier(id).unwrap_or(Tier::Hard))
            .collect();
        let mut rng = ctx.epoch_rng(stream::AFSS_EPOCH, epoch.into());
        let (ids, stats) = epoch::draw(&self.config, &tiers, &self.used, epoch, &mut rng);
        for &id in &ids {
            self.used[id as usize] = epoch + 1;
        }
        (self.ids, self.cursor, self.epoch) = (ids, 0, Some(stats));
    }

    /// The next chunk of a refresh in progress, if any is left to hand out.
    fn next_chunk(&mut self, ctx: &PlanContext<'_>) -> Option<Vec<usize>> {
        let refresh = self.refresh.as_mut()?;
        let end = (refresh.next + ctx.schedule.batch_size()).min(ctx.table.len());
        let chunk: Vec<usize> = (refresh.next..end).collect();
        refresh.next = end;
        (!chunk.is_empty()).then_some(chunk)
    }
}

impl Strategy for Afss {
    fn name(&self) -> &'static str {
        "afss"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        let n = ctx.table.len();
        if self.used.len() != n {
            self.used = vec![0; n];
        }
        if self.refresh.is_some() {
            return match self.next_chunk(ctx) {
                Some(chunk) => Ok(Some(Planned::ScoreFirst(chunk))),
                None => Err(SamplerError::SelectionPending { step: ctx.step }),
            };
        }
        if self.cursor >= self.ids.len() {
            let next = self.epoch.map_or(0, |e| e.epoch + 1);
            if self.config.refreshes_before(next) {
                let scores = vec![0.0; n];
                self.refresh = Some(Refresh {
                    epoch: next,
                    next: 0,
                    scores,
                });
                return Ok(self.next_chunk(ctx).map(Planned::ScoreFirst));
            }
            self.start_epoch(ctx, next);
        }
        let end = (self.cursor + ctx.schedule.batch_size()).min(self.ids.len());
        let batch = self.ids[self.cursor..end]
            .iter()
            .map(|&id| id as usize)
            .collect();
        self.cursor = end;
        Ok(Some(Planned::Train(StepPlan::unweighted(batch))))
    }

    fn select(&mut self, ctx: &PlanContext<'_>, candidates: &[usize]) -> Result<StepPlan> {
        let refresh = self.refresh.as_mut().ok_or(SamplerError::NothingToSelect)?;
        for &id in candidates {
            ctx.table.check_id(id)?;
            let score = ctx.table.get(id).map_or(0.0, |r| r.last());
            if !(0.0..=1.0).contains(&score) {
                return Err(SamplerError::InvalidSufficiency { id, score });
            }
            if let Some(slot) = refresh.scores.get_mut(id) {
                *slot = score;
            }
        }
        let done = refresh.next >= ctx.table.len();
        if let Some(Refresh { epoch, scores, .. }) = self.refresh.take_if(|_| done) {
            self.sufficiency = Some(scores);
            self.refreshes += 1;
            self.start_epoch(ctx, epoch);
        }
        StepPlan::new(Vec::new(), Vec::new(), candidates.to_vec())
    }
}
