//! `cargo xtask bench …`: end-to-end speed figures, printed as JSON.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use isdet_bench::{convnet_ref_steps, detector_steps};
use isdet_kernels::Kernels;
use isdet_trainer::DeviceConfig;

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
        /// Convolution implementation: `fast` (the direct kernel for
        /// convolutions by shifted planes on AVX-512 CPUs, im2col + GEMM
        /// for the rest), `gemm` (im2col + GEMM everywhere), `winograd`
        /// (`gemm` with Winograd for stride-1 3×3), `stock` (candle's
        /// conv2d), a comma-separated list of them (one report each, same
        /// process, in that order), or `both` (`stock,fast`).
        #[arg(long, default_value = "fast")]
        conv: String,
        /// With a list of kernels in `--conv`: their training steps take
        /// turns, a step of each per round, instead of one kernel's steps
        /// after the other's; every median then comes from the same
        /// stretch of the machine's load (how to compare them on a noisy
        /// machine). One report each, as without it.
        #[arg(long)]
        interleave: bool,
        /// Where the detector's step runs: `cpu`, `cuda` or `cuda:N`
        /// (a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: DeviceConfig,
        /// Print JSON only.
        #[arg(long)]
        json: bool,
    },
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
            interleave,
            json,
            channels,
            threads,
            device,
        } => {
            if let Some(code) = rerun_with_threads(threads)? {
                return Ok(code);
            }
            if net == "convnet-ref" {
                if device != DeviceConfig::Cpu {
                    bail!("--device {device}: convnet-ref runs on the CPU only");
                }
                for imps in in_turns(conv_impls(&conv)?, interleave) {
                    for report in convnet_ref_steps(&imps, batch, size, &channels, steps.max(1))? {
                        print(&report, json)?;
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            if net != "detector" {
                bail!("--net {net}: expected detector or convnet-ref");
            }
            let device = device.open()?;
            for imps in in_turns(conv_impls(&conv)?, interleave) {
                for report in detector_steps(&preset, batch, size, steps.max(1), &imps, &device)? {
                    print(&report, json)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The groups of kernels measured together: all of them taking turns
/// (`--interleave`), or each alone, one after the other.
fn in_turns(kernels: Vec<Kernels>, interleave: bool) -> Vec<Vec<Kernels>> {
    if interleave {
        return vec![kernels];
    }
    kernels.into_iter().map(|k| vec![k]).collect()
}

/// Prints a report as one JSON line (`--json`) or pretty.
fn print(report: &impl serde::Serialize, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(report)?);
    }
    Ok(())
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

/// `--conv`: `stock`, `fast`, `gemm`, `winograd` (`gemm` with Winograd), a
/// comma-separated list of them, or `both` (stock, then fast).
fn conv_impls(conv: &str) -> anyhow::Result<Vec<Kernels>> {
    if conv == "both" {
        return Ok(vec![Kernels::Stock, Kernels::Fast]);
    }
    conv.split(',')
        .map(|name| match Kernels::parse(name) {
            Some(imp) => Ok(imp),
            None => {
                bail!("--conv {conv}: {name:?} is not stock, fast, gemm or winograd (or use both)")
            }
        })
        .collect()
}
