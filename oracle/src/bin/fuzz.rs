//! `fuzz`: the instruction-level differential fuzzer, for long campaigns. `cargo test` runs
//! a fixed budget; this runs as many sequences as asked, natively, at ring 3 and translated
//! at ring 0, and prints each disagreement, minimized.
//!
//! `cargo run --release -p oracle --bin fuzz -- --sequences 1000000 --seed 7`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use oracle::fuzz::{self, FuzzConfig};

#[derive(Parser)]
#[command(
    name = "fuzz",
    about = "Differential fuzzing of instruction sequences: native vs ring 3 vs ring 0"
)]
struct Cli {
    /// Seed of the generator: the same seed gives the same sequences.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many sequences to run.
    #[arg(long, default_value_t = 10_000)]
    sequences: usize,
    /// Sequences per program run.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Most forms in one sequence.
    #[arg(long, default_value_t = 12)]
    max_items: usize,
    /// The simulate executable (default: next to this one).
    #[arg(long)]
    simulate: Option<PathBuf>,
    /// Save each minimized finding as a regression case in DIR (corpora/regressions, say).
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    /// Test only: passed on to simulate as --plant-bug (a translator bug made on purpose).
    #[arg(long, hide = true, value_name = "BUG")]
    plant_bug: Option<String>,
    /// Instead of fuzzing, replay these regression cases with the known bugs exposed and
    /// say what each shows now: ring 3 against its saved result and against ring 0 on any
    /// host, native against ring 3 only on a host of the recorded vendor.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    replay: Vec<PathBuf>,
}

/// Replays regression files; true when each still shows what it expects.
fn replay(simulate: &fuzz::Simulator, files: &[PathBuf]) -> Result<bool, String> {
    let host = fuzz::Host::this();
    let mut all_as_expected = true;
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let regression: fuzz::Regression =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let now = fuzz::replay(simulate, &regression, &host)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        all_as_expected &= now.as_expected();
        println!("{}: {now}", file.display());
    }
    Ok(all_as_expected)
}

/// Saves `finding` as a regression case made on this host, with what its runs leave now.
fn save(
    simulate: &fuzz::Simulator,
    about: String,
    finding: &fuzz::Finding,
    path: &std::path::Path,
) -> Result<(), String> {
    let regression =
        fuzz::Regression::record(simulate, about, finding).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&regression).expect("cases serialize");
    std::fs::write(path, text + "\n").map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.simulate.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("simulate")))
            .unwrap_or_else(|| PathBuf::from("simulate"))
    });
    let simulate = fuzz::Simulator {
        path,
        flags: cli
            .plant_bug
            .iter()
            .flat_map(|bug| ["--plant-bug".to_string(), bug.clone()])
            .collect(),
    };
    if !cli.replay.is_empty() {
        return match replay(&simulate, &cli.replay) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(err) => {
                eprintln!("fuzz: {err}");
                ExitCode::from(2)
            }
        };
    }
    let config = FuzzConfig {
        simulator: simulate.clone(),
        seed: cli.seed,
        sequences: cli.sequences,
        batch: cli.batch,
        max_items: cli.max_items,
    };
    let campaign = match fuzz::fuzz(&config) {
        Ok(campaign) => campaign,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let all = campaign
        .known
        .iter()
        .map(|(finding, bug)| {
            let what = format!("{} {}", bug.kind.describe(), bug.name);
            (finding, bug.name, what)
        })
        .chain(
            campaign
                .new
                .iter()
                .map(|finding| (finding, "new", "new".to_string())),
        );
    for (n, (finding, name, what)) in all.enumerate() {
        let forms: Vec<&str> = finding.case.items.iter().map(|i| i.form.as_str()).collect();
        println!(
            "{name}: {}: {}: [{}]",
            finding.pair,
            finding.difference(),
            forms.join("; ")
        );
        if let Some(dir) = &cli.save {
            let path = dir.join(format!("{name}-seed{}-{n}.json", cli.seed));
            let about = format!("found by fuzz --seed {} ({what})", cli.seed);
            if let Err(err) = save(&simulate, about, finding, &path) {
                eprintln!("fuzz: {}: {err}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "{} sequences from seed {}: {} new findings, {} known bugs",
        cli.sequences,
        cli.seed,
        campaign.new.len(),
        campaign.known.len()
    );
    ExitCode::from(u8::from(!campaign.new.is_empty()))
}
