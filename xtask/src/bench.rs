//! `cargo xtask bench …`: end-to-end speed figures, printed as JSON.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use clap::Subcommand;
use isdet_data::{BatchRequest, DetAugment, DetectionPipeline, SynthConfig, SynthDataset, collate};
use isdet_detector::{
    ConvImpl, DecodeConfig, Fcos, FcosConfig, Optimizer, Sgd, assign, decode, fcos_loss,
    set_default_conv_impl,
};
use isdet_heuristics::{ForwardOutputs, Heuristic, ScoringConfig, Targets, score_batch};
use serde::Serialize;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Median time of one training step (forward + backward + optimiser)
    /// on a fixed batch, and inference throughput.
    TrainStep {
        /// `detector` (the FCOS-style detector on synth scenes).
        #[arg(long, default_value = "detector")]
        net: String,
        /// Detector preset (`tiny` or `small`).
        #[arg(long, default_value = "tiny")]
        preset: String,
        /// Batch size.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Input side in pixels (a multiple of 32).
        #[arg(long, default_value_t = 96)]
        size: usize,
        /// Timed steps (after 2 untimed warm-up steps).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Convolution implementation: `fast` (im2col + GEMM), `stock`
        /// (candle's conv2d), or `both` (one report each, same process,
        /// stock first).
        #[arg(long, default_value = "fast")]
        conv: String,
        /// Print JSON only.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct TrainStepReport {
    net: String,
    conv: String,
    preset: String,
    batch: usize,
    size: usize,
    parameters: usize,
    threads: usize,
    steps: usize,
    train_step_ms_median: f64,
    train_images_per_s: f64,
    inference_ms_median: f64,
    inference_images_per_s: f64,
    /// Scoring the step's outputs with each detection heuristic (the
    /// default aggregation), timed against the step itself.
    scoring: Vec<ScoreTiming>,
}

/// The cost of one heuristic on one training batch.
#[derive(Serialize)]
struct ScoreTiming {
    heuristic: String,
    aggregation: String,
    score_ms: f64,
    fraction_of_step: f64,
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::TrainStep {
            net,
            preset,
            batch,
            size,
            steps,
            conv,
            json,
        } => {
            if net != "detector" {
                bail!(
                    "--net {net}: only `detector` is measured so far (convnet-ref arrives with the CPU speed work)"
                );
            }
            for imp in conv_impls(&conv)? {
                set_default_conv_impl(Some(imp));
                let mut report = detector_step(&preset, batch, size, steps.max(1))?;
                report.conv = imp.name().into();
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
            }
            set_default_conv_impl(None);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--conv`: `stock`, `fast` or `both` (stock first).
fn conv_impls(conv: &str) -> anyhow::Result<Vec<ConvImpl>> {
    if conv == "both" {
        return Ok(vec![ConvImpl::Stock, ConvImpl::Fast]);
    }
    match ConvImpl::parse(conv) {
        Some(imp) => Ok(vec![imp]),
        None => bail!("--conv {conv}: expected stock, fast or both"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A fixed batch of synth scenes (eval letterbox), the tiny/small detector,
/// SGD with momentum: the step the trainer will run.
fn detector_step(
    preset: &str,
    batch: usize,
    size: usize,
    steps: usize,
) -> anyhow::Result<TrainStepReport> {
    let device = Device::Cpu;
    let data = SynthDataset::new(SynthConfig {
        len: batch,
        ..SynthConfig::default()
    })?;
    let pipeline = Arc::new(DetectionPipeline::new(data, DetAugment::eval(size), 0)?);
    let request = BatchRequest {
        epoch: 0,
        ids: (0..batch).collect(),
    };
    let b = collate(&*pipeline, 0, &request)?;
    let images = Tensor::from_vec(b.images, b.shape.to_vec(), &device)?;
    let model = Fcos::new(FcosConfig::preset(preset, 5, size)?, 0, &device)?;
    let boxes: Vec<&[isdet_data::Annotation]> =
        b.targets.iter().map(|t| &t.annotations[..]).collect();
    let mut sgd = Sgd::new(model.params().trainable(), 0.01, 0.9, false, 1e-4)?;
    let mut times = Vec::with_capacity(steps);
    let mut last = None;
    for i in 0..steps + 2 {
        let start = Instant::now();
        // Targets are assigned inside the step, as the trainer must for
        // augmented batches.
        let targets = assign(model.locations(), &boxes, 5, model.config().center_radius)?;
        let loss = fcos_loss(&model.forward(&images, true)?, &targets, None)?;
        sgd.step(&loss.objective.backward()?)?;
        let value = loss.objective.to_scalar::<f32>()?;
        if !value.is_finite() {
            bail!("step {i}: loss is {value}");
        }
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        // Only the final step's outputs are kept for scoring, so that no
        // earlier step's graph stays alive while the next one is timed.
        if i == steps + 1 {
            last = Some((loss, targets));
        }
    }
    let train_ms = median(times);
    let (loss, targets) = last.context("no training step ran")?;
    let scoring = score_timings(&loss, &targets.labels, steps, train_ms)?;
    let lbs: Vec<_> = b.targets.iter().map(|t| t.letterbox).collect();
    let sizes: Vec<_> = b.targets.iter().map(|t| t.original_size).collect();
    let mut infer = Vec::with_capacity(steps);
    for i in 0..steps + 1 {
        let start = Instant::now();
        let out = model.forward(&images, false)?;
        decode(
            &out,
            model.locations(),
            &lbs,
            &sizes,
            &DecodeConfig::default(),
        )
        .context("decoding")?;
        if i >= 1 {
            infer.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let infer_ms = median(infer);
    Ok(TrainStepReport {
        net: "detector".into(),
        conv: String::new(),
        preset: preset.into(),
        batch,
        size,
        parameters: model.params().count(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        steps,
        train_step_ms_median: train_ms,
        train_images_per_s: batch as f64 * 1e3 / train_ms,
        inference_ms_median: infer_ms,
        inference_images_per_s: batch as f64 * 1e3 / infer_ms,
        scoring,
    })
}

/// The median time of scoring one training step's outputs with every
/// heuristic that applies to a detector (all but p-SGD, which needs a
/// classifier's true class), over `max(steps, 20)` repetitions after one
/// untimed run.
fn score_timings(
    loss: &isdet_detector::LossOutput,
    labels: &[i64],
    steps: usize,
    train_ms: f64,
) -> anyhow::Result<Vec<ScoreTiming>> {
    let outputs = ForwardOutputs::detection(
        &loss.per_image,
        &loss.parts,
        &loss.probs,
        &loss.location_mask,
    )
    .with_targets(Targets::LocationLabels(labels));
    let mut timings = Vec::new();
    for heuristic in Heuristic::ALL
        .into_iter()
        .filter(|h| !matches!(h, Heuristic::PSgd))
    {
        let config = ScoringConfig::new(heuristic);
        let mut times = Vec::new();
        for i in 0..steps.max(20) + 1 {
            let start = Instant::now();
            let scores = score_batch(&config, &outputs)
                .with_context(|| format!("scoring with {}", heuristic.label()))?;
            std::hint::black_box(scores);
            if i >= 1 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let score_ms = median(times);
        timings.push(ScoreTiming {
            heuristic: heuristic.label(),
            aggregation: if heuristic.aggregates() {
                format!("{:?}", config.aggregation)
            } else {
                "none".into()
            },
            score_ms,
            fraction_of_step: score_ms / train_ms,
        });
    }
    Ok(timings)
}
