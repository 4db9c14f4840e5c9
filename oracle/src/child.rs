//! Running a child process with its output in files and a time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `simulate` executable that makes the simulated runs, and flags for every one of them.
#[derive(Clone, Debug)]
pub struct Simulator {
    pub path: PathBuf,
    pub flags: Vec<String>,
}

impl Simulator {
    /// A `simulate` command with the flags, to which a run's own arguments are added.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command.args(&self.flags);
        command
    }
}

/// Runs `command` with stdin from /dev/null and stdout and stderr in files in `dir`; kills
/// it after `timeout`. `Ok(None)` when it had to be killed.
pub fn run(
    command: &mut Command,
    dir: &Path,
    timeout: Duration,
) -> std::io::Result<Option<Output>> {
    let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout)?)
        .stderr(std::fs::File::create(&stderr)?)
        .spawn()?;
    let Some(status) = wait_for(&mut child, timeout)? else {
        return Ok(None);
    };
    Ok(Some(Output {
        status,
        stdout: std::fs::read(&stdout)?,
        stderr: std::fs::read(&stderr)?,
    }))
}

/// Waits for `child` for at most `timeout`; kills it and returns `None` after that.
fn wait_for(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    // Short runs are the common case: look again soon, then less and less often.
    let mut pause = Duration::from_micros(50);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() > timeout {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
