//! `cargo xtask`: isdet's command line, a thin layer over the library crates.

mod bench;
mod data;
mod predict;
mod report;
mod train;

use clap::{Parser, Subcommand};

/// isdet: budgeted training of object detectors with importance sampling.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make, convert or check datasets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Measure speed (training steps, inference).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// The main job: uniform sampling at 100% and 30% of the schedule
    /// against three importance-sampling heuristics at 30%, then the report.
    Run(train::RunArgs),
    /// Train one run from a configuration file (resumes an unfinished run
    /// in the same directory; a finished one is reported, not rerun).
    Train(train::TrainArgs),
    /// Score a COCO results file against a ground-truth file (the 12
    /// statistics pycocotools prints).
    Eval(train::EvalArgs),
    /// Run a grid of methods × budgets × seeds from a specification,
    /// skipping finished runs and resuming unfinished ones.
    Sweep(train::SweepArgs),
    /// Run a trained detector on images: COCO results, and drawings of
    /// the boxes.
    Predict(predict::PredictArgs),
    /// Write a Markdown report with tables and plots comparing the runs under DIR.
    Report(report::ReportArgs),
    /// Write `sampling.json` (what the budget was spent on, per training
    /// image) for finished runs made before the trainer wrote it, from
    /// their journals.
    Sampling(train::SamplingArgs),
}

fn main() -> std::process::ExitCode {
    // Page faults on every step's buffers otherwise (docs/performance.md).
    // SAFETY: the first statement of `main`: no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        isdet_kernels::tune_allocator()
    };
    restore_sigpipe();
    // Logs go to stderr at the level RUST_LOG sets (warnings by default).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data { command } => data::run(command),
        Command::Bench { command } => bench::run(command),
        Command::Run(args) => train::run(args),
        Command::Train(args) => train::train(args),
        Command::Eval(args) => train::eval(args),
        Command::Sweep(args) => train::sweep(args),
        Command::Predict(args) => predict::run(args),
        Command::Report(args) => report::run(args),
        Command::Sampling(args) => train::sampling(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause said once: the library errors
/// already put their source's message into their own (`path: OS error`),
/// so a cause whose text the message holds is not repeated.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// The CPU kernels from `ISDET_CONV` (`stock`, `fast`, `gemm` or `winograd`, default
/// `fast`),
/// read once here and passed down as a value; an unknown value is
/// reported and ignored.
pub(crate) fn kernels_from_env() -> isdet_kernels::Kernels {
    match std::env::var("ISDET_CONV") {
        Ok(v) => isdet_kernels::Kernels::parse(&v).unwrap_or_else(|| {
            eprintln!(
                "ISDET_CONV={v:?} is not `stock`, `fast`, `gemm` or `winograd`; using `fast`"
            );
            isdet_kernels::Kernels::Fast
        }),
        Err(_) => isdet_kernels::Kernels::Fast,
    }
}

/// Writing to a closed pipe (`xtask sweep --dry-run | head -3`) ends the
/// process quietly, as it ends `ls` or `cat`, instead of a panic in
/// `println!`: Rust programs start with SIGPIPE ignored, so the write
/// fails and the macro panics. Run directories are written atomically, so
/// a sweep stopped so loses no finished work.
fn restore_sigpipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `signal` only sets this process's disposition of SIGPIPE to
    // its default; it is called before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
