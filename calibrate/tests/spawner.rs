//! The spawner, the minimal parent that times process creation: it writes to the pages it is
//! asked to hold, creates the processes it is asked for, each running the program it was
//! built with, writes the ticks they took and exits 0; it reports a bad count, pages it
//! cannot map, and a child that fails, by its exit code. (One test in a
//! binary of its own: a fork elsewhere while a file is open for writing would make execve
//! fail, ETXTBSY.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use calibrate::elf::{Program, SpawnerFailure, MAX_AREAS, MAX_PAGES, PAGE};

fn run(spawner: &Program, args: &[&str]) -> Output {
    Command::new(spawner.path())
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

/// The ticks a spawner that exited 0 reported for `args` (processes, and pages if given).
fn ticks(spawner: &Program, args: &[&str]) -> u64 {
    let output = run(spawner, args);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    u64::from_ne_bytes(output.stdout.try_into().unwrap())
}

fn exit_code(spawner: &Program, args: &[&str]) -> Option<i32> {
    let output = run(spawner, args);
    assert!(output.stdout.is_empty(), "{output:?}");
    output.status.code()
}

#[test]
fn the_spawner_times_its_processes_and_reports_failures_by_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let exits_0 = Program::exit_in(dir.path(), 0).unwrap();
    let spawner = Program::spawner_in(dir.path(), exits_0.path()).unwrap();

    // The pages are written, so resident: the spawner's peak resident set (the largest of
    // the children this test has waited for) holds them.
    let pages = 4096;
    assert!(ticks(&spawner, &["3", &pages.to_string()]) > 0);
    // SAFETY: a zeroed rusage is a valid one for getrusage to write.
    let resident_kib = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss as u64
    };
    assert!(
        resident_kib >= pages * PAGE / 1024,
        "peak resident set {resident_kib} KiB with {pages} pages"
    );
    for args in [
        &["3"][..],
        &["3", "0"],
        &["0", "1"],
        &["3", "0", "0"],
        &["3", "1", "2"],
    ] {
        assert!(ticks(&spawner, args) > 0, "{args:?}");
    }

    // As many processes as asked for: a child that is a script adding a line to a file.
    let count = dir.path().join("count");
    let script = dir.path().join("count-me");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho >> '{}'\n", count.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spawner_of_script = Program::spawner_in(dir.path(), &script).unwrap();
    for processes in [0, 1, 7] {
        std::fs::write(&count, b"").unwrap();
        ticks(&spawner_of_script, &[&processes.to_string()]);
        let lines = std::fs::read(&count).unwrap().len();
        assert_eq!(lines as u64, processes);
    }

    // As many areas more as asked for, none merged: a child that counts its parent's.
    let script = dir.path().join("count-areas");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh
wc -l < /proc/$PPID/maps > '{}'
",
            count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spawner_of_script = Program::spawner_in(dir.path(), &script).unwrap();
    let areas = |args: &[&str]| {
        ticks(&spawner_of_script, args);
        let text = std::fs::read_to_string(&count).unwrap();
        text.trim().parse::<u64>().unwrap()
    };
    assert_eq!(areas(&["1", "0", "64"]), areas(&["1"]) + 64);

    let usage = Some(SpawnerFailure::Usage as i32);
    for args in [
        &[][..],
        &[""],
        &["3x"],
        &["-1"],
        &["3", "4", "5", "6"],
        &["3", "4x"],
        &["3", "0", "5x"],
        &["3", "0", &MAX_AREAS.to_string()],
        &["3", ""],
        &["18446744073709551616"],
        &["3", &MAX_PAGES.to_string()],
    ] {
        assert_eq!(exit_code(&spawner, args), usage, "{args:?}");
    }
    // Pages past any address space.
    assert_eq!(
        exit_code(&spawner, &["1", &(MAX_PAGES - 1).to_string()]),
        Some(SpawnerFailure::Map as i32)
    );

    // A child that exits nonzero: the spawner passes its code on.
    let exits_42 = Program::exit_in(dir.path(), 42).unwrap();
    let spawner_of_42 = Program::spawner_in(dir.path(), exits_42.path()).unwrap();
    assert_eq!(exit_code(&spawner_of_42, &["3"]), Some(42));

    // A child whose execve fails exits with its errno.
    let not_executable = dir.path().join("not-executable");
    std::fs::write(&not_executable, b"").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spawner_of_nothing = Program::spawner_in(dir.path(), &not_executable).unwrap();
    assert_eq!(exit_code(&spawner_of_nothing, &["1"]), Some(libc::EACCES));
    let missing = Program::spawner_in(dir.path(), Path::new("/nonexistent/calibrate")).unwrap();
    assert_eq!(exit_code(&missing, &["1"]), Some(libc::ENOENT));
}
