//! The command line as the README documents it: flags, environment control, report
//! destinations, cost models and the instruction limit.

mod common;

use std::ffi::OsStr;
use std::process::Output;

fn simulate(args: &[&str]) -> Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    common::simulate_in(&corpora::stage(), &args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn list_cost_models_names_every_builtin() {
    let output = simulate(&["--list-cost-models"]);
    assert!(output.status.success());
    for name in sim::costs::builtin::names() {
        assert!(stdout(&output).contains(name), "{name}");
    }
}

#[test]
fn a_cost_model_file_is_used() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/cost-models/example.toml");
    let output = simulate(&[
        "--cost-model",
        model,
        "--report",
        "json",
        "--clear-env",
        "./getppid_loop",
        "10",
    ]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(report["cost_model"]["name"], "example");
    assert_eq!(report["syscalls"]["by_name"]["getppid"], 10);
}

#[test]
fn environment_flags_shape_the_guest_environment() {
    let base = ["--report-file", "/dev/null", "--argv0", "renamed"];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args.push("./stat_env");
        stdout(&simulate(&args))
    };
    assert!(run(&["--env", "RINGSIM_TEST=set"]).contains("RINGSIM_TEST=set\n"));
    assert!(run(&["--clear-env"]).contains("RINGSIM_TEST=(unset)\n"));
    assert!(
        run(&["--env", "RINGSIM_TEST=a", "--unset-env", "RINGSIM_TEST"])
            .contains("RINGSIM_TEST=a\n")
    );
    assert!(run(&[]).contains("argv[0]=renamed\n"));
    // The host environment passes through by default.
    let output = std::process::Command::new(common::SIMULATE)
        .args(["--report-file", "/dev/null", "./stat_env"])
        .current_dir(corpora::stage())
        .env("RINGSIM_TEST", "from-host")
        .output()
        .unwrap();
    assert!(stdout(&output).contains("RINGSIM_TEST=from-host\n"));
}

#[test]
fn the_instruction_limit_stops_with_124() {
    let output = simulate(&[
        "--max-instructions",
        "100000",
        "--report",
        "json",
        "./cpu_bound",
    ]);
    assert_eq!(output.status.code(), Some(124));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (notice, report) = stderr.split_once('\n').unwrap();
    assert!(notice.contains("--max-instructions"), "{notice}");
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    let executed = report["guest_instructions"].as_u64().unwrap();
    assert!((100_000..101_000).contains(&executed), "{executed}");
}

#[test]
fn the_report_goes_to_stderr_or_to_the_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let output = simulate(&[
        "--report",
        "json",
        "--report-file",
        file.to_str().unwrap(),
        "./write_loop",
        "3",
    ]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "0123456789abcde\n".repeat(3),
        "guest stdout untouched"
    );
    assert!(output.stderr.is_empty());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(report["mode"], "ring0");

    let text = simulate(&["./write_loop", "1"]);
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains("ring 3 estimate") && stderr.contains("guest instructions"),
        "{stderr}"
    );
}

#[test]
fn a_killed_guest_reports_its_signal() {
    let output = simulate(&["--report", "json", "./faults", "segv"]);
    assert_eq!(output.status.code(), Some(139));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (_, report) = stderr.split_once('\n').unwrap();
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(report["exit"]["signal"], "SIGSEGV");
}

#[test]
fn the_guest_sees_the_fixed_cpuid_and_a_virtual_tsc() {
    let output = simulate(&["--report-file", "/dev/null", "./cpuid_probe"]);
    assert_eq!(
        stdout(&output),
        "vendor=GenuineIntel\nbrand=ringsim virtual CPU (Intel, Denverton core)\nsse4.2=1 avx=0\ntsc advances=1\n"
    );
}

#[test]
fn time_is_virtual_and_sleeping_takes_no_real_time() {
    let date = simulate(&[
        "--clear-env",
        "--report-file",
        "/dev/null",
        "./busybox",
        "date",
        "-u",
        "+%Y-%m-%d",
    ]);
    assert_eq!(stdout(&date), "2025-01-01\n");
    let started = std::time::Instant::now();
    let sleep = simulate(&["--report", "json", "./busybox", "sleep", "30"]);
    assert!(sleep.status.success());
    assert!(
        started.elapsed().as_secs() < 10,
        "a 30 s sleep took {:?}",
        started.elapsed()
    );
    let report: serde_json::Value = serde_json::from_slice(&sleep.stderr).unwrap();
    assert_eq!(report["syscalls"]["by_name"]["clock_nanosleep"], 1);
}

#[test]
fn the_translation_dump_shows_guest_and_translated_code() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.txt");
    let output = simulate(&[
        "--report-file",
        "/dev/null",
        "--dump-translation",
        dump.to_str().unwrap(),
        "./getppid_loop",
        "1",
    ]);
    assert!(output.status.success());
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(
        text.starts_with("# ringsim translation dump: "),
        "{}",
        &text[..80]
    );
    for needle in [
        "block 1: guest 0x",
        "guest:\n",
        "translated:\n",
        "bndcu",
        "syscall",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    let refused = simulate(&[
        "--mode",
        "ring3",
        "--dump-translation",
        dump.to_str().unwrap(),
        "./getppid_loop",
    ]);
    assert_eq!(refused.status.code(), Some(125));
}

/// Everything after PROGRAM is the program's: simulate's own options, `--help` and `--`
/// included, directly and through `--check` (whose report lists the argv all three runs got).
#[test]
fn arguments_after_the_program_are_the_programs() {
    let guest_args = common::case("argv_passthrough").args;
    let expected: String = guest_args
        .iter()
        .enumerate()
        .map(|(i, arg)| format!("{}: {arg}\n", i + 1))
        .collect();
    let with_args = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.push("./print_args");
        args.extend_from_slice(guest_args);
        simulate(&args)
    };
    for mode in ["ring3", "ring0"] {
        let output = with_args(&["--report-file", "/dev/null", "--mode", mode]);
        assert_eq!(output.status.code(), Some(0), "{mode}");
        assert_eq!(stdout(&output), expected, "{mode}");
    }

    // From a directory of the program alone: --check copies the working directory.
    let alone = common::scratch_with("argv_passthrough", "cli", &["print_args"]);
    let mut check_args = vec!["--check", "--report", "json", "./print_args"];
    check_args.extend_from_slice(guest_args);
    let check_args: Vec<&OsStr> = check_args.iter().map(OsStr::new).collect();
    let checked = common::simulate_in(&alone, &check_args);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stderr).unwrap();
    let argv: Vec<&str> = report["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(argv[1..], *guest_args);
    assert_eq!(report["ring0"]["stdout_bytes"], expected.len());

    // Alone, --help is still simulate's.
    let help = simulate(&["--help"]);
    assert!(help.status.success());
    assert!(
        stdout(&help).starts_with("Estimate what"),
        "{}",
        stdout(&help)
    );
}

/// A guest that moves into a subdirectory and sets umask 0777 changes where its own files go
/// and their mode, as natively, but not simulate's: the report, the syscall trace and the
/// translation dump land where the command line put them (relative paths included), with
/// ordinary permissions.
#[test]
fn the_guests_chdir_and_umask_do_not_move_simulates_outputs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        corpora::stage().join("chdir_umask"),
        dir.path().join("chdir_umask"),
    )
    .unwrap();
    let outputs = ["report.json", "trace.jsonl", "dump.txt"];
    let output = common::simulate_in(
        dir.path(),
        &[
            "--report",
            "json",
            "--report-file",
            outputs[0],
            "--trace-syscalls",
            outputs[1],
            "--dump-translation",
            outputs[2],
            "./chdir_umask",
        ]
        .map(OsStr::new),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout(&output),
        "cwd ends in /sub\na file made under umask 777 has mode 000\n"
    );
    let in_sub: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(in_sub, ["note"], "only the guest's own file is in sub/");
    for name in outputs {
        let metadata =
            std::fs::metadata(dir.path().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        let mode = metadata.permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600, "{name}: mode {mode:03o}");
        assert!(metadata.len() > 0, "{name} is empty");
    }
}

/// An ordinary user's ids whoever runs the test: the guest drops privileges as a user does
/// (busybox does it in every applet), may not take root's ids, and AT_UID agrees.
#[test]
fn user_ids_run_the_guest_as_that_user() {
    let output = simulate(&[
        "--user-ids",
        "4321:8765",
        "--report-file",
        "/dev/null",
        "./ids",
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.starts_with("uid 4321 4321 4321 (getuid 4321 geteuid 4321) gid 8765 8765 8765"));
    assert!(text.contains("setuid(own) = 0\n") && text.contains("setgid(own) = 0\n"));
    assert!(text.contains("setuid(other) = Operation not permitted\n"));
    assert!(text.contains("setgroups(own) = Operation not permitted\n"));
    let applet = simulate(&[
        "--user-ids",
        "1000:1000",
        "--report-file",
        "/dev/null",
        "--argv0",
        "wc",
        "./busybox",
        "inputs/text.txt",
    ]);
    assert!(applet.status.success(), "{applet:?}");
    for bad in ["1000", "x:1", "1:4294967295"] {
        let output = simulate(&["--user-ids", bad, "./ids"]);
        assert_eq!(output.status.code(), Some(125), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// Outputs are named before the run, so an unwritable path fails at once, and written after
/// it: a failed run makes no new output and leaves an old one as it was, and a device such as
/// /dev/null stays a device whatever the run did.
#[test]
fn outputs_are_named_before_the_run_and_written_after_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.txt");
    let old = dir.path().join("old.txt");
    std::fs::write(&old, "kept").unwrap();
    let run = |report: &std::path::Path, program: &str, args: &[&str]| {
        std::process::Command::new(common::SIMULATE)
            .arg("--report-file")
            .arg(report)
            .args(["--trace-syscalls", "/dev/null"])
            .arg(corpora::stage().join(program))
            .args(args)
            .output()
            .unwrap()
    };
    for report in [&fresh, &old] {
        assert_eq!(run(report, "unsupported", &[]).status.code(), Some(125));
    }
    assert!(!fresh.exists(), "no report of a failed run");
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "kept");
    let null = std::path::Path::new("/dev/null");
    assert_eq!(run(null, "getppid_loop", &["1"]).status.code(), Some(0));
    assert_eq!(run(null, "unsupported", &[]).status.code(), Some(125));
    assert!(std::fs::metadata(null)
        .unwrap()
        .file_type()
        .is_char_device());
    let unwritable = dir.path().join("missing/report.txt");
    let output = simulate(&[
        "--report-file",
        unwritable.to_str().unwrap(),
        "./getppid_loop",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(125));
    assert!(stdout(&output).is_empty(), "the program did not run");
}

#[test]
fn a_quick_calibration_writes_a_model_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("machine.toml");
    let model = model.to_str().unwrap();
    let output = simulate(&["--calibrate", model, "--quick"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = simulate(&[
        "--cost-model",
        model,
        "--report",
        "json",
        "./getppid_loop",
        "10",
    ]);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(report["cost_model"]["name"], "calibrated");
    let basis = report["cost_model"]["basis"].as_str().unwrap();
    assert!(basis.contains("simulate --calibrate"), "{basis}");
}

#[test]
fn a_calibration_that_cannot_be_written_is_one_line_and_125() {
    let output = simulate(&["--calibrate", "/proc/ringsim/none/machine.toml", "--quick"]);
    assert_eq!(output.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/proc/ringsim"), "{stderr}");
    let output = simulate(&["--quick", "./getppid_loop"]);
    assert_eq!(output.status.code(), Some(125));
}

#[test]
fn the_calibrated_model_is_made_on_first_use_and_kept() {
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args([
                "--cost-model",
                "calibrated",
                "--mode",
                "ring3",
                "--report",
                "json",
            ])
            .arg(corpora::stage().join("getppid_loop"))
            .arg("10")
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success());
    let saved = cache.path().join("ringsim/calibrated.toml");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("name = \"calibrated\""), "{text}");
    let second = run();
    assert!(second.status.success());
    // The second run reads the saved model: it says nothing of calibrating.
    assert!(!String::from_utf8_lossy(&second.stderr).contains("calibrating this machine"));
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), text);
}

/// A report does not depend on where the program's output goes, even when the program opens
/// its own standard output by name.
#[test]
fn reopening_stdout_by_name_is_priced_the_same_wherever_it_goes() {
    let kernel_work = |stdout: std::process::Stdio| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args([
                "--cost-model",
                "host",
                "--mode",
                "ring3",
                "--report",
                "json",
            ])
            .args(["--user-ids", "1000:1000", "--argv0", "sh"])
            .arg(corpora::stage().join("busybox"))
            .args(["-c", "echo hi > /dev/stdout"])
            .stdout(stdout)
            .output()
            .unwrap();
        assert!(output.status.success());
        let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
        report["kernel_work"].clone()
    };
    let to_null = kernel_work(std::process::Stdio::null());
    assert_eq!(to_null, kernel_work(std::process::Stdio::piped()));
    assert!(
        to_null["pipe_write"]["calls"].as_u64() >= Some(1),
        "{to_null}"
    );
}
