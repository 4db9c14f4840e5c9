//! One simulation: `simulate` run as a child on a corpus program under one cost model, its
//! JSON report read back. A child per run keeps runs apart (a guest's `chdir` and `umask` are
//! the simulating process's own while it runs) and lets runs go in parallel.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::Error;

/// Whether the program runs untranslated at ring 3 or translated at ring 0 (whose report
/// also holds the ring-3 estimate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Ring3,
    Ring0,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ring3 => "ring3",
            Mode::Ring0 => "ring0",
        }
    }
}

/// What to run: a program of the staged corpus (or an absolute path) and its arguments,
/// under a cost model (a built-in name or a TOML file), in a mode, with a seed, and at most
/// `max_instructions` guest instructions if given.
#[derive(Clone, Debug)]
pub struct Run {
    pub program: String,
    pub args: Vec<String>,
    pub model: String,
    pub mode: Mode,
    pub seed: u64,
    pub max_instructions: Option<u64>,
}

/// The guest's user and group: fixed, as the snapshot tests fix them, since busybox drops
/// privileges only when not root and its counts would depend on who runs the experiment.
const USER_IDS: &str = "1000:1000";

impl Run {
    /// A run of `program` with `args` under `model` in `mode`, seed 0, no instruction limit.
    pub fn new(program: &str, args: Vec<String>, model: &str, mode: Mode) -> Self {
        Run {
            program: program.to_string(),
            args,
            model: model.to_string(),
            mode,
            seed: 0,
            max_instructions: None,
        }
    }

    /// `simulate`'s arguments for this run, the report written to `report`.
    fn arguments(&self, report: &Path) -> Vec<OsString> {
        let mut flags = vec![
            "--cost-model".to_string(),
            self.model.clone(),
            "--mode".to_string(),
            self.mode.name().to_string(),
            "--seed".to_string(),
            self.seed.to_string(),
            "--user-ids".to_string(),
            USER_IDS.to_string(),
            "--clear-env".to_string(),
        ];
        if let Some(limit) = self.max_instructions {
            flags.extend(["--max-instructions".to_string(), limit.to_string()]);
        }
        flags.extend([
            "--report".to_string(),
            "json".to_string(),
            "--report-file".to_string(),
        ]);
        let mut args: Vec<OsString> = flags.into_iter().map(OsString::from).collect();
        args.push(report.into());
        args.push(OsString::from(&self.program));
        args.extend(self.args.iter().map(OsString::from));
        args
    }

    /// The command as a user would type it in the corpus directory: quoted for a POSIX
    /// shell, with the standard input and output it runs with (what stdout is changes the
    /// program's syscalls, and their price).
    pub fn command_line(&self) -> String {
        let args = self.arguments(Path::new("report.json"));
        let words: Vec<String> = std::iter::once(OsStr::new("simulate"))
            .chain(args.iter().map(OsString::as_os_str))
            .map(|a| quote(&a.to_string_lossy()))
            .collect();
        format!("{} < /dev/null > /dev/null", words.join(" "))
    }
}

/// `word` as a POSIX shell reads it back: as it is when it holds nothing the shell would
/// take apart, else in single quotes.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Runs `simulate` in the staged corpus.
#[derive(Clone, Debug)]
pub struct Runner {
    simulate: PathBuf,
    corpus: PathBuf,
}

impl Runner {
    pub fn new(simulate: PathBuf, corpus: PathBuf) -> Self {
        Runner { simulate, corpus }
    }

    /// `simulate` from beside this executable, and the corpus staged at its fixed-length
    /// path (a program's own path reaches its instruction count: static glibc reads
    /// /proc/self/exe at start-up).
    pub fn beside_this_program() -> Result<Self, Error> {
        let exe = std::env::current_exe()
            .map_err(|err| Error::Setup(format!("cannot find this program: {err}")))?;
        let simulate = exe.with_file_name("simulate");
        if !simulate.is_file() {
            return Err(Error::Setup(format!(
                "{}: not found (build it: cargo build --release)",
                simulate.display()
            )));
        }
        Ok(Runner::new(simulate, staged_corpus()?))
    }

    pub fn corpus(&self) -> &Path {
        &self.corpus
    }

    /// The run's JSON report. A program that does not exit 0 is an error: every
    /// experiment's programs do, natively.
    pub fn report(&self, run: &Run) -> Result<Value, Error> {
        match self.finish(run)? {
            Finished {
                status: 0,
                report: Some(report),
                ..
            } => Ok(report),
            finished => Err(finished.error(run)),
        }
    }

    /// The run's report whatever its program's exit status (a sweep records a program
    /// that fails, or is killed, as its report says); an error only when `simulate` made
    /// no report: it failed itself (status 125-127).
    pub fn report_any(&self, run: &Run) -> Result<Value, Error> {
        match self.finish(run)? {
            Finished {
                report: Some(report),
                ..
            } => Ok(report),
            finished => Err(finished.error(run)),
        }
    }

    fn finish(&self, run: &Run) -> Result<Finished, Error> {
        let dir = tempfile::tempdir().map_err(|err| Error::Setup(format!("temp dir: {err}")))?;
        let file = dir.path().join("report.json");
        let output = Command::new(&self.simulate)
            .args(run.arguments(&file))
            .current_dir(&self.corpus)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .map_err(|err| Error::Setup(format!("{}: {err}", self.simulate.display())))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("simulate: "))
            .unwrap_or("no message")
            .trim_start_matches("simulate: ")
            .to_string();
        let report = match std::fs::read_to_string(&file) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|err| {
                Error::Setup(format!("{}: bad report: {err}", run.command_line()))
            })?),
            Err(_) => None,
        };
        Ok(Finished {
            status: output.status.code().unwrap_or(crate::status::FAILED),
            message,
            report,
        })
    }
}

/// What a run of `simulate` left.
struct Finished {
    status: i32,
    /// Its last `simulate: ` line on stderr.
    message: String,
    report: Option<Value>,
}

impl Finished {
    fn error(self, run: &Run) -> Error {
        Error::Run {
            run: run.command_line(),
            status: self.status,
            message: self.message,
        }
    }
}

/// The corpus, staged at its fixed-length path (see [`Runner::beside_this_program`]).
pub fn staged_corpus() -> Result<PathBuf, Error> {
    corpora::try_stage().map_err(Error::Setup)
}

/// A number in a report, by its path of keys; a field that is not there (or not a number)
/// is an error, never a silent zero.
pub fn field(report: &Value, path: &[&str]) -> Result<f64, Error> {
    path.iter()
        .fold(report, |value, key| &value[*key])
        .as_f64()
        .ok_or_else(|| Error::Setup(format!("the report has no number {}", path.join("."))))
}

/// How much `path` grew from the `small` run's report to the `large` one's, per unit of
/// what the larger run did more: start-up and one-time costs, the same in both, cancel.
pub fn per_unit(small: &Value, large: &Value, units: f64, path: &[&str]) -> Result<f64, Error> {
    Ok((field(large, path)? - field(small, path)?) / units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_where_a_shell_would_split_them() {
        assert_eq!(quote("inputs/text.txt"), "inputs/text.txt");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn a_missing_report_field_is_an_error() {
        let report = serde_json::json!({"ring3": {"cycles": 5}});
        assert_eq!(field(&report, &["ring3", "cycles"]).unwrap(), 5.0);
        assert!(field(&report, &["ring0", "cycles"]).is_err());
    }
}
