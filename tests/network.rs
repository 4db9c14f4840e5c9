//! The network model's promises, end to end, where a native run could not be compared: a
//! server left listening ends the run with the deadlock status and a message saying so; a
//! connect off loopback is unreachable and one to a port with no listener refused, as in a
//! network namespace with only `lo`. With `--net host`, a simulated client reaches a real
//! server and a simulated server takes real connections.

mod common;

use std::ffi::OsStr;

use common::simulate_in;

/// Runs `simulate --report-file /dev/null busybox ARGS` from the stage: status, stdout,
/// stderr.
fn busybox(args: &[&str]) -> (i32, String, String) {
    simulate_busybox(&[], args)
}

/// Runs `simulate --report-file /dev/null OPTIONS busybox ARGS` from the stage.
fn simulate_busybox(options: &[&str], args: &[&str]) -> (i32, String, String) {
    let stage = corpora::stage();
    let all: Vec<&OsStr> = ["--report-file", "/dev/null"]
        .iter()
        .chain(options)
        .chain(&["./busybox"])
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

/// A free loopback port of the host's, for a `--net host` test (the listener that found it
/// is closed before the simulated program binds it).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `--net host`: a simulated client reaches a real server on the host's loopback.
#[test]
fn with_the_host_network_a_simulated_client_reaches_a_real_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let n = stream.read(&mut request).unwrap();
        stream
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nfrom the host\n")
            .unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let url = format!("http://127.0.0.1:{port}/page");
    let (status, stdout, stderr) =
        simulate_busybox(&["--net", "host"], &["wget", "-q", "-O", "-", &url]);
    assert_eq!(
        (status, stdout.as_str()),
        (0, "from the host\n"),
        "{stderr}"
    );
    assert!(server.join().unwrap().starts_with("GET /page HTTP/1.1\r\n"));
}

/// `--net host`: a simulated server takes a real connection, and the run says it used the
/// host's network.
#[test]
fn with_the_host_network_a_simulated_server_takes_a_real_connection() {
    let port = free_port();
    let stage = corpora::stage();
    let report = tempfile::NamedTempFile::new().unwrap();
    let server = std::process::Command::new(common::SIMULATE)
        .args([
            OsStr::new("--net"),
            OsStr::new("host"),
            OsStr::new("--report-file"),
        ])
        .arg(report.path())
        .args(["./busybox", "nc", "-l", "-p", &port.to_string()])
        .current_dir(&stage)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = None;
    for _ in 0..200 {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                client = Some(stream);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    let mut client = client.expect("the simulated server listens");
    std::io::Write::write_all(&mut client, b"over the host's loopback\n").unwrap();
    drop(client);
    let output = server.wait_with_output().unwrap();
    assert_eq!(common::status_of(&output), 0);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "over the host's loopback\n"
    );
    let text = std::fs::read_to_string(report.path()).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("host network (not deterministic)"),
        "{text}"
    );
}

/// `--net host` with both ends simulated: blocking accept, connect and reads wait on the
/// host's sockets, and the idle simulator waits on them.
#[test]
fn with_the_host_network_both_ends_can_be_simulated() {
    let stage = corpora::stage();
    let args: Vec<&OsStr> = ["--report-file", "/dev/null", "--net", "host", "./net_echo"]
        .iter()
        .chain(&["tcp", "200"])
        .map(OsStr::new)
        .collect();
    let output = simulate_in(&stage, &args);
    assert_eq!(common::status_of(&output), 0);
    assert!(String::from_utf8_lossy(&output.stdout)
        .starts_with("tcp: 200 round trips served, client exited 0\n"));
}

#[test]
fn the_host_network_is_refused_with_check() {
    let (status, _, stderr) = simulate_busybox(&["--net", "host", "--check"], &["true"]);
    assert_eq!(status, 125);
    assert!(
        stderr.contains("--net host cannot be used with --check"),
        "{stderr}"
    );
}
