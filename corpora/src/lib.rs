//! The corpus: programs to run natively and under `simulate`, and where their binaries are.
//!
//! `make -C corpora` (called by `scripts/setup`) builds the C programs in `programs/` as
//! static executables and those in `dynamic/` (with two libraries) against the host's glibc
//! and libstdc++, fetches Debian's busybox-static, and writes deterministic inputs.
//! Nothing built is committed. Tests run everything from a staging directory of fixed
//! length, [`stage`], because a program's own path reaches its instruction count (static
//! glibc reads /proc/self/exe at start-up), and snapshots must not depend on the checkout path.

use std::path::{Path, PathBuf};

/// Where tests run the corpus from: `/tmp/ringsim-corpus-` and 16 hex digits naming the
/// checkout and the user, so that checkouts on one machine do not share it, nor do root and
/// an ordinary user testing one checkout (the other's copy is not theirs to write), while the
/// path keeps one length and one shape (glibc's start-up walks it).
pub fn stage_dir() -> PathBuf {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    // SipHash with fixed keys: the same checkout gives the same name in every test binary.
    let mut hasher = std::hash::DefaultHasher::new();
    build_dir().hash(&mut hasher);
    // /proc/self belongs to the process's user: its uid with no dependency on libc.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
        .hash(&mut hasher);
    PathBuf::from(format!("/tmp/ringsim-corpus-{:016x}", hasher.finish()))
}

/// One run of a corpus program.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The test's and the snapshot's name.
    pub name: &'static str,
    /// The executable, relative to the stage.
    pub program: &'static str,
    /// argv[0], for busybox applets.
    pub argv0: Option<&'static str>,
    pub args: &'static [&'static str],
    /// Files the run writes, compared with the native run's.
    pub writes: &'static [&'static str],
    /// Whether its JSON report is an insta snapshot (it must not depend on the host).
    pub snapshot: bool,
    /// Whether the corpus bench measures it: not for probes of a few instructions, whose
    /// code expansion is all exit stub and would swamp the corpus's mean.
    pub workload: bool,
    /// Other staged files or directories the run needs beside the program (a program it
    /// execs, a script), linked into its working directory.
    pub companions: &'static [&'static str],
}

const fn case(name: &'static str, program: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        program,
        argv0: None,
        args,
        writes: &[],
        snapshot: true,
        workload: true,
        companions: &[],
    }
}

const fn applet(name: &'static str, applet: &'static str, args: &'static [&'static str]) -> Case {
    Case {
        name,
        program: "busybox",
        argv0: Some(applet),
        args,
        writes: &[],
        snapshot: true,
        workload: true,
        companions: &[],
    }
}

const fn probe(name: &'static str) -> Case {
    Case {
        workload: false,
        ..case(name, name, &[])
    }
}

/// Every corpus run that must behave exactly as it does natively.
pub const CASES: &[Case] = &[
    case("getppid_loop", "getppid_loop", &["2000"]),
    case("write_loop", "write_loop", &["500"]),
    case("pread_loop", "pread_loop", &["500", "inputs/data.bin"]),
    case("crossing", "crossing", &["20", "1000"]),
    case("yield_loop", "yield_loop", &["1000"]),
    case("cpu_bound", "cpu_bound", &["200000"]),
    Case {
        writes: &["copy.txt"],
        ..case("file_copy", "file_copy", &["inputs/text.txt", "copy.txt"])
    },
    case("hello_pie", "hello_pie", &["one", "two"]),
    case("jit", "jit", &[]),
    // Translator edge cases, found in review: each exits with a status that shows it right.
    probe("jump_table"),
    probe("popfw"),
    probe("prefixed_syscall"),
    // Code that changes under its translations (issue 8): on frames that moved, in the entry
    // block, just ahead of the store that changes it, by a store across a page boundary, and
    // with the pages before it mapped again.
    probe("smc_remap"),
    probe("smc_entry"),
    probe("smc_ahead"),
    probe("smc_cross"),
    probe("remap_beside_code"),
    // A selector loaded into FS sets its base: arch_prctl must read it from the CPU.
    probe("fs_selector"),
    // mremap over areas Linux merges (an mprotect undone, mappings side by side).
    probe("mremap_merged"),
    // Everything after the program is its own: simulate's options and `--` included (issue 8 F).
    Case {
        workload: false,
        ..case(
            "argv_passthrough",
            "print_args",
            &[
                "--help",
                "-h",
                "--version",
                "-V",
                "--",
                "--mode",
                "ring3",
                "--check",
            ],
        )
    },
    // ld -N output: no PT_LOAD holds the program headers; Linux runs it (issue 8 E).
    probe("omagic"),
    // chdir and umask 0777 must reach the guest's own files, not simulate's (issue 8 C). Its
    // getcwd copies the scratch directory's path, whose length varies: compared, not snapshot.
    Case {
        writes: &["sub/note"],
        snapshot: false,
        ..probe("chdir_umask")
    },
    // Syscall arguments at the edges of 64-bit arithmetic (sleeps for ever, lengths near
    // 2^64, a 24 GiB file mapping): the simulator must answer each as Linux does, never
    // abort. Compared, not snapshot: what they test is the kernel's answers.
    Case {
        snapshot: false,
        workload: false,
        ..case("overflow_nanosleep", "guest_overflow", &["nanosleep"])
    },
    Case {
        snapshot: false,
        workload: false,
        ..case(
            "overflow_clock_nanosleep",
            "guest_overflow",
            &["clock_nanosleep"],
        )
    },
    Case {
        snapshot: false,
        workload: false,
        ..case("overflow_lengths", "guest_overflow", &["lengths"])
    },
    Case {
        snapshot: false,
        workload: false,
        ..case("overflow_file_mapping", "guest_overflow", &["file_mapping"])
    },
    // Prints the host's uname, uid-dependent facts and descriptor numbers: compared, not snapshot.
    Case {
        snapshot: false,
        ..case("stat_env", "stat_env", &["x"])
    },
    // Sets its ids to its own and to others: the output is the host user's, compared, not
    // snapshot.
    Case {
        snapshot: false,
        ..probe("ids")
    },
    applet("sha256sum", "sha256sum", &["inputs/data.bin"]),
    applet("md5sum", "md5sum", &["inputs/data.bin"]),
    applet("sort", "sort", &["-n", "inputs/numbers.txt"]),
    applet("gzip", "gzip", &["-c", "inputs/numbers.txt"]),
    applet("gunzip", "gunzip", &["-c", "inputs/numbers.txt.gz"]),
    applet("bzip2", "bzip2", &["-c", "inputs/text.txt"]),
    applet("bunzip2", "bunzip2", &["-c", "inputs/text.txt.bz2"]),
    applet("wc", "wc", &["inputs/text.txt"]),
    applet(
        "sed",
        "sed",
        &["-e", "s/ring/RING/g", "-e", "/trap/d", "inputs/text.txt"],
    ),
    applet(
        "awk",
        "awk",
        &[
            "-F:",
            "{ n[$1]++ } END { for (k in n) s += n[k] * k; print s }",
            "inputs/text.txt",
        ],
    ),
    applet("uniq", "uniq", &["-c", "inputs/text.txt"]),
    applet("cut", "cut", &["-d:", "-f2", "inputs/text.txt"]),
    applet("xxd", "xxd", &["-l", "4096", "inputs/data.bin"]),
    Case {
        writes: &["dd.out"],
        ..applet(
            "dd",
            "dd",
            &["if=inputs/data.bin", "of=dd.out", "bs=1", "count=3000"],
        )
    },
    applet("tar_list", "tar", &["-tvf", "inputs/tree.tar"]),
    // Numeric owners: as root, tar otherwise reads the host's /etc/passwd and /etc/group to
    // map the archive's owner names, and their size reached the snapshot.
    Case {
        writes: &["tree/a.txt", "tree/sub/b.bin", "tree/sub/c.txt"],
        // -o: not the archive's owners, which only root may give (chown's result would
        // depend on the host user).
        ..applet("tar_extract", "tar", &["-xof", "inputs/tree.tar"])
    },
    // Directory order comes from the host file system: compared, not snapshot.
    Case {
        snapshot: false,
        ..applet("tar_create", "tar", &["-cf", "-", "inputs/tree"])
    },
    // Processes and threads (issue 9): the essay's microbenchmarks, threads with a mutex, a
    // condition variable and a barrier, signal handlers, a bounded fork bomb, vfork and kill.
    case("abi_call", "abi_call", &["2000"]),
    case("yield_threads", "yield_threads", &["200"]),
    case("yield_procs", "yield_procs", &["200"]),
    case("psr", "psr", &["200"]),
    // A connected AF_UNIX stream pair between a parent and its child, and its edges.
    case("socketpair_echo", "socketpair_echo", &["200"]),
    // Our own client and server, over loopback TCP (IPv4 and IPv6) and AF_UNIX (a socket
    // file and an autobound abstract name): request/response round trips.
    case("net_echo_tcp", "net_echo", &["tcp", "2000"]),
    case("net_echo_tcp6", "net_echo", &["tcp6", "300"]),
    case("net_echo_unix", "net_echo", &["unix", "2000"]),
    case("net_echo_abstract", "net_echo", &["abstract", "300"]),
    // Datagrams, UDP and AF_UNIX: whole messages, names, truncation, refusals, queue limits,
    // and round trips with a child.
    case("net_datagrams", "net_datagrams", &["300"]),
    // Linux's answers at the edges of bind, listen, connect, accept and their options.
    case("net_edges", "net_edges", &[]),
    // And in their corners: UDP disconnects and shared ports, receives of SIZE_MAX and of
    // none, one-byte IP options, SIOCOUTQ, a non-blocking connect to a full queue.
    case("net_corners", "net_corners", &[]),
    // eventfd counters, their edges, and a read in a child that a write wakes.
    case("eventfd_counts", "eventfd_counts", &[]),
    // epoll, level-triggered, over a pipe, a socketpair and eventfds.
    case("epoll_events", "epoll_events", &[]),
    // How a TCP connection ends: FIN, RST, SHUT_RD, a refused connect; poll at each step.
    case("tcp_close", "tcp_close", &[]),
    // Descriptors passed over AF_UNIX (SCM_RIGHTS): streams, datagrams, another process.
    case("fd_passing", "fd_passing", &[]),
    // timerfd on the virtual clock: one-shot, periodic, through poll and epoll, and errors.
    case("timerfd_ticks", "timerfd_ticks", &[]),
    // AF_UNIX SOCK_SEQPACKET: messages kept whole on a connection, and round trips.
    case("seqpacket", "seqpacket", &["300"]),
    // signalfd: signals read as records, blocking, through poll and epoll, across fork.
    case("signalfd_reads", "signalfd_reads", &[]),
    // epoll, edge-triggered: reported on what arrives or leaves, not while nothing changes.
    case("epoll_edges", "epoll_edges", &[]),
    // Wake-ups another thread causes: epoll_ctl for a waiting epoll_wait, shutdown for a read.
    case("event_wakeups", "event_wakeups", &[]),
    Case {
        companions: &["tiny_true"],
        ..case("create_proc", "create_proc", &["20"])
    },
    case("pthread_workers", "pthread_workers", &["2000"]),
    // The crossing curve's program (`experiment crossing-curve`).
    case("work_between", "work_between", &["20", "50"]),
    case("work_between_unrolled", "work_between", &["0", "128"]),
    // Futex waits that time out on the virtual clock, and one woken in time.
    probe("timed_wait"),
    // A null pointer read after a handler, a fork and a wait: still a plain SIGSEGV.
    probe("fault_after_fork"),
    // A fork of 32 MiB: each side's stores and the kernel's copy only what they write.
    case("fork_big", "fork_big", &["32"]),
    // Copy-on-write faults inside a rep instruction: exact counts.
    probe("cow_rep"),
    // A signal to a task woken but not yet running again ends its wait.
    probe("signal_while_woken"),
    // RLIMIT_NOFILE lowered and raised: where descriptors run out, and a child's.
    probe("open_files_limit"),
    // A child's chdir and umask leave its parent's as they were.
    probe("fs_per_process"),
    // select and pselect on pipes: a timeout, a pipe a child fills, end of file.
    probe("select_pipe"),
    // waitid: WNOHANG, WNOWAIT, reaping waits, a child killed.
    Case {
        ..probe("waitid_child")
    },
    case("signal_handlers", "signal_handlers", &[]),
    // Timers and signals reaching tasks that compute without syscalls.
    probe("interrupts"),
    // Dynamically linked (the host's glibc, so no snapshot): dlopen of two libraries that
    // ld.so maps at one address in turn, and C++ exceptions and static constructors.
    Case {
        snapshot: false,
        companions: &["libgreet_a.so", "libgreet_b.so"],
        ..probe("dlopen_greet")
    },
    Case {
        snapshot: false,
        ..probe("cxx_exceptions")
    },
    // MAP_SHARED | MAP_ANONYMOUS memory is shared with forked children, before and after an
    // mprotect; a private mapping is not.
    probe("shared_anon"),
    // MADV_DONTNEED: a private file page reads its file again, anonymous memory zeros,
    // shared anonymous memory what was written.
    probe("dontneed"),
    // A thread ends holding a robust mutex: its waiter gets EOWNERDEAD.
    probe("robust_mutex"),
    // setpgid, setsid, getpgid, getsid and kill of a group, with Linux's errors.
    probe("process_groups"),
    // A vfork child's writes reach its parent, and posix_spawn reports a failed exec.
    probe("vfork_shared"),
    // Faults delivered to the program's handlers: siginfo, sigcontext, resuming, escaping.
    probe("fault_handlers"),
    // What a handler sees of its signal frames, a fault's included: exactly Linux's.
    probe("signal_frame"),
    // div and idiv at their edges: full double-width dividends, and each #DE at its
    // instruction.
    probe("divides"),
    case("fork_bomb", "fork_bomb", &["16"]),
    Case {
        companions: &["tiny_true"],
        ..probe("vfork_exec")
    },
    // Both processes block on each other's pipe; their alarms end them, natively and on the
    // virtual clock.
    case("deadlock_alarm", "deadlock", &["alarm"]),
    // busybox sh: pipelines, subshells, $(...), && and ||, a here-document, background jobs
    // and wait, xargs, find -exec and time; each stage a forked shell or an exec'd applet.
    Case {
        argv0: Some("sh"),
        ..case("sh_pipe", "busybox", &["-c", "echo hi | cat"])
    },
    Case {
        companions: &["shell"],
        writes: &["words.txt"],
        ..applet("sh_pipelines", "sh", &["shell/pipelines.sh"])
    },
    Case {
        companions: &["shell"],
        ..applet("sh_control", "sh", &["shell/control.sh"])
    },
    Case {
        companions: &["shell"],
        writes: &["tree/a.txt", "tree/sub/b.txt"],
        ..applet("sh_jobs", "sh", &["shell/jobs.sh"])
    },
    // busybox servers and clients over loopback TCP in one shell: httpd serving wget (a page,
    // a file, a 404), and nc at both ends (one way, then nc -l -e cat echoing).
    Case {
        companions: &["shell"],
        writes: &["www/index.html", "fetched.html"],
        ..applet("httpd_wget", "sh", &["shell/http.sh"])
    },
    Case {
        companions: &["shell"],
        writes: &["received.txt"],
        ..applet("nc_both_ends", "sh", &["shell/nc.sh"])
    },
];

/// Faults: (argument to `faults`, signal number the process dies of).
pub const FAULTS: &[(&str, i32)] = &[
    ("segv", 11),
    ("kernel", 11),
    ("div", 8),
    ("ud2", 4),
    ("hlt", 11),
    ("cli", 11),
    ("int3", 5),
    ("abort", 4),
    ("jmp_top", 11),
    ("jmp_user_end", 11),
    ("straddle", 11),
];

/// The run of `faults` that ends by fault `what`, an entry of [`FAULTS`].
pub fn fault_case(what: &'static &'static str) -> Case {
    Case {
        snapshot: false,
        workload: false,
        ..case("faults", "faults", std::slice::from_ref(what))
    }
}

/// Ways out of the sandbox, each a program in `adversarial/` and its argument: every one
/// must end as it does natively, in both modes, with no access reaching the kernel half.
pub const ADVERSARIAL: &[(&str, &str)] = &[
    ("kernel_access", "read"),
    ("kernel_access", "write"),
    ("kernel_access", "cache"),
    ("kernel_access", "slots"),
    ("kernel_access", "index"),
    ("kernel_access", "fs"),
    ("jump_kernel", "jmp"),
    ("jump_kernel", "call"),
    ("jump_kernel", "ret"),
    ("stack_pivot", "mov"),
    ("stack_pivot", "xchg"),
    ("privileged", "hlt"),
    ("privileged", "cli"),
    ("privileged", "sti"),
    ("privileged", "in"),
    ("privileged", "out"),
    ("privileged", "rdmsr"),
    ("privileged", "wrmsr"),
    ("privileged", "movcr"),
    ("privileged", "lgdt"),
    ("privileged", "swapgs"),
    ("privileged", "wbinvd"),
    ("privileged", "invlpg"),
    ("popf", ""),
    ("smc_syscall", ""),
    ("segments", "legal"),
    ("segments", "kernel_ds"),
    ("segments", "null_ss"),
    ("segments", "kernel_cs"),
    ("segments", "iret_kernel"),
    ("legacy_entries", "int80"),
    ("legacy_entries", "sysenter"),
    ("stack_walk", ""),
    ("guest_bounds", ""),
    ("iret_stack", ""),
];

/// A run that `simulate --check` cannot pass yet: the divergence it shows, and why.
pub struct CheckException {
    pub program: &'static str,
    pub argument: &'static str,
    /// The line of the check's report that names the divergence.
    pub divergence: &'static str,
    pub reason: &'static str,
}

/// The runs of the corpus that `--check` cannot pass yet (the README lists them).
pub const CHECK_EXCEPTIONS: &[CheckException] = &[CheckException {
    program: "stack_walk",
    argument: "",
    divergence: "ring3 vs ring0: guest instructions differs",
    reason: "the sandbox checks RSP when an instruction moves it, the hardware when the stack is \
             touched: RSP walked into the kernel half ends the run at ring 0 as soon as it gets \
             there, at ring 3 only at the store that follows (both with SIGSEGV)",
}];

/// The directory `make -C corpora` builds into.
pub fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("build")
}

/// Copies the built corpus to [`stage_dir`] (once per process; the copy is atomic per file, so
/// concurrent test binaries agree) and returns it.
pub fn stage() -> PathBuf {
    try_stage().unwrap_or_else(|message| panic!("{message}"))
}

/// [`stage`], with what went wrong as a one-line message instead of a panic.
pub fn try_stage() -> Result<PathBuf, String> {
    static STAGED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    STAGED
        .get_or_init(|| {
            let build = build_dir();
            if !(build.join("busybox").exists() && build.join("inputs").exists()) {
                return Err(format!(
                    "the corpus is not built in {}: run scripts/setup (or make -C corpora)",
                    build.display()
                ));
            }
            let stage = stage_dir();
            copy_tree(&build, &stage)
                .map_err(|err| format!("cannot stage the corpus in {}: {err}", stage.display()))?;
            Ok(stage)
        })
        .clone()
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if std::fs::read(&target).ok() != Some(std::fs::read(entry.path())?) {
            let temp = to.join(format!(
                ".{}.{}",
                entry.file_name().to_string_lossy(),
                std::process::id()
            ));
            std::fs::copy(entry.path(), &temp)?;
            std::fs::rename(&temp, &target)?;
        }
    }
    Ok(())
}
