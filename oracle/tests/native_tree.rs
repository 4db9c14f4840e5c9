//! The native tracer follows a program's whole tree: processes and threads, each with its
//! syscalls, its end and, for processes, its entropy stream; and a timeout leaves no task
//! of the tree alive. The programs are small C sources built here with the host's `cc`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oracle::native::{self, NativeError, NativeSpec};
use oracle::observed::{Observed, ProcessRecord, Status, TaskKind, TaskRecord};
use oracle::scratch::TempDir;
use rand::RngCore;
use rand_chacha::ChaCha20Rng;
use sim::accounting::SyscallRecord;
use sim::kernel::random::process_stream;

const SEED: u64 = 77;
const EXIT: u64 = libc::SYS_exit as u64;
const EXIT_GROUP: u64 = libc::SYS_exit_group as u64;
const GETRANDOM: u64 = libc::SYS_getrandom as u64;

/// Builds `source` as a static program in `dir`.
fn build(dir: &Path, name: &str, source: &str) -> PathBuf {
    let (c, program) = (dir.join(format!("{name}.c")), dir.join(name));
    std::fs::write(&c, source).unwrap();
    let built = Command::new(std::env::var_os("CC").unwrap_or("cc".into()))
        .args(["-static", "-O1", "-pthread", "-o"])
        .arg(&program)
        .arg(&c)
        .status()
        .expect("a C compiler (cc)");
    assert!(built.success(), "cc {name}.c");
    program
}

fn trace(
    dir: &Path,
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<Observed, NativeError> {
    let argv: Vec<OsString> = std::iter::once(program.as_os_str().to_owned())
        .chain(args.iter().map(OsString::from))
        .collect();
    native::run(&NativeSpec {
        program,
        argv: &argv,
        env: &[],
        dir,
        seed: SEED,
        timeout,
    })
}

/// Builds and traces a program that must end within a minute.
fn run(name: &str, source: &str) -> Observed {
    let dir = TempDir::new(name).unwrap();
    let program = build(dir.path(), name, source);
    trace(dir.path(), &program, &[], Duration::from_secs(60)).expect("traced")
}

fn kinds(observed: &Observed) -> Vec<TaskKind> {
    observed.tree.tasks.iter().map(|t| t.kind).collect()
}

fn process(observed: &Observed, path: &[u32]) -> ProcessRecord {
    observed
        .tree
        .processes
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no process {path:?}"))
        .clone()
}

/// What every tree must satisfy: tasks numbered in order, each with a creator before it,
/// each that ended by itself ending in exit or exit_group, the root's sequence the one
/// `Observed` compares, and the ids a bijection onto 1000, 1001, … with the root at 1000.
fn check_tree(observed: &Observed) {
    let tasks = &observed.tree.tasks;
    assert_eq!(observed.syscalls, tasks[0].syscalls);
    // (The root task has no end of its own if another thread of its process exec'd.)
    assert!(tasks[0]
        .exit
        .as_ref()
        .is_none_or(|exit| *exit == observed.status));
    assert_eq!(observed.status, observed.tree.processes[0].status);
    for (i, task) in tasks.iter().enumerate() {
        assert_eq!(task.index, i);
        assert_eq!(task.parent.is_none(), i == 0);
        assert!(task.parent.is_none_or(|p| p < i));
        if task.exit.is_some() {
            let last = task.syscalls.last().map(|r| r.nr);
            assert!(
                matches!(last, Some(EXIT | EXIT_GROUP)),
                "task {i} ends with {last:?}"
            );
        }
    }
    // Every call has its own place in the run's order, increasing along each task.
    let mut order: Vec<usize> = tasks.iter().flat_map(|t| t.order.clone()).collect();
    assert!(tasks
        .iter()
        .all(|t| t.order.len() == t.syscalls.len() && t.order.windows(2).all(|w| w[0] < w[1])));
    order.sort_unstable();
    assert_eq!(order, (0..order.len()).collect::<Vec<_>>());
    let ids = &observed.tree.ids;
    assert_eq!(ids[&tasks[0].tid], 1000);
    let mut numbers: Vec<u32> = ids.values().copied().collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1000..1000 + tasks.len() as u32).collect::<Vec<_>>()
    );
}

/// The bytes each getrandom call of `task` returned, by the protocol: its process's stream
/// after `skip` bytes (AT_RANDOM's 16 for a process that started from an exec).
fn expected_random(task: &TaskRecord, skip: usize) -> Vec<Vec<u8>> {
    let mut stream: ChaCha20Rng = process_stream(SEED, &task.path);
    let mut skipped = vec![0; skip];
    stream.fill_bytes(&mut skipped);
    task.syscalls
        .iter()
        .filter(|r| r.nr == GETRANDOM && (r.ret as i64) > 0)
        .map(|r| {
            let mut bytes = vec![0; r.ret as usize];
            stream.fill_bytes(&mut bytes);
            bytes
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The word after `label ` on the line that starts with it.
fn shown<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {label:?} in {stdout:?}"))
}

const FORK_RANDOM: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void show(const char *who) {
    unsigned char b[8];
    if (syscall(SYS_getrandom, b, sizeof b, 0) != sizeof b) _exit(99);
    printf("%s ", who);
    for (int i = 0; i < 8; i++) printf("%02x", b[i]);
    printf("\n");
    fflush(stdout);
}

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        show("child");
        _exit(5);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 5)
        return 1;
    show("parent");
    return 3;
}
"#;

#[test]
fn a_fork_child_draws_from_its_own_stream() {
    let observed = run("fork_random", FORK_RANDOM);
    check_tree(&observed);
    assert_eq!(kinds(&observed), [TaskKind::Process, TaskKind::Process]);
    let tasks = &observed.tree.tasks;
    assert_eq!(
        (tasks[1].path.as_slice(), tasks[1].parent),
        (&[0][..], Some(0))
    );
    assert_eq!(observed.status, Status::Exited(3));
    assert_eq!(tasks[1].exit, Some(Status::Exited(5)));
    assert_eq!(process(&observed, &[0]).status, Status::Exited(5));
    // fork returned the child's pid to the root, and the child is a process of its own.
    let fork = tasks[0]
        .syscalls
        .iter()
        .find(|r| r.nr == libc::SYS_fork as u64 || r.nr == libc::SYS_clone as u64)
        .expect("the fork");
    assert_eq!(fork.ret as i32, tasks[1].tid);
    assert_eq!(process(&observed, &[0]).pid, tasks[1].tid);
    let stdout = String::from_utf8(observed.stdout.clone()).unwrap();
    let child = expected_random(&tasks[1], 0);
    assert_eq!(
        shown(&stdout, "child"),
        hex(child.last().expect("the child's getrandom"))
    );
    let root = expected_random(&tasks[0], 16);
    assert_eq!(
        shown(&stdout, "parent"),
        hex(root.last().expect("the root's getrandom"))
    );
    assert_ne!(shown(&stdout, "child"), shown(&stdout, "parent"));
}

const EXEC_RANDOM: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/wait.h>

static void show(const char *who) {
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    printf("%s vdso=%lx ", who, getauxval(AT_SYSINFO_EHDR));
    for (int i = 0; i < 16; i++) printf("%02x", r[i]);
    printf("\n");
    fflush(stdout);
}

static int spawn(pid_t (*make)(void), char *self, char *name) {
    pid_t child = make();
    if (child == 0) {
        execl("/proc/self/exe", self, name, (char *)0);
        _exit(127);
    }
    int status;
    return waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 7;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        show(argv[1]);
        return 7;
    }
    if (!spawn(vfork, argv[0], "vforked") || !spawn(fork, argv[0], "forked"))
        return 1;
    show("root");
    return 0;
}
"#;

/// AT_RANDOM at each exec is the next 16 bytes of the process's stream, and the vDSO is
/// hidden in every image.
#[test]
fn every_exec_gets_its_process_s_at_random_and_no_vdso() {
    let observed = run("exec_random", EXEC_RANDOM);
    check_tree(&observed);
    assert_eq!(kinds(&observed), [TaskKind::Process; 3]);
    assert_eq!(observed.status, Status::Exited(0));
    let stdout = String::from_utf8(observed.stdout.clone()).unwrap();
    for (label, path) in [("root", &[][..]), ("vforked", &[0]), ("forked", &[1])] {
        let mut at_random = [0; 16];
        process_stream(SEED, path).fill_bytes(&mut at_random);
        assert!(
            stdout.contains(&format!("{label} vdso=0 {}\n", hex(&at_random))),
            "{stdout}"
        );
    }
    let program = observed.tree.processes[0].argv[0].clone();
    assert!(program.ends_with("exec_random"), "{program}");
    for (process, name) in observed.tree.processes[1..]
        .iter()
        .zip(["vforked", "forked"])
    {
        assert_eq!(process.argv, [program.as_str(), name]);
    }
    for task in &observed.tree.tasks[1..] {
        assert_eq!(task.exit, Some(Status::Exited(7)));
        let execve = |r: &&SyscallRecord| r.nr == libc::SYS_execve as u64 && r.ret == 0;
        assert_eq!(task.syscalls.iter().filter(execve).count(), 1);
    }
}

const THREADS: &str = r#"
#include <pthread.h>
#include <unistd.h>

static void *work(void *name) {
    write(1, name, 2);
    return 0;
}

int main(void) {
    pthread_t a, b;
    if (pthread_create(&a, 0, work, "a\n") || pthread_join(a, 0)) return 1;
    if (pthread_create(&b, 0, work, "b\n") || pthread_join(b, 0)) return 1;
    return 0;
}
"#;

#[test]
fn threads_are_tasks_of_their_process() {
    let observed = run("threads", THREADS);
    check_tree(&observed);
    assert_eq!(
        kinds(&observed),
        [TaskKind::Process, TaskKind::Thread, TaskKind::Thread]
    );
    assert_eq!(observed.stdout, b"a\nb\n");
    assert_eq!(observed.tree.processes.len(), 1);
    for (i, task) in observed.tree.tasks.iter().enumerate() {
        assert_eq!((task.path.as_slice(), task.thread), (&[][..], i as u32));
        assert_eq!(task.exit, Some(Status::Exited(0)));
    }
    for thread in &observed.tree.tasks[1..] {
        assert_eq!(thread.parent, Some(0));
        assert_eq!(thread.syscalls.last().map(|r| r.nr), Some(EXIT));
        // Its own calls, not the return of the clone that created it.
        let nrs: Vec<u64> = thread.syscalls.iter().map(|r| r.nr).collect();
        assert!(nrs.contains(&(libc::SYS_write as u64)), "{nrs:?}");
        assert!(!nrs.contains(&(libc::SYS_clone as u64)), "{nrs:?}");
        assert!(!nrs.contains(&(libc::SYS_clone3 as u64)), "{nrs:?}");
    }
}

const THREAD_EXEC: &str = r#"
#include <pthread.h>
#include <unistd.h>

static char *self;

static void *run(void *unused) {
    execl("/proc/self/exe", self, "after", (char *)0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) return 9;
    self = argv[0];
    pthread_t thread;
    if (pthread_create(&thread, 0, run, 0)) return 1;
    pthread_join(thread, 0);
    return 2;
}
"#;

/// A thread's execve: the thread carries on as the process (with the leader's pid), and the
/// old leader vanishes without an end.
#[test]
fn a_thread_that_execs_takes_over_its_process() {
    let observed = run("thread_exec", THREAD_EXEC);
    check_tree(&observed);
    assert_eq!(kinds(&observed), [TaskKind::Process, TaskKind::Thread]);
    let tasks = &observed.tree.tasks;
    assert_eq!(tasks[0].exit, None);
    assert_eq!(tasks[1].exit, Some(Status::Exited(9)));
    assert_eq!(observed.tree.processes.len(), 1);
    assert_eq!(observed.tree.processes[0].status, Status::Exited(9));
    assert_eq!(observed.tree.processes[0].pid, tasks[0].tid);
    assert!(tasks[1]
        .syscalls
        .iter()
        .any(|r| r.nr == libc::SYS_execve as u64 && r.ret == 0));
}

const MANY: &str = r#"
#include <pthread.h>
#include <unistd.h>
#include <sys/wait.h>

enum { CHILDREN = 8 };

static void *work(void *unused) { return 0; }

static int child(int i) {
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        if (pthread_create(&threads[t], 0, work, 0)) return 1;
    for (int t = 0; t < 2; t++) pthread_join(threads[t], 0);
    pid_t grandchild = fork();
    if (grandchild == 0) _exit(40 + i);
    int status;
    if (waitpid(grandchild, &status, 0) != grandchild || WEXITSTATUS(status) != 40 + i) return 1;
    return 10 + i;
}

int main(void) {
    pid_t pids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++)
        if ((pids[i] = fork()) == 0) _exit(child(i));
    for (int i = 0; i < CHILDREN; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i] || WEXITSTATUS(status) != 10 + i) return 1;
    }
    return 0;
}
"#;

/// Many tasks born at once, most of them reporting before their creator's event can be
/// served: the shape of the tree is still exact.
#[test]
fn a_busy_tree_is_followed_whole() {
    let observed = run("many", MANY);
    check_tree(&observed);
    let tasks = &observed.tree.tasks;
    assert_eq!(tasks.len(), 1 + 8 + 8 * 2 + 8);
    assert_eq!(observed.status, Status::Exited(0));
    assert_eq!(observed.tree.processes.len(), 1 + 8 + 8);
    for i in 0..8u32 {
        assert_eq!(
            process(&observed, &[i]).status,
            Status::Exited(10 + i as i32)
        );
        assert_eq!(
            process(&observed, &[i, 0]).status,
            Status::Exited(40 + i as i32)
        );
        let threads = tasks
            .iter()
            .filter(|t| t.path == [i] && t.kind == TaskKind::Thread)
            .map(|t| t.thread)
            .collect::<Vec<_>>();
        assert_eq!(threads, [1, 2]);
    }
    // Processes are listed by creation path; ids follow paths, so the i-th child of the
    // root comes right after the (i-1)-th one's whole subtree.
    let paths: Vec<&[u32]> = observed
        .tree
        .processes
        .iter()
        .map(|p| p.path.as_slice())
        .collect();
    assert!(paths.windows(2).all(|w| w[0] < w[1]));
    let id = |path: &[u32], thread: u32| {
        let task = tasks
            .iter()
            .find(|t| t.path == path && t.thread == thread)
            .unwrap();
        observed.tree.ids[&task.tid]
    };
    assert_eq!(id(&[0], 0), 1001);
    assert_eq!(id(&[0], 2), 1003);
    assert_eq!(id(&[0, 0], 0), 1004);
    assert_eq!(id(&[1], 0), 1005);
}

#[test]
fn a_busybox_pipeline_is_followed_across_its_processes() {
    let dir = TempDir::new("pipeline").unwrap();
    let busybox = corpora::build_dir().join("busybox");
    let observed = trace(
        dir.path(),
        &busybox,
        &["sh", "-c", "echo hi | cat; exit 4"],
        Duration::from_secs(60),
    )
    .expect("traced");
    check_tree(&observed);
    assert_eq!(observed.stdout, b"hi\n");
    assert_eq!(observed.status, Status::Exited(4));
    assert_eq!(kinds(&observed), [TaskKind::Process; 3]);
    for child in &observed.tree.processes[1..] {
        assert_eq!(child.status, Status::Exited(0));
    }
}

const SLEEPERS: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static void note(void) {
    char line[32];
    int fd = open("pids", O_WRONLY | O_CREAT | O_APPEND, 0644);
    write(fd, line, snprintf(line, sizeof line, "%d\n", getpid()));
    close(fd);
}

int main(void) {
    if (fork() == 0) {
        if (fork() == 0) {
            note();
            for (;;) pause();
        }
        note();
        for (;;) pause();
    }
    return 0;
}
"#;

/// The root returns at once; its child and grandchild never end. The run lasts until the
/// whole tree has ended, so it times out, and then not one of them is left.
#[test]
fn a_timeout_kills_the_whole_tree() {
    let dir = TempDir::new("sleepers").unwrap();
    let program = build(dir.path(), "sleepers", SLEEPERS);
    let outcome = trace(dir.path(), &program, &[], Duration::from_secs(2));
    assert!(
        matches!(outcome, Err(NativeError::Timeout(_))),
        "{outcome:?}"
    );
    let pids = std::fs::read_to_string(dir.path().join("pids")).unwrap();
    assert_eq!(pids.lines().count(), 2, "{pids}");
    for pid in pids.lines() {
        assert!(gone(pid), "process {pid} survived the timeout");
    }
}

/// Within a second the process is gone or a zombie: dead, not yet reaped by whatever
/// adopted it.
fn gone(pid: &str) -> bool {
    let stat = Path::new("/proc").join(pid).join("stat");
    (0..100).any(|_| {
        let dead = std::fs::read_to_string(&stat).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        });
        if !dead {
            std::thread::sleep(Duration::from_millis(10));
        }
        dead
    })
}
