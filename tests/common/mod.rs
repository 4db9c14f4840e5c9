//! Running corpus cases natively and under `simulate`, each in its own scratch directory.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use corpora::Case;

pub const SIMULATE: &str = env!("CARGO_BIN_EXE_simulate");

/// For runs compared with native ones: the simulated CPU follows this machine's vendor.
pub const HOST_CPU: &[&str] = &["--cpu-vendor", "host"];

/// What a run did that a user can see.
#[derive(Debug, PartialEq, Eq)]
pub struct Observed {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub files: Vec<(String, Vec<u8>)>,
}

/// A fresh directory holding links to the case's program, its companions and the inputs.
pub fn scratch(case: &Case, tag: &str) -> PathBuf {
    let programs: Vec<&str> = std::iter::once(case.program)
        .chain(case.companions.iter().copied())
        .collect();
    scratch_with(case.name, tag, &programs)
}

/// A fresh directory named after `name` and `tag`, holding links to the built `programs`
/// and to the inputs.
pub fn scratch_with(name: &str, tag: &str, programs: &[&str]) -> PathBuf {
    let stage = corpora::stage();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    // Fixed widths: a guest that reads its working directory (busybox sh does) must see a
    // path of one length whatever the pid and run number.
    let name = format!("ringsim-{name}-{tag}-{:010}-{run:06}", std::process::id());
    // In /tmp, as the stage is, whatever TMPDIR says, for the same reason.
    let dir = Path::new("/tmp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for program in programs.iter().chain(&["inputs"]) {
        std::os::unix::fs::symlink(stage.join(program), dir.join(program)).unwrap();
    }
    dir
}

/// Runs `simulate --check` with `flags` on `program` in `dir`; its exit status, and the text
/// report followed by its stderr.
pub fn check(
    dir: &Path,
    flags: &[&str],
    program: &str,
    argv0: Option<&str>,
    args: &[&str],
) -> (i32, String) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(SIMULATE);
    command
        .args(["--check", "--clear-env"])
        .args(flags)
        .arg("--report-file")
        .arg(report.path());
    if let Some(argv0) = argv0 {
        command.args(["--argv0", argv0]);
    }
    let output = command
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap();
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (status_of(&output), format!("{text}{stderr}"))
}

/// The exit status a shell would report: the code, or 128+N after signal N.
pub fn status_of(output: &Output) -> i32 {
    output
        .status
        .code()
        .unwrap_or_else(|| 128 + output.status.signal().unwrap_or(0))
}

fn observe(case: &Case, dir: &Path, output: &Output) -> Observed {
    let files = case
        .writes
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(dir.join(f)).unwrap_or_default(),
            )
        })
        .collect();
    Observed {
        status: status_of(output),
        stdout: output.stdout.clone(),
        files,
    }
}

pub fn native(case: &Case) -> Observed {
    let dir = scratch(case, "native");
    let mut command = Command::new(format!("./{}", case.program));
    if let Some(argv0) = case.argv0 {
        std::os::unix::process::CommandExt::arg0(&mut command, argv0);
    }
    // A group of its own, as the simulated first process leads.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let output = command
        .args(case.args)
        .current_dir(&dir)
        .env_clear()
        .output()
        .unwrap();
    let observed = observe(case, &dir, &output);
    std::fs::remove_dir_all(&dir).unwrap();
    observed
}

/// Runs the case under `simulate` with `flags`; returns what it did and the report text.
pub fn simulated(case: &Case, flags: &[&str]) -> (Observed, String, String) {
    let dir = scratch(case, "sim");
    let report = dir.join("report.out");
    let mut command = Command::new(SIMULATE);
    command
        .arg("--clear-env")
        .arg("--report-file")
        .arg(&report)
        .args(flags);
    if let Some(argv0) = case.argv0 {
        command.arg("--argv0").arg(argv0);
    }
    command.arg(format!("./{}", case.program)).args(case.args);
    let output = command.current_dir(&dir).env_clear().output().unwrap();
    let observed = observe(case, &dir, &output);
    let report_text = std::fs::read_to_string(&report).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    (observed, report_text, stderr)
}

/// Runs `simulate` with raw arguments in `dir`.
pub fn simulate_in(dir: &Path, args: &[&OsStr]) -> Output {
    Command::new(SIMULATE)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

pub fn case(name: &str) -> Case {
    *corpora::CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// The expansion's breakdown by source accounts for every translated instruction beyond
/// the guest's, and no source comes out negative.
pub fn extra_instructions_add_up(report: &serde_json::Value) -> Result<(), String> {
    let ring0 = &report["ring0"];
    let extra = ring0["extra_instructions"]
        .as_object()
        .ok_or("no extra_instructions")?;
    let counts: Vec<i64> = extra.values().map(|v| v.as_i64().unwrap()).collect();
    let expected = ring0["translated_instructions"].as_i64().unwrap()
        - report["guest_instructions"].as_i64().unwrap();
    if counts.iter().sum::<i64>() != expected || counts.iter().any(|&n| n < 0) {
        return Err(format!(
            "extra instructions by source {extra:?} do not add up to {expected}"
        ));
    }
    Ok(())
}

/// The host's dynamic `program` with its interpreter's path (PT_INTERP) replaced by
/// `interpreter`, which must be no longer than the original.
pub fn with_interpreter(program: &str, interpreter: &[u8]) -> Vec<u8> {
    let mut bytes = std::fs::read(program).unwrap();
    let original = b"/lib64/ld-linux-x86-64.so.2\0";
    let at = bytes
        .windows(original.len())
        .position(|w| w == original)
        .expect("the program names the x86-64 glibc interpreter");
    let slot = &mut bytes[at..at + original.len()];
    slot.fill(0);
    slot[..interpreter.len()].copy_from_slice(interpreter);
    bytes
}
