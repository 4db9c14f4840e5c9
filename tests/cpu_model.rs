//! The simulated CPU follows the vendor it is told to, whatever the host's: CPUID, and the
//! behaviours in which Intel and AMD differ, checked for both vendors on any host, at
//! ring 3 and translated at ring 0.

mod common;

use std::process::Command;

/// Runs `program args` under `simulate --cpu-vendor vendor --mode mode`; returns the exit
/// status, stdout, and the last traced syscall.
fn run(vendor: &str, mode: &str, program: &str, args: &[&str]) -> (i32, String, String) {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(common::SIMULATE)
        .args([
            "--cpu-vendor",
            vendor,
            "--mode",
            mode,
            "--report-file",
            "/dev/null",
        ])
        .arg("--trace-syscalls")
        .arg(trace.path())
        .arg(corpora::stage().join(program))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    let syscalls = std::fs::read_to_string(trace.path()).unwrap();
    (
        common::status_of(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        syscalls.lines().last().unwrap_or_default().to_string(),
    )
}

#[test]
fn cpuid_names_the_chosen_vendor() {
    for (vendor, id, brand) in [
        (
            "intel",
            "GenuineIntel",
            "ringsim virtual CPU (Intel, Denverton core)",
        ),
        (
            "amd",
            "AuthenticAMD",
            "ringsim virtual CPU (AMD, Zen 2 class)",
        ),
    ] {
        for mode in ["ring3", "ring0"] {
            let (status, stdout, _) = run(vendor, mode, "cpuid_probe", &[]);
            assert_eq!(status, 0, "{vendor} {mode}");
            assert_eq!(
                stdout,
                format!("vendor={id}\nbrand={brand}\nsse4.2=1 avx=0\ntsc advances=1\n"),
                "{vendor} {mode}"
            );
        }
    }
}

/// `sysenter` in 64-bit mode: #UD on AMD; on Intel, Linux's 32-bit entry makes the i386
/// syscall in EAX (here 0, restart_syscall: EINTR) and returns into 32-bit code that is
/// not there.
#[test]
fn sysenter_follows_the_vendor() {
    let restart_syscall_eintr = r#""nr":219"#;
    for mode in ["ring3", "ring0"] {
        let (status, _, last) = run("intel", mode, "adversarial/legacy_entries", &["sysenter"]);
        assert_eq!(status, 128 + 11, "intel {mode}");
        assert!(last.contains(restart_syscall_eintr), "intel {mode}: {last}");
        assert!(
            last.ends_with(r#""ret":18446744073709551612}"#),
            "EINTR: {last}"
        );
        let (status, _, last) = run("amd", mode, "adversarial/legacy_entries", &["sysenter"]);
        assert_eq!(status, 128 + 4, "amd {mode}");
        assert!(!last.contains(restart_syscall_eintr), "amd {mode}: {last}");
    }
}

/// Programs that read the vendor's own cache leaves run alike on both: static glibc sizes
/// its string functions from them.
#[test]
fn glibc_programs_run_on_both_vendors() {
    for vendor in ["intel", "amd"] {
        for mode in ["ring3", "ring0"] {
            let (status, stdout, _) = run(vendor, mode, "hello_pie", &["one"]);
            assert_eq!(status, 0, "{vendor} {mode}");
            assert!(!stdout.is_empty(), "{vendor} {mode}");
        }
    }
}

/// The TSC the guest reads is the virtual clock's, not the host's: two runs read the same
/// small values, in order, and RDTSCP's TSC_AUX names CPU 0.
#[test]
fn rdtsc_and_rdtscp_read_the_virtual_clock() {
    for mode in ["ring3", "ring0"] {
        let (status, first, _) = run("intel", mode, "cpu_leaks", &["tsc"]);
        assert_eq!(status, 0, "{mode}");
        let (_, second, _) = run("intel", mode, "cpu_leaks", &["tsc"]);
        let values: Vec<u64> = first
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        let [rdtsc, again, rdtscp, aux] = values[..] else {
            panic!("{mode}: {first}");
        };
        assert!(rdtsc < again && again < rdtscp, "{mode}: in order: {first}");
        // A few tens of thousands of instructions into the run: a host TSC reads far more.
        assert!(rdtscp < 10_000_000, "{mode}: virtual: {first}");
        assert_eq!(aux, 0, "{mode}: TSC_AUX");
        assert_eq!(first, second, "{mode}: reproducible");
    }
}

/// RDRAND and RDSEED would hand the guest the host's entropy: the CPU model lacks them, so
/// they raise #UD, at ring 3 (where Unicorn's core would run them) and at ring 0.
#[test]
fn rdrand_and_rdseed_are_lacking() {
    for vendor in ["intel", "amd"] {
        for mode in ["ring3", "ring0"] {
            for what in ["rdrand", "rdseed"] {
                let (status, stdout, _) = run(vendor, mode, "cpu_leaks", &[what]);
                assert_eq!(status, 128 + 4, "{vendor} {mode} {what}: {stdout}");
            }
        }
    }
}
