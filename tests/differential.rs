//! Every corpus program and busybox applet behaves under `simulate` exactly as natively:
//! same stdout, same exit status, same files written.

mod common;

use common::{native, simulated};

#[test]
fn every_case_matches_its_native_run() {
    let mut failures = Vec::new();
    for case in corpora::CASES {
        let expected = native(case);
        let (got, _, stderr) = simulated(case, &[]);
        if got != expected {
            failures.push(format!(
                "{}: native status {} / {} stdout bytes, simulated status {} / {} stdout bytes; stderr: {}",
                case.name,
                expected.status,
                expected.stdout.len(),
                got.status,
                got.stdout.len(),
                stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn faults_end_the_process_with_the_native_signal() {
    let case = common::case("stat_env");
    let faults = corpora::Case {
        name: "faults",
        program: "faults",
        ..case
    };
    for (what, signal) in corpora::FAULTS {
        let run = corpora::Case {
            args: std::slice::from_ref(what),
            ..faults
        };
        let expected = native(&run);
        let (got, _, stderr) = simulated(&run, &[]);
        assert_eq!(expected.status, 128 + signal, "native {what}");
        assert_eq!(got.status, expected.status, "{what}: {stderr}");
        assert!(stderr.contains("guest killed by"), "{what}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{what}: one line: {stderr}"
        );
    }
}
