//! `experiment`: the essay's table and the later literature's results, each reproduced by
//! one command as Markdown, CSV and SVG. Argument parsing and output only; the work is in
//! the `experiment` crate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "../usage.rs"]
mod usage;
use experiment::outputs::Outputs;
use experiment::runner::Runner;
use experiment::{seed_table, status, Error};

#[derive(Parser)]
#[command(
    name = "experiment",
    version,
    about = "Reproduce the essay's table and the later literature's results with ringsim",
    after_help = "Exit status: 0 when every output is written; 125 if the experiment failed (usage, a missing \
                  program or model, an unwritable output, a failed run), with nothing half-written left; 126 or \
                  127 as simulate's when a program cannot be run or is not found."
)]
struct Cli {
    #[command(subcommand)]
    experiment: Experiment,
}

#[derive(Subcommand)]
enum Experiment {
    /// The essay's table (ABI call, Yield, PSR, Create Proc by system), measured per
    /// operation at ring 3 and translated at ring 0: seed-table.md, .csv and .svg.
    SeedTable {
        /// Cost models, one row each, in order (default: the essay's five systems and host).
        #[arg(long, value_delimiter = ',', value_name = "MODEL,...")]
        models: Vec<String>,
        /// The directory the outputs go to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
}

fn fail(message: impl std::fmt::Display, status: i32) -> ExitCode {
    eprintln!("experiment: {message}");
    ExitCode::from(status as u8)
}

fn seed_table(models: Vec<String>, out: &std::path::Path) -> Result<(), Error> {
    let models = if models.is_empty() {
        seed_table::default_models()
    } else {
        models
    };
    let provenance = seed_table::provenance(&models)?;
    let outputs = Outputs::new(out, "seed-table")?;
    let runner = Runner::beside_this_program()?;
    let cells = seed_table::measure_all(&runner, &models)?;
    outputs.write(&[
        ("md", &seed_table::to_markdown(&cells, &provenance)),
        ("csv", &seed_table::to_csv(&cells)),
        ("svg", &seed_table::to_svg(&cells, &provenance)),
    ])
}

fn main() -> ExitCode {
    let cli: Cli = match usage::parse("experiment", status::FAILED as u8) {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    let result = match cli.experiment {
        Experiment::SeedTable { models, out } => seed_table(models, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, err.exit_status()),
    }
}
