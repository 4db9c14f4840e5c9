//! Dynamically linked programs, the host's own (Debian's coreutils, grep, sed, mawk, gzip,
//! tar, findutils, dash, python3): loaded through their interpreter, ld.so, at ring 3 and
//! translated at ring 0, each prints what it prints natively and exits as natively, with
//! the same guest instruction count in both modes.

mod common;

use std::path::Path;
use std::process::Command;

use common::{status_of, SIMULATE};

/// The program's argv (an absolute path first), run in a directory holding `in.txt` (three
/// words), `nums.txt` (1 to 2000), `fixed/` (two small files), all dated 2000-01-01 so
/// that `ls -l` shows the year both natively and on the virtual clock, and `fixed.tar`.
const PROGRAMS: &[&[&str]] = &[
    &["/bin/true"],
    &["/bin/echo", "hello", "world"],
    &["/usr/bin/sort", "in.txt"],
    &["/usr/bin/sha256sum", "nums.txt"],
    &["/bin/grep", "-E", "^1[0-9]+5$", "nums.txt"],
    &["/bin/sed", "-n", r"s/^\(1.\)3$/x\1/p", "nums.txt"],
    &["/usr/bin/awk", "{ s += $1 } END { print s }", "nums.txt"],
    &["/bin/gzip", "-9", "-c", "nums.txt"],
    &["/usr/bin/find", ".", "-name", "*.txt"],
    &["/bin/ls", "."],
    &["/bin/ls", "-l", "fixed"],
    &["/bin/tar", "cf", "-", "fixed"],
    &["/bin/tar", "tvf", "fixed.tar"],
    &[
        "/bin/dash",
        "-c",
        "/bin/echo hi | /bin/cat; echo $((2 + 3))",
    ],
];

/// Python: about 50 shared objects and millions of loader instructions, where installed.
const PYTHON: &[&str] = &["/usr/bin/python3", "-c", "print(sum(range(1000)))"];

/// Exit status, stdout and stderr of `argv` run directly (`None`) or under `simulate` in
/// that mode, and the report when simulated.
fn run(dir: &Path, argv: &[&str], mode: Option<&str>) -> (i32, String, String, String) {
    // Outside `dir`, which `ls` and `find` list.
    let reports = tempfile::tempdir().unwrap();
    let report = reports.path().join("report.json");
    let mut command = match mode {
        None => Command::new(argv[0]),
        Some(mode) => {
            let mut command = Command::new(SIMULATE);
            command
                .args(["--mode", mode, "--report", "json", "--report-file"])
                .arg(&report)
                .arg(argv[0]);
            command
        }
    };
    let output = command
        .args(&argv[1..])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let report = std::fs::read_to_string(&report).unwrap_or_default();
    (
        status_of(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    )
}

fn guest_instructions(report: &str) -> u64 {
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    report["guest_instructions"].as_u64().unwrap()
}

/// A directory with the inputs `PROGRAMS` name.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "b\na\nc\n").unwrap();
    let numbers: String = (1..=2000).map(|n| format!("{n}\n")).collect();
    std::fs::write(dir.path().join("nums.txt"), numbers).unwrap();
    let fixed = dir.path().join("fixed");
    std::fs::create_dir(&fixed).unwrap();
    std::fs::write(fixed.join("a.txt"), "hello\n").unwrap();
    std::fs::write(fixed.join("b.txt"), "world\n").unwrap();
    let y2k = std::time::UNIX_EPOCH + std::time::Duration::from_secs(946_684_800);
    for file in ["in.txt", "nums.txt", "fixed/a.txt", "fixed/b.txt", "fixed"] {
        let file = std::fs::File::open(dir.path().join(file)).unwrap();
        file.set_modified(y2k).unwrap();
    }
    let archive = Command::new("/bin/tar")
        .args(["cf", "fixed.tar", "fixed"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(archive.success());
    dir
}

fn agree(argv: &[&str]) {
    let dir = fixture();
    let (status, stdout, _, _) = run(dir.path(), argv, None);
    let mut counts = Vec::new();
    for mode in ["ring3", "ring0"] {
        let (got, out, stderr, report) = run(dir.path(), argv, Some(mode));
        assert_eq!(
            (got, &out),
            (status, &stdout),
            "{argv:?} at {mode}: {stderr}"
        );
        counts.push(guest_instructions(&report));
    }
    assert_eq!(
        counts[0], counts[1],
        "{argv:?}: instruction counts differ between modes"
    );
}

#[test]
fn dynamic_programs_behave_as_natively_in_both_modes() {
    for argv in PROGRAMS {
        agree(argv);
    }
}

#[test]
fn python_starts_and_computes_as_natively() {
    if !Path::new(PYTHON[0]).exists() {
        eprintln!("{} is not installed: skipped", PYTHON[0]);
        return;
    }
    agree(PYTHON);
}

/// The host's dynamic `cat` naming an interpreter at `/ringsim-ld.so`, which only `root`
/// has (a copy of the host's ld.so), and `root/etc/ringsim-marker`.
fn sysroot_fixture(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/lib64/ld-linux-x86-64.so.2", root.join("ringsim-ld.so")).unwrap();
    std::fs::write(root.join("etc/ringsim-marker"), "inside the sysroot\n").unwrap();
    let cat = common::with_interpreter("/bin/cat", b"/ringsim-ld.so");
    std::fs::write(dir.join("cat"), cat).unwrap();
    root
}

/// `--sysroot`: the interpreter and the program's absolute paths are looked up under it.
#[test]
fn a_sysroot_provides_the_interpreter_and_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = sysroot_fixture(dir.path());
    let simulate = |flags: &[&str]| {
        Command::new(SIMULATE)
            .args(flags)
            .args(["--report-file", "/dev/null", "./cat", "/etc/ringsim-marker"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let without = simulate(&[]);
    assert_eq!(status_of(&without), 127);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("its interpreter /ringsim-ld.so cannot be loaded"),
        "{stderr}"
    );
    for mode in ["ring3", "ring0"] {
        let root = root.to_str().unwrap();
        let with = simulate(&["--mode", mode, "--sysroot", root]);
        let stderr = String::from_utf8_lossy(&with.stderr);
        assert_eq!(status_of(&with), 0, "{stderr}");
        assert_eq!(with.stdout, b"inside the sysroot\n");
    }
    let missing = simulate(&["--sysroot", "no-such-dir"]);
    assert_eq!(status_of(&missing), 125);
    let checked = simulate(&["--check", "--sysroot", root.to_str().unwrap()]);
    assert_eq!(status_of(&checked), 125);
}

/// `/proc/self/maps` as Linux writes it: each area with its file, offset, device and inode
/// (the program, ld.so and libc by their paths), and the heap and stack named.
#[test]
fn proc_self_maps_names_the_program_its_libraries_heap_and_stack() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(SIMULATE)
        .args(["--report-file", "/dev/null", "/bin/cat", "/proc/self/maps"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(status_of(&output), 0);
    let maps = String::from_utf8(output.stdout).unwrap();
    let named = |suffix: &str| maps.lines().filter(|l| l.ends_with(suffix)).count();
    assert!(named("/cat") >= 3, "{maps}");
    assert!(named("/libc.so.6") >= 4, "{maps}");
    assert!(named("/ld-linux-x86-64.so.2") >= 3, "{maps}");
    assert_eq!((named(" [heap]"), named(" [stack]")), (1, 1), "{maps}");
    let cat = std::fs::metadata(std::fs::canonicalize("/bin/cat").unwrap()).unwrap();
    let first = maps.lines().next().unwrap();
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fields[0], "555555554000-555555556000", "{maps}");
    assert_eq!((fields[1], fields[2]), ("r--p", "00000000"));
    assert_eq!(
        fields[4],
        std::os::unix::fs::MetadataExt::ino(&cat).to_string()
    );
    // The name begins at column 73, as Linux pads it.
    assert_eq!(first.find('/'), Some(73), "{first:?}");
}

/// `--check` follows dynamic programs: ld.so's loading, libc's start-up and the program
/// agree natively, at ring 3 and at ring 0 (with glibc's CPU features masked natively);
/// Python's start-up too, where it is installed.
#[test]
fn check_agrees_on_dynamic_programs() {
    let checked: &[&[&str]] = &[
        &["/bin/true"],
        &["/usr/bin/sort", "in.txt"],
        &["/usr/bin/sha256sum", "nums.txt"],
        &["/usr/bin/awk", "END { print NR }", "nums.txt"],
        // libselinux reads /proc/filesystems: the machine's, left out of the comparison.
        &["/bin/sed", "-n", "5p", "nums.txt"],
        &["/bin/ls", "-l", "fixed"],
        &["/bin/grep", "-E", "^1[0-9]+5$", "nums.txt"],
        // Their outputs hold the files' times, which --check's copies keep.
        &["/bin/gzip", "-9", "-c", "nums.txt"],
        &["/bin/tar", "cf", "-", "fixed"],
        &["/bin/tar", "tvf", "fixed.tar"],
        &["/usr/bin/find", ".", "-name", "*.txt"],
        &["/bin/dash", "-c", "/bin/echo hi | /bin/cat"],
    ];
    let dir = fixture();
    let python = Path::new(PYTHON[0]).exists().then_some(PYTHON);
    for argv in checked.iter().chain(python.as_ref()) {
        let output = Command::new(SIMULATE)
            .args(["--check", "--clear-env", "--env", "PATH=/usr/bin:/bin"])
            .args(*argv)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stderr);
        assert_eq!(status_of(&output), 0, "{argv:?}: {report}");
    }
}

/// A program whose library is missing, cut short, or built for another machine ends as it
/// does natively: ld.so's own message and status 127, or SIGBUS where ld.so touches the
/// mapped pages past the end of a short library.
#[test]
fn library_errors_end_as_natively() {
    let stage = corpora::stage();
    let library = std::fs::read(stage.join("libgreet_a.so")).unwrap();
    let mut arm64 = library[..64].to_vec();
    arm64[18..20].copy_from_slice(&183u16.to_le_bytes());
    let cases: &[(&str, Option<&[u8]>, bool)] = &[
        ("missing", None, true),
        ("cut short", Some(&library[..1000]), false),
        ("for another machine", Some(&arm64), true),
    ];
    for &(what, bytes, same_stderr) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(stage.join("uses_greet"), dir.path().join("uses_greet")).unwrap();
        if let Some(bytes) = bytes {
            std::fs::write(dir.path().join("libgreet_a.so"), bytes).unwrap();
        }
        let argv = ["./uses_greet"];
        let (status, stdout, stderr, _) = run(dir.path(), &argv, None);
        assert!(
            status == 127 || status == 128 + 7,
            "{what}: native status {status}"
        );
        for mode in ["ring3", "ring0"] {
            let (got, out, err, _) = run(dir.path(), &argv, Some(mode));
            assert_eq!((got, &out), (status, &stdout), "{what} at {mode}: {err}");
            if same_stderr {
                assert_eq!(err, stderr, "{what} at {mode}");
            }
        }
    }
}
