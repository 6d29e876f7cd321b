//! # isdet-bench
//!
//! The end-to-end speed measurements behind `cargo xtask bench`: one
//! training step of the detector (forward, loss, backward, optimiser) on a
//! fixed batch with its inference throughput and the cost of every scoring
//! heuristic, and the step of the reference net of `bench/convnet_ref.py`,
//! the PyTorch twin it is compared with. Each returns a report that
//! serialises to the JSON the command prints.
//!
//! ```no_run
//! use isdet_bench::detector_step;
//! use isdet_kernels::Kernels;
//!
//! let report = detector_step("tiny", 16, 96, 10, Kernels::Fast, &candle_core::Device::Cpu)?;
//! println!("{} ms per step", report.train_step_ms_median);
//! # Ok::<(), isdet_bench::BenchError>(())
//! ```
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use isdet_data::{BatchRequest, DetAugment, DetectionPipeline, SynthConfig, SynthDataset, collate};
use isdet_detector::{DecodeConfig, Fcos, FcosConfig, Optimizer, Sgd, fcos_loss};
use isdet_heuristics::{ForwardOutputs, Heuristic, ScoringConfig, Targets, score_batch};
use isdet_kernels::{Kernels, conv2d, conv2d_relu};
use serde::Serialize;

/// What can stop a measurement.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The arguments do not describe a measurable setting.
    #[error("{0}")]
    Invalid(String),
    /// Making the batch failed.
    #[error(transparent)]
    Data(#[from] isdet_data::DataError),
    /// The model failed.
    #[error(transparent)]
    Detector(#[from] isdet_detector::DetectorError),
    /// Scoring failed.
    #[error("scoring with {heuristic}: {source}")]
    Scoring {
        /// The heuristic.
        heuristic: String,
        /// Why.
        source: isdet_heuristics::HeuristicsError,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The result type of isdet-bench.
pub type Result<T> = std::result::Result<T, BenchError>;

/// One detector training step, measured.
#[derive(Debug, Serialize)]
pub struct TrainStepReport {
    /// `detector`.
    pub net: String,
    /// Where the step ran: `cpu`, or `cuda:N`.
    pub device: String,
    /// The kernels (`fast` or `stock`).
    pub conv: String,
    /// The detector preset.
    pub preset: String,
    /// Images per step.
    pub batch: usize,
    /// Input side in pixels.
    pub size: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// CPU threads.
    pub threads: usize,
    /// Timed steps.
    pub steps: usize,
    /// Median milliseconds per training step.
    pub train_step_ms_median: f64,
    /// Training throughput.
    pub train_images_per_s: f64,
    /// Median milliseconds per inference batch (forward + decode).
    pub inference_ms_median: f64,
    /// Inference throughput.
    pub inference_images_per_s: f64,
    /// The step's matrix-product work against the machine's sgemm speed
    /// (fast kernels on the CPU only: `null` otherwise).
    pub gemm: Option<GemmUse>,
    /// Scoring the step's outputs with each detection heuristic (the
    /// default aggregation), timed against the step itself.
    pub scoring: Vec<ScoreTiming>,
}

/// How much of the machine's matrix-product speed a step turns into
/// convolution work: the GEMM floating-point operations of one step
/// ([`isdet_kernels::gemm_flops`]) over its median time, against the
/// speed of one large sgemm measured in the same process at the same
/// thread count. A step that did nothing but GEMMs at full speed would
/// reach a share of 1.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GemmUse {
    /// GFLOP of matrix products per step (forward and backward).
    pub gflop_per_step: f64,
    /// Those GFLOP over the median step time.
    pub achieved_gflops: f64,
    /// The sgemm speed of this process: the best of five 1024³ f32
    /// products (candle's CPU matmul, the `gemm` crate on all threads).
    pub sgemm_gflops: f64,
    /// `achieved_gflops / sgemm_gflops`.
    pub share_of_sgemm: f64,
}

impl GemmUse {
    /// The use of `flops` GEMM operations per step at `step_ms`; `None`
    /// when the step did none (stock kernels, another device).
    fn measure(flops: f64, step_ms: f64) -> Result<Option<Self>> {
        if flops <= 0.0 {
            return Ok(None);
        }
        let gflop = flops / 1e9;
        let achieved = gflop / (step_ms / 1e3);
        let peak = sgemm_gflops()?;
        Ok(Some(GemmUse {
            gflop_per_step: gflop,
            achieved_gflops: achieved,
            sgemm_gflops: peak,
            share_of_sgemm: achieved / peak,
        }))
    }
}

/// The machine's f32 matrix-product speed in this process: the best of
/// five 1024 × 1024 × 1024 products after one untimed one.
fn sgemm_gflops() -> Result<f64> {
    const N: usize = 1024;
    let a = Tensor::randn(0f32, 1.0, (N, N), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (N, N), &Device::Cpu)?;
    let mut best = f64::INFINITY;
    for i in 0..6 {
        let start = Instant::now();
        std::hint::black_box(a.matmul(&b)?);
        if i > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    Ok(2.0 * (N * N * N) as f64 / best / 1e9)
}

/// The cost of one heuristic on one training batch.
#[derive(Debug, Serialize)]
pub struct ScoreTiming {
    /// The heuristic.
    pub heuristic: String,
    /// Its aggregation.
    pub aggregation: String,
    /// Median milliseconds to score one batch.
    pub score_ms: f64,
    /// That time over the training step's.
    pub fraction_of_step: f64,
}

/// One convnet-ref training step, measured.
#[derive(Debug, Serialize)]
pub struct ConvnetReport {
    /// `convnet-ref`.
    pub net: &'static str,
    /// The kernels.
    pub conv: &'static str,
    /// Images per step.
    pub batch: usize,
    /// Input side.
    pub size: usize,
    /// Widths of the 3×3 convolutions.
    pub channels: Vec<usize>,
    /// CPU threads.
    pub threads: usize,
    /// Timed steps.
    pub steps: usize,
    /// Median milliseconds per step.
    pub train_step_ms_median: f64,
    /// The step's matrix-product work against the machine's sgemm speed
    /// (fast kernels only: `null` for stock).
    pub gemm: Option<GemmUse>,
    /// Fastest step in milliseconds.
    pub train_step_ms_min: f64,
}

/// The reference net of `bench/convnet_ref.py`, step for step: forward,
/// mean-square loss, backward, plain SGD (lr 0.01), on a fixed random batch;
/// the median over `steps` after 3 untimed steps.
pub fn convnet_ref_step(
    imp: Kernels,
    batch: usize,
    size: usize,
    channels: &str,
    steps: usize,
) -> Result<ConvnetReport> {
    let mut reports = convnet_ref_steps(&[imp], batch, size, channels, steps)?;
    Ok(reports.remove(0))
}

/// [`convnet_ref_step`] for several kernels in one process, their steps
/// taking turns (a step of each, then the next round): every kernel's
/// median then comes from the same stretch of the machine's load, which a
/// measurement of one after the other does not give on a noisy machine.
/// One report per kernel, in their order.
pub fn convnet_ref_steps(
    kernels: &[Kernels],
    batch: usize,
    size: usize,
    channels: &str,
    steps: usize,
) -> Result<Vec<ConvnetReport>> {
    positive_steps(steps)?;
    let device = Device::Cpu;
    let widths = channels
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| BenchError::Invalid(format!("channels {channels:?}: {e}")))?;
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
    let mut turns = Turns::new(kernels, 3, steps, 0)?;
    for i in 0..turns.len() {
        let imp = turns.kernels_at(i);
        let (start, flops_from) = (Instant::now(), isdet_kernels::gemm_flops());
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
                let g = grads
                    .get(v.as_tensor())
                    .ok_or_else(|| BenchError::Invalid("missing gradient".into()))?;
                v.set(&(v.as_tensor() - (g * 0.01)?)?)?;
            }
        }
        std::hint::black_box(loss.to_scalar::<f32>()?);
        turns.record(i, start, flops_from);
    }
    let mut reports = Vec::with_capacity(kernels.len());
    for (k, &imp) in kernels.iter().enumerate() {
        let times = turns.times(k);
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let step_ms = median(times.to_vec());
        reports.push(ConvnetReport {
            net: "convnet-ref",
            conv: imp.name(),
            batch,
            size,
            channels: widths.clone(),
            threads: candle_core::utils::get_num_threads(),
            steps,
            train_step_ms_median: step_ms,
            gemm: GemmUse::measure(turns.flops_per_step(k), step_ms)?,
            train_step_ms_min: min,
        });
    }
    Ok(reports)
}

/// The turns of several kernels' steps in one loop: loop step `i` runs
/// kernel `i mod n` of round `i / n`; the rounds after the warm-up ones
/// are timed, then `tail` untimed ones end the loop (whose outputs a
/// caller may keep without holding them while a timed step runs). With
/// one kernel, plain warm-up and timed steps.
struct Turns {
    kernels: Vec<Kernels>,
    warmup: usize,
    steps: usize,
    tail: usize,
    /// Per kernel: milliseconds of its timed steps.
    times: Vec<Vec<f64>>,
    /// Per kernel: GEMM operations of its timed steps.
    flops: Vec<u64>,
}

impl Turns {
    fn new(kernels: &[Kernels], warmup: usize, steps: usize, tail: usize) -> Result<Self> {
        if kernels.is_empty() {
            return Err(BenchError::Invalid("no kernels to measure".into()));
        }
        Ok(Turns {
            kernels: kernels.to_vec(),
            warmup,
            steps,
            tail,
            times: vec![Vec::new(); kernels.len()],
            flops: vec![0; kernels.len()],
        })
    }

    /// Loop steps in all.
    fn len(&self) -> usize {
        (self.warmup + self.steps + self.tail) * self.kernels.len()
    }

    /// The round of loop step `i`.
    fn round(&self, i: usize) -> usize {
        i / self.kernels.len()
    }

    /// The kernels loop step `i` runs.
    fn kernels_at(&self, i: usize) -> Kernels {
        self.kernels[i % self.kernels.len()]
    }

    /// Whether loop step `i` is its kernel's last.
    fn is_last(&self, i: usize) -> bool {
        self.round(i) + 1 == self.warmup + self.steps + self.tail
    }

    /// Loop step `i` began at `start`, with the GEMM counter at `flops_from`.
    fn record(&mut self, i: usize, start: Instant, flops_from: u64) {
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if (self.warmup..self.warmup + self.steps).contains(&self.round(i)) {
            let k = i % self.kernels.len();
            self.times[k].push(ms);
            self.flops[k] += isdet_kernels::gemm_flops() - flops_from;
        }
    }

    /// Kernel `k`'s timed steps, in milliseconds.
    fn times(&self, k: usize) -> &[f64] {
        &self.times[k]
    }

    /// Kernel `k`'s GEMM operations per timed step.
    fn flops_per_step(&self, k: usize) -> f64 {
        self.flops[k] as f64 / self.steps as f64
    }
}

/// `cpu`, or `cuda:N` for GPU N.
fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A median needs at least one timed step.
fn positive_steps(steps: usize) -> Result<()> {
    if steps == 0 {
        return Err(BenchError::Invalid("steps must be at least 1".into()));
    }
    Ok(())
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
/// SGD with momentum: the step the trainer will run, on `device` (off the
/// CPU the fast kernels fall back to candle's ops). Each timed step ends
/// by reading the loss back, which waits for a GPU's queued work.
pub fn detector_step(
    preset: &str,
    batch: usize,
    size: usize,
    steps: usize,
    kernels: Kernels,
    device: &Device,
) -> Result<TrainStepReport> {
    let mut reports = detector_steps(preset, batch, size, steps, &[kernels], device)?;
    Ok(reports.remove(0))
}

/// [`detector_step`] for several kernels in one process, their training
/// steps taking turns on one model (a step of each, then the next round),
/// as [`convnet_ref_steps`] does; then each kernel's scoring and inference
/// in turn. One report per kernel, in their order.
pub fn detector_steps(
    preset: &str,
    batch: usize,
    size: usize,
    steps: usize,
    kernels: &[Kernels],
    device: &Device,
) -> Result<Vec<TrainStepReport>> {
    positive_steps(steps)?;
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
    let images = Tensor::from_vec(b.images, b.shape.to_vec(), device)?;
    let mut model = Fcos::new(FcosConfig::preset(preset, 5, size)?, 0, device)?;
    let boxes: Vec<&[isdet_data::Annotation]> =
        b.targets.iter().map(|t| &t.annotations[..]).collect();
    let mut sgd = Sgd::new(model.params().trainable(), 0.01, 0.9, false, 1e-4)?;
    // One untimed round at the end, whose outputs are kept for scoring.
    let mut turns = Turns::new(kernels, 2, steps, 1)?;
    let mut last: Vec<_> = kernels.iter().map(|_| None).collect();
    for i in 0..turns.len() {
        model = model.with_kernels(turns.kernels_at(i));
        let (start, flops_from) = (Instant::now(), isdet_kernels::gemm_flops());
        // Targets are assigned inside the step, as the trainer must for
        // augmented batches.
        let targets = model.targets(&boxes)?;
        let loss = fcos_loss(&model.forward(&images, true)?, &targets, None)?;
        sgd.step(&loss.objective.backward()?)?;
        let value = loss.objective.to_scalar::<f32>()?;
        if !value.is_finite() {
            let (step, imp) = (turns.round(i), turns.kernels_at(i).name());
            return Err(BenchError::Invalid(format!(
                "step {step} ({imp} kernels): loss is {value}"
            )));
        }
        turns.record(i, start, flops_from);
        // Only each kernel's step of the untimed last round is kept for
        // scoring, so that no graph stays alive while a timed step runs.
        if turns.is_last(i) {
            last[i % kernels.len()] = Some((loss, targets));
        }
    }
    let lbs: Vec<_> = b.targets.iter().map(|t| t.letterbox).collect();
    let sizes: Vec<_> = b.targets.iter().map(|t| t.original_size).collect();
    let mut reports = Vec::with_capacity(kernels.len());
    for (k, &imp) in kernels.iter().enumerate() {
        model = model.with_kernels(imp);
        let train_ms = median(turns.times(k).to_vec());
        let gemm = GemmUse::measure(turns.flops_per_step(k), train_ms)?;
        let (loss, targets) = last[k]
            .take()
            .ok_or_else(|| BenchError::Invalid("no training step ran".into()))?;
        let scoring = score_timings(&loss, &targets.labels, steps, train_ms)?;
        drop((loss, targets));
        let mut infer = Vec::with_capacity(steps);
        for i in 0..steps + 1 {
            let start = Instant::now();
            let out = model.forward(&images, false)?;
            model.detect(&out, &lbs, &sizes, &DecodeConfig::default())?;
            if i >= 1 {
                infer.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let infer_ms = median(infer);
        reports.push(TrainStepReport {
            net: "detector".into(),
            device: device_name(device),
            conv: imp.name().into(),
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
            gemm,
            scoring,
        });
    }
    Ok(reports)
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
) -> Result<Vec<ScoreTiming>> {
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
            let scores = score_batch(&config, &outputs).map_err(|source| BenchError::Scoring {
                heuristic: heuristic.label(),
                source,
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_alternate_the_kernels_and_time_the_rounds_after_warm_up() {
        let kernels = [Kernels::Fast, Kernels::Gemm, Kernels::Stock];
        let mut turns = Turns::new(&kernels, 2, 3, 1).unwrap();
        assert_eq!(turns.len(), 18);
        let order: Vec<_> = (0..turns.len()).map(|i| turns.kernels_at(i)).collect();
        assert_eq!(&order[..6], &[kernels, kernels].concat()[..]);
        let last: Vec<_> = (0..turns.len()).filter(|&i| turns.is_last(i)).collect();
        assert_eq!(last, [15, 16, 17]);
        for i in 0..turns.len() {
            turns.record(i, Instant::now(), isdet_kernels::gemm_flops());
        }
        // The two warm-up rounds and the tail are not timed: three steps
        // per kernel.
        for k in 0..kernels.len() {
            assert_eq!(turns.times(k).len(), 3);
        }
        assert!(Turns::new(&[], 2, 3, 0).is_err());
    }
}
