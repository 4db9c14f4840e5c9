//! Every kind of bad input gets its documented exit status and a one-line message.
//! Fixtures are made here: short byte strings in the ELF layout, or slices of real programs.

mod common;

use std::ffi::OsStr;
use std::path::Path;

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let output = common::simulate_in(dir, &args);
    (
        common::status_of(&output),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_one_line(stderr: &str, needle: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("simulate: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
}

/// A 64-byte ELF header with the given class and machine, and nothing else.
fn elf_header(class: u8, machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = class;
    h[5] = 1; // little-endian
    h[6] = 1; // version
    h[16] = 2; // ET_EXEC
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

/// The host's dynamic `program` with its PT_INTERP segment's offset moved past the end of
/// the file (a corrupt program header).
fn interpreter_outside_the_file(program: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(program).unwrap();
    let word = |bytes: &[u8], at: usize, size: usize| {
        let mut value = [0u8; 8];
        value[..size].copy_from_slice(&bytes[at..at + size]);
        u64::from_le_bytes(value) as usize
    };
    let (phoff, phentsize, phnum) = (
        word(&bytes, 32, 8),
        word(&bytes, 54, 2),
        word(&bytes, 56, 2),
    );
    let interp = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&at| word(&bytes, at, 4) == 3)
        .expect("a PT_INTERP header");
    bytes[interp + 8..interp + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    bytes
}

#[test]
fn bad_programs_get_126_or_127() {
    let dir = tempfile::tempdir().unwrap();
    let stage = corpora::stage();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    write("text.txt", b"#!/bin/sh\necho not an ELF\n");
    write("elf32", &elf_header(1, 3));
    write("arm64", &elf_header(2, 183));
    let real = std::fs::read(stage.join("getppid_loop")).unwrap();
    write("truncated", &real[..200]);
    write("headless", &real[..40]);
    // A dynamic program whose interpreter is missing, and one whose interpreter is no ELF.
    write(
        "no-interp",
        &common::with_interpreter("/bin/true", b"./missing-interpreter"),
    );
    write(
        "text-interp",
        &common::with_interpreter("/bin/true", b"./text.txt"),
    );
    write("interp-outside", &interpreter_outside_the_file("/bin/true"));

    let cases: &[(&[&str], i32, &str)] = &[
        (&["./missing"], 127, "no such file"),
        (&["./text.txt"], 126, "not an ELF file"),
        (&["./elf32"], 126, "32-bit ELF is not supported"),
        (&["./arm64"], 126, "not x86-64"),
        (&["./truncated"], 126, "truncated"),
        (&["./headless"], 126, "truncated"),
        (
            &["./no-interp"],
            127,
            "its interpreter ./missing-interpreter cannot be loaded",
        ),
        (&["./text-interp"], 126, "./text.txt: not an ELF file"),
        (
            &["./interp-outside"],
            126,
            "a bad interpreter name (PT_INTERP)",
        ),
        (&["."], 126, "cannot read"),
    ];
    for (args, status, needle) in cases {
        let (got, stderr) = run(dir.path(), args);
        assert_eq!(got, *status, "{args:?}: {stderr}");
        assert_one_line(&stderr, needle);
        // --check refuses them the same way, before anything runs natively.
        let checked: Vec<&str> = std::iter::once("--check")
            .chain(args.iter().copied())
            .collect();
        let (got, stderr) = run(dir.path(), &checked);
        assert_eq!(got, *status, "{checked:?}: {stderr}");
        assert_one_line(&stderr, needle);
    }
}

/// Not bad input: `ld -N` output, whose program headers no PT_LOAD holds, runs as on Linux
/// (since 5.18), with AT_PHDR the load bias, 0 for ET_EXEC, and its segment's first page holding
/// the ELF header. The corpus case `omagic` compares it with the native run.
#[test]
fn program_headers_outside_every_segment_are_not_refused() {
    let stage = corpora::stage();
    let elf = std::fs::read(stage.join("omagic")).unwrap();
    let field = |at: usize, size: usize| {
        let mut bytes = [0u8; 8];
        bytes[..size].copy_from_slice(&elf[at..at + size]);
        u64::from_le_bytes(bytes)
    };
    // AT_PHDR (nothing holds the table), AT_PHENT, AT_PHNUM, AT_ENTRY: the header's values;
    // then the first 8 bytes of the entry's page, the ELF header's, as Linux maps whole pages.
    let expected = format!(
        "3 {:016x}\n4 {:016x}\n5 {:016x}\n9 {:016x}\n0 {:016x}\n",
        0,
        field(54, 2),
        field(56, 2),
        field(24, 8),
        field(0, 8)
    );
    for mode in ["ring3", "ring0"] {
        let output = common::simulate_in(
            &stage,
            &["--report-file", "/dev/null", "--mode", mode, "./omagic"].map(OsStr::new),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(common::status_of(&output), 0, "{mode}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected, "{mode}");
    }
}

#[test]
fn a_check_run_that_does_not_end_is_stopped() {
    // A directory of busybox alone: --check copies the working directory for each run.
    let stage = common::scratch_with("check_timeout", "bad_input", &["busybox"]);
    // Spins in the simulator; sleeps natively (the simulator's time is virtual).
    for (argv0, args, which) in [
        ("sh", &["-c", "while :; do :; done"][..], "ring3 run"),
        ("sleep", &["5"][..], "native run"),
    ] {
        let check: Vec<&str> = [
            "--check",
            "--check-timeout",
            "1",
            "--argv0",
            argv0,
            "./busybox",
        ]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
        let (got, stderr) = run(&stage, &check);
        assert_eq!(got, 125, "{check:?}: {stderr}");
        assert_one_line(&stderr, &format!("{which}: still running after 1s, killed"));
    }
}

#[test]
fn check_refuses_the_flags_that_make_no_sense_for_it() {
    let stage = corpora::stage();
    for flags in [
        &["--mode", "ring3"][..],
        &["--max-instructions", "10"],
        &["--trace-syscalls", "/dev/null"],
        &["--dump-translation", "/dev/null"],
    ] {
        let args: Vec<&str> = ["--check"]
            .into_iter()
            .chain(flags.iter().copied())
            .chain(["./getppid_loop", "1"])
            .collect();
        let (got, stderr) = run(&stage, &args);
        assert_eq!(got, 125, "{args:?}: {stderr}");
        assert_one_line(&stderr, "cannot be used with");
    }
}

#[test]
fn every_prefix_of_a_program_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(corpora::stage().join("getppid_loop")).unwrap();
    for len in [5, 52, 64, 120, 500, 2000, real.len() / 2, real.len() - 1] {
        std::fs::write(dir.path().join("cut"), &real[..len]).unwrap();
        let (status, stderr) = run(dir.path(), &["./cut"]);
        assert_eq!(status, 126, "{len} bytes: {stderr}");
        assert_one_line(&stderr, "truncated ELF file");
    }
}

#[test]
fn simulator_failures_get_125() {
    let stage = corpora::stage();
    let bad_model = stage.join("inputs").join("numbers.txt");
    let bad_model = bad_model.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--cost-model", "plan9", "./getppid_loop"],
            "linux, freebsd, windows, singularity-sip, singularity-hip",
        ),
        (
            &["--cost-model", "/nonexistent/model.toml", "./getppid_loop"],
            "cannot read cost model",
        ),
        (
            &["--cost-model", bad_model, "./getppid_loop"],
            "bad cost model",
        ),
        (&["--no-such-flag", "./getppid_loop"], "--no-such-flag"),
        (&["--env", "NOEQUALS", "./getppid_loop"], "K=V"),
        (&[], "required"),
        (
            &["./unsupported"],
            "unsupported: syscall io_uring_setup (425) at guest rip 0x",
        ),
        // The address of a prefixed syscall is where its prefix starts, in both modes.
        (
            &["--mode", "ring3", "./prefixed_unsupported"],
            "unsupported: syscall io_uring_setup (425) at guest rip 0x401005",
        ),
        (
            &["--mode", "ring0", "./prefixed_unsupported"],
            "unsupported: syscall io_uring_setup (425) at guest rip 0x401005",
        ),
    ];
    for (args, needle) in cases {
        let (got, stderr) = run(&stage, args);
        assert_eq!(got, 125, "{args:?}: {stderr}");
        assert_one_line(&stderr, needle);
    }
}

#[test]
fn enosys_policy_counts_and_continues() {
    let stage = corpora::stage();
    let args = [
        "--clear-env",
        "--on-unsupported-syscall",
        "enosys",
        "--report",
        "json",
        "./unsupported",
    ];
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let output = common::simulate_in(&stage, &args);
    assert_eq!(common::status_of(&output), 0);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "io_uring_setup: errno 38\n"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(report["syscalls"]["enosys"]["io_uring_setup"], 1);
}

/// Corrupted headers: whatever the loader makes of them, it answers with a documented
/// status and never panics (Rust's 101) or aborts (134).
#[test]
fn corrupted_headers_never_crash_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(corpora::stage().join("getppid_loop")).unwrap();
    // A fixed linear congruential generator keeps the cases the same on every run.
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let header_bytes = 64 + 56 * 10;
    for round in 0..60 {
        let mut bytes = real.clone();
        for _ in 0..1 + round % 4 {
            let at = 4 + next() % (header_bytes - 4);
            bytes[at] = next() as u8;
        }
        std::fs::write(dir.path().join("mutant"), &bytes).unwrap();
        let (status, stderr) = run(
            dir.path(),
            &[
                "--max-instructions",
                "2000000",
                "--report-file",
                "/dev/null",
                "./mutant",
            ],
        );
        assert!(
            ![101, 134].contains(&status),
            "round {round}: status {status}: {stderr}"
        );
        if (125..=127).contains(&status) {
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "round {round}: {stderr}"
            );
        }
    }
}
