//! The report of a run: a readable table for stderr, or JSON. Field order is fixed and
//! maps are sorted, so the same run gives byte-identical output.

use std::collections::BTreeMap;

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use serde::Serialize;

use translator::Source;

use crate::accounting::Tally;
use crate::bt::cache::TranslationStats;
use crate::costs::work::{ClassCount, CLASSES, SOCKET_CLASSES};
use crate::costs::{CostModel, Ring0Events, Ring3Cycles};
use crate::kernel::history::{ProcessLog, TaskLog};
use crate::kernel::syscalls::short_name;
use crate::kernel::Exit;
use crate::run::RunConfig;
use crate::system::{Finished, Stop};

#[derive(Debug, Serialize)]
pub struct ExitReport {
    pub code: Option<i32>,
    pub signal: Option<String>,
    /// What ended the run when it was not a plain exit.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SyscallReport {
    pub total: u64,
    pub by_name: BTreeMap<String, u64>,
    /// Unsupported syscalls answered with ENOSYS (`--on-unsupported-syscall enosys`).
    pub enosys: BTreeMap<String, u64>,
    /// What the simulated kernel lacks (a socket family, an option), answered with the errno
    /// a Linux kernel without it gives; absent when there was none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_modelled: BTreeMap<String, u64>,
    /// A digest of every syscall's number, arguments and result, in order.
    pub sequence_digest: String,
}

#[derive(Debug, Serialize)]
pub struct Ring3Report {
    pub cycles: u64,
    pub user_instruction_cycles: u64,
    pub crossing_cycles: u64,
    /// Switches between tasks (see `scheduling`).
    pub switch_cycles: u64,
    pub kernel_work_cycles: u64,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Ring0Report {
    pub cycles: u64,
    pub translated_instruction_cycles: u64,
    pub call_cycles: u64,
    /// Switches between tasks, all translated at ring 0.
    pub switch_cycles: u64,
    pub kernel_work_cycles: u64,
    pub translation_cycles: u64,
    pub indirect_lookup_cycles: u64,
    pub seconds: f64,
    /// Instructions the CPU executed in the code cache and the runtime's stubs.
    pub translated_instructions: u64,
    /// Translated instructions executed per guest instruction executed.
    pub code_expansion: f64,
    /// By source, the translated instructions executed beyond the guest's: they add up to
    /// `translated_instructions` - `guest_instructions`.
    pub extra_instructions: BTreeMap<String, i64>,
    /// The same per guest instruction executed: they add up to `code_expansion` - 1.
    pub expansion_by_source: BTreeMap<String, f64>,
    /// Guest accesses that reached the kernel half: must be 0.
    pub kernel_half_accesses: u64,
    /// Guest accesses the sandbox stopped (each ends the process, as at ring 3).
    pub sandbox_stops: u64,
    pub translation: TranslationStats,
    /// Indirect-branch lookups whose target had to be translated first.
    pub indirect_misses: u64,
}

/// One process of the run, and its tasks' counts.
#[derive(Debug, Serialize)]
pub struct ProcessReport {
    pub pid: u64,
    pub ppid: u64,
    /// Its place in the process tree: the i-th child of the process at `path[..n]` has
    /// `path[n] = i` (see `kernel::random`), so that runs are compared by tree position.
    pub path: Vec<u32>,
    /// Its tasks' ids, the first task's first, then its threads' in creation order.
    pub tids: Vec<u64>,
    /// The argv of its last image.
    pub argv: Vec<String>,
    /// Images it ran: 1 plus its successful execve calls.
    pub images: u32,
    /// How it ended; absent for a process still running when the run stopped.
    pub exit: Option<ExitReport>,
    pub tasks: u64,
    pub guest_instructions: u64,
    pub syscalls: u64,
    /// Switches away from its tasks because they blocked or yielded.
    pub voluntary_switches: u64,
    /// Switches away from its tasks because their quantum ran out.
    pub preempted: u64,
    /// Its share of `ring3.cycles`: what its tasks ran and caused (a switch goes to the task
    /// switched to). The processes' shares add up to the total, give or take rounding.
    pub ring3_cycles: u64,
    /// Its share of `ring0.cycles`, in ring-0 mode.
    pub ring0_cycles: Option<u64>,
    /// ring3_cycles / ring0_cycles, in ring-0 mode.
    pub speedup: Option<f64>,
}

/// One kernel-work class's share of a run.
#[derive(Debug, Serialize)]
pub struct ClassWork {
    pub calls: u64,
    pub bytes: u64,
    pub cycles: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub program: String,
    pub argv: Vec<String>,
    pub cost_model: CostModel,
    /// "ring3": the program ran untranslated; every syscall was a ring crossing. "ring0":
    /// it ran translated in the kernel half; `ring3` is then what the same guest
    /// instructions and syscalls cost untranslated.
    pub mode: &'static str,
    /// The vendor whose CPU the simulated one followed (`--cpu-vendor`).
    pub cpu_vendor: String,
    /// `--net host`: internet sockets were the host's, so the run does not repeat (left
    /// out of the report when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    pub seed: u64,
    pub exit: ExitReport,
    pub guest_instructions: u64,
    /// The guest's conditional branches a gshare predictor mispredicted, priced at the
    /// microarchitecture's penalty within the instructions' cycles; `None` under `cpi`,
    /// which runs no branch through the predictor.
    pub branch_mispredictions: Option<u64>,
    pub syscalls: SyscallReport,
    /// Round trips between ring 3 and ring 0: one per syscall.
    pub ring_crossings: u64,
    pub bytes_copied: u64,
    /// Syscalls, bytes and kernel-work cycles by cost-model class (the classes with any).
    pub kernel_work: BTreeMap<&'static str, ClassWork>,
    pub ring3: Ring3Report,
    /// Present in ring-0 mode.
    pub ring0: Option<Ring0Report>,
    /// ring3 cycles / ring0 cycles, in ring-0 mode.
    pub speedup: Option<f64>,
    /// ring3 cycles / ring0 cycles without the one-time translation cost: what a long run
    /// of the same code tends to, once everything it runs is translated.
    pub steady_state_speedup: Option<f64>,
    /// Every process the run made, in pid order (creation order).
    pub processes: Vec<ProcessReport>,
    pub scheduling: SchedulingReport,
}

/// What the cost model prices beyond syscalls: switches and process creation.
#[derive(Debug, Serialize)]
pub struct SchedulingReport {
    pub thread_switches: u64,
    pub process_switches: u64,
    pub forks: u64,
    /// Pages whose page-table entries the forks copied (priced at `fork_per_page`).
    pub fork_pages: u64,
    /// Areas the forks copied beyond the Create Proc figure's parent's (priced at
    /// `fork_per_area`).
    pub fork_areas: u64,
    pub execs: u64,
    pub reaps: u64,
    /// Pages copied on write after forks (each a page fault, priced in `kernel_work`'s
    /// `page_fault`).
    pub pages_copied_on_write: u64,
}

fn exit_report(exit: &Exit) -> ExitReport {
    match exit {
        Exit::Code(code) => ExitReport {
            code: Some(*code),
            signal: None,
            reason: None,
        },
        Exit::Signal { signal, reason } => ExitReport {
            code: None,
            signal: Some(signal.as_str().to_string()),
            reason: Some(reason.clone()),
        },
    }
}

fn process_report(log: &ProcessLog, model: &CostModel, ring0: bool) -> ProcessReport {
    let sum = |count: fn(&TaskLog) -> u64| log.tasks.iter().map(count).sum();
    let tally = log
        .tasks
        .iter()
        .fold(Tally::default(), |total, task| total.plus(task.tally));
    let counts = tally.counts();
    let ring3_cycles = model.ring3_cycles(&counts).total;
    let ring0_cycles = ring0.then(|| model.ring0_cycles(&counts, &tally.ring0_events()).total);
    ProcessReport {
        pid: log.pid,
        ppid: log.ppid,
        path: log.path.clone(),
        tids: log.tasks.iter().map(|t| t.tid).collect(),
        argv: log.argv.clone(),
        images: log.images,
        exit: log.exit.as_ref().map(exit_report),
        tasks: log.tasks.len() as u64,
        guest_instructions: tally.guest_instructions,
        syscalls: sum(|t| t.syscalls),
        voluntary_switches: sum(|t| t.voluntary_switches),
        preempted: sum(|t| t.preempted),
        ring3_cycles,
        ring0_cycles,
        speedup: ring0_cycles.map(|cycles| ratio(ring3_cycles, cycles)),
    }
}

fn by_source<T>(extra: &[i64; Source::ALL.len()], value: impl Fn(i64) -> T) -> BTreeMap<String, T> {
    Source::ALL
        .iter()
        .map(|&source| (source.name().to_string(), value(extra[source as usize])))
        .collect()
}

fn by_name(counts: &BTreeMap<u64, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(&nr, &n)| (short_name(nr), n)).collect()
}

impl Report {
    pub fn new(config: &RunConfig, finished: &Finished) -> Self {
        let counts = &finished.counts;
        let model = &config.cost_model;
        let cycles: Ring3Cycles = model.ring3_cycles(counts);
        let exit = match &finished.stop {
            Stop::Exit(exit) => exit_report(exit),
            Stop::InstructionLimit => ExitReport {
                code: None,
                signal: None,
                reason: Some("instruction limit reached".into()),
            },
            Stop::Deadlock(waits) => ExitReport {
                code: None,
                signal: None,
                reason: Some(format!("deadlock: {waits}")),
            },
            Stop::Unsupported(u) => ExitReport {
                code: None,
                signal: None,
                reason: Some(u.what.clone()),
            },
        };
        let ring0 = finished.ring0.as_ref().map(|r0| {
            let events = Ring0Events {
                translated_instructions: r0.translated_instructions,
                translated_cycle_units: r0.translated_cycle_units,
                call_instructions: r0.call_instructions(counts.abi_calls),
                guest_instructions_translated: r0.stats.guest_instructions_translated,
                indirect_lookups: r0.stats.indirect_lookups,
            };
            let c = model.ring0_cycles(counts, &events);
            Ring0Report {
                cycles: c.total,
                translated_instruction_cycles: c.translated_instructions,
                call_cycles: c.calls,
                switch_cycles: c.switches,
                kernel_work_cycles: c.kernel_work,
                translation_cycles: c.translation,
                indirect_lookup_cycles: c.indirect_lookups,
                seconds: model.seconds(c.total),
                translated_instructions: r0.translated_instructions,
                code_expansion: ratio(r0.translated_instructions, counts.guest_instructions),
                extra_instructions: by_source(&r0.extra_by_source, |n| n),
                expansion_by_source: by_source(&r0.extra_by_source, |n| {
                    fraction(n as f64, counts.guest_instructions)
                }),
                kernel_half_accesses: r0.kernel_half_accesses,
                sandbox_stops: r0.sandbox_stops,
                translation: r0.stats.clone(),
                indirect_misses: r0.stats.indirect_lookups - r0.stats.indirect_hits,
            }
        });
        let speedup = ring0.as_ref().map(|r0| ratio(cycles.total, r0.cycles));
        let steady_state_speedup = ring0
            .as_ref()
            .map(|r0| ratio(cycles.total, r0.cycles - r0.translation_cycles));
        let argv0 = config
            .argv0
            .clone()
            .unwrap_or_else(|| config.program.clone().into_os_string());
        Report {
            program: config.program.display().to_string(),
            argv: std::iter::once(&argv0)
                .chain(&config.args)
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            cost_model: model.clone(),
            mode: if ring0.is_some() { "ring0" } else { "ring3" },
            cpu_vendor: config.cpu_vendor.to_string(),
            host_network: config.net_host,
            seed: config.seed,
            exit,
            guest_instructions: counts.guest_instructions,
            branch_mispredictions: model
                .instruction_costs
                .microarchitecture()
                .map(|_| counts.branch_mispredictions),
            syscalls: SyscallReport {
                total: counts.syscalls(),
                by_name: by_name(&counts.by_number),
                enosys: by_name(&counts.enosys),
                not_modelled: counts.lacking.clone(),
                sequence_digest: format!("{:016x}", counts.sequence_digest),
            },
            ring_crossings: counts.syscalls(),
            bytes_copied: counts.bytes_copied(),
            kernel_work: CLASSES
                .iter()
                .filter_map(|&(class, name)| {
                    let count = counts.work.get(class);
                    (count != ClassCount::default()).then(|| {
                        let cycles = model.class_work(class, count).round() as u64;
                        let (calls, bytes) = (count.calls, count.bytes);
                        (
                            name,
                            ClassWork {
                                calls,
                                bytes,
                                cycles,
                            },
                        )
                    })
                })
                .collect(),
            ring3: Ring3Report {
                cycles: cycles.total,
                user_instruction_cycles: cycles.user_instructions,
                crossing_cycles: cycles.crossings,
                switch_cycles: cycles.switches,
                kernel_work_cycles: cycles.kernel_work,
                seconds: model.seconds(cycles.total),
            },
            ring0,
            speedup,
            steady_state_speedup,
            processes: finished
                .processes
                .iter()
                .map(|log| process_report(log, model, finished.ring0.is_some()))
                .collect(),
            scheduling: SchedulingReport {
                thread_switches: counts.thread_switches,
                process_switches: counts.process_switches,
                forks: counts.forks,
                fork_pages: counts.fork_pages,
                fork_areas: counts.fork_areas,
                execs: counts.execs,
                reaps: counts.reaps,
                pages_copied_on_write: counts.pages_copied_on_write,
            },
        }
    }

    /// One row per process, for runs of more than one task.
    fn processes_table(&self) -> String {
        let mut header = vec![
            "pid",
            "ppid",
            "argv",
            "exit",
            "tasks",
            "instructions",
            "syscalls",
            "switches",
            "preempted",
            "ring 3 cycles",
        ];
        if self.ring0.is_some() {
            header.push("ring 0 cycles");
        }
        let mut table = new_table(&header);
        for p in &self.processes {
            let exit = match &p.exit {
                Some(ExitReport {
                    code: Some(code), ..
                }) => code.to_string(),
                Some(ExitReport {
                    signal: Some(signal),
                    ..
                }) => signal.clone(),
                _ => "running".into(),
            };
            let mut row = vec![
                p.pid.to_string(),
                p.ppid.to_string(),
                p.argv.join(" "),
                exit,
                p.tasks.to_string(),
                group(p.guest_instructions),
                group(p.syscalls),
                group(p.voluntary_switches),
                group(p.preempted),
                group(p.ring3_cycles),
            ];
            row.extend(p.ring0_cycles.map(group));
            table.add_row(row);
        }
        for column in 4..header.len() {
            right_align(&mut table, column);
        }
        table.to_string() + "\n"
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }

    pub fn to_text(&self) -> String {
        let exit = match (&self.exit.code, &self.exit.signal, &self.exit.reason) {
            (Some(code), _, _) => format!("exit code {code}"),
            (None, Some(signal), Some(reason)) => format!("killed by {signal} ({reason})"),
            (_, _, reason) => reason.clone().unwrap_or_default(),
        };
        let network = if self.host_network {
            ", host network (not deterministic)"
        } else {
            ""
        };
        let mut out = format!(
            "ringsim: {} — cost model {}, mode {}, {} CPU{network}, {exit}\n",
            self.argv.join(" "),
            self.cost_model.name,
            self.mode,
            self.cpu_vendor
        );
        let model = &self.cost_model;
        out.push_str(&format!("estimates rest on: {}\n", model.basis));
        out.push_str(&format!(
            "validation: {}\n",
            model
                .validation
                .as_deref()
                .unwrap_or("none recorded for this model")
        ));

        let mut summary = new_table(&["", "count"]);
        summary.add_row(vec![
            "guest instructions".to_string(),
            group(self.guest_instructions),
        ]);
        if let (Some(core), Some(mispredictions)) = (
            model.instruction_costs.microarchitecture(),
            self.branch_mispredictions,
        ) {
            summary.add_row(vec![
                format!(
                    "branch mispredictions ({:.0} cycles each)",
                    model.mispredict_cycles(core)
                ),
                group(mispredictions),
            ]);
        }
        summary.add_row(vec!["syscalls".to_string(), group(self.syscalls.total)]);
        summary.add_row(vec![
            "ring crossings".to_string(),
            group(self.ring_crossings),
        ]);
        summary.add_row(vec![
            "bytes copied user<->kernel".to_string(),
            group(self.bytes_copied),
        ]);
        right_align(&mut summary, 1);
        out.push_str(&summary.to_string());
        out.push('\n');
        if self.processes.len() > 1 || self.processes.iter().any(|p| p.tasks > 1) {
            out.push_str(&self.processes_table());
        }

        let share = |part: u64| percent(part, self.ring3.cycles);
        let mut cycles = new_table(&["ring 3 estimate", "cycles", "share"]);
        cycles.add_row(vec![
            "user instructions".into(),
            group(self.ring3.user_instruction_cycles),
            share(self.ring3.user_instruction_cycles),
        ]);
        cycles.add_row(vec![
            "ring crossings".into(),
            group(self.ring3.crossing_cycles),
            share(self.ring3.crossing_cycles),
        ]);
        if self.ring3.switch_cycles > 0 {
            cycles.add_row(vec![
                "task switches".into(),
                group(self.ring3.switch_cycles),
                share(self.ring3.switch_cycles),
            ]);
        }
        cycles.add_row(vec![
            "kernel work".into(),
            group(self.ring3.kernel_work_cycles),
            share(self.ring3.kernel_work_cycles),
        ]);
        let sockets = self.socket_work_cycles();
        if sockets > 0 {
            cycles.add_row(vec![
                "  of it, sockets and epoll".into(),
                group(sockets),
                share(sockets),
            ]);
        }
        cycles.add_row(vec![
            "total".into(),
            group(self.ring3.cycles),
            share(self.ring3.cycles),
        ]);
        cycles.add_row(vec![
            format!("seconds at {} GHz", self.cost_model.ghz.value),
            format!("{:.6}", self.ring3.seconds),
            String::new(),
        ]);
        right_align(&mut cycles, 1);
        right_align(&mut cycles, 2);
        out.push_str(&cycles.to_string());
        out.push('\n');
        if let (Some(r0), Some(speedup), Some(steady)) =
            (&self.ring0, self.speedup, self.steady_state_speedup)
        {
            out.push_str(&ring0_text(r0, self.cost_model.ghz.value));
            out.push_str(&format!(
                "speedup (ring 3 cycles / ring 0 cycles): {speedup:.4}x, {steady:.4}x without translation; \
                 code expansion {:.4}; kernel-half accesses {}\n",
                r0.code_expansion, r0.kernel_half_accesses
            ));
        }

        if !self.syscalls.by_name.is_empty() {
            let mut calls = new_table(&["syscall", "calls"]);
            let mut rows: Vec<_> = self.syscalls.by_name.iter().collect();
            rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (name, n) in rows {
                calls.add_row(vec![name.clone(), group(*n)]);
            }
            right_align(&mut calls, 1);
            out.push_str(&calls.to_string());
            out.push('\n');
        }
        out.push_str(&counted_line(
            "unsupported, answered ENOSYS",
            &self.syscalls.enosys,
        ));
        out.push_str(&counted_line(
            "not modelled, answered as a kernel without it",
            &self.syscalls.not_modelled,
        ));
        out
    }
}

/// `title: what ×count, …` and a newline, or nothing for no counts.
fn counted_line(title: &str, counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counts
        .iter()
        .map(|(what, c)| format!("{what} ×{c}"))
        .collect();
    format!("{title}: {}\n", list.join(", "))
}

impl Report {
    /// The kernel work of socket calls (sends, receives, connects, accepts) and epoll waits, in
    /// cycles.
    fn socket_work_cycles(&self) -> u64 {
        SOCKET_CLASSES
            .iter()
            .filter_map(|class| self.kernel_work.get(class.name()))
            .map(|work| work.cycles)
            .sum()
    }
}

fn ring0_text(r0: &Ring0Report, ghz: f64) -> String {
    let share = |part: u64| percent(part, r0.cycles);
    let mut table = new_table(&["ring 0 estimate", "cycles", "share"]);
    let rows = [
        (
            "translated code, calls aside",
            r0.translated_instruction_cycles,
        ),
        ("syscalls as direct calls", r0.call_cycles),
        ("task switches", r0.switch_cycles),
        ("kernel work", r0.kernel_work_cycles),
        ("translation", r0.translation_cycles),
        ("indirect-branch lookups", r0.indirect_lookup_cycles),
        ("total", r0.cycles),
    ];
    // A run of one task has no switches: its report shows no such row.
    for (name, value) in rows
        .into_iter()
        .filter(|&(name, value)| name != "task switches" || value > 0)
    {
        table.add_row(vec![name.to_string(), group(value), share(value)]);
    }
    table.add_row(vec![
        format!("seconds at {ghz} GHz"),
        format!("{:.6}", r0.seconds),
        String::new(),
    ]);
    right_align(&mut table, 1);
    right_align(&mut table, 2);
    let t = &r0.translation;
    let sources: Vec<String> = Source::ALL
        .iter()
        .map(|source| {
            let name = source.name();
            format!(
                "{} {:.4}",
                name.replace('_', " "),
                r0.expansion_by_source[name]
            )
        })
        .collect();
    format!(
        "{table}\ntranslation: {} blocks, {} guest instructions translated, {} chained links, \
         {} indirect lookups ({} hits), {} dispatcher exits\n\
         extra instructions per guest instruction, by source: {}\n",
        t.blocks,
        t.guest_instructions_translated,
        t.chained_links,
        t.indirect_lookups,
        t.indirect_hits,
        t.dispatches,
        sources.join(", ")
    )
}

/// a / b to 4 decimals (0 when b is 0), so reports stay byte-identical across machines.
fn ratio(a: u64, b: u64) -> f64 {
    fraction(a as f64, b)
}

/// a / b to 4 decimals for a signed a (0 when b is 0).
fn fraction(a: f64, b: u64) -> f64 {
    if b == 0 {
        return 0.0;
    }
    (a / b as f64 * 10_000.0).round() / 10_000.0
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

fn right_align(table: &mut Table, column: usize) {
    if let Some(col) = table.column_mut(column) {
        col.set_cell_alignment(CellAlignment::Right);
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
