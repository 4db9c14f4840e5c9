//! The adversarial corpus: programs that try to get out of the ring-0 sandbox (read or write
//! the kernel half, jump into it, pivot the stack, run privileged instructions, set IOPL,
//! plant a syscall after translation, use the legacy entries). Each must end exactly as it
//! does natively, at ring 3 and translated at ring 0, with no access reaching the kernel half.

mod common;

use std::process::Command;

fn run(command: &mut Command) -> (i32, Vec<u8>) {
    let output = command.env_clear().output().unwrap();
    (common::status_of(&output), output.stdout)
}

#[test]
fn every_way_out_ends_as_it_does_natively() {
    let programs = corpora::stage().join("adversarial");
    let mut failures = Vec::new();
    for &(program, argument) in corpora::ADVERSARIAL {
        let path = programs.join(program);
        let args: Vec<&str> = if argument.is_empty() {
            vec![]
        } else {
            vec![argument]
        };
        let native = run(Command::new(&path).args(&args));
        let ring3 = run(Command::new(common::SIMULATE)
            .args(common::HOST_CPU)
            .args(["--mode", "ring3", "--report-file", "/dev/null"])
            .arg(&path)
            .args(&args));
        let report = tempfile::NamedTempFile::new().unwrap();
        let ring0 = run(Command::new(common::SIMULATE)
            .args(common::HOST_CPU)
            .args(["--mode", "ring0", "--report", "json", "--report-file"])
            .arg(report.path())
            .arg(&path)
            .args(&args));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
        let escaped = &json["ring0"]["kernel_half_accesses"];
        if ring3 != native || ring0 != native || escaped != 0 {
            failures.push(format!(
                "{program} {argument}: native {}, ring3 {}, ring0 {}, kernel-half accesses {escaped}",
                native.0, ring3.0, ring0.0
            ));
        }
        if let Err(e) = common::extra_instructions_add_up(&json) {
            failures.push(format!("{program} {argument}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
