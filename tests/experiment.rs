//! `experiment`: each experiment's outputs on a small setting, as insta snapshots (the same
//! inputs give byte-identical Markdown, CSV and SVG), and its bad input: one line, status
//! 125, nothing written.

use std::path::Path;
use std::process::{Command, Output};

const EXPERIMENT: &str = env!("CARGO_BIN_EXE_experiment");

fn experiment(args: &[&str]) -> Output {
    corpora::stage();
    Command::new(EXPERIMENT).args(args).output().unwrap()
}

/// The file's text with this build's version taken out, so that snapshots hold across commits.
fn read_unversioned(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .replace(experiment::provenance::VERSION, "[version]")
}

fn assert_fails_with_one_line(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("experiment: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

/// Runs `args` twice, each into a directory of its own: the outputs `stem.{md,csv,svg}` must
/// be byte-identical, and match their snapshots.
fn assert_same_every_time(stem: &str, args: &[&str]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        let out = dir.path().to_str().unwrap();
        let output = experiment(&[args, &["--out", out]].concat());
        assert!(output.status.success(), "{output:?}");
        assert!(output.stderr.is_empty(), "{output:?}");
    }
    for extension in ["md", "csv", "svg"] {
        let file = format!("{stem}.{extension}");
        let [first, second] = dirs
            .each_ref()
            .map(|d| std::fs::read(d.path().join(&file)).unwrap());
        assert!(first == second, "{file} differs between two runs");
        let text = read_unversioned(&dirs[0].path().join(&file));
        let name = format!("experiment_{}_{extension}", stem.replace('-', "_"));
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn seed_table_of_one_system_is_the_same_every_time() {
    assert_same_every_time("seed-table", &["seed-table", "--models", "linux"]);
}

#[test]
fn crossing_curve_of_one_model_is_the_same_every_time() {
    let args = [
        "crossing-curve",
        "--models",
        "linux",
        "--per-decade",
        "1",
        "--max-work",
        "10000",
    ];
    assert_same_every_time("crossing-curve", &args);
}

#[test]
fn pread_of_two_block_sizes_is_the_same_every_time() {
    let args = [
        "pread", "--models", "host", "--sizes", "64,1024", "--preads", "200",
    ];
    assert_same_every_time("pread", &args);
}

#[test]
fn an_unknown_experiment_is_a_usage_error() {
    assert_fails_with_one_line(&experiment(&["seed-tabel"]), "seed-tabel");
}

#[test]
fn an_unknown_model_fails_before_any_run_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = experiment(&["seed-table", "--models", "linux,plan9", "--out", out]);
    assert_fails_with_one_line(&output, "plan9");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = experiment(&["pread", "--models", "no/such.toml", "--out", out]);
    assert_fails_with_one_line(&output, "no/such.toml");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_unwritable_output_fails_before_any_run() {
    let output = experiment(&[
        "seed-table",
        "--models",
        "linux",
        "--out",
        "/proc/ringsim-nowhere",
    ]);
    assert_fails_with_one_line(&output, "/proc/ringsim-nowhere");
}
