//! `simulate --check`: the program natively, untranslated at ring 3 and translated at
//! ring 0, each from a fresh copy of the working directory at the same path, then compared
//! pair by pair.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::child::Simulator;
use crate::compare::{compare, Divergence, Named};
use crate::native::{self, NativeSpec};
use crate::observed::{Observed, Status};
use crate::scratch::{self, TempDir};
use crate::simulated;

/// The CPU features glibc 2.36 decides by (which glibc-hwcaps subdirectory ld.so searches
/// and how much it allocates for the list, which string functions the ifuncs pick, how the
/// lazy-binding trampoline saves registers) that the simulated CPU does not have
/// (`sim::machine::cpuid::FLAGS`). All three runs get them masked through GLIBC_TUNABLES, so
/// that the host's glibc decides as the simulated CPU makes it decide.
const MASKED_FEATURES: &[&str] = &[
    "AVX",
    "AVX2",
    "AVX512F",
    "AVX512CD",
    "AVX512BW",
    "AVX512DQ",
    "AVX512VL",
    "AVX512_VBMI",
    "AVX512_VBMI2",
    "AVX_VNNI",
    "FMA",
    "FMA4",
    "F16C",
    "BMI1",
    "BMI2",
    "LZCNT",
    "MOVBE",
    "ERMS",
    "FSRM",
    "RTM",
    "XSAVE",
    "XSAVEC",
];

/// `env` with `glibc.cpu.hwcaps` masking `MASKED_FEATURES` added to its GLIBC_TUNABLES.
fn with_simulated_cpu_features(env: &[OsString]) -> Vec<OsString> {
    let masks: Vec<String> = MASKED_FEATURES.iter().map(|f| format!("-{f}")).collect();
    let tunable = format!("glibc.cpu.hwcaps={}", masks.join(","));
    let mut env = env.to_vec();
    match env
        .iter_mut()
        .find(|entry| entry.as_encoded_bytes().starts_with(b"GLIBC_TUNABLES="))
    {
        Some(entry) => {
            entry.push(":");
            entry.push(&tunable);
        }
        None => env.push(format!("GLIBC_TUNABLES={tunable}").into()),
    }
    env
}

/// What to check, and how the simulated runs are made.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Makes the simulated runs (flags such as --cost-model go to both).
    pub simulator: Simulator,
    pub program: PathBuf,
    pub argv0: Option<OsString>,
    pub args: Vec<OsString>,
    /// The environment of all three runs, "K=V" each.
    pub env: Vec<OsString>,
    pub seed: u64,
    /// The directory each run starts from a copy of.
    pub workdir: PathBuf,
    /// Each run is stopped after this long.
    pub timeout: Duration,
}

/// Why the check itself could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Native(#[from] native::NativeError),
    #[error("{0}")]
    Io(String),
    #[error("{run} run: still running after {after:?}, killed")]
    Timeout { run: String, after: Duration },
    /// `simulate` could not run the program at all; its message and exit status.
    #[error("{message}")]
    Simulator { message: String, status: i32 },
}

/// One run in the report.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub status: Status,
    pub stdout_bytes: usize,
    pub stderr_bytes: usize,
    /// Every task's.
    pub syscalls: usize,
    pub files_written: usize,
    pub guest_instructions: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub program: String,
    pub argv: Vec<String>,
    pub seed: u64,
    /// "agree" or "diverge".
    pub verdict: &'static str,
    pub native: RunSummary,
    pub ring3: RunSummary,
    pub ring0: RunSummary,
    /// The first divergence of each pair that has one: native vs ring3, ring3 vs ring0.
    pub divergences: Vec<Divergence>,
}

impl CheckReport {
    pub fn agrees(&self) -> bool {
        self.divergences.is_empty()
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "ringsim check: {} (seed {})\n",
            self.argv.join(" "),
            self.seed
        );
        for (name, run) in [
            ("native", &self.native),
            ("ring3", &self.ring3),
            ("ring0", &self.ring0),
        ] {
            out.push_str(&format!(
                "  {name:<6} {}; {} syscalls; stdout {} bytes, stderr {} bytes; {} files written{}\n",
                run.status,
                run.syscalls,
                run.stdout_bytes,
                run.stderr_bytes,
                run.files_written,
                run.guest_instructions
                    .map_or(String::new(), |n| format!("; {n} guest instructions")),
            ));
        }
        if self.agrees() {
            out.push_str("verdict: native, ring3 and ring0 agree\n");
            return out;
        }
        out.push_str("verdict: DIVERGENCE\n");
        for d in &self.divergences {
            let at = match (&d.index, &d.path) {
                (_, Some(path)) => format!(" {path}"),
                (Some(index), None) if d.what == "syscall" => format!(" #{index}"),
                (Some(offset), None) => format!(" at byte {offset}"),
                (None, None) => String::new(),
            };
            let of = d
                .task
                .as_ref()
                .map_or(String::new(), |task| format!(" of {task}"));
            out.push_str(&format!(
                "{} vs {}: {}{at}{of} differs\n",
                d.pair[0], d.pair[1], d.what
            ));
            for line in &d.context {
                out.push_str(&format!("    {line}\n"));
            }
            out.push_str(&format!("  {:<7} {}\n", format!("{}:", d.pair[0]), d.left));
            out.push_str(&format!("  {:<7} {}\n", format!("{}:", d.pair[1]), d.right));
        }
        out
    }
}

/// Runs the three sides and compares them.
pub fn check(config: &CheckConfig) -> Result<CheckReport, CheckError> {
    let config = &CheckConfig {
        env: with_simulated_cpu_features(&config.env),
        ..config.clone()
    };
    let io = |e: std::io::Error| CheckError::Io(e.to_string());
    let program = std::fs::canonicalize(config.workdir.join(&config.program)).map_err(|_| {
        CheckError::Simulator {
            message: format!("{}: no such file", config.program.display()),
            status: sim::run::status::NOT_FOUND,
        }
    })?;
    let argv0 = config
        .argv0
        .clone()
        .unwrap_or_else(|| config.program.clone().into_os_string());
    let base = TempDir::new("check").map_err(io)?;
    let dir = base.path().join("cwd");
    let result = (|| -> Result<(Observed, Observed, Observed), CheckError> {
        let ring3 = in_fresh_dir(config, &dir, |dir| {
            simulated::run(config, &program, &argv0, dir, "ring3")
        })?;
        let ring0 = in_fresh_dir(config, &dir, |dir| {
            simulated::run(config, &program, &argv0, dir, "ring0")
        })?;
        let argv: Vec<OsString> = std::iter::once(argv0.clone())
            .chain(config.args.iter().cloned())
            .collect();
        let native = in_fresh_dir(config, &dir, |dir| {
            Ok(native::run(&NativeSpec {
                program: &program,
                argv: &argv,
                env: &config.env,
                dir,
                seed: config.seed,
                timeout: config.timeout,
            })?)
        })?;
        Ok((native, ring3, ring0))
    })();
    drop(base);
    let (mut native, mut ring3, mut ring0) = result?;
    let marks = crate::machine_reads::marks(&ring3);
    crate::machine_reads::leave_out(&marks, &mut [&mut native, &mut ring3, &mut ring0]);
    let named = |name, observed| Named { name, observed };
    let divergences = [
        compare(&named("native", &native), &named("ring3", &ring3)),
        compare(&named("ring3", &ring3), &named("ring0", &ring0)),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    Ok(CheckReport {
        program: config.program.display().to_string(),
        argv: std::iter::once(&argv0)
            .chain(&config.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        seed: config.seed,
        verdict: if divergences.is_empty() {
            "agree"
        } else {
            "diverge"
        },
        native: summary(&native),
        ring3: summary(&ring3),
        ring0: summary(&ring0),
        divergences,
    })
}

fn summary(run: &Observed) -> RunSummary {
    RunSummary {
        status: run.status.clone(),
        stdout_bytes: run.stdout.len(),
        stderr_bytes: run.stderr.len(),
        syscalls: run.tree.tasks.iter().map(|task| task.syscalls.len()).sum(),
        files_written: run.files.len(),
        guest_instructions: run.guest_instructions,
    }
}

/// Runs `run` in `dir`, made afresh as a copy of the working directory, and adds what it
/// changed there.
fn in_fresh_dir(
    config: &CheckConfig,
    dir: &Path,
    run: impl FnOnce(&Path) -> Result<Observed, CheckError>,
) -> Result<Observed, CheckError> {
    let io = |e: std::io::Error| CheckError::Io(format!("{}: {e}", config.workdir.display()));
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(io)?;
    scratch::copy_tree(&config.workdir, dir).map_err(io)?;
    let before = scratch::read_tree(dir).map_err(io)?;
    let mut observed = run(dir)?;
    let after = scratch::read_tree(dir).map_err(io)?;
    observed.files = scratch::changes(&before, &after);
    let _ = std::fs::remove_dir_all(dir);
    Ok(observed)
}

#[cfg(test)]
mod cpu_feature_tests {
    use super::*;

    #[test]
    fn the_masked_features_are_ones_the_simulated_cpu_lacks() {
        let flags: Vec<&str> = sim::machine::cpuid::FLAGS.split_whitespace().collect();
        for feature in MASKED_FEATURES {
            let name = feature.to_lowercase().replace('_', "");
            assert!(!flags.contains(&name.as_str()), "{feature} is simulated");
        }
    }

    #[test]
    fn a_tunables_variable_of_the_users_is_kept() {
        let env = with_simulated_cpu_features(&["GLIBC_TUNABLES=glibc.malloc.check=3".into()]);
        let value = env[0].to_string_lossy();
        assert!(value.starts_with("GLIBC_TUNABLES=glibc.malloc.check=3:glibc.cpu.hwcaps=-AVX,"));
        let fresh = with_simulated_cpu_features(&["A=1".into()]);
        assert_eq!(fresh.len(), 2);
    }
}
