//! The one error type of `isdet-sampler`.

/// Everything that can go wrong while configuring a sampler, feeding it
/// scores or following the planning protocol.
///
/// Every variant names the parameter, sample or call it is about, so that a
/// training loop can report the defect without a debugger. No function of
/// this crate panics on bad input: it returns one of these instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    /// A configuration parameter is outside its valid range.
    #[error(transparent)]
    InvalidParameter(#[from] isdet_base::InvalidParameter),
    /// A score is negative, NaN or infinite.
    #[error("sample {id}: score {score} is invalid: scores must be finite and non-negative")]
    InvalidScore {
        /// The sample the score was recorded for.
        id: usize,
        /// The rejected score.
        score: f32,
    },
    /// A sample id is not below the dataset length.
    #[error("sample id {id} is out of range for a dataset of {len} samples")]
    IdOutOfRange {
        /// The rejected id.
        id: usize,
        /// The number of samples in the dataset.
        len: usize,
    },
    /// Two lists that must have equal lengths do not.
    #[error("{what}: expected {expected} entries, found {found}")]
    LengthMismatch {
        /// What was being compared.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A training weight is negative, NaN or infinite.
    #[error(
        "weight {weight} at position {position} is invalid: weights must be finite and non-negative"
    )]
    InvalidWeight {
        /// Position of the weight in the plan.
        position: usize,
        /// The rejected weight.
        weight: f32,
    },
    /// `plan` was called while the previous step's candidates still await
    /// `select`.
    #[error(
        "step {step}: candidates await `select`; record their scores and call `select` before planning again"
    )]
    SelectionPending {
        /// The step whose candidates are pending.
        step: u64,
    },
    /// `select` was called although no plan asked to score candidates first.
    #[error(
        "no candidates await selection: `select` only follows a plan that asked to score candidates first"
    )]
    NothingToSelect,
    /// A candidate has no score recorded in the step being selected.
    #[error(
        "step {step}: candidate {id} has no score recorded in this step; record every candidate's score before `select`"
    )]
    MissingScore {
        /// The candidate without a score.
        id: usize,
        /// The step being selected.
        step: u64,
    },
    /// The strategy plans in one phase and has no selection step.
    #[error("strategy `{strategy}` plans in one phase and has no selection step")]
    SelectionUnsupported {
        /// The strategy's name.
        strategy: &'static str,
    },
    /// Charging a plan would take more optimiser steps than the budget allows.
    #[error(
        "charging {requested} optimiser step(s) would exceed the budget of {limit} ({spent} already spent)"
    )]
    BudgetExceeded {
        /// The budget, in optimiser steps.
        limit: u64,
        /// Optimiser steps already charged.
        spent: u64,
        /// Optimiser steps the rejected charge asked for.
        requested: u64,
    },
    /// A strategy needs an input that its configuration cannot hold (a
    /// vector per training sample) and was built without it.
    #[error(
        "strategy `{strategy}` needs {input}; build it with `StrategyConfig::build_with` or `Sampler::configured_with`"
    )]
    MissingInput {
        /// The strategy's name.
        strategy: &'static str,
        /// What is missing, in words.
        input: &'static str,
    },
    /// A per-sample input value (an irreducible loss) is negative, NaN or
    /// infinite.
    #[error("{what} of sample {id} is {value}: it must be finite and non-negative")]
    InvalidInput {
        /// What the value is.
        what: &'static str,
        /// The sample it belongs to.
        id: usize,
        /// The rejected value.
        value: f32,
    },
    /// AFSS read a learning sufficiency outside [0, 1].
    #[error(
        "sample {id}: learning sufficiency {score} is outside [0, 1]; AFSS reads min(precision, recall): is the run's heuristic `sufficiency`?"
    )]
    InvalidSufficiency {
        /// The sample scored.
        id: usize,
        /// The score read.
        score: f32,
    },
}

/// The result type of `isdet-sampler`.
pub type Result<T, E = SamplerError> = std::result::Result<T, E>;

/// The range check of a configuration parameter (one implementation, in
/// isdet-base).
pub(crate) use isdet_base::require;
