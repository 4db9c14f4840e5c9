//! The process model's promises, end to end: a deadlock ends the run with its own status
//! and names what each task waits for; a fork bomb meets --max-tasks as Linux's limits
//! meet it; the schedule is the same in both modes and replays from its seed; execve of
//! what cannot run answers as Linux does; a fork copies only what is written, and counts stay
//! exact across its copy-on-write faults; timers and signals interrupt a task that computes.

mod common;

use std::ffi::OsStr;

use common::simulate_in;

/// Runs `simulate FLAGS PROGRAM ARGS` from the stage (corpus programs by their names);
/// status, stdout, stderr.
fn run(flags: &[&str], program: &str, args: &[&str]) -> (i32, String, String) {
    let stage = corpora::stage();
    let path = stage.join(program);
    let mut all: Vec<&OsStr> = flags.iter().map(OsStr::new).collect();
    all.push(path.as_os_str());
    all.extend(args.iter().map(OsStr::new));
    let output = simulate_in(&stage, &all);
    (
        common::status_of(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The JSON report of a run.
fn report(flags: &[&str], program: &str, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let mut all = vec!["--report", "json", "--report-file", file.to_str().unwrap()];
    all.extend(flags);
    let (status, _, stderr) = run(&all, program, args);
    assert_eq!(status, 0, "{program} {flags:?}: {stderr}");
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

#[test]
fn a_deadlock_ends_the_run_with_its_status_naming_each_task() {
    let (status, stdout, stderr) = run(&["--report-file", "/dev/null"], "deadlock", &[]);
    assert_eq!(status, 123, "{stderr}");
    assert_eq!(stdout, "deadlock: both processes block for ever\n");
    assert_eq!(
        stderr,
        "simulate: deadlock: task 1000 waits for a read of empty pipe 1; \
         task 1001 waits for a read of empty pipe 2\n"
    );
}

#[test]
fn a_fork_bomb_meets_max_tasks_with_eagain_and_ends_cleanly() {
    let flags = ["--report-file", "/dev/null", "--max-tasks", "8"];
    let (status, stdout, stderr) = run(&flags, "fork_bomb", &["64"]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(
        stdout,
        "fork_bomb: 7 of 64 forks succeeded\n\
         fork_bomb: fork failed with EAGAIN\n\
         fork_bomb: reaped 7 children, 7 saw EOF and exited 0\n"
    );
}

/// With a quantum short enough to preempt the workers in the middle of their loops, both
/// modes still interleave them identically: the same syscalls in the same order (their
/// digest), the same preemptions.
#[test]
fn small_quanta_preempt_at_the_same_instruction_in_both_modes() {
    let args = ["2000"];
    let flags = |mode| ["--mode", mode, "--quantum", "1000"];
    let ring3 = report(&flags("ring3"), "pthread_workers", &args);
    let ring0 = report(&flags("ring0"), "pthread_workers", &args);
    assert!(ring3["processes"][0]["preempted"].as_u64().unwrap() > 10);
    for field in ["guest_instructions", "syscalls"] {
        assert_eq!(ring3[field], ring0[field], "{field}");
    }
    // Each process the same, down to its ring-3 estimate; only ring 0 has a ring-0 one.
    let without_ring0 = |report: &serde_json::Value| {
        let mut processes = report["processes"].clone();
        for process in processes.as_array_mut().unwrap() {
            let process = process.as_object_mut().unwrap();
            process.remove("ring0_cycles");
            process.remove("speedup");
        }
        processes
    };
    assert_eq!(without_ring0(&ring3), without_ring0(&ring0), "processes");
}

/// A process that execs itself counts the same instructions in both modes: the block that
/// made each execve is counted in the image that ran it, not worked out again in the next
/// one (whose first fetch faults while that block is still the last the CPU ran).
#[test]
fn a_process_that_execs_itself_counts_alike_in_both_modes() {
    let ring3 = report(&["--mode", "ring3"], "reexec", &["5"]);
    let ring0 = report(&["--mode", "ring0"], "reexec", &["5"]);
    assert_eq!(ring3["guest_instructions"], ring0["guest_instructions"]);
    assert_eq!(ring3["syscalls"], ring0["syscalls"]);
}

/// A schedule seed gives another interleaving, and the same one on every run.
#[test]
fn a_schedule_seed_replays_exactly() {
    let args = ["2000"];
    let seeded = |seed| ["--quantum", "1000", "--schedule-seed", seed];
    let first = report(&seeded("5"), "pthread_workers", &args);
    assert_eq!(first, report(&seeded("5"), "pthread_workers", &args));
    let round_robin = report(&["--quantum", "1000"], "pthread_workers", &args);
    let digest = |r: &serde_json::Value| r["syscalls"]["sequence_digest"].clone();
    assert_ne!(digest(&first), digest(&round_robin));
}

/// execve of a missing file, of one without execute permission, and of one that is not an
/// executable: ENOENT, EACCES and ENOEXEC to the guest, as natively, and the run goes on.
#[test]
fn execve_of_what_cannot_run_answers_as_linux() {
    let dir = tempfile::tempdir().unwrap();
    let not_elf = dir.path().join("not_elf");
    std::fs::write(&not_elf, "hello\n").unwrap();
    let mut permissions = std::fs::metadata(&not_elf).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&not_elf, permissions).unwrap();
    let not_executable = dir.path().join("not_executable");
    std::fs::write(&not_executable, "hello\n").unwrap();
    let missing = dir.path().join("missing");
    for (path, error) in [
        (&missing, "No such file or directory"),
        (&not_executable, "Permission denied"),
        (&not_elf, "Exec format error"),
    ] {
        let path = path.to_str().unwrap();
        let (status, _, stderr) = run(&["--report-file", "/dev/null"], "create_proc", &["1", path]);
        assert_eq!(status, 1, "{stderr}");
        let expected = format!(
            "create_proc: execve {path}: {error}\ncreate_proc: child 0 ended with status 0x7f00\n"
        );
        assert_eq!(stderr, expected);
    }
}

#[test]
fn a_fork_copies_only_the_pages_either_side_writes() {
    for mode in ["ring3", "ring0"] {
        let report = report(&["--mode", mode], "fork_big", &["100"]);
        let copied = report["scheduling"]["pages_copied_on_write"]
            .as_u64()
            .unwrap();
        // 25,600 pages are shared; the two sides write 7 of them, plus their stacks and
        // the C library's data.
        assert!((7..32).contains(&copied), "{mode}: {copied} pages copied");
        assert_eq!(report["processes"][1]["exit"]["code"], 0, "{mode}");
    }
}

#[test]
fn a_rep_instruction_a_copy_on_write_fault_interrupts_counts_once() {
    for mode in ["ring3", "ring0"] {
        let report = report(&["--mode", mode], "cow_rep", &[]);
        let counts: Vec<u64> = (0..2)
            .map(|i| {
                report["processes"][i]["guest_instructions"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        // corpora/programs/cow_rep.S: 4 before the fork, then the parent 13, the child 9.
        assert_eq!(counts, [17, 9], "{mode}");
        assert_eq!(report["scheduling"]["pages_copied_on_write"], 2, "{mode}");
    }
}

#[test]
fn the_processes_shares_add_up_to_the_estimates() {
    let stage = corpora::stage();
    let tiny_true = stage.join("tiny_true");
    // Under `host` too, whose microarchitecture prices blocks and branch mispredictions.
    for flags in [&[][..], &["--cost-model", "host"][..]] {
        let report = report(flags, "create_proc", &["5", tiny_true.to_str().unwrap()]);
        let processes = report["processes"].as_array().unwrap();
        assert_eq!(processes.len(), 6);
        let sum =
            |field: &str| -> u64 { processes.iter().map(|p| p[field].as_u64().unwrap()).sum() };
        assert_eq!(sum("guest_instructions"), report["guest_instructions"]);
        // Each process's estimate is rounded in each of its (at most six) parts.
        for (share, total) in [("ring3_cycles", "ring3"), ("ring0_cycles", "ring0")] {
            let total = report[total]["cycles"].as_u64().unwrap();
            assert!(
                sum(share).abs_diff(total) <= 6 * processes.len() as u64,
                "{flags:?} {share}: {} against {total}",
                sum(share)
            );
        }
    }
}

/// Timers and signals reach tasks that compute without syscalls, at the same guest
/// instruction in both modes: a periodic SIGALRM handler, a sleeper waking for a spinning
/// thread, a spinning child killed by its parent and one by its own timer. (The limit turns
/// a lost interrupt into status 124 rather than a hang.)
#[test]
fn timers_and_signals_interrupt_a_task_that_makes_no_syscalls() {
    let mut instructions = Vec::new();
    for mode in ["ring3", "ring0"] {
        let flags = ["--mode", mode, "--max-instructions", "200000000"];
        let report = report(&flags, "interrupts", &[]);
        instructions.push(report["guest_instructions"].clone());
        let (_, stdout, _) = run(
            &[&flags[..], &["--report-file", "/dev/null"]].concat(),
            "interrupts",
            &[],
        );
        assert_eq!(
            stdout,
            "periodic timer: at least 3 ticks while spinning: 1; disarmed: 1\n\
             a spinning thread saw the sleeper's flag\n\
             spinning child killed by signal 15\n\
             spinning child killed by its timer: signal 14\n"
        );
    }
    assert_eq!(instructions[0], instructions[1]);
}
