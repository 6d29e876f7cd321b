//! `cargo xtask`: isdet's command line, a thin layer over the library crates.

mod bench;
mod data;
mod npm;
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
    /// Write a Markdown report with tables and plots comparing the runs under DIR.
    Report(report::ReportArgs),
}

fn main() -> std::process::ExitCode {
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
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
