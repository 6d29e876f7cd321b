//! `cargo xtask`: isdet's command line, a thin layer over the library crates.

mod bench;
mod data;
mod npm;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data { command } => data::run(command),
        Command::Bench { command } => bench::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
