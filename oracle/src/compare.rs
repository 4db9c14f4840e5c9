//! Comparing two runs: exit status, stdout, stderr, the normalized syscall sequence, the
//! files written, and, between two simulated runs, the guest instruction count. The first
//! difference is reported with its context.

use serde::Serialize;

use crate::normalize::{normalize, Normalized, UnknownSyscall};
use crate::observed::{FileChange, Observed};

/// Syscalls shown before a diverging one.
const CONTEXT: usize = 3;
/// Bytes shown around the first differing byte of an output.
const WINDOW: usize = 32;

/// The first difference between two runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The two runs, e.g. ["native", "ring3"].
    pub pair: [String; 2],
    /// What differs: "exit status", "stdout", "stderr", "syscall", "file", "guest instructions".
    pub what: String,
    /// For a syscall, its index in the sequence (from 0); for an output, the byte offset.
    pub index: Option<usize>,
    /// A file's path.
    pub path: Option<String>,
    /// Each side, as the first run saw it and as the second did.
    pub left: String,
    pub right: String,
    /// The syscalls before a diverging one, which both runs made alike.
    pub context: Vec<String>,
}

/// One run, named.
pub struct Named<'a> {
    pub name: &'a str,
    pub observed: &'a Observed,
}

/// The first difference between `a` and `b`, if any.
pub fn compare(a: &Named, b: &Named) -> Option<Divergence> {
    let diverge = |what: &str, left: String, right: String| Divergence {
        pair: [a.name.to_string(), b.name.to_string()],
        what: what.to_string(),
        index: None,
        path: None,
        left,
        right,
        context: Vec::new(),
    };
    let (x, y) = (a.observed, b.observed);
    if x.status != y.status {
        return Some(diverge(
            "exit status",
            x.status.to_string(),
            y.status.to_string(),
        ));
    }
    for (what, left, right) in [
        ("stdout", &x.stdout, &y.stdout),
        ("stderr", &x.stderr, &y.stderr),
    ] {
        if let Some(offset) = first_difference(left, right) {
            return Some(Divergence {
                index: Some(offset),
                ..diverge(what, window(left, offset), window(right, offset))
            });
        }
    }
    if let Some(divergence) = compare_syscalls(x, y) {
        return Some(Divergence {
            pair: [a.name.to_string(), b.name.to_string()],
            ..divergence
        });
    }
    let paths: std::collections::BTreeSet<&String> = x.files.keys().chain(y.files.keys()).collect();
    for path in paths {
        let (left, right) = (x.files.get(path), y.files.get(path));
        if left != right {
            return Some(Divergence {
                path: Some(path.clone()),
                ..diverge("file", describe_file(left), describe_file(right))
            });
        }
    }
    if let (Some(left), Some(right)) = (x.guest_instructions, y.guest_instructions) {
        if left != right {
            return Some(diverge(
                "guest instructions",
                left.to_string(),
                right.to_string(),
            ));
        }
    }
    None
}

fn compare_syscalls(x: &Observed, y: &Observed) -> Option<Divergence> {
    let longest = x.syscalls.len().max(y.syscalls.len());
    let mut context: Vec<String> = Vec::new();
    for index in 0..longest {
        let left = x.syscalls.get(index).map(normalize);
        let right = y.syscalls.get(index).map(normalize);
        if left != right || matches!(left, Some(Err(_))) {
            let show = |side: Option<Result<Normalized, UnknownSyscall>>, run: &Observed| match side
            {
                Some(Ok(call)) => call.to_string(),
                Some(Err(unknown)) => unknown.to_string(),
                None => format!("(none: {} syscalls in all)", run.syscalls.len()),
            };
            let start = context.len().saturating_sub(CONTEXT);
            return Some(Divergence {
                pair: Default::default(),
                what: "syscall".into(),
                index: Some(index),
                path: None,
                left: show(left, x),
                right: show(right, y),
                context: context.split_off(start),
            });
        }
        if let Some(Ok(call)) = left {
            context.push(format!("#{index} {call}"));
        }
    }
    None
}

fn describe_file(change: Option<&FileChange>) -> String {
    match change {
        None => "not written".into(),
        Some(FileChange::Removed) => "removed".into(),
        Some(FileChange::Directory) => "a directory".into(),
        Some(FileChange::Symlink(target)) => format!("a symbolic link to {target}"),
        Some(FileChange::Written(bytes)) => {
            format!("{} bytes, starting {}", bytes.len(), window(bytes, 0))
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// The bytes around `offset`, escaped, with the total length.
fn window(bytes: &[u8], offset: usize) -> String {
    let start = offset.saturating_sub(WINDOW / 2);
    let end = (offset + WINDOW / 2).min(bytes.len());
    let shown: String = bytes
        .get(start..end)
        .unwrap_or_default()
        .escape_ascii()
        .to_string();
    format!("{} bytes: …\"{shown}\"…", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::Status;
    use sim::accounting::SyscallRecord;

    fn run(syscalls: &[(u64, u64)]) -> Observed {
        Observed {
            status: Status::Exited(0),
            stdout: b"hello\n".to_vec(),
            stderr: Vec::new(),
            syscalls: syscalls
                .iter()
                .map(|&(nr, ret)| SyscallRecord {
                    tid: 1000,
                    nr,
                    args: [1, 0x1000, 6, 0, 0, 0],
                    ret,
                })
                .collect(),
            files: Default::default(),
            guest_instructions: Some(100),
            tree: Default::default(),
        }
    }

    fn named<'a>(name: &'a str, observed: &'a Observed) -> Named<'a> {
        Named { name, observed }
    }

    #[test]
    fn identical_runs_agree() {
        let a = run(&[(1, 6), (231, 0)]);
        assert_eq!(compare(&named("a", &a), &named("b", &a.clone())), None);
    }

    #[test]
    fn the_first_diverging_syscall_is_reported_with_what_came_before() {
        let a = run(&[(39, 5), (1, 6), (1, 6), (231, 0)]);
        let b = run(&[(39, 6), (1, 6), (1, 5), (231, 0)]);
        let d = compare(&named("native", &a), &named("ring3", &b)).unwrap();
        assert_eq!(d.what, "syscall");
        assert_eq!(d.index, Some(2));
        assert_eq!(d.left, "write(0x1, <pointer>, 0x6) = 0x6");
        assert_eq!(d.right, "write(0x1, <pointer>, 0x6) = 0x5");
        assert_eq!(d.context.len(), 2);
        assert!(d.context[0].starts_with("#0 getpid"), "{:?}", d.context);
    }

    #[test]
    fn a_missing_syscall_diverges() {
        let a = run(&[(1, 6), (231, 0)]);
        let b = run(&[(1, 6)]);
        let d = compare(&named("a", &a), &named("b", &b)).unwrap();
        assert_eq!(
            (d.index, d.right.as_str()),
            (Some(1), "(none: 1 syscalls in all)")
        );
    }

    #[test]
    fn status_outputs_files_and_counts_each_diverge() {
        let a = run(&[]);
        let mut b = a.clone();
        b.status = Status::Signaled("SIGSEGV".into());
        assert_eq!(
            compare(&named("a", &a), &named("b", &b)).unwrap().what,
            "exit status"
        );
        let mut b = a.clone();
        b.stdout = b"help\n".to_vec();
        let d = compare(&named("a", &a), &named("b", &b)).unwrap();
        assert_eq!((d.what.as_str(), d.index), ("stdout", Some(3)));
        let mut b = a.clone();
        b.files
            .insert("out.txt".into(), FileChange::Written(b"x".to_vec()));
        let d = compare(&named("a", &a), &named("b", &b)).unwrap();
        assert_eq!(
            (d.what.as_str(), d.path.as_deref()),
            ("file", Some("out.txt"))
        );
        let mut b = a.clone();
        b.guest_instructions = Some(101);
        assert_eq!(
            compare(&named("a", &a), &named("b", &b)).unwrap().what,
            "guest instructions"
        );
    }
}
