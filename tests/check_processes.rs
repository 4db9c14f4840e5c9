//! `simulate --check` on programs of several processes and threads: the native tree (every
//! task ptrace followed) and the two simulated ones are compared task by task, matched by
//! creation path and thread number, and must agree; a divergence in a child process is
//! caught and named.

mod common;

use common::check;

/// Checks `program args` in a scratch directory that also holds `beside` (programs it runs
/// by name); the exit status of `simulate --check` and its report.
fn check_in_scratch(
    flags: &[&str],
    program: &str,
    beside: &[&str],
    args: &[&str],
) -> (i32, String) {
    let programs: Vec<&str> = std::iter::once(program)
        .chain(beside.iter().copied())
        .collect();
    let dir = common::scratch_with(program, "check-processes", &programs);
    let result = check(&dir, flags, &format!("./{program}"), None, args);
    std::fs::remove_dir_all(&dir).unwrap();
    result
}

fn assert_agrees(program: &str, beside: &[&str], args: &[&str]) {
    let (status, report) = check_in_scratch(&[], program, beside, args);
    assert_eq!(status, 0, "{program} {args:?}:\n{report}");
    assert!(
        report.contains("verdict: native, ring3 and ring0 agree"),
        "{report}"
    );
}

#[test]
fn pthread_workers_agrees() {
    assert_agrees("pthread_workers", &[], &[]);
}

/// Two threads, then two processes, each calling sched_yield in turn.
#[test]
fn yield_threads_and_yield_procs_agree() {
    assert_agrees("yield_threads", &[], &["200"]);
    assert_agrees("yield_procs", &[], &["200"]);
}

#[test]
fn psr_agrees() {
    assert_agrees("psr", &[], &["200"]);
}

#[test]
fn create_proc_agrees() {
    assert_agrees("create_proc", &["tiny_true"], &["20"]);
}

#[test]
fn fork_bomb_agrees() {
    assert_agrees("fork_bomb", &[], &["16"]);
}

#[test]
fn busybox_pipeline_agrees() {
    assert_agrees("busybox", &[], &["sh", "-c", "echo hi | cat"]);
}

/// The oracle can fail in a tree too: create_proc's child execs prefixed_syscall, which reads
/// RCX after a syscall, and with `syscall` translated without the RCX rule only that child
/// goes wrong at ring 0. The report names the child and its call, not the parent, whose
/// status and stderr only follow from it.
#[test]
fn a_planted_bug_in_a_child_process_is_caught_and_named() {
    let args = ["1", "./prefixed_syscall"];
    let beside = ["prefixed_syscall"];
    let (clean, report) = check_in_scratch(&[], "create_proc", &beside, &args);
    assert_eq!(clean, 0, "without a planted bug:\n{report}");
    let bug = ["--plant-bug", "syscall-rcx"];
    let (planted, report) = check_in_scratch(&bug, "create_proc", &beside, &args);
    assert_eq!(planted, 1, "{report}");
    let first: Vec<&str> = report.lines().filter(|l| l.contains(" vs ")).collect();
    assert_eq!(
        first,
        ["ring3 vs ring0: syscall #3 of task 1001 (./prefixed_syscall) differs"],
        "{report}"
    );
    assert!(
        report.contains("  ring3:  exit(0xa) = <no return>"),
        "{report}"
    );
}
