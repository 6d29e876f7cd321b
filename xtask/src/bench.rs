//! `cargo xtask bench …`: end-to-end speed figures, printed as JSON.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use clap::Subcommand;
use isdet_data::{BatchRequest, DetAugment, DetectionPipeline, SynthConfig, SynthDataset, collate};
use isdet_detector::{DecodeConfig, Fcos, FcosConfig, Optimizer, Sgd, assign, decode, fcos_loss};
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
        /// Print JSON only.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct TrainStepReport {
    net: String,
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
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::TrainStep {
            net,
            preset,
            batch,
            size,
            steps,
            json,
        } => {
            if net != "detector" {
                bail!(
                    "--net {net}: only `detector` is measured so far (convnet-ref arrives with the CPU speed work)"
                );
            }
            let report = detector_step(&preset, batch, size, steps.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
    }
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
    let (train_ms, infer_ms) = (median(times), median(infer));
    Ok(TrainStepReport {
        net: "detector".into(),
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
    })
}
