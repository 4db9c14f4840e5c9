//! A bug in ringsim that panics inside one of Unicorn's hooks must not abort the process
//! (a panic cannot unwind through Unicorn's C frames: status 134): it ends the run with
//! status 125 and one line naming it, in both modes.

mod common;

use std::process::Command;

#[test]
fn a_panic_in_a_hook_is_one_line_and_status_125() {
    for mode in ["ring3", "ring0"] {
        let output = Command::new(common::SIMULATE)
            .args(["--mode", mode, "--plant-bug", "panic-in-syscall-hook"])
            .arg(corpora::stage().join("getppid_loop"))
            .arg("10")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(125), "{mode}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{mode}: {stderr}");
        assert!(
            stderr.starts_with("simulate: internal error (a bug in ringsim): planted"),
            "{mode}: {stderr}"
        );
    }
}
