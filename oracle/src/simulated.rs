//! A simulated run, through the `simulate` executable: its report and syscall trace read back
//! into what the oracle compares, the task tree included. The report lists every process
//! (its creation path, its tasks' ids, first task first, its argv and its end); the trace
//! names each call's task. Tasks are keyed as the native run's are, by (creation path,
//! thread number), so the two trees line up whatever ids each side gave out.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use serde::Deserialize;
use sim::accounting::SyscallRecord;
use syscalls::Sysno;

use crate::check::{CheckConfig, CheckError};
use crate::child;
use crate::observed::{normalized_ids, Observed, ProcessRecord, Status, TaskRecord, TaskTree};
use crate::scratch::TempDir;

/// The calls that create a task; their result in the creator names it.
const CREATING: &[Sysno] = &[Sysno::fork, Sysno::vfork, Sysno::clone, Sysno::clone3];

/// What the oracle reads of `simulate --report json`.
#[derive(Deserialize)]
struct Report {
    exit: Exit,
    guest_instructions: Option<u64>,
    processes: Vec<Process>,
}

#[derive(Deserialize)]
struct Exit {
    code: Option<i32>,
    signal: Option<String>,
    reason: Option<String>,
}

/// One process of the report's `processes` (`sim::report::ProcessReport`).
#[derive(Deserialize)]
struct Process {
    path: Vec<u32>,
    pid: u64,
    tids: Vec<u64>,
    argv: Vec<String>,
    exit: Option<Exit>,
}

/// One simulated run in `dir`, in `mode` ("ring3" or "ring0").
pub fn run(
    config: &CheckConfig,
    program: &Path,
    argv0: &OsString,
    dir: &Path,
    mode: &str,
) -> Result<Observed, CheckError> {
    let io = |e: std::io::Error| CheckError::Io(e.to_string());
    let outputs = TempDir::new(&format!("check-{mode}")).map_err(io)?;
    let path = |name: &str| outputs.path().join(name);
    let (report_path, trace_path) = (path("report.json"), path("trace.jsonl"));
    let mut command = config.simulator.command();
    command
        .args(["--mode", mode, "--clear-env", "--report", "json"])
        .arg("--seed")
        .arg(config.seed.to_string())
        .arg("--report-file")
        .arg(&report_path)
        .arg("--trace-syscalls")
        .arg(&trace_path)
        .arg("--argv0")
        .arg(argv0);
    for pair in &config.env {
        command.arg("--env").arg(pair);
    }
    // After `--` and the program, everything is the program's (simulate's own options too).
    command
        .arg("--")
        .arg(program)
        .args(&config.args)
        .current_dir(dir);
    // stdout and stderr go to files, as the native run's do: a program can tell a file
    // from a pipe.
    let output = child::run(&mut command, outputs.path(), config.timeout)
        .map_err(|e| CheckError::Io(format!("{}: {e}", config.simulator.path.display())))?
        .ok_or(CheckError::Timeout {
            run: mode.to_string(),
            after: config.timeout,
        })?;
    read(&output, &report_path, &trace_path)
}

fn read(
    output: &std::process::Output,
    report_path: &Path,
    trace_path: &Path,
) -> Result<Observed, CheckError> {
    let Ok(report) = std::fs::read(report_path) else {
        // No report: simulate could not run the program at all.
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(CheckError::Simulator {
            message: stderr
                .lines()
                .last()
                .unwrap_or("simulate failed")
                .trim_start_matches("simulate: ")
                .to_string(),
            status: output
                .status
                .code()
                .unwrap_or(sim::run::status::SIMULATOR_FAILED),
        });
    };
    let bad = |what: &str| CheckError::Io(format!("simulate wrote a bad {what}"));
    let report: Report = serde_json::from_slice(&report).map_err(|_| bad("report"))?;
    let trace = std::fs::read_to_string(trace_path).map_err(|_| bad("syscall trace"))?;
    let syscalls = trace
        .lines()
        .map(serde_json::from_str::<SyscallRecord>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("syscall trace"))?;
    // The run's own status when it ended otherwise (a deadlock, the instruction limit).
    let status = status(&report.exit).unwrap_or(Status::Exited(output.status.code().unwrap_or(-1)));
    // simulate's own notice (`simulate: guest killed by ...`) ends its stderr; the guest's
    // stderr is what comes before it.
    let mut stderr = output.stderr.clone();
    if let (Some(signal), Some(reason)) = (&report.exit.signal, &report.exit.reason) {
        let notice = format!("simulate: guest killed by {signal}: {reason}\n");
        if stderr.ends_with(notice.as_bytes()) {
            stderr.truncate(stderr.len() - notice.len());
        }
    }
    let tree = tree(report.processes, syscalls)
        .ok_or_else(|| bad("syscall trace: a call by a task the report does not list"))?;
    Ok(Observed {
        status,
        stdout: output.stdout.clone(),
        stderr,
        syscalls: tree.tasks[0].syscalls.clone(),
        files: Default::default(),
        guest_instructions: report.guest_instructions,
        tree,
    })
}

/// A process's end: its exit code or its signal; `None` for neither.
fn status(exit: &Exit) -> Option<Status> {
    match (exit.code, &exit.signal) {
        (Some(code), _) => Some(Status::Exited(code)),
        (None, Some(signal)) => Some(Status::Signaled(signal.clone())),
        (None, None) => None,
    }
}

/// The tree of the report's processes, each task with its calls from the trace; `None` when
/// the trace names a task no process lists (or none is listed).
fn tree(processes: Vec<Process>, trace: Vec<SyscallRecord>) -> Option<TaskTree> {
    let mut tasks: Vec<TaskRecord> = processes
        .iter()
        .flat_map(|process| {
            let path = &process.path;
            let tasks = process.tids.iter().zip(0..);
            tasks.map(|(&tid, thread)| TaskRecord::new(tid as i32, path.clone(), thread))
        })
        .collect();
    if tasks.is_empty() {
        return None;
    }
    // The simulator gives out ids in creation order, the root's first.
    tasks.sort_by_key(|task| task.tid);
    let index: HashMap<u64, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| (task.tid as u64, i))
        .collect();
    for (i, task) in tasks.iter_mut().enumerate() {
        task.index = i;
    }
    for (order, call) in trace.into_iter().enumerate() {
        let task = *index.get(&call.tid)?;
        if CREATING.iter().any(|nr| nr.id() as u64 == call.nr) {
            if let Some(&created) = index.get(&call.ret) {
                tasks[created].parent = Some(task);
            }
        }
        tasks[task].syscalls.push(call);
        tasks[task].order.push(order);
    }
    let mut processes: Vec<ProcessRecord> = processes
        .into_iter()
        .map(|process| ProcessRecord {
            status: process
                .exit
                .as_ref()
                .and_then(status)
                .unwrap_or(Status::Unfinished),
            path: process.path,
            pid: process.pid as i32,
            argv: process.argv,
        })
        .collect();
    processes.sort_by(|a, b| a.path.cmp(&b.path));
    Some(TaskTree {
        ids: normalized_ids(&tasks),
        tasks,
        processes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::TaskKind;

    fn call(tid: u64, nr: Sysno, ret: u64) -> SyscallRecord {
        SyscallRecord {
            machine_file: false,
            tid,
            nr: nr.id() as u64,
            args: [0; 6],
            ret,
        }
    }

    /// The root forks twice; its first child starts a thread and is still running at the end.
    fn processes() -> Vec<Process> {
        let report = r#"[
            {"pid": 1000, "ppid": 999, "path": [], "tids": [1000], "argv": ["./a"],
             "exit": {"code": 0, "signal": null, "reason": null}},
            {"pid": 1001, "ppid": 1000, "path": [0], "tids": [1001, 1003], "argv": ["./a"],
             "exit": null},
            {"pid": 1002, "ppid": 1000, "path": [1], "tids": [1002], "argv": ["./b", "x"],
             "exit": {"code": null, "signal": "SIGSEGV", "reason": "a fault"}}
        ]"#;
        serde_json::from_str(report).unwrap()
    }

    #[test]
    fn the_report_s_processes_and_the_trace_s_tids_make_the_tree() {
        let trace = vec![
            call(1000, Sysno::fork, 1001),
            call(1001, Sysno::clone, 1003),
            call(1000, Sysno::fork, 1002),
            call(1003, Sysno::gettid, 1003),
            call(1002, Sysno::getpid, 1002),
            call(1001, Sysno::getpid, 1001),
        ];
        let tree = tree(processes(), trace).unwrap();
        let keys: Vec<(&[u32], u32, i32)> = tree
            .tasks
            .iter()
            .map(|t| (t.path.as_slice(), t.thread, t.tid))
            .collect();
        assert_eq!(
            keys,
            [
                (&[][..], 0, 1000),
                (&[0], 0, 1001),
                (&[1], 0, 1002),
                (&[0], 1, 1003)
            ]
        );
        let thread = &tree.tasks[3];
        assert_eq!(
            (thread.kind, thread.parent, thread.index),
            (TaskKind::Thread, Some(1), 3)
        );
        assert_eq!(tree.tasks[1].order, [1, 5]);
        // Normalized: the child's thread right after the child, before the second child.
        assert_eq!(tree.ids[&1003], 1002);
        assert_eq!(tree.ids[&1002], 1003);
        let ends: Vec<String> = tree
            .processes
            .iter()
            .map(|p| p.status.to_string())
            .collect();
        assert_eq!(
            ends,
            [
                "exit status 0",
                "still running when the run stopped",
                "killed by SIGSEGV"
            ]
        );
        assert_eq!(tree.processes[2].argv, ["./b", "x"]);
    }

    #[test]
    fn a_call_by_a_task_no_process_lists_is_refused() {
        assert!(tree(processes(), vec![call(1004, Sysno::getpid, 1004)]).is_none());
        assert!(tree(Vec::new(), Vec::new()).is_none());
    }
}
