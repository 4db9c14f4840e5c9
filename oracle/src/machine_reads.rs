//! Reads of a file that describes the machine (`/proc/filesystems`, `/proc/self/maps`,
//! `/proc/cpuinfo`…): the simulated runs read the simulated machine's, the native run the
//! host's, so what and how much they read differ by design (the contents, and with procfs's
//! 1 KiB block size, stdio's buffer). The simulator marks the call that opened one
//! (`SyscallRecord::machine_file`); the native run's open at the same place among its task's
//! opens is the same file, since the runs agree up to there or the divergence shows first.
//! The reads of such a descriptor, until it is closed, are left out on every side.

use std::collections::BTreeMap;

use sim::accounting::SyscallRecord;
use syscalls::Sysno;

use crate::observed::Observed;

const OPENS: &[Sysno] = &[Sysno::open, Sysno::openat, Sysno::openat2];
const READS: &[Sysno] = &[
    Sysno::read,
    Sysno::pread64,
    Sysno::readv,
    Sysno::preadv,
    Sysno::preadv2,
];

fn is(record: &SyscallRecord, calls: &[Sysno]) -> bool {
    calls.iter().any(|call| call.id() as u64 == record.nr)
}

/// Which of a task's opens (by their place among its opens) opened a machine file.
fn marked_opens(records: &[SyscallRecord]) -> Vec<usize> {
    records
        .iter()
        .filter(|record| is(record, OPENS))
        .enumerate()
        .filter(|(_, record)| record.machine_file)
        .map(|(ordinal, _)| ordinal)
        .collect()
}

/// The places (in `records`) of the reads of descriptors that the opens at `marked` opened.
fn machine_reads(records: &[SyscallRecord], marked: &[usize]) -> Vec<usize> {
    let mut open_fds: Vec<u64> = Vec::new();
    let mut reads = Vec::new();
    let mut opens_seen = 0;
    for (place, record) in records.iter().enumerate() {
        if is(record, OPENS) {
            if marked.contains(&opens_seen) && (record.ret as i64) >= 0 {
                open_fds.push(record.ret);
            }
            opens_seen += 1;
        } else if record.nr == Sysno::close.id() as u64 {
            open_fds.retain(|&fd| fd != record.args[0]);
        } else if is(record, READS) && open_fds.contains(&record.args[0]) {
            reads.push(place);
        }
    }
    reads
}

/// Which opens opened a machine file, by task (creation path and thread number) and for
/// the root's sequence, as a simulated run marks them.
pub struct Marks {
    tasks: BTreeMap<(Vec<u32>, u32), Vec<usize>>,
    root: Vec<usize>,
}

/// The marks of simulated run `by`.
pub fn marks(by: &Observed) -> Marks {
    let tasks = by
        .tree
        .tasks
        .iter()
        .map(|task| {
            (
                (task.path.clone(), task.thread),
                marked_opens(&task.syscalls),
            )
        })
        .filter(|(_, marked)| !marked.is_empty())
        .collect();
    Marks {
        tasks,
        root: marked_opens(&by.syscalls),
    }
}

/// Leaves out the machine-file reads of every task of `runs`, as `marks` name them; tasks
/// are matched by creation path and thread number.
pub fn leave_out(marks: &Marks, runs: &mut [&mut Observed]) {
    for run in runs.iter_mut() {
        for task in &mut run.tree.tasks {
            let Some(marked) = marks.tasks.get(&(task.path.clone(), task.thread)) else {
                continue;
            };
            let dropped = machine_reads(&task.syscalls, marked);
            task.syscalls = without(&task.syscalls, &dropped);
            task.order = without(&task.order, &dropped);
        }
        let dropped = machine_reads(&run.syscalls, &marks.root);
        run.syscalls = without(&run.syscalls, &dropped);
    }
}

/// `items` but those at the places `dropped` lists.
fn without<T: Clone>(items: &[T], dropped: &[usize]) -> Vec<T> {
    items
        .iter()
        .enumerate()
        .filter(|(place, _)| !dropped.contains(place))
        .map(|(_, item)| item.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nr: Sysno, args0: u64, ret: u64, machine_file: bool) -> SyscallRecord {
        SyscallRecord {
            tid: 1000,
            nr: nr.id() as u64,
            args: [args0, 0, 0, 0, 0, 0],
            ret,
            machine_file,
        }
    }

    #[test]
    fn reads_of_a_marked_open_descriptor_are_left_out_until_it_closes() {
        let simulated = [
            record(Sysno::openat, 0, 3, true),
            record(Sysno::read, 3, 0x118, false),
            record(Sysno::read, 3, 0, false),
            record(Sysno::close, 3, 0, false),
            record(Sysno::openat, 0, 3, false),
            record(Sysno::read, 3, 10, false),
        ];
        let marked = marked_opens(&simulated);
        assert_eq!(marked, vec![0]);
        // The native run read the host's file in other amounts; its reads go too.
        let native = [
            record(Sysno::openat, 0, 3, false),
            record(Sysno::read, 3, 0x16c, false),
            record(Sysno::read, 3, 0x16c, false),
            record(Sysno::read, 3, 0, false),
            record(Sysno::close, 3, 0, false),
            record(Sysno::openat, 0, 3, false),
            record(Sysno::read, 3, 10, false),
        ];
        assert_eq!(machine_reads(&simulated, &marked), vec![1, 2]);
        assert_eq!(machine_reads(&native, &marked), vec![1, 2, 3]);
    }
}
