//! The built-in cost models, one row each, every value with its source.

use super::work::{WorkClass, CLASSES};
use super::{ClassCosts, Cost, CostModel, EventCosts, KernelWork, TranslationCosts};

/// How a model's ring-0 columns are had.
enum Ring0 {
    /// A syscall becomes a direct call of this many cycles (with its source); each other
    /// column keeps its work and loses its crossings: ring3 − crossings × (ring3 ABI call −
    /// ring0 ABI call).
    DirectCall(f64, &'static str),
    /// All four columns from a source.
    Measured([f64; 4], &'static str),
}

/// Ring crossings in each column's event: a syscall; a yield; a write and a read on each
/// side of a one-byte ping-pong; fork, exec and wait.
const CROSSINGS: [f64; 4] = [1.0, 1.0, 4.0, super::CREATION_SYSCALLS];

/// One built-in model: ring-3 columns (ABI call, yield, send-receive, create process) and
/// how to get the ring-0 ones.
struct Row {
    name: &'static str,
    description: &'static str,
    /// What its estimates rest on, in a line.
    basis: &'static str,
    /// How far its estimates were from measurements, when that is known.
    validation: Option<&'static str>,
    /// `cpi` or a microarchitecture (`InstructionCosts::by_name`).
    instructions: &'static str,
    /// Processes are made by fork, which copies page-table entries (`fork_per_page`).
    forks: bool,
    /// Where `CREATION_FAULTS` comes from for this model.
    creation_faults_source: &'static str,
    ring3: [f64; 4],
    ring3_source: &'static str,
    ring0: Ring0,
}

const KML: &str = "Kernel Mode Linux (Maeda): getpid 432 -> 12 cycles when the process runs in the kernel, IA-32 \
                   (shared/DESIGN.md)";
const SIP_PHYS: [f64; 4] = [80.0, 365.0, 1_041.0, 388_162.0];

const SINGULARITY_TABLE: &str =
    "Aiken, Fähndrich, Hawblitzel, Hunt, Larus, \"Deconstructing Process Isolation\", MSPC 2006, Table 1 (cycles)";

/// How far `host`'s estimates were from measured native CPU time (BENCHMARKS.md, issue 11).
const HOST_VALIDATION: &str = "bench/fidelity --runs 5 --cost-model host on this machine kind, 2026-11-30: \
                               predicted / measured native CPU time over 16 programs, geometric mean 0.98 \
                               (range 0.78-1.15, all 16 within 25 %; syscall loops 0.78-1.09, compute 0.92-1.10, \
                               fork+exec+wait 0.81, a shell pipeline 1.15)";

/// The basis of the models of the essay's systems.
const PUBLISHED: &str = "published figures: Aiken et al., MSPC 2006 (the four operations), Kernel Mode Linux \
                         (the ring-0 call); kernel work and translation measured on this project's machine kind; \
                         one cycle per instruction, an assumption";

const ROWS: &[Row] = &[
    Row {
        name: "linux",
        description: "Linux as measured by Aiken et al. (2006)",
        basis: PUBLISHED,
        validation: None,
        instructions: "cpi",
        forks: true,
        creation_faults_source: CREATION_FAULTS_ASSUMED,
        ring3: [437.0, 906.0, 5_797.0, 719_447.0],
        ring3_source: SINGULARITY_TABLE,
        ring0: Ring0::DirectCall(12.0, KML),
    },
    Row {
        name: "freebsd",
        description: "FreeBSD as measured by Aiken et al. (2006)",
        basis: PUBLISHED,
        validation: None,
        instructions: "cpi",
        forks: true,
        creation_faults_source: CREATION_FAULTS_ASSUMED,
        ring3: [878.0, 911.0, 13_304.0, 1_032_254.0],
        ring3_source: SINGULARITY_TABLE,
        ring0: Ring0::DirectCall(12.0, KML),
    },
    Row {
        name: "windows",
        description: "Windows as measured by Aiken et al. (2006)",
        basis: PUBLISHED,
        validation: None,
        instructions: "cpi",
        forks: true,
        creation_faults_source: CREATION_FAULTS_ASSUMED,
        ring3: [627.0, 753.0, 6_344.0, 5_375_735.0],
        ring3_source: SINGULARITY_TABLE,
        ring0: Ring0::DirectCall(12.0, KML),
    },
    Row {
        name: "singularity-sip",
        description: "Singularity, software-isolated processes in ring 0, no hardware switch (SIP-Phys)",
        basis: PUBLISHED,
        validation: None,
        instructions: "cpi",
        forks: false,
        creation_faults_source: CREATION_FAULTS_ASSUMED,
        ring3: SIP_PHYS,
        ring3_source: SINGULARITY_TABLE,
        ring0: Ring0::Measured(SIP_PHYS, "SIP-Phys processes already run in ring 0 with no hardware switch: Aiken et al., Table 1"),
    },
    Row {
        name: "singularity-hip",
        description: "Singularity, hardware-isolated processes in ring 3 (HIP-R3)",
        basis: PUBLISHED,
        validation: None,
        instructions: "cpi",
        forks: false,
        creation_faults_source: CREATION_FAULTS_ASSUMED,
        ring3: [304.0, 638.0, 2_580.0, 830_999.0],
        ring3_source: SINGULARITY_TABLE,
        ring0: Ring0::Measured(SIP_PHYS, "the same processes without hardware isolation, SIP-Phys: Aiken et al., Table 1"),
    },
    Row {
        name: "host",
        description: "This project's machine kind: 2 vCPU AMD EPYC (Zen 5) KVM guest, Linux 6.18, no KPTI, core clock \
                      4.2 GHz under load (TSC 2.596 GHz)",
        basis: "measured on this project's machine kind (AMD EPYC, 2026-11-30) by simulate --calibrate; ring-0 call: \
                a function call (Unikraft); instructions priced by LLVM 19's znver4 scheduling model \
                (Zen 4, the nearest to this Zen 5)",
        validation: Some(HOST_VALIDATION),
        instructions: "znver4",
        forks: true,
        creation_faults_source: CREATION_FAULTS_MEASURED,
        ring3: [532.0, 4_621.0, 17_004.0, 313_523.0],
        ring3_source: "simulate --calibrate on this project's machine kind (AMD EPYC, KVM, Linux 6.18, no KPTI), \
                       2026-11-30, the median of three full runs (each a median of 31 rounds), in core cycles: \
                       null_call (raw getppid), yield_threads, pipe_ping_pong (one byte there and back between two \
                       processes on one CPU), create_process (fork + execve + wait4 from a minimal static parent) \
                       (BENCHMARKS.md, issue 11)",
        ring0: Ring0::DirectCall(FUNCTION_CALL.0, FUNCTION_CALL.1),
    },
];

/// Kernel work by class, cycles per call and per byte, with the source of each row. The
/// 2006 paper measured only its four operations, so every model takes these from this
/// project's machine kind, as `simulate --calibrate` measured it (rounded; BENCHMARKS.md,
/// issue 11).
const KERNEL_WORK: [(WorkClass, f64, f64, &str); WorkClass::COUNT] = [
    (
        WorkClass::Identity,
        0.0,
        0.0,
        "by definition: a null call's work, which the crossing includes",
    ),
    (WorkClass::FileRead, 784.0, 0.0480, CALIBRATED_ON_KIND),
    (WorkClass::FileWrite, 1_624.0, 0.0532, CALIBRATED_ON_KIND),
    (WorkClass::PipeRead, 367.0, 0.329, CALIBRATED_ON_KIND),
    (WorkClass::PipeWrite, 505.0, 0.268, CALIBRATED_ON_KIND),
    (WorkClass::TcpSend, 12_344.0, 0.239, SOCKETS_ON_KIND),
    (WorkClass::TcpReceive, 11_916.0, 0.0776, SOCKETS_ON_KIND),
    (WorkClass::UnixSend, 2_309.0, 0.170, SOCKETS_ON_KIND),
    (WorkClass::UnixReceive, 2_312.0, 0.176, SOCKETS_ON_KIND),
    (WorkClass::Connect, 55_282.0, 0.0, SOCKETS_ON_KIND),
    (WorkClass::Accept, 7_719.0, 0.0, SOCKETS_ON_KIND),
    (WorkClass::EpollWait, 357.0, 49.0, EPOLL_SCALED),
    (WorkClass::CharDevice, 94.0, 0.0, CALIBRATED_ON_KIND),
    (WorkClass::OpenStat, 2_658.0, 0.0, CALIBRATED_ON_KIND),
    (WorkClass::Descriptor, 621.0, 0.0, CALIBRATED_ON_KIND),
    (WorkClass::Memory, 5_276.0, 0.0, CALIBRATED_ON_KIND),
    (WorkClass::Process, 1_865.0, 0.0, CALIBRATED_UNMEASURED),
    (WorkClass::Futex, 178.0, 0.0, CALIBRATED_ON_KIND),
    (WorkClass::PageFault, 6_101.0, 0.2045, PAGE_FAULT_ON_KIND),
    (WorkClass::Other, 1_865.0, 0.0, CALIBRATED_UNMEASURED),
];

/// Where the socket rows of the kernel-work table come from.
const SOCKETS_ON_KIND: &str = "simulate --calibrate on this project's machine kind (AMD EPYC, KVM, Linux 6.18, \
                               no KPTI), 2026-12-01: the class's probe, beyond the null call, the median of three \
                               full runs, in core cycles (BENCHMARKS.md, issue 14)";

/// Where the epoll_wait row comes from: measured on the other machine kind these sessions
/// run on, and scaled to this one by how the two differ in the classes measured on both.
const EPOLL_SCALED: &str = "derived: simulate --calibrate's epoll_wait probe on an Intel Xeon KVM guest (2 vCPU, \
                            Linux 6.18), 2026-12-01, the median of five full runs, 138 core cycles a call and \
                            18.90 a byte of the ready events' records (16.5-28.6; 227 an event), times 2.59, the \
                            geometric mean of this machine kind's figure over the Intel guest's for the 16 classes \
                            both measured (1.39-3.84) (BENCHMARKS.md, issue 14)";

/// Where the kernel-work table comes from.
const CALIBRATED_ON_KIND: &str = "simulate --calibrate on this project's machine kind (AMD EPYC, KVM, Linux 6.18, \
                                  no KPTI), 2026-11-30: the class's probe, beyond the null call, the median of three \
                                  full runs, in core cycles (BENCHMARKS.md, issue 11)";
const PAGE_FAULT_ON_KIND: &str = "simulate --calibrate on this project's machine kind (AMD EPYC, KVM, Linux 6.18, \
                                  no KPTI), 2026-11-30, the median of three full runs, in core cycles (BENCHMARKS.md, \
                                  issue 11): base, probe page_fault, mmap of 0 to 4,096 anonymous pages, each written \
                                  once, munmap, least-squares slope per page (6,056-6,135); per byte, of the pages a \
                                  read fault on a file maps around it, probe fault_around, mmap of 0 to 4,096 pages of \
                                  a file in the page cache, one byte read per 16-page window, munmap, slope per page \
                                  less the window's one fault at the base, over a page's bytes (0.2003-0.2070)";
const CALIBRATED_UNMEASURED: &str = "derived: the median of the bases of open_stat, fstat, mmap_munmap, mprotect and \
                                     futex, simulate --calibrate on this project's machine kind, 2026-11-30, in core \
                                     cycles";

fn kernel_work() -> KernelWork {
    KernelWork(CLASSES.map(|(class, _)| {
        let (_, base, per_byte, source) = KERNEL_WORK[class.index()];
        let cost = |value: f64| Cost {
            value,
            source: source.to_string(),
        };
        ClassCosts {
            base: cost(base),
            per_byte: cost(per_byte),
        }
    }))
}

/// The ring-0 columns and the source of each.
fn ring0_columns(row: &Row) -> ([f64; 4], [String; 4]) {
    match row.ring0 {
        Ring0::Measured(values, source) => (values, std::array::from_fn(|_| source.to_string())),
        Ring0::DirectCall(call, source) => direct_call_columns(row.ring3, call, source),
    }
}

/// Ring-0 columns where a syscall becomes a direct call of `call` cycles (`source`): each
/// other column keeps its work and loses its crossings.
pub fn direct_call_columns(ring3: [f64; 4], call: f64, source: &str) -> ([f64; 4], [String; 4]) {
    let saved = ring3[0] - call;
    let values = std::array::from_fn(|i| {
        if i == 0 {
            call
        } else {
            ring3[i] - CROSSINGS[i] * saved
        }
    });
    let sources = std::array::from_fn(|i| {
        if i == 0 {
            source.to_string()
        } else {
            format!(
                "derived: the ring-3 figure less {} crossing(s) of {saved} cycles (ring-3 ABI call {} - ring-0 call {call})",
                CROSSINGS[i], ring3[0]
            )
        }
    });
    (values, sources)
}

/// What translation costs, in every built-in and calibrated model, on a core clocked at
/// `ghz`.
pub fn translation_costs(ghz: f64) -> TranslationCosts {
    let cost = |value: f64, source: &str| Cost {
        value,
        source: source.to_string(),
    };
    TranslationCosts {
        per_instruction: cost(
            (TRANSLATION_NS * ghz).round(),
            &format!(
                "measured: this project's translator, about {TRANSLATION_NS} ns per guest instruction (cargo \
                 bench -p translator, BENCHMARKS.md), at {ghz} GHz"
            ),
        ),
        indirect_lookup: cost(
            0.0,
            "nothing beyond the lookup's own instructions: the runtime's in-cache lookup (a table \
             probe of about 17 instructions, DynamoRIO-style) runs as translated code, counted and \
             priced like the rest",
        ),
    }
}

/// Crossings' indirect cost: off.
pub fn crossing_indirect() -> Cost {
    Cost {
        value: 0.0,
        source: "off by default; FlexSC (Soares & Stumm, OSDI 2010) shows crossings also pollute caches and TLBs"
            .into(),
    }
}

/// This machine kind's core clock under load, GHz: the rate of every cycle figure measured
/// on it (a calibration's TSC ticks are turned into core cycles, the unit the instruction
/// tables price in).
const MACHINE_KIND_GHZ: f64 = 4.206;

/// Where `host`'s creation faults come from, and what the published models assume.
const CREATION_FAULTS_MEASURED: &str = "simulate --calibrate on this project's machine kind, 2026-11-30: probe \
                                        create_process, minor page faults per process (getrusage), the median \
                                        of three full runs";
const CREATION_FAULTS_ASSUMED: &str = "assumption: the minor page faults of a minimal fork + execve + wait4 on \
                                       this project's machine kind (simulate --calibrate's create_process probe, \
                                       2026-11-30), which its Create Proc figure includes, as this one's does its own";

/// Minor page faults per process in a minimal fork + execve + wait4 on this machine kind:
/// the create_process probe's, taken out of the creation work (`CostModel::creation_faults`).
const CREATION_FAULTS: f64 = 5.0;

/// What a fork adds per area of the parent's on this machine kind, core cycles.
const FORK_PER_AREA: f64 = 2_388.0;
const FORK_PER_AREA_SOURCE: &str = "simulate --calibrate on this project's machine kind, 2026-11-30: probe \
                                    fork_per_area, fork + execve + wait4 from a parent holding 0 to 4,096 \
                                    one-page areas more, never touched, least-squares slope, the median of three \
                                    full runs (2,359-2,523 core cycles an area) (BENCHMARKS.md, issue 11)";

/// What a mispredicted branch costs on this machine kind, core cycles.
const BRANCH_MISPREDICT: f64 = 27.4;
const BRANCH_MISPREDICT_SOURCE: &str = "simulate --calibrate on this project's machine kind, 2026-11-30: probe \
                                        branch_mispredict, a branch on a byte just loaded over random bytes against \
                                        bytes that always take it, per misprediction, the median of three full runs \
                                        (26.8-27.5 core cycles; LLVM's znver4 penalty is 13) (BENCHMARKS.md, issue 11)";

/// What this project's translator takes per guest instruction, nanoseconds.
const TRANSLATION_NS: f64 = 616.0;

/// The ring-0 call of the `host` and calibrated models: a function call.
pub const FUNCTION_CALL: (f64, &str) = (
    6.0,
    "a function call, 6 cycles: Unikraft (Kuenzer et al., EuroSys 2021) artifact",
);

fn model(row: &Row) -> CostModel {
    let cost = |value: f64, source: &str| Cost {
        value,
        source: source.to_string(),
    };
    let (ring0, ring0_sources) = ring0_columns(row);
    let [abi, yld, send, create] = row.ring3;
    CostModel {
        name: row.name.to_string(),
        description: row.description.to_string(),
        basis: row.basis.to_string(),
        validation: row.validation.map(str::to_string),
        instruction_costs: super::InstructionCosts::by_name(row.instructions)
            .expect("a built-in model names a known microarchitecture"),
        // A row that prices instructions prices them on this machine kind's core.
        branch_mispredict: (row.instructions != "cpi")
            .then(|| cost(BRANCH_MISPREDICT, BRANCH_MISPREDICT_SOURCE)),
        ring3: EventCosts {
            abi_call: cost(abi, row.ring3_source),
            yield_cpu: cost(yld, row.ring3_source),
            send_receive: cost(send, row.ring3_source),
            create_process: cost(create, row.ring3_source),
        },
        ring0: EventCosts {
            abi_call: cost(ring0[0], &ring0_sources[0]),
            yield_cpu: cost(ring0[1], &ring0_sources[1]),
            send_receive: cost(ring0[2], &ring0_sources[2]),
            create_process: cost(ring0[3], &ring0_sources[3]),
        },
        translation: translation_costs(MACHINE_KIND_GHZ),
        kernel_work: kernel_work(),
        crossing_indirect: crossing_indirect(),
        fork_per_page: if row.forks {
            cost(
            606.0,
            "simulate --calibrate on this project's machine kind, 2026-11-30: probe fork_per_page, fork + execve + \
             wait4 from a parent holding 0 to 4,096 written anonymous pages, least-squares slope, the median of \
             three full runs (597-616 core cycles a page) (BENCHMARKS.md, issue 11)",
            )
        } else {
            cost(0.0, "Singularity makes processes afresh, with no fork: no page-table entries are copied")
        },
        fork_per_area: if row.forks {
            cost(FORK_PER_AREA, FORK_PER_AREA_SOURCE)
        } else {
            cost(0.0, "Singularity makes processes afresh, with no fork: no areas are copied")
        },
        creation_faults: cost(CREATION_FAULTS, row.creation_faults_source),
        cpi: cost(
            1.0,
            if row.instructions == "cpi" {
                "assumption: one cycle per guest instruction (no CPU counters in this VM to measure it)"
            } else {
                "the guest clock's rate: one cycle per guest instruction (instructions are priced by the \
                 microarchitecture)"
            },
        ),
        ghz: cost(
            MACHINE_KIND_GHZ,
            "this machine kind's core clock under load: simulate --calibrate's tsc_ghz (2.596) over core_clock's \
             0.617 TSC ticks a core cycle, 2026-11-30; used to turn cycles into seconds",
        ),
    }
}

/// The built-in model called `name`.
pub fn by_name(name: &str) -> Option<CostModel> {
    ROWS.iter().find(|r| r.name == name).map(model)
}

pub fn names() -> Vec<&'static str> {
    ROWS.iter().map(|r| r.name).collect()
}

/// Every built-in model, in table order.
pub fn all() -> Vec<CostModel> {
    ROWS.iter().map(model).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_a_source() {
        for m in all() {
            let costs = [
                &m.ring0.abi_call,
                &m.ring0.yield_cpu,
                &m.ring0.send_receive,
                &m.ring0.create_process,
                &m.translation.per_instruction,
                &m.translation.indirect_lookup,
                &m.ring3.abi_call,
                &m.ring3.yield_cpu,
                &m.ring3.send_receive,
                &m.ring3.create_process,
                &m.crossing_indirect,
                &m.cpi,
                &m.ghz,
            ];
            let work = m.kernel_work.0.iter().flat_map(|c| [&c.base, &c.per_byte]);
            for c in costs.into_iter().chain(work) {
                assert!(!c.source.is_empty(), "{}", m.name);
                assert!(c.value >= 0.0);
            }
        }
    }

    #[test]
    fn ring0_columns_remove_the_crossings_and_keep_the_work() {
        let linux = by_name("linux").unwrap();
        assert_eq!(linux.ring0.abi_call.value, 12.0);
        assert_eq!(linux.ring0.yield_cpu.value, 906.0 - (437.0 - 12.0));
        assert_eq!(
            linux.ring0.send_receive.value,
            5_797.0 - 4.0 * (437.0 - 12.0)
        );
        assert_eq!(
            linux.ring0.create_process.value,
            719_447.0 - 4.0 * (437.0 - 12.0)
        );
        let hip = by_name("singularity-hip").unwrap();
        assert_eq!(hip.ring0.abi_call.value, 80.0);
    }

    #[test]
    fn the_kernel_work_table_is_in_class_order() {
        for (i, row) in KERNEL_WORK.iter().enumerate() {
            assert_eq!(row.0.index(), i, "{:?}", row.0);
        }
    }

    #[test]
    fn the_required_models_exist() {
        for name in [
            "linux",
            "freebsd",
            "windows",
            "singularity-sip",
            "singularity-hip",
        ] {
            assert!(by_name(name).is_some(), "{name}");
        }
    }
}
