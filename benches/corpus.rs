//! The translator over the corpus: dynamic code expansion per program (translated
//! instructions executed / guest instructions executed) and the estimated speedup under
//! each built-in cost model. `cargo bench --bench corpus` (after `scripts/setup`); prints
//! Markdown tables for BENCHMARKS.md. Counts, not times: the figures do not depend on the
//! machine's load.

use std::process::Command;

const SIMULATE: &str = env!("CARGO_BIN_EXE_simulate");

fn report(case: &corpora::Case, model: &str, dir: &std::path::Path) -> serde_json::Value {
    let out = dir.join("report.json");
    let mut command = Command::new(SIMULATE);
    command
        .args([
            "--clear-env",
            "--report",
            "json",
            "--cost-model",
            model,
            "--report-file",
        ])
        .arg(&out);
    if let Some(argv0) = case.argv0 {
        command.args(["--argv0", argv0]);
    }
    let status = command
        .arg(format!("./{}", case.program))
        .args(case.args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("run simulate")
        .status;
    assert!(
        status.code().is_some(),
        "{}: simulate was killed",
        case.name
    );
    serde_json::from_slice(&std::fs::read(&out).expect("a report")).expect("JSON")
}

fn main() {
    let stage = corpora::stage();
    let models = sim::costs::builtin::names();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(stage.join("inputs"), dir.path().join("inputs")).unwrap();
    for case in corpora::CASES {
        let link = dir.path().join(case.program);
        if !link.exists() {
            std::os::unix::fs::symlink(stage.join(case.program), link).unwrap();
        }
    }

    println!(
        "Speedup under each model, then (in brackets) without the one-time translation cost.\n"
    );
    println!(
        "| program | guest instructions | translated | expansion | {} |",
        models.join(" | ")
    );
    println!("|---|---:|---:|---:|{}", "---:|".repeat(models.len()));
    let mut log_sum = 0.0;
    let mut by_source = Vec::new();
    let workloads: Vec<&corpora::Case> = corpora::CASES.iter().filter(|c| c.workload).collect();
    for case in &workloads {
        let reports: Vec<serde_json::Value> =
            models.iter().map(|m| report(case, m, dir.path())).collect();
        let first = &reports[0];
        let expansion = first["ring0"]["code_expansion"].as_f64().unwrap();
        log_sum += expansion.ln();
        by_source.push((
            case.name,
            expansion,
            first["ring0"]["expansion_by_source"].clone(),
        ));
        let speedups: Vec<String> = reports
            .iter()
            .map(|r| {
                format!(
                    "{:.2} ({:.2})",
                    r["speedup"].as_f64().unwrap(),
                    r["steady_state_speedup"].as_f64().unwrap()
                )
            })
            .collect();
        println!(
            "| {} | {} | {} | {:.3} | {} |",
            case.name,
            first["guest_instructions"],
            first["ring0"]["translated_instructions"],
            expansion,
            speedups.join(" | ")
        );
    }
    let geomean = (log_sum / workloads.len() as f64).exp();
    println!("\ngeometric mean of the expansion: {geomean:.3}");
    print_by_source(&by_source);
}

/// Where the expansion comes from: extra instructions per guest instruction, by source,
/// and what the geometric mean would be without each source.
fn print_by_source(rows: &[(&str, f64, serde_json::Value)]) {
    let sources = translator::Source::ALL.map(|s| s.name());
    println!("\nExtra instructions per guest instruction executed, by source.\n");
    println!("| program | expansion | {} |", sources.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(sources.len()));
    let share = |row: &serde_json::Value, source: &str| row[source].as_f64().unwrap();
    for (name, expansion, row) in rows {
        let cells: Vec<String> = sources
            .iter()
            .map(|s| format!("{:.3}", share(row, s)))
            .collect();
        println!("| {name} | {expansion:.3} | {} |", cells.join(" | "));
    }
    let without: Vec<String> = sources
        .iter()
        .map(|source| {
            let log_sum: f64 = rows
                .iter()
                .map(|(_, expansion, row)| (expansion - share(row, source)).ln())
                .sum();
            format!("{:.3}", (log_sum / rows.len() as f64).exp())
        })
        .collect();
    println!(
        "| geometric mean without this source | | {} |",
        without.join(" | ")
    );
}
