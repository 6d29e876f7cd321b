//! One run: the budgeted training loop of docs/architecture.md, with evaluation,
//! checkpoints, resume and the run directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};
use isdet_detector::{AdamW, Optimizer, Sgd, clip_grad_norm};
use isdet_eval::{write_json_atomic, write_results};
use isdet_heuristics::Scorer;
use isdet_sampler::{Planned, Sampler, StepPlan, Strategy};

use crate::checkpoint::{CheckpointFiles, Checkpointer};
use crate::classification::ClassificationTask;
use crate::config::{NonFinitePolicy, OptimizerConfig, RunConfig, Task};
use crate::detection::DetectionTask;
use crate::diagnostics::DiagnosticTables;
use crate::error::{Result, TrainerError, io_err};
use crate::journal::Journal;
use crate::lr::learning_rate;
use crate::records::{CheckpointState, MetricsRecord, PhaseTimes, Summary, files};
use crate::rundir::{RunFiles, append_line, check_config, read_json, truncate};
use crate::task::{Evaluation, Forward, TaskRunner};

/// How a run is driven (not part of its configuration: these change
/// nothing it computes).
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Draw a progress bar on the terminal.
    pub progress: bool,
    /// When set (e.g. by Ctrl-C), the run checkpoints after the current
    /// step and returns [`RunOutcome::Stopped`].
    pub stop: Option<Arc<AtomicBool>>,
    /// The CPU kernels the model runs on (fast by default; the stock ones
    /// agree to within float rounding, so results may differ in the last
    /// digits).
    pub kernels: isdet_detector::Kernels,
}

/// How a call to [`train`] ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// The budget is spent; the summary is written.
    Finished(Summary),
    /// The directory already held a finished run of this configuration.
    AlreadyFinished(Summary),
    /// Stopped on request after checkpointing at this optimiser step.
    Stopped {
        /// Optimiser steps taken.
        step: u64,
    },
}

/// Trains `config` in run directory `dir`: starts it, resumes it from its
/// last checkpoint, or, when it is finished, returns its summary.
pub fn train(config: &RunConfig, dir: &Path, options: &TrainOptions) -> Result<RunOutcome> {
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let dir = std::path::absolute(dir).map_err(io_err(dir))?;
    let _lock = crate::lock::acquire(&dir)?;
    let files = RunFiles { dir };
    check_config(&files, config)?;
    if files.summary().exists() {
        return Ok(RunOutcome::AlreadyFinished(read_json(&files.summary())?));
    }
    // RHO-LOSS: its irreducible-loss model is a run of its own, trained
    // (or resumed) here before the run's first step.
    let train_il = |il: &RunConfig, sub: &Path| match train(il, sub, options)? {
        RunOutcome::Stopped { .. } => Ok(None),
        RunOutcome::Finished(s) | RunOutcome::AlreadyFinished(s) => Ok(Some(s)),
    };
    if !crate::irreducible::prepare(config, &files.dir, options.kernels, train_il)? {
        return Ok(RunOutcome::Stopped { step: 0 });
    }
    let mut run = Run::new(config, files, options)?;
    run.resume_or_start()?;
    run.run_loop()
}

struct Run<'a> {
    config: &'a RunConfig,
    options: &'a TrainOptions,
    files: RunFiles,
    checkpointer: Checkpointer,
    device: Device,
    task: Box<dyn TaskRunner>,
    optimizer: Box<dyn Optimizer>,
    /// The trained parameters, listed once (gradient clipping reads them
    /// every step).
    trainable: Vec<isdet_detector::Param>,
    sampler: Sampler<Box<dyn Strategy>>,
    scorer: Scorer,
    /// τ of the loss and gradient-norm tables and the draws' spread.
    diagnostics: DiagnosticTables,
    journal: Option<Journal>,
    time: PhaseTimes,
    loss_sum: f64,
    loss_count: u64,
    skipped: u64,
    last_eval: Option<(u64, Evaluation)>,
    last_eval_step: Option<u64>,
    lr: f64,
    /// The epoch of the step being planned: augmentation draws with it.
    step_epoch: u64,
    progress: ProgressBar,
}

impl<'a> Run<'a> {
    fn new(config: &'a RunConfig, files: RunFiles, options: &'a TrainOptions) -> Result<Self> {
        let device = config.device.open()?;
        let task: Box<dyn TaskRunner> = match config.task {
            Task::Detection => Box::new(DetectionTask::new(
                config,
                &device,
                options.kernels,
                &files.val_annotations(),
            )?),
            Task::Classification => {
                Box::new(ClassificationTask::new(config, &device, options.kernels)?)
            }
        };
        let trainable = task.params().trainable();
        let params = trainable.clone();
        let optimizer: Box<dyn Optimizer> = match config.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => Box::new(Sgd::new(
                params,
                config.lr.base,
                momentum,
                nesterov,
                weight_decay,
            )?),
            OptimizerConfig::Adamw { weight_decay } => {
                Box::new(AdamW::new(params, config.lr.base, weight_decay)?)
            }
        };
        let n = task.train_len();
        let inputs = crate::irreducible::inputs(config, &files.dir, n)?;
        let sampler = config.new_sampler(n, &inputs)?;
        let schedule = *sampler.schedule();
        let scorer = Scorer::new(config.scoring(), n)?;
        let diagnostics = DiagnosticTables::new(n, &config.scoring())?;
        let progress = if options.progress {
            let bar = ProgressBar::new(schedule.budget_steps());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} steps ({percent}% of budget) {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(config.method.clone());
            bar
        } else {
            ProgressBar::hidden()
        };
        Ok(Run {
            config,
            options,
            checkpointer: Checkpointer::new(&files.dir),
            files,
            device,
            task,
            optimizer,
            trainable,
            sampler,
            scorer,
            diagnostics,
            journal: None,
            time: PhaseTimes::default(),
            loss_sum: 0.0,
            loss_count: 0,
            skipped: 0,
            last_eval: None,
            last_eval_step: None,
            lr: config.lr.base,
            step_epoch: 0,
            progress,
        })
    }

    fn optimiser_steps(&self) -> u64 {
        self.sampler.budget().optimiser_steps()
    }

    /// Restores the last checkpoint, or starts afresh with the step-0
    /// evaluation.
    fn resume_or_start(&mut self) -> Result<()> {
        if !self.checkpointer.exists() {
            let (journal, _) = Journal::open(&self.files.journal(), 0)?;
            self.journal = Some(journal);
            truncate(&self.files.metrics(), 0)?;
            return self.evaluate_and_log();
        }
        let state = self.checkpointer.restore(
            self.task.as_ref(),
            self.optimizer.as_mut(),
            &mut self.scorer,
            &self.device,
        )?;
        let (journal, entries) = Journal::open(&self.files.journal(), state.journal_len)?;
        self.journal = Some(journal);
        self.replay(&entries)?;
        if self.optimiser_steps() != state.optimiser_steps
            || self.sampler.steps_planned() != state.sampler_steps
        {
            return Err(self.journal_error(format!(
                "replay reached optimiser step {} (plan {}), the checkpoint says {} ({})",
                self.optimiser_steps(),
                self.sampler.steps_planned(),
                state.optimiser_steps,
                state.sampler_steps
            )));
        }
        self.check_metrics_len(&state)?;
        match &state.diagnostics {
            Some(name) => {
                let path = self.checkpointer.dir().join(name);
                self.diagnostics.load(&path)?;
            }
            None => log::warn!(
                "{}: the checkpoint predates the diagnostic tables; τ covers the images \
                 scored from now on",
                self.files.dir.display()
            ),
        }
        warn_on_other_threads(&self.files.dir, &state);
        truncate(&self.files.metrics(), state.metrics_len)?;
        self.time = state.time;
        self.loss_sum = state.loss_sum;
        self.loss_count = state.loss_count;
        self.skipped = state.skipped_batches;
        self.last_eval_step = state.last_eval_step;
        self.lr = state.lr;
        self.optimizer.set_learning_rate(state.lr);
        log::info!(
            "{}: resumed at optimiser step {}",
            self.files.dir.display(),
            state.optimiser_steps
        );
        Ok(())
    }

    /// Refuses to resume when `metrics.jsonl` is shorter than at the
    /// checkpoint: evaluations the checkpoint counts on are gone (a copy of
    /// the directory taken while the run was going, say), and cutting the
    /// file "back" to the checkpoint's length would pad it with zero bytes.
    fn check_metrics_len(&self, state: &CheckpointState) -> Result<()> {
        let path = self.files.metrics();
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len >= state.metrics_len {
            return Ok(());
        }
        Err(TrainerError::Malformed {
            path,
            message: format!(
                "{len} bytes, but the checkpoint at optimiser step {} expects at least {}: \
                 evaluations logged before the checkpoint are missing, so the run cannot \
                 resume; delete {} to train it again",
                state.optimiser_steps,
                state.metrics_len,
                self.files.dir.display()
            ),
        })
    }

    fn journal_error(&self, message: String) -> TrainerError {
        crate::journal::journal_error(&self.files.journal(), message)
    }

    /// Feeds the journal's scores back through the sampler: the same calls
    /// in the same order rebuild its exact state.
    fn replay(&mut self, entries: &[crate::journal::JournalEntry]) -> Result<()> {
        let diagnostics = &mut self.diagnostics;
        crate::journal::replay(
            &mut self.sampler,
            entries,
            &self.files.journal(),
            |_, plan| diagnostics.drawn(plan.train()),
        )
    }

    fn stop_requested(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn run_loop(&mut self) -> Result<RunOutcome> {
        let every = self.config.eval.every;
        self.progress.set_position(self.optimiser_steps());
        loop {
            if self.stop_requested() {
                self.checkpoint()?;
                self.progress
                    .abandon_with_message("stopped; resume with the same command");
                return Ok(RunOutcome::Stopped {
                    step: self.optimiser_steps(),
                });
            }
            // A training plan charges its step, so the epoch is read first.
            self.step_epoch = self.epoch();
            let t = Instant::now();
            let planned = self.sampler.plan()?;
            self.time.sampling += t.elapsed().as_secs_f64();
            let Some(planned) = planned else { break };
            let stepped = match planned {
                Planned::Train(plan) => self.train_step(&plan, true)?,
                Planned::ScoreFirst(candidates) => {
                    self.score_candidates(&candidates)?;
                    let t = Instant::now();
                    let plan = self.sampler.select()?;
                    self.time.sampling += t.elapsed().as_secs_f64();
                    self.train_step(&plan, false)?
                }
            };
            if !stepped {
                continue;
            }
            let steps = self.optimiser_steps();
            self.progress.set_position(steps);
            if steps.is_multiple_of(every) {
                self.evaluate_and_log()?;
                self.checkpoint()?;
            } else if steps.is_multiple_of(self.config.checkpoint_every) {
                self.checkpoint()?;
            }
        }
        if self.last_eval_step != Some(self.optimiser_steps()) {
            self.evaluate_and_log()?;
        }
        self.finish()
    }

    /// Optimiser steps charged so far over steps per epoch: the epoch
    /// number `metrics.jsonl` logs. Augmentation draws with
    /// `step_epoch`, read before the plan is charged, so every batch of an
    /// epoch draws with that epoch's number.
    fn epoch(&self) -> u64 {
        self.optimiser_steps() / self.sampler.schedule().steps_per_epoch().max(1)
    }

    /// Loads `ids`, runs the forward pass and the loss (with any fault
    /// injected for this step).
    fn forward(&mut self, ids: &[usize], weights: Option<&[f32]>) -> Result<Forward> {
        let mut out = self
            .task
            .forward(ids, self.step_epoch, weights, &mut self.time)?;
        let step = self.sampler.current_step();
        if let Some(f) = &self.config.fault
            && f.nan_loss_at_steps.contains(&step)
        {
            out.objective = (&out.objective * f64::NAN)?;
            out.per_sample.iter_mut().for_each(|v| *v = f32::NAN);
        }
        Ok(out)
    }

    /// The ids of `ids` whose loss is not finite, or all of them when only
    /// the objective is.
    fn non_finite(ids: &[usize], out: &Forward, objective: f32) -> Option<Vec<usize>> {
        let bad: Vec<usize> = ids
            .iter()
            .zip(&out.per_sample)
            .filter(|(_, l)| !l.is_finite())
            .map(|(&id, _)| id)
            .collect();
        match (bad.is_empty(), objective.is_finite()) {
            (true, true) => None,
            (true, false) => Some(ids.to_vec()),
            (false, _) => Some(bad),
        }
    }

    /// Scores the last forward pass and records the scores.
    fn score_and_record(&mut self, ids: &[usize]) -> Result<()> {
        let t = Instant::now();
        let (scored, scores) = self.task.score(&mut self.scorer, ids)?;
        self.time.scoring += t.elapsed().as_secs_f64();
        let t = Instant::now();
        self.diagnostics.score(self.task.as_mut(), ids)?;
        self.time.diagnostics += t.elapsed().as_secs_f64();
        self.record(&scored, &scores)
    }

    fn record(&mut self, ids: &[usize], scores: &[f32]) -> Result<()> {
        let t = Instant::now();
        let step = self.sampler.current_step();
        if !ids.is_empty() {
            self.sampler.record(ids, scores)?;
        }
        if let Some(j) = self.journal.as_mut() {
            j.append(step, ids, scores)?;
        }
        self.time.sampling += t.elapsed().as_secs_f64();
        Ok(())
    }

    fn nonfinite_error(&self, ids: &[usize], bad: Vec<usize>) -> TrainerError {
        TrainerError::NonFiniteLoss {
            step: self.sampler.current_step(),
            optimiser_step: self.optimiser_steps(),
            ids: ids.to_vec(),
            bad,
        }
    }

    /// Forwards candidates without training on them and records their
    /// scores (selective backprop, presampling).
    fn score_candidates(&mut self, candidates: &[usize]) -> Result<()> {
        // A sufficiency refresh (AFSS) measures what the model has learnt:
        // un-augmented images in evaluation mode, so that it neither moves
        // BatchNorm's running statistics nor depends on which images share
        // its batch. Other candidates are scored as the training pass
        // would score them.
        let out = if self.config.heuristic.needs_boxes() {
            self.task.forward_plain(candidates, &mut self.time)?
        } else {
            self.forward(candidates, None)?
        };
        let objective = out.objective.to_scalar::<f32>()?;
        if let Some(bad) = Self::non_finite(candidates, &out, objective) {
            // A candidate batch cannot be skipped: the sampler needs every
            // candidate's score to select from them.
            return Err(self.nonfinite_error(candidates, bad));
        }
        self.score_and_record(candidates)
    }

    /// Trains on `plan` (recording its scores when `record`); returns
    /// whether an optimiser step was taken.
    fn train_step(&mut self, plan: &StepPlan, record: bool) -> Result<bool> {
        let ids = plan.train();
        if ids.is_empty() {
            return Ok(false);
        }
        self.diagnostics.drawn(ids);
        let out = self.forward(ids, Some(plan.weights()))?;
        let objective = out.objective.to_scalar::<f32>()?;
        if let Some(bad) = Self::non_finite(ids, &out, objective) {
            match self.config.on_nonfinite {
                NonFinitePolicy::Stop => return Err(self.nonfinite_error(ids, bad)),
                NonFinitePolicy::Skip => {
                    log::warn!("{}", self.nonfinite_error(ids, bad));
                    self.skipped += 1;
                    if record {
                        self.record(&[], &[])?;
                    }
                    return Ok(true);
                }
            }
        }
        if record {
            self.score_and_record(ids)?;
        }
        let t = Instant::now();
        // The sampler has already counted this step: the schedule's
        // position is the step just taken, minus one.
        let step = self.optimiser_steps() - 1;
        let total = self.sampler.schedule().budget_steps();
        self.lr = learning_rate(&self.config.lr, step, total);
        self.optimizer.set_learning_rate(self.lr);
        let mut grads = out.objective.backward()?;
        if let Some(max) = self.config.grad_clip
            && clip_grad_norm(&mut grads, &self.trainable, max).is_err()
        {
            return Err(self.nonfinite_error(ids, ids.to_vec()));
        }
        self.optimizer.step(&grads)?;
        self.time.backward += t.elapsed().as_secs_f64();
        self.loss_sum += f64::from(objective);
        self.loss_count += 1;
        let metric = self.task.primary_metric();
        let last = self.last_eval.as_ref().map_or(String::new(), |(step, e)| {
            let value = e.metrics.get(metric).copied().unwrap_or(f64::NAN);
            format!(" | {metric} {value:.4} @ {step}")
        });
        self.progress
            .set_message(format!("loss {objective:.3} lr {:.2e}{last}", self.lr));
        Ok(true)
    }

    /// Scores the model on the validation set.
    fn evaluate(&mut self) -> Result<Evaluation> {
        let t = Instant::now();
        let evaluation = self.task.evaluate()?;
        self.time.eval += t.elapsed().as_secs_f64();
        Ok(evaluation)
    }

    fn evaluate_and_log(&mut self) -> Result<()> {
        let evaluation = self.evaluate()?;
        let budget = self.sampler.budget();
        let record = MetricsRecord {
            step: budget.optimiser_steps(),
            sampler_step: self.sampler.steps_planned(),
            epoch: self.epoch(),
            forward: budget.forward_passes(),
            backward: budget.backward_passes(),
            images: budget.images_seen(),
            seconds: self.time.training(),
            lr: self.lr,
            train_loss: (self.loss_count > 0).then(|| self.loss_sum / self.loss_count as f64),
            skipped_batches: self.skipped,
            metrics: evaluation.metrics.clone(),
            time: self.time,
            diagnostics: Some(
                self.diagnostics
                    .record(self.sampler.strategy().diagnostics()),
            ),
        };
        append_line(&self.files.metrics(), &record)?;
        let metric = self.task.primary_metric();
        log::info!(
            "{} step {}: {metric} {:.4}, training loss {:.4}",
            self.config.method,
            record.step,
            record.metrics.get(metric).copied().unwrap_or(f64::NAN),
            record.train_loss.unwrap_or(f64::NAN)
        );
        self.loss_sum = 0.0;
        self.loss_count = 0;
        self.last_eval_step = Some(record.step);
        self.last_eval = Some((record.step, evaluation));
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<()> {
        let journal_len = match self.journal.as_mut() {
            Some(j) => j.sync()?,
            None => 0,
        };
        let metrics_len = std::fs::metadata(self.files.metrics())
            .map(|m| m.len())
            .unwrap_or(0);
        let state = |names: CheckpointFiles| CheckpointState {
            sampler_steps: self.sampler.steps_planned(),
            optimiser_steps: self.optimiser_steps(),
            journal_len,
            metrics_len,
            time: self.time,
            loss_sum: self.loss_sum,
            loss_count: self.loss_count,
            skipped_batches: self.skipped,
            last_eval_step: self.last_eval_step,
            lr: self.lr,
            weights: names.weights,
            optimizer: names.optimizer,
            scorer: names.scorer,
            diagnostics: names.diagnostics,
            threads: Some(candle_core::utils::get_num_threads()),
        };
        self.checkpointer.save(
            self.sampler.steps_planned(),
            self.task.as_ref(),
            self.optimizer.as_ref(),
            &self.scorer,
            &self.diagnostics,
            state,
        )
    }

    fn finish(&mut self) -> Result<RunOutcome> {
        let evaluation = match self.last_eval.take() {
            Some((_, e)) => e,
            // Resumed right at the end: evaluate the restored model again
            // (deterministic, so the metrics are those it had).
            None => self.evaluate()?,
        };
        let dir = self.files.dir.clone();
        self.task.save_model(
            &dir.join(files::MODEL_WEIGHTS),
            &dir.join(files::MODEL_CONFIG),
        )?;
        let val_annotations = match &evaluation.detections {
            Some(detections) => {
                write_results(&dir.join(files::PREDICTIONS), detections)?;
                Some(self.files.val_annotations())
            }
            None => None,
        };
        let budget = self.sampler.budget();
        let metric = self.task.primary_metric();
        let summary = Summary {
            method: self.config.method.clone(),
            strategy: self.sampler.strategy().name().to_string(),
            heuristic: self.config.heuristic.label(),
            budget: self.config.budget,
            seed: self.config.seed,
            task: self.task.name().into(),
            primary_metric: metric.into(),
            metrics: evaluation.metrics.clone(),
            val_annotations,
            steps: budget.optimiser_steps(),
            sampler_steps: self.sampler.steps_planned(),
            forward: budget.forward_passes(),
            backward: budget.backward_passes(),
            images: budget.images_seen(),
            seconds: self.time.training(),
            eval_seconds: self.time.eval,
            skipped_batches: self.skipped,
            irreducible: crate::irreducible::cost(self.config, &dir)?,
        };
        // What the budget was spent on, before the summary marks the run
        // finished: a failure here leaves a run that resumes to finish.
        if let Some(j) = self.journal.as_mut() {
            j.sync()?;
        }
        crate::spending::write_record(&dir, self.config, self.task.train_len())?;
        write_json_atomic(&self.files.summary(), &summary)?;
        let value = evaluation.metrics.get(metric).copied().unwrap_or(f64::NAN);
        self.progress
            .finish_with_message(format!("{metric} {value:.4}"));
        Ok(RunOutcome::Finished(summary))
    }
}

/// Warns when a run resumes with another number of CPU threads than it
/// trained with: from here on it rounds differently from an uninterrupted
/// run (docs/run-directory.md).
fn warn_on_other_threads(dir: &Path, state: &CheckpointState) {
    let now = candle_core::utils::get_num_threads();
    if let Some(then) = state.threads.filter(|&t| t != now) {
        log::warn!(
            "{}: resuming with {now} CPU threads, but the run trained with {then}; its numbers \
             will differ from an uninterrupted run's (set RAYON_NUM_THREADS={then} to match)",
            dir.display()
        );
    }
}
