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
    /// say what each shows now.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    replay: Vec<PathBuf>,
}

/// Replays regression files; true when each still shows what it expects.
fn replay(simulate: &fuzz::Simulator, files: &[PathBuf]) -> Result<bool, String> {
    let mut all_as_expected = true;
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let regression: fuzz::Regression =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let now = fuzz::replay(simulate, &regression).map_err(|e| e.to_string())?;
        let shows = now
            .as_ref()
            .map(|f| format!("{}: {}", f.pair, f.difference()));
        let as_expected = now.map(|f| f.pair) == regression.expect;
        all_as_expected &= as_expected;
        println!(
            "{}: {} ({})",
            file.display(),
            shows.as_deref().unwrap_or("all three agree"),
            if as_expected {
                "as expected"
            } else {
                "NOT as expected"
            }
        );
    }
    Ok(all_as_expected)
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
        .map(|(finding, bug)| (finding, *bug))
        .chain(campaign.new.iter().map(|finding| (finding, "new")));
    for (n, (finding, kind)) in all.enumerate() {
        let forms: Vec<&str> = finding.case.items.iter().map(|i| i.form.as_str()).collect();
        println!(
            "{kind}: {}: {}: [{}]",
            finding.pair,
            finding.difference(),
            forms.join("; ")
        );
        if let Some(dir) = &cli.save {
            let path = dir.join(format!("{kind}-seed{}-{n}.json", cli.seed));
            let regression = fuzz::Regression {
                about: format!("found by fuzz --seed {} ({kind})", cli.seed),
                expect: Some(finding.pair.clone()),
                difference: Some(finding.difference()),
                case: finding.case.clone(),
            };
            let text = serde_json::to_string_pretty(&regression).expect("cases serialize");
            if let Err(err) = std::fs::write(&path, text + "\n") {
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
