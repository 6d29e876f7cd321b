//! `cargo xtask bench …`: end-to-end speed figures, printed as JSON.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use clap::Subcommand;
use isdet_data::{BatchRequest, DetAugment, DetectionPipeline, SynthConfig, SynthDataset, collate};
use isdet_detector::{DecodeConfig, Fcos, FcosConfig, Optimizer, Sgd, fcos_loss};
use isdet_heuristics::{ForwardOutputs, Heuristic, ScoringConfig, Targets, score_batch};
use isdet_kernels::{Kernels, conv2d, conv2d_relu};
use serde::Serialize;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Median time of one training step (forward + backward + optimiser)
    /// on a fixed batch, and inference throughput.
    TrainStep {
        /// `detector` (the FCOS-style detector on synth scenes) or
        /// `convnet-ref` (the reference net of the PyTorch twin
        /// `bench/convnet_ref.py`: 3×3 convs + ReLU, the first stride 1,
        /// the others stride 2, then a 1×1 conv to 15 channels; loss the
        /// mean square of the output; plain SGD, lr 0.01).
        #[arg(long, default_value = "detector")]
        net: String,
        /// convnet-ref: widths of its 3×3 convolutions.
        #[arg(long, default_value = "16,32,64,128")]
        channels: String,
        /// CPU threads (candle's worker pool reads `RAYON_NUM_THREADS` once,
        /// so a different count re-runs the command with it set).
        #[arg(long)]
        threads: Option<usize>,
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
            channels,
            threads,
        } => {
            if let Some(code) = rerun_with_threads(threads)? {
                return Ok(code);
            }
            if net == "convnet-ref" {
                for imp in conv_impls(&conv)? {
                    let report = convnet_ref_step(imp, batch, size, &channels, steps.max(1))?;
                    if json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            if net != "detector" {
                bail!("--net {net}: expected detector or convnet-ref");
            }
            for imp in conv_impls(&conv)? {
                let mut report = detector_step(&preset, batch, size, steps.max(1), imp)?;
                report.conv = imp.name().into();
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--threads N` when the process would use another count: runs the same
/// command again with `RAYON_NUM_THREADS=N` (candle sizes its pools from it
/// once per process) and returns its exit code.
fn rerun_with_threads(threads: Option<usize>) -> anyhow::Result<Option<ExitCode>> {
    let Some(n) = threads else { return Ok(None) };
    if n == 0 {
        bail!("--threads must be positive");
    }
    if std::env::var("RAYON_NUM_THREADS").ok().as_deref() == Some(&n.to_string()) {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("RAYON_NUM_THREADS", n.to_string())
        .env_remove("CANDLE_NUM_THREADS")
        .status()
        .context("re-running with RAYON_NUM_THREADS")?;
    Ok(Some(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8,
    )))
}

#[derive(Serialize)]
struct ConvnetReport {
    net: &'static str,
    conv: &'static str,
    batch: usize,
    size: usize,
    channels: Vec<usize>,
    threads: usize,
    steps: usize,
    train_step_ms_median: f64,
    train_step_ms_min: f64,
}

/// The reference net of `bench/convnet_ref.py`, step for step: forward,
/// mean-square loss, backward, plain SGD (lr 0.01), on a fixed random batch;
/// the median over `steps` after 3 untimed steps.
fn convnet_ref_step(
    imp: Kernels,
    batch: usize,
    size: usize,
    channels: &str,
    steps: usize,
) -> anyhow::Result<ConvnetReport> {
    let device = Device::Cpu;
    let widths = channels
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--channels {channels:?}"))?;
    let mut layers = Vec::new();
    let mut cin = 3;
    for (i, &c) in widths.iter().chain(std::iter::once(&15)).enumerate() {
        let k = if i == widths.len() { 1 } else { 3 };
        let std = (2.0 / (cin * k * k) as f64).sqrt();
        let w = candle_core::Var::from_tensor(
            &(Tensor::randn(0f32, 1.0, (c, cin, k, k), &device)? * std)?,
        )?;
        let b = candle_core::Var::zeros(c, candle_core::DType::F32, &device)?;
        let stride = if i == 0 || k == 1 { 1 } else { 2 };
        layers.push((w, b, stride, k / 2));
        cin = c;
    }
    let x = Tensor::randn(0f32, 1.0, (batch, 3, size, size), &device)?;
    let mut times = Vec::with_capacity(steps);
    for s in 0..steps + 3 {
        let start = Instant::now();
        let mut y = x.clone();
        for (i, (w, b, stride, pad)) in layers.iter().enumerate() {
            let (w, b) = (w.as_tensor(), Some(b.as_tensor()));
            y = if i + 1 < layers.len() {
                conv2d_relu(&y, w, b, *stride, *pad, imp)?
            } else {
                conv2d(&y, w, b, *stride, *pad, imp)?
            };
        }
        let loss = y.sqr()?.mean_all()?;
        let grads = loss.backward()?;
        for (w, b, _, _) in &layers {
            for v in [w, b] {
                let g = grads.get(v.as_tensor()).context("missing gradient")?;
                v.set(&(v.as_tensor() - (g * 0.01)?)?)?;
            }
        }
        std::hint::black_box(loss.to_scalar::<f32>()?);
        if s >= 3 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(ConvnetReport {
        net: "convnet-ref",
        conv: imp.name(),
        batch,
        size,
        channels: widths,
        threads: candle_core::utils::get_num_threads(),
        steps,
        train_step_ms_median: median(times),
        train_step_ms_min: min,
    })
}

/// `--conv`: `stock`, `fast` or `both` (stock first).
fn conv_impls(conv: &str) -> anyhow::Result<Vec<Kernels>> {
    if conv == "both" {
        return Ok(vec![Kernels::Stock, Kernels::Fast]);
    }
    match Kernels::parse(conv) {
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
    kernels: Kernels,
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
    let model = Fcos::new(FcosConfig::preset(preset, 5, size)?, 0, &device)?.with_kernels(kernels);
    let boxes: Vec<&[isdet_data::Annotation]> =
        b.targets.iter().map(|t| &t.annotations[..]).collect();
    let mut sgd = Sgd::new(model.params().trainable(), 0.01, 0.9, false, 1e-4)?;
    let mut times = Vec::with_capacity(steps);
    let mut last = None;
    for i in 0..steps + 2 {
        let start = Instant::now();
        // Targets are assigned inside the step, as the trainer must for
        // augmented batches.
        let targets = model.targets(&boxes)?;
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
        model
            .detect(&out, &lbs, &sizes, &DecodeConfig::default())
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
        threads: candle_core::utils::get_num_threads(),
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
