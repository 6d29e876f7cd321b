//! The score table: what the sampler knows about every sample.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SamplerError, require};

/// The EMA momentum a [`ScoreTable`] uses unless told otherwise.
pub const DEFAULT_EMA_MOMENTUM: f32 = 0.9;

/// Which of a sample's recorded statistics a strategy reads as its score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreField {
    /// The score of the most recent visit.
    #[default]
    Last,
    /// The running mean over all visits (the p-SGD score of Arazo et al.).
    Mean,
    /// The exponential moving average over visits.
    Ema,
}

/// What the table knows about one sample: 24 bytes.
///
/// Scores are updated only when a sample is seen, so each carries its age
/// (METHODS, "staleness"): the step at which it was last scored.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoreRecord {
    last_step: u64,
    last: f32,
    mean: f32,
    ema: f32,
    visits: u32,
}

impl ScoreRecord {
    /// The score of the most recent visit (0 when never scored).
    pub fn last(&self) -> f32 {
        self.last
    }

    /// The running mean of all scores recorded (0 when never scored).
    pub fn mean(&self) -> f32 {
        self.mean
    }

    /// The exponential moving average of the scores recorded (0 when never
    /// scored); the first visit sets it to that visit's score.
    pub fn ema(&self) -> f32 {
        self.ema
    }

    /// How many scores have been recorded for this sample.
    pub fn visits(&self) -> u32 {
        self.visits
    }

    /// Whether at least one score has been recorded.
    pub fn is_seen(&self) -> bool {
        self.visits > 0
    }

    /// The step of the most recent score, `None` when never scored.
    pub fn last_step(&self) -> Option<u64> {
        self.is_seen().then_some(self.last_step)
    }

    /// Steps elapsed between the most recent score and `now` (0 when scored
    /// at `now` or later), `None` when never scored.
    pub fn age(&self, now: u64) -> Option<u64> {
        self.last_step().map(|s| now.saturating_sub(s))
    }

    /// The statistic `field` names.
    pub fn get(&self, field: ScoreField) -> f32 {
        match field {
            ScoreField::Last => self.last,
            ScoreField::Mean => self.mean,
            ScoreField::Ema => self.ema,
        }
    }

    fn observe(&mut self, score: f32, step: u64, momentum: f32) {
        self.visits = self.visits.saturating_add(1);
        self.last = score;
        self.last_step = step;
        if self.visits == 1 {
            self.mean = score;
            self.ema = score;
        } else {
            self.mean += (score - self.mean) / self.visits as f32;
            self.ema = momentum * self.ema + (1.0 - momentum) * score;
        }
    }
}

/// Per sample: the last score, running mean, EMA, visit count and the step
/// it was last scored at (so its age), in 24 bytes a sample.
///
/// Scores must be finite and non-negative (a loss, an entropy, a margin, a
/// gradient-norm bound are); anything else is rejected with an error naming
/// the sample, and a rejected update changes nothing.
///
/// ```
/// use isdet_sampler::ScoreTable;
///
/// let mut table = ScoreTable::new(4)?;
/// table.update(&[2, 3], &[0.5, 1.5], 10)?;
/// table.update(&[2], &[1.5], 12)?;
/// let record = table.get(2).unwrap();
/// assert_eq!((record.last(), record.mean(), record.visits()), (1.5, 1.0, 2));
/// assert_eq!(table.age(3, 15), Some(5));
/// assert_eq!(table.age(0, 15), None);
/// # Ok::<(), isdet_sampler::SamplerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreTable {
    records: Vec<ScoreRecord>,
    ema_momentum: f32,
    seen: usize,
}

impl ScoreTable {
    /// An empty table for `len` samples with EMA momentum 0.9.
    pub fn new(len: usize) -> Result<Self> {
        Self::with_ema_momentum(len, DEFAULT_EMA_MOMENTUM)
    }

    /// An empty table for `len` samples (1 ≤ `len` ≤ 2³²−1) whose EMA keeps
    /// `momentum` (in [0, 1)) of the old value at each visit.
    pub fn with_ema_momentum(len: usize, momentum: f32) -> Result<Self> {
        check_len(len)?;
        require::<SamplerError>(
            (0.0..1.0).contains(&momentum),
            "ema_momentum",
            momentum.into(),
            "a value in [0, 1)",
        )?;
        Ok(Self {
            records: vec![ScoreRecord::default(); len],
            ema_momentum: momentum,
            seen: 0,
        })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Always false: a table has at least one sample.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The number of samples scored at least once.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The EMA momentum.
    pub fn ema_momentum(&self) -> f32 {
        self.ema_momentum
    }

    /// The record of sample `id`, `None` when out of range.
    pub fn get(&self, id: usize) -> Option<&ScoreRecord> {
        self.records.get(id)
    }

    /// All records, indexed by sample id.
    pub fn records(&self) -> &[ScoreRecord] {
        &self.records
    }

    /// Steps since sample `id` was last scored, `None` when never scored or
    /// out of range.
    pub fn age(&self, id: usize, now: u64) -> Option<u64> {
        self.get(id).and_then(|r| r.age(now))
    }

    /// Records `scores[k]` for sample `ids[k]` at `step`. Everything is
    /// checked before anything changes: on error the table is untouched.
    pub fn update(&mut self, ids: &[usize], scores: &[f32], step: u64) -> Result<()> {
        self.check_update(ids, scores)?;
        for (&id, &score) in ids.iter().zip(scores) {
            let record = &mut self.records[id];
            self.seen += usize::from(!record.is_seen());
            record.observe(score, step, self.ema_momentum);
        }
        Ok(())
    }

    fn check_update(&self, ids: &[usize], scores: &[f32]) -> Result<()> {
        if ids.len() != scores.len() {
            return Err(SamplerError::LengthMismatch {
                what: "scores for the ids recorded",
                expected: ids.len(),
                found: scores.len(),
            });
        }
        for (&id, &score) in ids.iter().zip(scores) {
            self.check_id(id)?;
            if !(score.is_finite() && score >= 0.0) {
                return Err(SamplerError::InvalidScore { id, score });
            }
        }
        Ok(())
    }

    /// `IdOutOfRange` unless `id` is a sample of this table.
    pub(crate) fn check_id(&self, id: usize) -> Result<()> {
        if id < self.len() {
            Ok(())
        } else {
            Err(SamplerError::IdOutOfRange {
                id,
                len: self.len(),
            })
        }
    }
}

/// Datasets hold 1 to 2³²−1 samples (ids are stored as `u32` internally).
pub(crate) fn check_len(len: usize) -> Result<()> {
    require(
        len >= 1 && u32::try_from(len).is_ok(),
        "len",
        len as f64,
        "between 1 and 2^32 - 1 samples",
    )
}
