//! What a program learns of the machine from /proc, /sys and the scheduler is the simulated
//! machine, on every host: its name and kernel release (as `uname`), one CPU, the CPU model's
//! cpuinfo, and a process's own stat line; any other /proc or /sys path, which would
//! describe the host, stops the run.

mod common;

use std::process::Command;

fn busybox(applet: &str, args: &[&str], mode: &str) -> (i32, String, String) {
    let output = Command::new(common::SIMULATE)
        .args([
            "--mode",
            mode,
            "--cpu-vendor",
            "amd",
            "--report-file",
            "/dev/null",
        ])
        .args(["--argv0", applet])
        .arg(corpora::stage().join("busybox"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    (
        common::status_of(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn proc_and_sys_describe_the_simulated_machine() {
    for mode in ["ring3", "ring0"] {
        let files = [
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/osrelease",
            "/sys/devices/system/cpu/online",
        ];
        let (status, stdout, stderr) = busybox("cat", &files, mode);
        assert_eq!(
            (status, stdout.as_str()),
            (0, "ringsim\n6.1.0\n0\n"),
            "{stderr}"
        );
        let (status, stdout, _) = busybox("nproc", &[], mode);
        assert_eq!((status, stdout.as_str()), (0, "1\n"), "{mode}");
        let (status, stdout, _) = busybox("grep", &["vendor_id", "/proc/cpuinfo"], mode);
        assert_eq!(
            (status, stdout.as_str()),
            (0, "vendor_id\t: AuthenticAMD\n")
        );
        // A regular file, as procfs shows it: not a link to follow or copy.
        let (status, _, _) = busybox("readlink", &["/proc/version"], mode);
        assert_eq!(status, 1, "{mode}");
    }
}

#[test]
fn other_proc_paths_stop_the_run_rather_than_leak_the_host() {
    let (status, _, stderr) = busybox("cat", &["//proc/./stat"], "ring3");
    assert_eq!(status, 125, "by another name too: {stderr}");
    let (status, stdout, stderr) = busybox("cat", &["/proc/stat"], "ring3");
    assert_eq!(status, 125, "{stdout}");
    assert!(
        stderr
            .starts_with("simulate: unsupported: the path /proc/stat (it would describe the host"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

/// What servers read at start (Redis: overcommit, transparent huge pages, the clock source,
/// its own stat line for its resident size) describes the simulated process and machine.
#[test]
fn a_process_s_stat_line_and_the_files_servers_read_are_the_simulated_ones() {
    let files = [
        "/proc/sys/vm/overcommit_memory",
        "/proc/sys/net/core/somaxconn",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
    ];
    let (status, stdout, stderr) = busybox("cat", &files, "ring3");
    assert_eq!(
        (status, stdout.as_str()),
        (0, "0\n4096\nalways [madvise] never\ntsc\n"),
        "{stderr}"
    );
    for path in ["/proc/self/stat", "/proc/1000/stat"] {
        let (status, stdout, stderr) = busybox("cat", &[path], "ring0");
        assert_eq!(status, 0, "{stderr}");
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(fields.len(), 52, "{stdout}");
        assert_eq!(
            &fields[..5],
            ["1000", "(busybox)", "R", "999", "1000"],
            "{stdout}"
        );
        let resident: u64 = fields[23].parse().unwrap();
        assert!(resident > 0, "{stdout}");
    }
}

/// /dev/urandom and /dev/random give the run's seeded bytes, as getrandom does: the same
/// on every run of a seed, others under another seed.
#[test]
fn the_random_devices_repeat_with_the_seed() {
    let read = |device: &str, seed: &str| {
        let output = Command::new(common::SIMULATE)
            .args([
                "--report-file",
                "/dev/null",
                "--seed",
                seed,
                "--argv0",
                "od",
            ])
            .arg(corpora::stage().join("busybox"))
            .args(["-An", "-tx1", "-N16", device])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(common::status_of(&output), 0);
        String::from_utf8(output.stdout).unwrap()
    };
    for device in ["/dev/urandom", "/dev/random"] {
        let first = read(device, "7");
        assert_eq!(first.split_whitespace().count(), 16, "{first}");
        assert_eq!(first, read(device, "7"), "{device}");
        assert_ne!(first, read(device, "8"), "{device}");
    }
}
