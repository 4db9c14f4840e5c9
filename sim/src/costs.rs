//! Cost models: what events cost in cycles on a platform. Built-in models are a table with
//! a source for every value; users load their own from TOML (schema in the README).

pub mod builtin;
pub mod calibrated;
pub mod work;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::accounting::Counts;
use work::{WorkClass, CLASSES};

/// One figure of a model (cycles per event, cycles per instruction, or GHz), with where
/// it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    pub value: f64,
    pub source: String,
}

/// The four columns of the Singularity table (Aiken et al., MSPC 2006).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventCosts {
    /// A null system call round trip.
    pub abi_call: Cost,
    /// Giving up the CPU to another thread.
    #[serde(rename = "yield")]
    pub yield_cpu: Cost,
    /// One byte there and back between two processes.
    pub send_receive: Cost,
    /// fork + exec (+ wait).
    pub create_process: Cost,
}

/// The kernel work of one class of syscalls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassCosts {
    /// Per call, beyond the null call that the crossing cost already includes.
    pub base: Cost,
    /// Per byte moved between user memory and the kernel.
    pub per_byte: Cost,
}

/// In-kernel work that a syscall costs whichever ring the caller runs in, by class
/// (`work::CLASSES`).
#[derive(Clone, Debug, PartialEq)]
pub struct KernelWork(pub [ClassCosts; WorkClass::COUNT]);

impl KernelWork {
    pub fn class(&self, class: WorkClass) -> &ClassCosts {
        &self.0[class.index()]
    }

    /// One call of `class` moving `bytes`.
    pub fn call(&self, class: WorkClass, bytes: f64) -> f64 {
        let costs = self.class(class);
        costs.base.value + bytes * costs.per_byte.value
    }
}

impl Serialize for KernelWork {
    /// As a map from class name to its costs, in table order.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(CLASSES.len()))?;
        for (class, name) in CLASSES {
            map.serialize_entry(name, self.class(class))?;
        }
        map.end()
    }
}

/// What binary translation itself costs at ring 0, beyond the instructions the translated
/// code executes (those are counted, not estimated).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TranslationCosts {
    /// Per guest instruction translated.
    pub per_instruction: Cost,
    /// Per indirect-branch lookup (returns included).
    pub indirect_lookup: Cost,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostModel {
    pub name: String,
    pub description: String,
    /// What the estimates rest on, in a line: measured on which CPU and when, published
    /// figures from which source, or assumptions.
    pub basis: String,
    /// How far its estimates were from measurements, when that is known (the fidelity
    /// bench, BENCHMARKS.md).
    pub validation: Option<String>,
    pub ring3: EventCosts,
    /// The same events for a process run in the kernel under binary translation: a
    /// syscall is a direct call plus dispatch.
    pub ring0: EventCosts,
    pub translation: TranslationCosts,
    pub kernel_work: KernelWork,
    /// Indirect cost of each crossing (cache and TLB pollution, FlexSC, OSDI 2010).
    pub crossing_indirect: Cost,
    /// Per page whose page-table entry a fork copies and write-protects (the parent's
    /// present private pages that have been writable), on top of the creation work: the
    /// Create Proc column is a small process's.
    pub fork_per_page: Cost,
    /// Per area a fork copies beyond the Create Proc column's parent's, on top of the
    /// creation work.
    pub fork_per_area: Cost,
    /// Page faults per process that the Create Proc column's measurement took: its creation
    /// work leaves them out, since a run's page faults are counted and priced as they
    /// happen (`page_fault`).
    pub creation_faults: Cost,
    /// How instructions are priced: `cpi` each, or each block by a microarchitecture's
    /// scheduling model.
    pub instruction_costs: InstructionCosts,
    /// Cycles a mispredicted branch costs, measured (a calibration's `branch_mispredict`
    /// probe); `None`: the microarchitecture's penalty (LLVM's `MispredictPenalty`), which
    /// leaves out the wait for what the branch tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_mispredict: Option<Cost>,
    /// Cycles per guest instruction: the price of instructions under `InstructionCosts::Cpi`,
    /// and in every model the rate of the guest's own clock (so that both modes see the
    /// same times).
    pub cpi: Cost,
    /// Clock rate that turns cycles into seconds.
    pub ghz: Cost,
}

/// How a model prices the instructions a run executes.
#[derive(Clone, Copy, Debug)]
pub enum InstructionCosts {
    /// The model's `cpi` per instruction.
    Cpi,
    /// Each block at its price on this core (`uarch`): its throughput bound or its critical
    /// path, from LLVM's scheduling model.
    Microarchitecture(&'static uarch::Microarchitecture),
}

impl InstructionCosts {
    pub fn name(&self) -> &'static str {
        match self {
            InstructionCosts::Cpi => "cpi",
            InstructionCosts::Microarchitecture(core) => core.name,
        }
    }

    /// `cpi`, or a built-in microarchitecture's name.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "cpi" => Some(InstructionCosts::Cpi),
            _ => uarch::by_name(name).map(InstructionCosts::Microarchitecture),
        }
    }

    pub fn microarchitecture(&self) -> Option<&'static uarch::Microarchitecture> {
        match self {
            InstructionCosts::Cpi => None,
            InstructionCosts::Microarchitecture(core) => Some(core),
        }
    }
}

impl PartialEq for InstructionCosts {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Serialize for InstructionCosts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Block prices are fractions of a cycle; they are kept in 1/256ths, so that totals are
/// exact integers and the same in every run.
pub const CYCLE_UNITS: f64 = 256.0;

/// `cycles` in units of `CYCLE_UNITS`.
pub fn to_units(cycles: f64) -> u32 {
    (cycles * CYCLE_UNITS).round() as u32
}

/// Ring-0 cycles by where they went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ring0Cycles {
    pub translated_instructions: u64,
    pub calls: u64,
    /// Switches between tasks, all of them translated at ring 0: no ring crossing, still a
    /// thread switch and, between processes, an address-space switch.
    pub switches: u64,
    pub kernel_work: u64,
    pub translation: u64,
    pub indirect_lookups: u64,
    pub total: u64,
}

/// What a ring-0 run adds to the counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ring0Events {
    pub translated_instructions: u64,
    /// Their price under a microarchitecture, the calls' own instructions left out, in
    /// `CYCLE_UNITS`.
    pub translated_cycle_units: u64,
    /// Of those, the syscalls' own: the guest's `syscall` as a call, the kernel entry and
    /// its return. The ring-0 call constant is the whole call (KML's 12 cycles for getpid
    /// in the kernel), so they are not priced again.
    pub call_instructions: u64,
    pub guest_instructions_translated: u64,
    pub indirect_lookups: u64,
}

/// Ring-3 cycles by where they went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ring3Cycles {
    pub user_instructions: u64,
    pub crossings: u64,
    /// Switches between tasks: threads of one process, and processes (an address-space
    /// switch).
    pub switches: u64,
    pub kernel_work: u64,
    pub total: u64,
}

/// The syscalls in a Create Proc measurement: the parent's fork and wait, the child's exec
/// and its exit, each of which the simulator charges as a syscall of its own.
pub const CREATION_SYSCALLS: f64 = 4.0;

/// The events a run is priced by beyond syscalls, each had from the four measured columns
/// (the essay's operations) by taking out what the simulator charges on its own: the
/// syscalls' crossings and their kernel work. `columns` is ring 3's or ring 0's.
impl CostModel {
    /// A switch between two threads of one process: a yield (sched_yield, a syscall with no
    /// kernel work beyond the null call's, that gives the CPU to another thread) less its
    /// syscall.
    pub fn thread_switch(&self, columns: &EventCosts) -> f64 {
        let syscall = columns.abi_call.value + self.kernel_work.call(WorkClass::Identity, 0.0);
        (columns.yield_cpu.value - syscall).max(0.0)
    }

    /// The kernel work of a one-byte send-receive round trip's syscalls: two pipe writes
    /// and two pipe reads of a byte each.
    pub fn send_receive_work(&self) -> f64 {
        2.0 * self.kernel_work.call(WorkClass::PipeWrite, 1.0)
            + 2.0 * self.kernel_work.call(WorkClass::PipeRead, 1.0)
    }

    /// A switch between processes: what a send-receive round trip (its four syscalls, their
    /// work, a switch to the other process and back) costs beyond its syscalls, halved.
    pub fn process_switch(&self, columns: &EventCosts) -> f64 {
        let rest =
            columns.send_receive.value - 4.0 * columns.abi_call.value - self.send_receive_work();
        (rest / 2.0).max(0.0)
    }

    /// The kernel work a fork + exec + wait is charged apart from its creation work: its
    /// syscalls', as the process class's, and the page faults its measurement took.
    pub fn create_process_charged_work(&self) -> f64 {
        CREATION_SYSCALLS * self.kernel_work.call(WorkClass::Process, 0.0)
            + self.creation_faults.value * self.kernel_work.call(WorkClass::PageFault, 0.0)
    }

    /// The kernel's work to create a process and run a program in it, beyond what its
    /// syscalls and page faults are charged: fork + exec + wait less those syscalls, their
    /// base work, the page faults its measurement took and the two switches (to the child,
    /// back to the parent). Charged a third at each step: the fork, the exec, the reaping
    /// wait.
    pub fn creation_work(&self, columns: &EventCosts) -> f64 {
        let rest = columns.create_process.value
            - CREATION_SYSCALLS * columns.abi_call.value
            - self.create_process_charged_work()
            - 2.0 * self.process_switch(columns);
        rest.max(0.0)
    }

    /// The switch and creation cycles the counts record, under `columns`.
    fn scheduling(&self, columns: &EventCosts, counts: &Counts) -> (f64, f64) {
        let switches = counts.thread_switches as f64 * self.thread_switch(columns)
            + counts.process_switches as f64 * self.process_switch(columns);
        let steps = (counts.forks + counts.execs + counts.reaps) as f64;
        let copies = counts.fork_pages as f64 * self.fork_per_page.value
            + counts.fork_areas as f64 * self.fork_per_area.value;
        (switches, steps * self.creation_work(columns) / 3.0 + copies)
    }
}

impl CostModel {
    /// Cycles a mispredicted branch costs on `core` under this model.
    pub fn mispredict_cycles(&self, core: &uarch::Microarchitecture) -> f64 {
        self.branch_mispredict
            .as_ref()
            .map_or(f64::from(core.mispredict_penalty), |cost| cost.value)
    }

    /// The cycles `core` loses to the branch mispredictions the counts record.
    fn mispredictions(&self, core: &uarch::Microarchitecture, counts: &Counts) -> f64 {
        counts.branch_mispredictions as f64 * self.mispredict_cycles(core)
    }

    /// The ring-3 estimate for what the counts record.
    pub fn ring3_cycles(&self, counts: &Counts) -> Ring3Cycles {
        let user = match self.instruction_costs {
            InstructionCosts::Cpi => counts.guest_instructions as f64 * self.cpi.value,
            InstructionCosts::Microarchitecture(core) => {
                counts.guest_cycle_units as f64 / CYCLE_UNITS + self.mispredictions(core, counts)
            }
        };
        let crossings =
            counts.abi_calls as f64 * (self.ring3.abi_call.value + self.crossing_indirect.value);
        let (switches, creation) = self.scheduling(&self.ring3, counts);
        let work = self.syscall_work(counts) + creation;
        let (user, crossings, switches, work) = (
            user.round() as u64,
            crossings.round() as u64,
            switches.round() as u64,
            work.round() as u64,
        );
        Ring3Cycles {
            user_instructions: user,
            crossings,
            switches,
            kernel_work: work,
            total: user + crossings + switches + work,
        }
    }

    /// The syscalls' own kernel work: each class's calls and bytes at its prices.
    fn syscall_work(&self, counts: &Counts) -> f64 {
        CLASSES
            .iter()
            .map(|&(class, _)| self.class_work(class, counts.work.get(class)))
            .sum()
    }

    /// The kernel work of `count`'s calls and bytes of `class`.
    pub fn class_work(&self, class: WorkClass, count: work::ClassCount) -> f64 {
        let costs = self.kernel_work.class(class);
        count.calls as f64 * costs.base.value + count.bytes as f64 * costs.per_byte.value
    }

    /// The ring-0 estimate: the translated run's own instructions, syscalls as direct calls,
    /// the same kernel work, and the translator's costs.
    pub fn ring0_cycles(&self, counts: &Counts, events: &Ring0Events) -> Ring0Cycles {
        let priced = events
            .translated_instructions
            .saturating_sub(events.call_instructions);
        let instructions = match self.instruction_costs {
            InstructionCosts::Cpi => priced as f64 * self.cpi.value,
            InstructionCosts::Microarchitecture(core) => {
                events.translated_cycle_units as f64 / CYCLE_UNITS
                    + self.mispredictions(core, counts)
            }
        }
        .round() as u64;
        let calls = (counts.abi_calls as f64 * self.ring0.abi_call.value).round() as u64;
        let (switches, creation) = self.scheduling(&self.ring0, counts);
        let switches = switches.round() as u64;
        let kernel_work = (self.syscall_work(counts) + creation).round() as u64;
        let translation = (events.guest_instructions_translated as f64
            * self.translation.per_instruction.value)
            .round() as u64;
        let lookups = (events.indirect_lookups as f64 * self.translation.indirect_lookup.value)
            .round() as u64;
        Ring0Cycles {
            translated_instructions: instructions,
            calls,
            switches,
            kernel_work,
            translation,
            indirect_lookups: lookups,
            total: instructions + calls + switches + kernel_work + translation + lookups,
        }
    }

    pub fn seconds(&self, cycles: u64) -> f64 {
        cycles as f64 / (self.ghz.value * 1e9)
    }
}

/// Why a cost model could not be had. Each message is the one-line error the user sees.
#[derive(Debug, thiserror::Error)]
pub enum CostModelError {
    #[error("unknown cost model '{name}'; built-in models: {}; calibrated (this machine); or give a path to a .toml file", builtin::names().join(", "))]
    Unknown { name: String },
    #[error("{path}: cannot read cost model: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: bad cost model: {message}")]
    Invalid { path: String, message: String },
}

/// A cost model as a TOML file gives it. Every value is required; sources are optional.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    basis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation: Option<String>,
    /// "cpi" (the default) or a microarchitecture's name.
    #[serde(default = "cpi_name")]
    instruction_costs: String,
    /// Cycles a mispredicted branch costs; left out: the microarchitecture's penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    branch_mispredict: Option<f64>,
    cpi: f64,
    ghz: f64,
    ring3: ColumnsFile,
    ring0: ColumnsFile,
    translation: TranslationFile,
    /// By class name; `other` and `page_fault` are required, the rest default to `other`
    /// (identity to nothing).
    kernel_work: std::collections::BTreeMap<String, ClassFile>,
    #[serde(default)]
    crossing_indirect: f64,
    #[serde(default)]
    fork_per_page: f64,
    #[serde(default)]
    fork_per_area: f64,
    #[serde(default)]
    creation_faults: f64,
    #[serde(default)]
    sources: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TranslationFile {
    per_instruction: f64,
    indirect_lookup: f64,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ColumnsFile {
    abi_call: f64,
    #[serde(rename = "yield")]
    yield_cpu: f64,
    send_receive: f64,
    create_process: f64,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    base: f64,
    #[serde(default)]
    per_byte: f64,
}

impl ModelFile {
    fn into_model(self, path: &str) -> Result<CostModel, CostModelError> {
        let invalid = |message: String| CostModelError::Invalid {
            path: path.to_string(),
            message,
        };
        let mut fields = vec![
            ("cpi".to_string(), self.cpi),
            ("ghz".to_string(), self.ghz),
            ("ring3.abi_call".to_string(), self.ring3.abi_call),
            ("ring3.yield".to_string(), self.ring3.yield_cpu),
            ("ring3.send_receive".to_string(), self.ring3.send_receive),
            (
                "ring3.create_process".to_string(),
                self.ring3.create_process,
            ),
            ("ring0.abi_call".to_string(), self.ring0.abi_call),
            ("ring0.yield".to_string(), self.ring0.yield_cpu),
            ("ring0.send_receive".to_string(), self.ring0.send_receive),
            (
                "ring0.create_process".to_string(),
                self.ring0.create_process,
            ),
            (
                "translation.per_instruction".to_string(),
                self.translation.per_instruction,
            ),
            (
                "translation.indirect_lookup".to_string(),
                self.translation.indirect_lookup,
            ),
            ("crossing_indirect".to_string(), self.crossing_indirect),
            ("fork_per_page".to_string(), self.fork_per_page),
            ("fork_per_area".to_string(), self.fork_per_area),
            ("creation_faults".to_string(), self.creation_faults),
        ];
        if let Some(value) = self.branch_mispredict {
            fields.push(("branch_mispredict".to_string(), value));
        }
        if let Some(unknown) = self
            .kernel_work
            .keys()
            .find(|k| WorkClass::by_name(k).is_none())
        {
            let names: Vec<&str> = CLASSES.iter().map(|(_, n)| *n).collect();
            return Err(invalid(format!(
                "kernel_work.{unknown} is no class; classes: {}",
                names.join(", ")
            )));
        }
        if !self.kernel_work.contains_key("other") {
            return Err(invalid(
                "kernel_work.other is required (the classes not given default to it)".into(),
            ));
        }
        // A fault is no syscall: `other`'s price would be a guess of another kind.
        if !self.kernel_work.contains_key("page_fault") {
            return Err(invalid(
                "kernel_work.page_fault is required (a page fault's whole cost, in cycles)".into(),
            ));
        }
        for (name, class) in &self.kernel_work {
            fields.push((format!("kernel_work.{name}.base"), class.base));
            fields.push((format!("kernel_work.{name}.per_byte"), class.per_byte));
        }
        for (field, value) in &fields {
            if !value.is_finite() || *value < 0.0 {
                return Err(invalid(format!(
                    "{field} must be a finite number >= 0, not {value}"
                )));
            }
        }
        if self.ghz == 0.0 {
            return Err(invalid("ghz must be greater than 0".into()));
        }
        let known: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        if let Some(unknown) = self.sources.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(invalid(format!(
                "sources.\"{unknown}\" names no field; fields: {}",
                known.join(", ")
            )));
        }
        let cost = |field: &str, value: f64| Cost {
            value,
            source: self
                .sources
                .get(field)
                .cloned()
                .unwrap_or_else(|| format!("{path} (no source given)")),
        };
        let instruction_costs =
            InstructionCosts::by_name(&self.instruction_costs).ok_or_else(|| {
                invalid(format!(
                    "instruction_costs = \"{}\" is neither cpi nor a microarchitecture ({})",
                    self.instruction_costs,
                    uarch::names().join(", ")
                ))
            })?;
        let basis = if self.basis.is_empty() {
            format!("the figures in {path}, as its sources say")
        } else {
            self.basis.clone()
        };
        Ok(CostModel {
            name: self.name.clone(),
            description: self.description.clone(),
            basis,
            validation: self.validation.clone(),
            instruction_costs,
            branch_mispredict: self
                .branch_mispredict
                .map(|value| cost("branch_mispredict", value)),
            ring3: EventCosts {
                abi_call: cost("ring3.abi_call", self.ring3.abi_call),
                yield_cpu: cost("ring3.yield", self.ring3.yield_cpu),
                send_receive: cost("ring3.send_receive", self.ring3.send_receive),
                create_process: cost("ring3.create_process", self.ring3.create_process),
            },
            ring0: EventCosts {
                abi_call: cost("ring0.abi_call", self.ring0.abi_call),
                yield_cpu: cost("ring0.yield", self.ring0.yield_cpu),
                send_receive: cost("ring0.send_receive", self.ring0.send_receive),
                create_process: cost("ring0.create_process", self.ring0.create_process),
            },
            translation: TranslationCosts {
                per_instruction: cost(
                    "translation.per_instruction",
                    self.translation.per_instruction,
                ),
                indirect_lookup: cost(
                    "translation.indirect_lookup",
                    self.translation.indirect_lookup,
                ),
            },
            kernel_work: self.kernel_work_costs(&cost),
            crossing_indirect: cost("crossing_indirect", self.crossing_indirect),
            fork_per_page: cost("fork_per_page", self.fork_per_page),
            fork_per_area: cost("fork_per_area", self.fork_per_area),
            creation_faults: cost("creation_faults", self.creation_faults),
            cpi: cost("cpi", self.cpi),
            ghz: cost("ghz", self.ghz),
        })
    }
}

impl ModelFile {
    /// Each class's costs: as the file gives them, or as `other`'s (identity: nothing).
    fn kernel_work_costs(&self, cost: &impl Fn(&str, f64) -> Cost) -> KernelWork {
        KernelWork(CLASSES.map(|(class, name)| {
            let field = |term: &str, value: f64| cost(&format!("kernel_work.{name}.{term}"), value);
            match self.kernel_work.get(name) {
                Some(given) => ClassCosts {
                    base: field("base", given.base),
                    per_byte: field("per_byte", given.per_byte),
                },
                None if class == WorkClass::Identity => {
                    let nothing = || Cost {
                        value: 0.0,
                        source: "default: nothing beyond the null call".into(),
                    };
                    ClassCosts {
                        base: nothing(),
                        per_byte: nothing(),
                    }
                }
                None => {
                    let other = &self.kernel_work["other"];
                    let like_other = |term: &str, value: f64| Cost {
                        value,
                        source: format!("as kernel_work.other.{term} (the file gives no {name})"),
                    };
                    ClassCosts {
                        base: like_other("base", other.base),
                        per_byte: like_other("per_byte", other.per_byte),
                    }
                }
            }
        }))
    }
}

fn cpi_name() -> String {
    "cpi".into()
}

impl ColumnsFile {
    fn of(columns: &EventCosts) -> Self {
        Self {
            abi_call: columns.abi_call.value,
            yield_cpu: columns.yield_cpu.value,
            send_receive: columns.send_receive.value,
            create_process: columns.create_process.value,
        }
    }
}

impl CostModel {
    /// Every figure by its field name in a model file, with its source.
    pub fn fields(&self) -> Vec<(String, &Cost)> {
        let columns = |ring: &str, c: &'static str, cost| (format!("{ring}.{c}"), cost);
        let mut fields = vec![
            ("cpi".to_string(), &self.cpi),
            ("ghz".to_string(), &self.ghz),
            ("crossing_indirect".to_string(), &self.crossing_indirect),
            ("fork_per_page".to_string(), &self.fork_per_page),
            ("fork_per_area".to_string(), &self.fork_per_area),
            ("creation_faults".to_string(), &self.creation_faults),
            (
                "translation.per_instruction".to_string(),
                &self.translation.per_instruction,
            ),
            (
                "translation.indirect_lookup".to_string(),
                &self.translation.indirect_lookup,
            ),
        ];
        if let Some(cost) = &self.branch_mispredict {
            fields.push(("branch_mispredict".to_string(), cost));
        }
        for (ring, events) in [("ring3", &self.ring3), ("ring0", &self.ring0)] {
            fields.extend([
                columns(ring, "abi_call", &events.abi_call),
                columns(ring, "yield", &events.yield_cpu),
                columns(ring, "send_receive", &events.send_receive),
                columns(ring, "create_process", &events.create_process),
            ]);
        }
        for (class, name) in CLASSES {
            let costs = self.kernel_work.class(class);
            fields.push((format!("kernel_work.{name}.base"), &costs.base));
            fields.push((format!("kernel_work.{name}.per_byte"), &costs.per_byte));
        }
        fields
    }

    /// The model as a model file, every figure's source in its `sources` table: what
    /// `parse_toml` reads back as the same model.
    pub fn to_toml(&self) -> String {
        let file = ModelFile {
            name: self.name.clone(),
            description: self.description.clone(),
            basis: self.basis.clone(),
            validation: self.validation.clone(),
            instruction_costs: self.instruction_costs.name().to_string(),
            branch_mispredict: self.branch_mispredict.as_ref().map(|cost| cost.value),
            cpi: self.cpi.value,
            ghz: self.ghz.value,
            ring3: ColumnsFile::of(&self.ring3),
            ring0: ColumnsFile::of(&self.ring0),
            translation: TranslationFile {
                per_instruction: self.translation.per_instruction.value,
                indirect_lookup: self.translation.indirect_lookup.value,
            },
            kernel_work: CLASSES
                .iter()
                .map(|&(class, name)| {
                    let costs = self.kernel_work.class(class);
                    let (base, per_byte) = (costs.base.value, costs.per_byte.value);
                    (name.to_string(), ClassFile { base, per_byte })
                })
                .collect(),
            crossing_indirect: self.crossing_indirect.value,
            fork_per_page: self.fork_per_page.value,
            fork_per_area: self.fork_per_area.value,
            creation_faults: self.creation_faults.value,
            sources: self
                .fields()
                .into_iter()
                .map(|(field, cost)| (field, cost.source.clone()))
                .collect(),
        };
        toml::to_string(&file).expect("a cost model serializes")
    }
}

/// Parses a cost model from TOML text; `origin` names it in errors and default sources.
pub fn parse_toml(text: &str, origin: &str) -> Result<CostModel, CostModelError> {
    let file: ModelFile = toml::from_str(text).map_err(|e| CostModelError::Invalid {
        path: origin.to_string(),
        // toml's message spans lines (a snippet of the file); keep the error to one line.
        message: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })?;
    file.into_model(origin)
}

/// The name that stands for this machine's own calibration (`calibrated::cache_path`).
pub const CALIBRATED: &str = "calibrated";

/// A built-in model by name, or a model file by path (anything ending in .toml or with a '/').
/// `calibrated` is not resolved here: the caller calibrates first when it must.
pub fn resolve(spec: &str) -> Result<CostModel, CostModelError> {
    if let Some(model) = builtin::by_name(spec) {
        return Ok(model);
    }
    if spec.ends_with(".toml") || spec.contains('/') {
        let text = std::fs::read_to_string(Path::new(spec)).map_err(|source| {
            CostModelError::Unreadable {
                path: spec.to_string(),
                source,
            }
        })?;
        return parse_toml(&text, spec);
    }
    Err(CostModelError::Unknown {
        name: spec.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../cost-models/example.toml");

    /// Counts with `calls` syscalls of `class` moving `bytes`.
    fn work(entries: &[(WorkClass, u64, u64)]) -> work::WorkCounts {
        let mut counts = work::WorkCounts::default();
        for &(class, calls, bytes) in entries {
            for _ in 0..calls {
                counts.add_call(class);
            }
            counts.add_bytes(class, bytes);
        }
        counts
    }

    #[test]
    fn cycle_arithmetic() {
        let model = builtin::by_name("linux").unwrap();
        let counts = Counts {
            guest_instructions: 1000,
            abi_calls: 10,
            thread_switches: 2,
            process_switches: 2,
            forks: 1,
            fork_pages: 10,
            execs: 1,
            reaps: 1,
            work: work(&[
                (WorkClass::FileRead, 3, 1000),
                (WorkClass::Memory, 1, 0),
                (WorkClass::Identity, 6, 0),
            ]),
            ..Counts::default()
        };
        let cycles = model.ring3_cycles(&counts);
        // Linux (Aiken et al.): yield 906, send-receive 5,797, create process 719,447; the
        // syscalls' own work is each class's base per call and per byte.
        let work = &model.kernel_work;
        let price = |class: WorkClass| {
            let c = work.class(class);
            (c.base.value, c.per_byte.value)
        };
        let (pipe_write, pipe_write_byte) = price(WorkClass::PipeWrite);
        let (pipe_read, pipe_read_byte) = price(WorkClass::PipeRead);
        let (process, _) = price(WorkClass::Process);
        let (identity, _) = price(WorkClass::Identity);
        let send_receive_work =
            2.0 * (pipe_write + pipe_write_byte) + 2.0 * (pipe_read + pipe_read_byte);
        let process_switch = (5797.0 - 4.0 * 437.0 - send_receive_work) / 2.0;
        let (page_fault, _) = price(WorkClass::PageFault);
        let creation = 719_447.0
            - 4.0 * 437.0
            - 4.0 * process
            - model.creation_faults.value * page_fault
            - 2.0 * process_switch;
        let (file_read, file_read_byte) = price(WorkClass::FileRead);
        let (memory, _) = price(WorkClass::Memory);
        let expected_work = 3.0 * file_read
            + 1000.0 * file_read_byte
            + memory
            + 6.0 * identity
            + creation
            + 10.0 * model.fork_per_page.value;
        assert_eq!(cycles.user_instructions, (1000.0 * model.cpi.value) as u64);
        assert_eq!(cycles.crossings, 10 * 437);
        assert_eq!(
            cycles.switches,
            (2.0 * (906.0 - 437.0 - identity) + 2.0 * process_switch).round() as u64
        );
        assert_eq!(cycles.kernel_work, expected_work.round() as u64);
        assert_eq!(
            cycles.total,
            cycles.user_instructions + cycles.crossings + cycles.switches + cycles.kernel_work
        );
    }

    #[test]
    fn ring0_arithmetic() {
        let model = builtin::by_name("linux").unwrap();
        let counts = Counts {
            abi_calls: 10,
            thread_switches: 2,
            work: work(&[(WorkClass::PipeWrite, 4, 1000)]),
            ..Counts::default()
        };
        let events = Ring0Events {
            translated_instructions: 1200,
            translated_cycle_units: 0,
            call_instructions: 100,
            guest_instructions_translated: 50,
            indirect_lookups: 7,
        };
        let cycles = model.ring0_cycles(&counts, &events);
        // The calls' own 100 instructions are in the call constant, not priced again.
        assert_eq!(cycles.translated_instructions, 1100);
        assert_eq!(cycles.calls, (10.0 * model.ring0.abi_call.value) as u64);
        // Translated, a thread switch loses no crossing: the same as at ring 3.
        assert_eq!(cycles.switches, 2 * (906 - 437));
        assert_eq!(cycles.kernel_work, model.ring3_cycles(&counts).kernel_work);
        assert_eq!(
            cycles.translation,
            (50.0 * model.translation.per_instruction.value) as u64
        );
        assert_eq!(
            cycles.indirect_lookups,
            (7.0 * model.translation.indirect_lookup.value) as u64
        );
        assert_eq!(
            cycles.total,
            cycles.translated_instructions
                + cycles.calls
                + cycles.switches
                + cycles.kernel_work
                + cycles.translation
                + cycles.indirect_lookups
        );
    }

    #[test]
    fn a_microarchitecture_prices_instructions_by_their_blocks() {
        let mut model = builtin::by_name("linux").unwrap();
        model.instruction_costs = InstructionCosts::by_name("znver3").unwrap();
        let counts = Counts {
            guest_instructions: 1000,
            guest_cycle_units: 300 * 256 + 128,
            ..Counts::default()
        };
        // 300.5 cycles, whatever the instruction count and cpi.
        assert_eq!(model.ring3_cycles(&counts).user_instructions, 301);
        let events = Ring0Events {
            translated_instructions: 5000,
            translated_cycle_units: 700 * 256,
            call_instructions: 100,
            ..Ring0Events::default()
        };
        assert_eq!(
            model.ring0_cycles(&counts, &events).translated_instructions,
            700
        );
    }

    #[test]
    fn a_misprediction_costs_the_measured_figure_else_the_cores_penalty() {
        let text = EXAMPLE.replace("cpi = 1.0", "instruction_costs = \"znver4\"\ncpi = 1.0");
        let mut model = parse_toml(&text, "m.toml").unwrap();
        let counts = Counts {
            branch_mispredictions: 1000,
            ..Counts::default()
        };
        // LLVM's MispredictPenalty for Zen 4.
        assert_eq!(model.ring3_cycles(&counts).user_instructions, 13_000);
        let text = text.replace("cpi = 1.0", "branch_mispredict = 27.5\ncpi = 1.0");
        model = parse_toml(&text, "m.toml").unwrap();
        assert_eq!(model.ring3_cycles(&counts).user_instructions, 27_500);
        assert_eq!(
            model
                .ring0_cycles(&counts, &Ring0Events::default())
                .translated_instructions,
            27_500
        );
        assert_eq!(parse_toml(&model.to_toml(), "written.toml").unwrap(), model);
        let text = text.replace("branch_mispredict = 27.5", "branch_mispredict = -1");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("branch_mispredict"), "{err}");
    }

    #[test]
    fn instruction_costs_name_a_known_core() {
        let text = EXAMPLE.replace(
            "cpi = 1.0",
            "instruction_costs = \"skylake-server\"\ncpi = 1.0",
        );
        let model = parse_toml(&text, "m.toml").unwrap();
        assert_eq!(model.instruction_costs.name(), "skylake-server");
        let text = EXAMPLE.replace("cpi = 1.0", "instruction_costs = \"pentium\"\ncpi = 1.0");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("pentium") && err.contains("znver3"), "{err}");
    }

    #[test]
    fn every_shipped_model_file_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cost-models");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                parse_toml(&text, &path.display().to_string()).unwrap();
                files += 1;
            }
        }
        assert!(files >= 2, "{}", dir.display());
        let kpti = resolve(&dir.join("kvm-kpti.toml").display().to_string()).unwrap();
        let host = builtin::by_name("host").unwrap();
        // host plus 300 cycles a crossing, its ring-0 columns as host's derivation makes them.
        assert_eq!(kpti.ring3.abi_call.value, host.ring3.abi_call.value + 300.0);
        assert_eq!(kpti.creation_faults.value, host.creation_faults.value);
        assert_eq!(
            kpti.branch_mispredict.as_ref().map(|cost| cost.value),
            host.branch_mispredict.as_ref().map(|cost| cost.value)
        );
        assert_eq!(
            kpti.ring0.send_receive.value.round(),
            host.ring0.send_receive.value.round()
        );
        for (class, name) in CLASSES {
            let (a, b) = (kpti.kernel_work.class(class), host.kernel_work.class(class));
            // A page fault enters and leaves the kernel too: +300 as well.
            let kpti_extra = if class == WorkClass::PageFault {
                300.0
            } else {
                0.0
            };
            assert_eq!(a.base.value, b.base.value + kpti_extra, "{name}");
            assert_eq!(a.per_byte.value, b.per_byte.value, "{name}");
        }
    }

    #[test]
    fn the_example_file_parses() {
        let model = parse_toml(EXAMPLE, "example.toml").unwrap();
        assert_eq!(model.name, "example");
        assert!(model.ring3.abi_call.source.contains("Aiken"));
    }

    #[test]
    fn a_bad_field_is_named() {
        let text = EXAMPLE.replace("abi_call = 437", "abi_cal = 437");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("abi_cal"), "{err}");
        assert!(!err.contains('\n'));
        let text = EXAMPLE.replace("ghz = 2.596", "ghz = -1");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("ghz"), "{err}");
        let text = EXAMPLE.replace("[kernel_work]", "[kernel_work]\nfile_reed = { base = 1 }");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(
            err.contains("file_reed") && err.contains("file_read"),
            "{err}"
        );
    }

    #[test]
    fn classes_a_file_leaves_out_are_priced_as_other() {
        let model = parse_toml(EXAMPLE, "example.toml").unwrap();
        let other = model.kernel_work.class(WorkClass::Other);
        let futex = model.kernel_work.class(WorkClass::Futex);
        assert_eq!(futex.base.value, other.base.value);
        assert!(
            futex.base.source.contains("kernel_work.other"),
            "{}",
            futex.base.source
        );
        assert_eq!(model.kernel_work.class(WorkClass::Identity).base.value, 0.0);
        let text = EXAMPLE.replace("other = {", "memory = {");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("kernel_work.other is required"), "{err}");
        let text = EXAMPLE.replace("page_fault = {", "futex = {");
        let err = parse_toml(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("kernel_work.page_fault is required"), "{err}");
    }

    #[test]
    fn a_model_written_as_toml_reads_back_the_same() {
        for model in builtin::all() {
            let text = model.to_toml();
            let read = parse_toml(&text, "written.toml").unwrap();
            assert_eq!(read, model, "{text}");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones() {
        let err = resolve("plan9").unwrap_err().to_string();
        for name in builtin::names() {
            assert!(err.contains(name), "{err}");
        }
    }
}
