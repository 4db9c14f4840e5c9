//! `experiment`: the essay's table and the later literature's results, each reproduced by
//! one command as Markdown, CSV and SVG. Argument parsing and output only; the work is in
//! the `experiment` crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "../usage.rs"]
mod usage;
use experiment::outputs::Outputs;
use experiment::provenance::Model;
use experiment::runner::Runner;
use experiment::{crossing_curve, pread, seed_table, status, sweep, Error};

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
    /// Userspace Bypass's pread loop over block sizes: the throughput gain translated at
    /// ring 0, whole run and steady state, next to the paper's band: pread.md, .csv and .svg.
    Pread {
        /// Cost models, built-in names or TOML files (default: host and
        /// cost-models/kvm-kpti.toml, the paper's KVM guest with KPTI on).
        #[arg(long, value_delimiter = ',', value_name = "MODEL,...")]
        models: Vec<String>,
        /// Block sizes in bytes, 1 to 65536 (default: the powers of two from 64 to 65536).
        #[arg(long, value_delimiter = ',', value_name = "BYTES,...",
              value_parser = clap::value_parser!(u64).range(1..=65536))]
        sizes: Vec<u64>,
        /// Preads in the whole run (the steady state also runs twice as many).
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        preads: u64,
        /// The directory the outputs go to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
    /// Programs x cost models x modes x seeds from a spec (TOML or JSON): a row per run with
    /// every field of its report, in JSON lines (.jsonl) or CSV (.csv); resumable, and
    /// shardable over machines.
    Sweep {
        /// The spec: `programs` (each `name`, `program` in the corpus or absolute, `args`),
        /// `models`, and optionally `modes` (default both) and `seeds` (default [0]).
        spec: PathBuf,
        /// The output: FILE.jsonl or FILE.csv.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Runs at a time, each a simulate process.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: u64,
        /// Run only the runs whose index is I modulo N (I from 0 to N-1), for one machine
        /// of N; join the shards' outputs with merge.
        #[arg(long, value_name = "I/N")]
        shard: Option<sweep::Shard>,
    },
    /// Join sweep shards' outputs into one, checking that every run of the spec is there.
    Merge {
        /// The spec the shards ran.
        spec: PathBuf,
        /// The shards' outputs, all .jsonl or all .csv.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// The joined output, in the shards' format.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Steady-state speedup against syscall density (a syscall every W instructions of
    /// user work, W swept log-spaced), with each model's break-even density and the
    /// corpus's programs placed on the curve: crossing-curve.md, .csv and .svg.
    CrossingCurve {
        /// Cost models, one curve each (default: every built-in model).
        #[arg(long, value_delimiter = ',', value_name = "MODEL,...")]
        models: Vec<String>,
        /// Points a decade of W.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
        per_decade: u32,
        /// The largest W, in instructions between two syscalls.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(5..=100_000_000))]
        max_work: u64,
        /// Leave the corpus's programs off the curve.
        #[arg(long)]
        no_programs: bool,
        /// The directory the outputs go to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
}

fn fail(message: impl std::fmt::Display, status: i32) -> ExitCode {
    eprintln!("experiment: {message}");
    ExitCode::from(status as u8)
}

fn seed_table(models: Vec<String>, out: &Path) -> Result<(), Error> {
    let models = resolve(models, seed_table::default_models)?;
    let provenance = seed_table::provenance(&models);
    let outputs = Outputs::new(out, "seed-table")?;
    let runner = Runner::beside_this_program()?;
    let cells = seed_table::measure_all(&runner, &models)?;
    outputs.write(&[
        ("md", &seed_table::to_markdown(&cells, &provenance)),
        ("csv", &seed_table::to_csv(&cells)),
        ("svg", &seed_table::to_svg(&cells, &provenance)),
    ])
}

fn crossing_curve(settings: crossing_curve::Settings, out: &Path) -> Result<(), Error> {
    let provenance = settings.provenance();
    let outputs = Outputs::new(out, "crossing-curve")?;
    let runner = Runner::beside_this_program()?;
    let results = crossing_curve::measure_all(&runner, &settings)?;
    outputs.write(&[
        (
            "md",
            &crossing_curve::to_markdown(&results, &settings, &provenance),
        ),
        ("csv", &crossing_curve::to_csv(&results)),
        (
            "svg",
            &crossing_curve::to_svg(&results, &settings, &provenance),
        ),
    ])
}

fn pread(models: Vec<String>, sizes: Vec<u64>, preads: u64, out: &Path) -> Result<(), Error> {
    let models = resolve(models, pread::default_models)?;
    let sizes = if sizes.is_empty() {
        pread::default_sizes()
    } else {
        sizes
    };
    let settings = pread::Settings {
        models,
        sizes,
        preads,
    };
    let provenance = settings.provenance();
    let outputs = Outputs::new(out, "pread")?;
    let runner = Runner::beside_this_program()?;
    let points = pread::measure_all(&runner, &settings)?;
    outputs.write(&[
        ("md", &pread::to_markdown(&points, &settings, &provenance)),
        ("csv", &pread::to_csv(&points)),
        ("svg", &pread::to_svg(&points, &settings, &provenance)),
    ])
}

fn sweep(spec: &Path, out: &Path, jobs: usize, shard: sweep::Shard) -> Result<(), Error> {
    sweep::Format::of(out)?;
    let runner = Runner::beside_this_program()?;
    let spec = sweep::Spec::read(spec, runner.corpus())?;
    let done = sweep::run(&runner, &spec, shard, jobs, out)?;
    println!(
        "experiment: {} runs made, {} resumed, in {}",
        done.ran,
        done.resumed,
        out.display()
    );
    Ok(())
}

fn merge(spec: &Path, shards: &[PathBuf], out: &Path) -> Result<(), Error> {
    let runs = sweep::merge(spec, shards, out)?;
    println!(
        "experiment: {runs} runs from {} shards, in {}",
        shards.len(),
        out.display()
    );
    Ok(())
}

/// The models given (built-in names, `calibrated` or TOML files), or the experiment's own
/// when none are.
fn resolve(
    models: Vec<String>,
    default: fn() -> Result<Vec<Model>, Error>,
) -> Result<Vec<Model>, Error> {
    if models.is_empty() {
        default()
    } else {
        models.iter().map(|m| Model::resolve(m)).collect()
    }
}

fn main() -> ExitCode {
    let cli: Cli = match usage::parse("experiment", status::FAILED as u8) {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    let result = match cli.experiment {
        Experiment::SeedTable { models, out } => seed_table(models, &out),
        Experiment::Pread {
            models,
            sizes,
            preads,
            out,
        } => pread(models, sizes, preads, &out),
        Experiment::Sweep {
            spec,
            out,
            jobs,
            shard,
        } => sweep(
            &spec,
            &out,
            jobs as usize,
            shard.unwrap_or(sweep::Shard::WHOLE),
        ),
        Experiment::Merge { spec, shards, out } => merge(&spec, &shards, &out),
        Experiment::CrossingCurve {
            models,
            per_decade,
            max_work,
            no_programs,
            out,
        } => resolve(models, crossing_curve::default_models).and_then(|models| {
            let settings = crossing_curve::Settings {
                models,
                per_decade,
                max_work,
                programs: !no_programs,
            };
            crossing_curve(settings, &out)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, err.exit_status()),
    }
}
