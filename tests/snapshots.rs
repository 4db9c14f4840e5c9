//! The JSON reports of deterministic corpus runs, with their exact instruction and syscall
//! counts, as insta snapshots (`cargo insta review` to accept a change). The guest runs as
//! an ordinary user whoever runs the tests: busybox drops privileges when not root, and so
//! takes another path as root.

/// The guest's `--user-ids` in every snapshot run.
const USER_IDS: &str = "1000:1000";

mod common;

use nix::sys::signal::Signal;

#[test]
fn reports_match_their_snapshots() {
    for case in corpora::CASES.iter().filter(|c| c.snapshot) {
        let (observed, report, stderr) =
            common::simulated(case, &["--report", "json", "--user-ids", USER_IDS]);
        assert!(
            !report.is_empty(),
            "{}: no report; stderr: {stderr}",
            case.name
        );
        let json: serde_json::Value = serde_json::from_str(&report).unwrap();
        let status = match (
            json["exit"]["code"].as_i64(),
            json["exit"]["signal"].as_str(),
        ) {
            (Some(code), _) => code as i32,
            (None, Some(signal)) => 128 + signal.parse::<Signal>().unwrap() as i32,
            _ => panic!("{}: no exit in the report", case.name),
        };
        assert_eq!(status, observed.status, "{}", case.name);
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!(case.name, json);
        });
    }
}

#[test]
fn the_same_run_gives_byte_identical_reports() {
    for name in ["pread_loop", "sha256sum"] {
        let case = common::case(name);
        for format in ["json", "text"] {
            let (_, first, _) = common::simulated(
                &case,
                &["--report", format, "--seed", "7", "--user-ids", USER_IDS],
            );
            let (_, second, _) = common::simulated(
                &case,
                &["--report", format, "--seed", "7", "--user-ids", USER_IDS],
            );
            assert!(!first.is_empty());
            assert_eq!(first, second, "{name} {format}");
        }
    }
}
