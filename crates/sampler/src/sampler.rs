//! The sampler: table, strategy, schedule and budget behind one protocol.

use crate::budget::BudgetAccountant;
use crate::diagnostics::StrategyDiagnostics;
use crate::error::{Result, SamplerError};
use crate::plan::{Planned, StepPlan};
use crate::schedule::Schedule;
use crate::strategy::{PlanContext, Strategy, StrategyConfig, StrategyInputs};
use crate::table::ScoreTable;

/// Owns the score table, a strategy and the budget accountant, and walks a
/// training loop through the protocol: [`Sampler::plan`] → forward →
/// [`Sampler::record`] → [`Sampler::select`] when the plan asked to score
/// candidates first → backward.
///
/// Every plan is a pure function of (seed, table state, step): two samplers
/// built alike and fed the same scores hand out the same plans. Every plan
/// is charged to the [`BudgetAccountant`] when handed out (a two-phase
/// step when selected), and planning stops — `Ok(None)` — once the
/// schedule's optimiser steps ([`Schedule::budget_steps`]) are spent or the
/// strategy has nothing left, so no strategy can overspend.
///
/// Scores of a step are recorded at that step: the table stamps them with
/// the step of the last plan handed out (0 before any).
#[derive(Debug)]
pub struct Sampler<S> {
    table: ScoreTable,
    schedule: Schedule,
    strategy: S,
    seed: u64,
    budget: BudgetAccountant,
    next_step: u64,
    pending: Option<Vec<usize>>,
}

impl Sampler<Box<dyn Strategy>> {
    /// A fresh sampler (no sample scored yet) following `schedule` with
    /// the strategy `config` describes; all its randomness derives from
    /// `seed`.
    pub fn configured(schedule: Schedule, config: &StrategyConfig, seed: u64) -> Result<Self> {
        Self::configured_with(schedule, config, &StrategyInputs::default(), seed)
    }

    /// As [`Sampler::configured`], for strategies that need inputs a
    /// configuration cannot hold (RHO-LOSS's irreducible losses, one per
    /// sample of the schedule); inputs the strategy does not need are
    /// ignored.
    pub fn configured_with(
        schedule: Schedule,
        config: &StrategyConfig,
        inputs: &StrategyInputs,
        seed: u64,
    ) -> Result<Self> {
        config.check_inputs(inputs, schedule.len())?;
        Self::new(
            ScoreTable::new(schedule.len())?,
            schedule,
            config.build_with(inputs)?,
            seed,
        )
    }
}

impl<S: Strategy> Sampler<S> {
    /// A sampler over `table` (possibly already scored) following
    /// `schedule` with `strategy`; all its randomness derives from `seed`.
    pub fn new(table: ScoreTable, schedule: Schedule, strategy: S, seed: u64) -> Result<Self> {
        if table.len() != schedule.len() {
            return Err(SamplerError::LengthMismatch {
                what: "samples in the score table for the schedule",
                expected: schedule.len(),
                found: table.len(),
            });
        }
        Ok(Self {
            table,
            budget: BudgetAccountant::new(schedule.budget_steps()),
            schedule,
            strategy,
            seed,
            next_step: 0,
            pending: None,
        })
    }

    /// The next step's plan, charged to the budget; `Ok(None)` once the
    /// budget is spent or the strategy is finished. Refused while a
    /// previous step's candidates await [`Sampler::select`].
    pub fn plan(&mut self) -> Result<Option<Planned>> {
        if self.pending.is_some() {
            return Err(SamplerError::SelectionPending {
                step: self.current_step(),
            });
        }
        if self.budget.is_spent() {
            return Ok(None);
        }
        let ctx = PlanContext {
            table: &self.table,
            schedule: &self.schedule,
            step: self.next_step,
            optimiser_step: self.budget.optimiser_steps(),
            seed: self.seed,
        };
        let Some(planned) = self.strategy.plan(&ctx)? else {
            return Ok(None);
        };
        match &planned {
            Planned::Train(plan) => self.budget.charge(&plan.cost())?,
            Planned::ScoreFirst(ids) => self.pending = Some(ids.clone()),
        }
        self.next_step += 1;
        Ok(Some(planned))
    }

    /// Records `scores[k]` for sample `ids[k]` at the current step, then
    /// tells the strategy. Nothing changes when an id is out of range or a
    /// score is negative or not finite.
    pub fn record(&mut self, ids: &[usize], scores: &[f32]) -> Result<()> {
        self.table.update(ids, scores, self.current_step())?;
        self.strategy.observe(&self.table, ids);
        Ok(())
    }

    /// The plan to train on after a [`Planned::ScoreFirst`] step, once
    /// every candidate's score of this step is recorded; charged to the
    /// budget with the candidates' forward passes.
    pub fn select(&mut self) -> Result<StepPlan> {
        let candidates = self.pending.take().ok_or(SamplerError::NothingToSelect)?;
        let step = self.current_step();
        let missing = candidates
            .iter()
            .find(|&&id| self.table.get(id).and_then(|r| r.last_step()) != Some(step));
        if let Some(&id) = missing {
            self.pending = Some(candidates);
            return Err(SamplerError::MissingScore { id, step });
        }
        let ctx = PlanContext {
            table: &self.table,
            schedule: &self.schedule,
            step,
            optimiser_step: self.budget.optimiser_steps(),
            seed: self.seed,
        };
        let plan = self.strategy.select(&ctx, &candidates)?;
        self.budget.charge(&plan.cost())?;
        Ok(plan)
    }

    /// The step of the last plan handed out (0 before any): the step scores
    /// are recorded at.
    pub fn current_step(&self) -> u64 {
        self.next_step.saturating_sub(1)
    }

    /// How many plans have been handed out.
    pub fn steps_planned(&self) -> u64 {
        self.next_step
    }

    /// The score table.
    pub fn table(&self) -> &ScoreTable {
        &self.table
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The strategy (to read its state: τ, the queue, probabilities).
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The strategy's own diagnostics (presampling: τ and its switch).
    pub fn strategy_diagnostics(&self) -> StrategyDiagnostics {
        self.strategy.diagnostics()
    }

    /// What has been spent so far.
    pub fn budget(&self) -> &BudgetAccountant {
        &self.budget
    }

    /// The run seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}
