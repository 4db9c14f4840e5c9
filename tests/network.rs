//! The network model's promises, end to end, where a native run could not be compared: a
//! server left listening ends the run with the deadlock status and a message saying so; a
//! connect off loopback is unreachable and one to a port with no listener refused, as in a
//! network namespace with only `lo`.

mod common;

use std::ffi::OsStr;

use common::simulate_in;

/// Runs `simulate --report-file /dev/null busybox ARGS` from the stage: status, stdout,
/// stderr.
fn busybox(args: &[&str]) -> (i32, String, String) {
    let stage = corpora::stage();
    let all: Vec<&OsStr> = ["--report-file", "/dev/null", "./busybox"]
        .iter()
        .chain(args)
        .map(OsStr::new)
        .collect();
    let output = simulate_in(&stage, &all);
    (
        common::status_of(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_server_left_listening_ends_the_run_with_a_message_and_the_deadlock_status() {
    let (status, _, stderr) = busybox(&["nc", "-l", "-p", "9999"]);
    assert_eq!(status, 123, "{stderr}");
    assert_eq!(
        stderr,
        "simulate: deadlock: a server is left listening with no task left to connect: \
         task 1000 on [::]:9999\n"
    );
}

#[test]
fn only_loopback_is_reachable_and_a_port_with_no_listener_refuses() {
    let (status, _, stderr) = busybox(&["nc", "10.0.0.1", "80"]);
    assert_eq!(status, 1, "{stderr}");
    assert_eq!(
        stderr,
        "nc: can't connect to remote host (10.0.0.1): Network is unreachable\n"
    );
    let (status, _, stderr) = busybox(&["wget", "-q", "-O", "-", "http://[::1]:8080/"]);
    assert_eq!(status, 1, "{stderr}");
    assert_eq!(
        stderr,
        "wget: can't connect to remote host: Connection refused\n"
    );
}

/// Runs `busybox sh shell/redis.sh REQUESTS CLIENTS` under `simulate --report json` with
/// Debian's Redis (corpora/fetch-redis) on PATH: status, stdout, the report.
fn redis(requests: &str, clients: &str) -> (i32, String, serde_json::Value) {
    let stage = corpora::stage();
    let redis = stage.join("redis");
    let report = tempfile::NamedTempFile::new().unwrap();
    let output = std::process::Command::new(common::SIMULATE)
        .args(["--report", "json", "--report-file"])
        .arg(report.path())
        .args(["./busybox", "sh", "shell/redis.sh", requests, clients])
        .current_dir(&stage)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", redis.join("bin").display()),
        )
        .env("LD_LIBRARY_PATH", redis.join("lib"))
        .output()
        .unwrap();
    let json = std::fs::read_to_string(report.path()).unwrap();
    (
        common::status_of(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}")),
    )
}

/// Debian's redis-server, driven by redis-cli and redis-benchmark over loopback TCP in one
/// simulation, the same report each time, its socket calls priced by their classes.
#[test]
fn redis_serves_its_clients_in_the_simulation_and_the_report_repeats() {
    let (status, stdout, first) = redis("300", "2");
    assert_eq!(status, 0, "{stdout}");
    assert_eq!(stdout, "OK\nhello\n2\nredis-server ended: 0\n");
    let work = &first["kernel_work"];
    for class in ["tcp_send", "tcp_receive", "connect", "accept"] {
        assert!(work[class]["calls"].as_u64() > Some(0), "{class}: {work}");
    }
    // redis-benchmark's 600 requests and their replies, and redis-cli's four.
    assert!(work["tcp_send"]["calls"].as_u64() >= Some(1200), "{work}");
    let (_, _, second) = redis("300", "2");
    assert_eq!(first, second);
}

/// What the simulated kernel lacks (here netlink, which `ip` asks for) is answered as a Linux
/// kernel without it answers, and counted in the report.
#[test]
fn a_family_the_kernel_lacks_is_refused_as_linux_would_and_counted() {
    let stage = corpora::stage();
    let report = tempfile::NamedTempFile::new().unwrap();
    let args: Vec<&OsStr> = [
        OsStr::new("--report-file"),
        report.path().as_os_str(),
        OsStr::new("./busybox"),
        OsStr::new("ip"),
        OsStr::new("addr"),
    ]
    .to_vec();
    let output = simulate_in(&stage, &args);
    assert_eq!(common::status_of(&output), 1);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "ip: socket: Address family not supported by protocol\n"
    );
    let text = std::fs::read_to_string(report.path()).unwrap();
    assert!(
        text.contains(
            "not modelled, answered as a kernel without it: \
             a socket of address family 16 (EAFNOSUPPORT) ×1"
        ),
        "{text}"
    );
}
