//! The speedup of a program small enough to work out by hand (corpora/programs/
//! getppid_busy.S: 10,000 getppid calls, each after 50 nops), under the `linux` model.

mod common;

#[test]
fn the_report_agrees_with_the_arithmetic() {
    let case = corpora::Case {
        name: "getppid_busy",
        program: "getppid_busy",
        args: &[],
        ..common::case("stat_env")
    };
    let (observed, report, stderr) =
        common::simulated(&case, &["--report", "json", "--cost-model", "linux"]);
    assert_eq!(observed.status, 0, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    let get = |path: &[&str]| path.iter().fold(&r, |v, k| &v[*k]).as_u64().unwrap();

    // Guest: mov; 10,000 x (50 nops, mov, syscall, dec, jnz); mov, xor, syscall.
    let guest = 1 + 10_000 * (50 + 4) + 3;
    let syscalls = 10_001;
    assert_eq!(get(&["guest_instructions"]), guest);
    assert_eq!(get(&["syscalls", "total"]), syscalls);
    // Ring 3: one cycle per instruction, 437 per crossing (Aiken et al.), exit's 1,865
    // cycles of kernel work (the process class's; getppid's is the null call's), and one
    // page fault of 6,101: the first fetch from the code page, a file page that exec leaves
    // to be faulted in (its area is one page, so no page is mapped around it).
    let kernel_work = 1_865 + 6_101;
    let ring3 = guest + syscalls * 437 + kernel_work;
    assert_eq!(get(&["ring3", "cycles"]), ring3);

    // Ring 0, per iteration: the 52 instructions before the syscall, its 4-instruction call
    // sequence, the kernel entry's 4 (pushfq, pop r11, the hypercall, ret), 2 to come back
    // and leave the block, then dec and jnz: 63. A few dozen more run once (start-up, the
    // dispatcher's first exits).
    let translated = get(&["ring0", "translated_instructions"]);
    assert!(
        (10_000 * 63..10_000 * 63 + 100).contains(&translated),
        "{translated}"
    );
    // The call's own instructions (the guest's syscall, its call sequence, the kernel entry
    // and the way back: 10 an iteration) are in the 12-cycle call, which is charged instead.
    let calls = syscalls + get(&["ring0", "extra_instructions", "syscall"]);
    assert!((10_000 * 10..10_000 * 10 + 20).contains(&calls), "{calls}");
    let translated_guest = get(&["ring0", "translation", "guest_instructions_translated"]);
    let ring0 = translated - calls + syscalls * 12 + kernel_work + translated_guest * 2_591;
    assert_eq!(get(&["ring0", "cycles"]), ring0);
    let speedup = r["speedup"].as_f64().unwrap();
    assert_eq!(
        speedup,
        (ring3 as f64 / ring0 as f64 * 10_000.0).round() / 10_000.0
    );
    assert!((5.0..5.5).contains(&speedup), "{speedup}");
}

/// Under a microarchitecture, translated code costs about what it executes beyond the guest's
/// code: the runtime's hypercalls (a `syscall` on every indirect-branch lookup, which LLVM's
/// Zen 4 model prices at 25 cycles) are priced as lookups, not again as instructions.
#[test]
fn translated_code_is_priced_by_its_expansion_under_a_microarchitecture() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args([
            "--cost-model",
            "host",
            "--report",
            "json",
            "--argv0",
            "sort",
        ])
        .arg(corpora::stage().join("busybox"))
        .arg(corpora::stage().join("inputs/numbers.txt"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let r: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    let ring0 = r["ring0"]["translated_instruction_cycles"]
        .as_f64()
        .unwrap();
    let ring3 = r["ring3"]["user_instruction_cycles"].as_f64().unwrap();
    let expansion = r["ring0"]["code_expansion"].as_f64().unwrap();
    assert!(r["ring0"]["translation"]["indirect_lookups"].as_u64() > Some(1000));
    assert!(
        ring0 / ring3 < 1.5 * expansion,
        "{ring0} / {ring3}, expansion {expansion}"
    );
}
