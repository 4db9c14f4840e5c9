//! Every corpus program and busybox applet behaves under `simulate` exactly as natively:
//! same stdout, same exit status, same files written. Compared with this machine's CPU, the
//! simulated one follows its vendor (`--cpu-vendor host`).

mod common;

use common::{extra_instructions_add_up, native, simulated};

#[test]
fn every_case_matches_its_native_run() {
    let mut failures = Vec::new();
    for case in corpora::CASES {
        let expected = native(case);
        let (got, _, stderr) = simulated(case, common::HOST_CPU);
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
    for (what, signal) in corpora::FAULTS {
        let run = corpora::fault_case(what);
        let expected = native(&run);
        let (got, _, stderr) = simulated(&run, common::HOST_CPU);
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

/// Translated at ring 0, every case does exactly what it does untranslated at ring 3: same
/// stdout, stderr, exit status and files, the same guest instruction count and the same
/// syscalls, and no guest access reaches the kernel half.
#[test]
fn ring0_runs_match_ring3_runs() {
    let mut failures = Vec::new();
    for case in corpora::CASES {
        let (ring3, report3, stderr3) = simulated(case, &["--mode", "ring3", "--report", "json"]);
        let (ring0, report0, stderr0) = simulated(case, &["--mode", "ring0", "--report", "json"]);
        if ring0 != ring3 || stderr0 != stderr3 {
            failures.push(format!(
                "{}: ring0 status {} stderr {stderr0:?}, ring3 status {} stderr {stderr3:?}",
                case.name, ring0.status, ring3.status
            ));
            continue;
        }
        let (r3, r0): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(&report3).unwrap(),
            serde_json::from_str(&report0).unwrap(),
        );
        for field in ["guest_instructions", "syscalls"] {
            if r3[field] != r0[field] {
                failures.push(format!(
                    "{}: {field} ring3 {} ring0 {}",
                    case.name, r3[field], r0[field]
                ));
            }
        }
        if let Err(e) = extra_instructions_add_up(&r0) {
            failures.push(format!("{}: {e}", case.name));
        }
        if r0["ring0"]["kernel_half_accesses"] != 0 {
            failures.push(format!(
                "{}: kernel-half accesses {}",
                case.name, r0["ring0"]["kernel_half_accesses"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ring0_faults_end_the_process_as_ring3_faults_do() {
    for (what, _) in corpora::FAULTS {
        let run = corpora::fault_case(what);
        let (ring3, report3, _) = simulated(&run, &["--mode", "ring3", "--report", "json"]);
        let (ring0, report0, stderr) = simulated(&run, &["--mode", "ring0", "--report", "json"]);
        assert_eq!(ring0.status, ring3.status, "{what}: {stderr}");
        assert!(stderr.contains("guest killed by"), "{what}: {stderr}");
        let (r3, r0): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(&report3).unwrap(),
            serde_json::from_str(&report0).unwrap(),
        );
        // A fault in the middle of a translated block counts only what ran before it.
        assert_eq!(
            r0["guest_instructions"], r3["guest_instructions"],
            "{what}: guest instructions"
        );
        extra_instructions_add_up(&r0).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}
