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
