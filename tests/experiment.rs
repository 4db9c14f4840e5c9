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
        // A model file as well, named relative to the checkout: the outputs name it so,
        // not by where the checkout is.
        "pread",
        "--models",
        "host,cost-models/kvm-kpti.toml",
        "--sizes",
        "64,1024",
        "--preads",
        "200",
    ];
    assert_same_every_time("pread", &args);
}

#[test]
fn an_unknown_experiment_is_a_usage_error() {
    assert_fails_with_one_line(&experiment(&["seed-tabel"]), "seed-tabel");
    assert_fails_with_one_line(&experiment(&[]), "no command given");
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

/// A spec of three programs (one that exits 1), two models and two seeds in `dir`.
fn small_spec(dir: &Path) -> String {
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        r#"models = ["linux", "singularity-sip"]
seeds = [0, 1]

[[programs]]
name = "getppid"
program = "getppid_loop"
args = ["1000"]

[[programs]]
name = "wc"
program = "busybox"
args = ["wc", "inputs/text.txt"]

[[programs]]
name = "false"
program = "busybox"
args = ["false"]
"#,
    )
    .unwrap();
    spec.to_str().unwrap().to_string()
}

#[test]
fn sweep_shards_merge_into_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path());
    for format in ["jsonl", "csv"] {
        let path = |name: &str| {
            dir.path()
                .join(format!("{name}.{format}"))
                .to_str()
                .unwrap()
                .to_string()
        };
        let whole = experiment(&["sweep", &spec, "--out", &path("whole"), "--jobs", "2"]);
        assert!(whole.status.success(), "{whole:?}");
        let shards: Vec<String> = (0..3).map(|i| path(&format!("shard{i}"))).collect();
        for (i, shard) in shards.iter().enumerate() {
            let output =
                experiment(&["sweep", &spec, "--out", shard, "--shard", &format!("{i}/3")]);
            assert!(output.status.success(), "{output:?}");
        }
        let mut args = vec!["merge", &spec, "--out"];
        let merged = path("merged");
        args.push(&merged);
        args.extend(shards.iter().map(String::as_str));
        let output = experiment(&args);
        assert!(output.status.success(), "{output:?}");
        let [whole, merged] = [path("whole"), merged].map(|p| std::fs::read(p).unwrap());
        assert!(
            whole == merged,
            "{format}: the merged shards differ from the whole sweep"
        );
        // A shard missing is named.
        let output = experiment(&[
            "merge",
            &spec,
            "--out",
            &path("partial"),
            &shards[0],
            &shards[1],
        ]);
        assert_fails_with_one_line(&output, "in no shard");
        assert!(!Path::new(&path("partial")).exists());
    }
}

#[test]
fn an_interrupted_sweep_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path());
    let whole = dir.path().join("whole.jsonl");
    let output = experiment(&["sweep", &spec, "--out", whole.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let rows = std::fs::read_to_string(&whole).unwrap();
    // Five rows done, in another order; a sixth made by another command (an edited spec),
    // which is made again; and a seventh cut short.
    let lines: Vec<&str> = rows.lines().collect();
    let edited = lines[4].replace("getppid_loop 1000", "getppid_loop 999");
    let journal = [
        lines[7],
        lines[0],
        lines[3],
        &edited,
        lines[1],
        lines[9],
        &lines[2][..40],
    ]
    .join("\n");
    std::fs::write(dir.path().join(".resumed.jsonl.journal"), journal).unwrap();
    let resumed = dir.path().join("resumed.jsonl");
    let output = experiment(&["sweep", &spec, "--out", resumed.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("19 runs made, 5 resumed"),
        "{output:?}"
    );
    assert_eq!(std::fs::read_to_string(&resumed).unwrap(), rows);
    assert!(!dir.path().join(".resumed.jsonl.journal").exists());
}

#[test]
fn sweep_rows_hold_every_report_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"programs": [{"name": "abi", "program": "abi_call", "args": ["100"]}], "models": ["linux"]}"#,
    )
    .unwrap();
    let out = dir.path().join("rows.csv");
    let output = experiment(&[
        "sweep",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("experiment_sweep_csv", read_unversioned(&out));
    });
}

/// Sweeps a spec of `text` into a fresh directory: the output, and that directory's entries
/// afterwards (the spec's included).
fn sweep_spec(text: &str) -> (Output, usize) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, text).unwrap();
    let out = dir.path().join("rows.jsonl");
    let output = experiment(&[
        "sweep",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (output, std::fs::read_dir(dir.path()).unwrap().count())
}

#[test]
fn a_spec_naming_a_missing_program_writes_nothing() {
    let (output, entries) = sweep_spec(
        "models = [\"linux\"]\n[[programs]]\nname = \"x\"\nprogram = \"no_such_program\"\n",
    );
    assert_fails_with_one_line(&output, "no_such_program");
    assert_eq!(entries, 1);
}

#[test]
fn a_spec_with_a_program_twice_is_refused() {
    let program = "[[programs]]\nname = \"x\"\nprogram = \"abi_call\"\n";
    let (output, entries) = sweep_spec(&format!("models = [\"linux\"]\n{program}{program}"));
    assert_fails_with_one_line(&output, "programs: x twice");
    assert_eq!(entries, 1);
}

#[test]
fn a_shard_out_of_range_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path());
    let out = dir.path().join("rows.jsonl");
    let output = experiment(&[
        "sweep",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--shard",
        "3/3",
    ]);
    assert_fails_with_one_line(&output, "3/3");
}

#[test]
fn simulate_plots_where_the_cycles_went_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let stage = corpora::stage();
    let plots = ["a.svg", "b.svg"].map(|name| dir.path().join(name));
    for plot in &plots {
        let output = Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args([
                "--clear-env",
                "--plot",
                plot.to_str().unwrap(),
                "abi_call",
                "1000",
            ])
            .current_dir(&stage)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    let [a, b] = plots
        .each_ref()
        .map(|p| std::fs::read_to_string(p).unwrap());
    assert_eq!(a, b);
    for text in [
        "abi_call 1000: cycles under linux, speedup",
        "ring 0, translated",
        "kernel work",
        "translation",
    ] {
        assert!(a.contains(text), "{text}");
    }
    // With --check there is no one run to plot.
    let output = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(["--check", "--plot", "x.svg", "abi_call"])
        .current_dir(&stage)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125));
}

#[test]
fn the_example_sweep_spec_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/sweep-example.toml"
    );
    let out = dir.path().join("one.jsonl");
    // One run of the 36: the spec's models and programs all resolve.
    let output = experiment(&[
        "sweep",
        spec,
        "--shard",
        "0/36",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_to_string(out).unwrap().lines().count(), 1);
}
