//! A cost model made from a calibration of this machine (`calibrate`): every figure's
//! source names the probe, its median and spread, the CPU and the date.

use std::ops::RangeInclusive;

use calibrate::{Calibration, Probe};

use super::builtin::{self, direct_call_columns, FUNCTION_CALL};
use super::work::WorkClass;
use super::{ClassCosts, Cost, CostModel, EventCosts, InstructionCosts, KernelWork};
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::FAULT_AROUND_BYTES;

/// Each kernel-work class and the probe that measures it; `None`: not measured on its own.
const CLASS_PROBES: [(WorkClass, Option<&'static str>); WorkClass::COUNT] = [
    (WorkClass::Identity, Some("identity")),
    (WorkClass::FileRead, Some("file_read")),
    (WorkClass::FileWrite, Some("file_write")),
    (WorkClass::PipeRead, Some("pipe_read")),
    (WorkClass::PipeWrite, Some("pipe_write")),
    (WorkClass::TcpSend, Some("tcp_send")),
    (WorkClass::TcpReceive, Some("tcp_receive")),
    (WorkClass::UnixSend, Some("unix_send")),
    (WorkClass::UnixReceive, Some("unix_receive")),
    (WorkClass::Connect, Some("connect")),
    (WorkClass::Accept, Some("accept")),
    (WorkClass::EpollWait, Some("epoll_wait")),
    (WorkClass::CharDevice, Some("dev_null")),
    (WorkClass::OpenStat, Some("open_stat")),
    (WorkClass::Descriptor, Some("fstat")),
    (WorkClass::Memory, Some("mmap_munmap")),
    (WorkClass::Process, None),
    (WorkClass::Futex, Some("futex")),
    (WorkClass::PageFault, Some("page_fault")),
    (WorkClass::Other, None),
];

/// The probes whose median base makes the classes measured by none (`other`, `process`).
const OTHER_FROM: [&str; 5] = ["open_stat", "fstat", "mmap_munmap", "mprotect", "futex"];

/// The page-fault class's per-byte term: what a page that fault-around maps beside the
/// faulting one costs (mapped, then unmapped), a page's bytes at a time. The probe's
/// per-page slope is one fault and its window's pages over the window; the fault itself is
/// priced as an anonymous one (`fault`, in core cycles), an assumption.
fn fault_around_per_byte(probe: &Probe, fault: f64, ticks_per_cycle: f64, measured: &str) -> Cost {
    let window = (FAULT_AROUND_BYTES / PAGE_SIZE) as f64;
    let slope = probe.per_page.as_ref().map_or(0.0, |fit| fit.median) / ticks_per_cycle;
    let per_page = ((window * slope - fault) / (window - 1.0)).max(0.0);
    Cost {
        value: per_page / PAGE_SIZE as f64,
        source: format!(
            "derived from {measured}: probe fault_around ({}): least-squares slope, median of {} rounds, \
             {slope:.0} core cycles a page, less a {window}-page window's one fault priced as probe page_fault's \
             ({fault:.0}, an assumption), per byte of the other pages",
            probe.what, probe.rounds
        ),
    }
}

/// The microarchitecture that prices instructions on a CPU: by vendor, family and models
/// (/proc/cpuinfo), the nearest core `uarch` has a table of; the first row that matches.
type CoreRow = (
    &'static str,
    u32,
    &'static [RangeInclusive<u32>],
    &'static str,
);
const CORES: &[CoreRow] = &[
    // Zen 5 (family 1Ah): Zen 4 is the nearest.
    ("AuthenticAMD", 0x1a, &[0..=0xff], "znver4"),
    // Zen 4 within family 19h; the rest of the family is Zen 3.
    (
        "AuthenticAMD",
        0x19,
        &[0x10..=0x1f, 0x60..=0x7f, 0xa0..=0xaf],
        "znver4",
    ),
    ("AuthenticAMD", 0x19, &[0..=0xff], "znver3"),
    // Golden Cove and later: Sapphire, Emerald and Granite Rapids, Alder and Raptor Lake.
    (
        "GenuineIntel",
        6,
        &[
            0x8f..=0x8f,
            0xcf..=0xcf,
            0xad..=0xae,
            0x97..=0x9a,
            0xb7..=0xbf,
        ],
        "sapphirerapids",
    ),
    // Skylake-SP and the other cores before Golden Cove.
    ("GenuineIntel", 6, &[0..=0xff], "skylake-server"),
];

#[derive(Debug, thiserror::Error)]
#[error("calibration: probe {0} is missing from the run")]
pub struct MissingProbe(&'static str);

/// The cost model `calibration` measured.
pub fn model(calibration: &Calibration) -> Result<CostModel, MissingProbe> {
    let machine = &calibration.machine;
    let cpu = format!("{} ({})", machine.model_name, machine.vendor_id);
    let probe = |name: &'static str| calibration.probe(name).ok_or(MissingProbe(name));
    // The probes time in TSC ticks; the model's unit is the core cycle, in which the
    // microarchitecture tables price instructions. A core can run faster than its TSC.
    let clock = probe("core_clock")?;
    let ticks_per_cycle = clock.median;
    let in_cycles = format!(
        "TSC ticks turned into core cycles at {ticks_per_cycle:.4} ticks a cycle (probe core_clock: {})",
        clock.what
    );
    let measured = |p: &Probe, ticks: f64, what: &str| {
        let value = ticks / ticks_per_cycle;
        Cost {
        value,
        source: format!(
            "simulate --calibrate on {cpu}, {}: probe {} ({}): {what} {ticks:.4} {} (median of {} rounds, low {:.4}, high {:.4}); \
             {in_cycles}: {value:.4}",
            machine.date, p.name, p.what, p.unit, p.rounds, p.low, p.high
        ),
    }
    };
    let column = |name: &'static str| -> Result<Cost, MissingProbe> {
        let p = probe(name)?;
        Ok(measured(p, p.median, "median"))
    };
    let ring3 = EventCosts {
        abi_call: column("null_call")?,
        yield_cpu: column("yield_threads")?,
        send_receive: column("pipe_ping_pong")?,
        create_process: column("create_process")?,
    };
    let ring3_values = [
        ring3.abi_call.value,
        ring3.yield_cpu.value,
        ring3.send_receive.value,
        ring3.create_process.value,
    ];
    let (ring0, ring0_sources) =
        direct_call_columns(ring3_values, FUNCTION_CALL.0, FUNCTION_CALL.1);
    let ring0_cost = |i: usize| Cost {
        value: ring0[i],
        source: ring0_sources[i].clone(),
    };
    let mut bases = OTHER_FROM
        .iter()
        .map(|name| probe(name).map(|p| p.median.max(0.0) / ticks_per_cycle))
        .collect::<Result<Vec<f64>, _>>()?;
    bases.sort_by(f64::total_cmp);
    let unmeasured_base = Cost {
        value: bases[bases.len() / 2],
        source: format!(
            "derived: the median of the bases of {} as measured by simulate --calibrate on {cpu}, {}",
            OTHER_FROM.join(", "),
            machine.date
        ),
    };
    let no_bytes = || Cost {
        value: 0.0,
        source: "assumption: no bytes move".into(),
    };
    let mut classes = Vec::with_capacity(WorkClass::COUNT);
    for (_, probe_name) in CLASS_PROBES {
        classes.push(match probe_name {
            None => ClassCosts {
                base: unmeasured_base.clone(),
                per_byte: no_bytes(),
            },
            Some(name) => {
                let p = probe(name)?;
                // Where bytes move, the base is the smallest transfer's cost less its bytes
                // at the fitted slope: the line's own intercept runs low where the cost is
                // not straight (a pipe takes a page every 4 KiB), even below zero.
                let (base, per_byte) = match (&p.per_byte, &p.per_page) {
                    // A page fault is the per-page slope: its base is the area's mmap and munmap.
                    (None, Some(fit)) => (
                        Cost {
                            value: fit.median.max(0.0) / ticks_per_cycle,
                            source: format!(
                                "simulate --calibrate on {cpu}, {}: probe {} ({}): least-squares slope over {} \
                                 counts of pages, median of {} rounds {:.1} ticks/page (low {:.1}, high {:.1}); \
                                 {in_cycles}",
                                machine.date,
                                p.name,
                                p.what,
                                fit.points.len(),
                                p.rounds,
                                fit.median,
                                fit.low,
                                fit.high
                            ),
                        },
                        no_bytes(),
                    ),
                    (Some(fit), _) => {
                        let slope = fit.median.max(0.0);
                        let smallest = fit.points.first().map_or(p.median, |point| {
                            point.median - slope * point.bytes as f64
                        });
                        let base = Cost {
                            value: smallest.max(0.0) / ticks_per_cycle,
                            source: format!(
                                "simulate --calibrate on {cpu}, {}: probe {} ({}): the {}-byte call's median less its \
                                 bytes at the slope, ticks/call; {in_cycles}",
                                machine.date,
                                p.name,
                                p.what,
                                fit.points.first().map_or(0, |point| point.bytes)
                            ),
                        };
                        let per_byte = Cost {
                            value: slope / ticks_per_cycle,
                            source: format!(
                                "simulate --calibrate on {cpu}, {}: probe {} ({}): least-squares slope over {} sizes, \
                                 median of {} rounds {slope:.4} ticks/byte (low {:.4}, high {:.4}); {in_cycles}",
                                machine.date,
                                p.name,
                                p.what,
                                fit.points.len(),
                                p.rounds,
                                fit.low,
                                fit.high
                            ),
                        };
                        (base, per_byte)
                    }
                    (None, None) => (measured(p, p.median.max(0.0), "base"), no_bytes()),
                };
                ClassCosts { base, per_byte }
            }
        });
    }
    classes[WorkClass::PageFault.index()].per_byte = fault_around_per_byte(
        probe("fault_around")?,
        classes[WorkClass::PageFault.index()].base.value,
        ticks_per_cycle,
        &format!("simulate --calibrate on {cpu}, {}", machine.date),
    );
    let kernel_work = KernelWork(
        classes
            .try_into()
            .expect("one entry per class, in CLASS_PROBES"),
    );
    let core = core_for(&machine.vendor_id, machine.family, machine.model);
    let tsc = probe("tsc_ghz")?;
    let ghz = Cost {
        value: tsc.median / ticks_per_cycle,
        source: format!(
            "simulate --calibrate on {cpu}, {}: the core's clock, probe tsc_ghz ({}) {:.4} GHz over probe core_clock's \
             {ticks_per_cycle:.4} TSC ticks a core cycle",
            machine.date, tsc.what, tsc.median
        ),
    };
    let fork_slope = |name: &'static str, unit: &str| -> Result<Cost, MissingProbe> {
        let p = probe(name)?;
        Ok(Cost {
            value: p
                .per_page
                .as_ref()
                .map_or(0.0, |fit| fit.median.max(0.0) / ticks_per_cycle),
            source: format!(
                "simulate --calibrate on {cpu}, {}: probe {name} ({}): least-squares slope, median of {} rounds, ticks \
                 {unit}; {in_cycles}",
                machine.date, p.what, p.rounds
            ),
        })
    };
    let fork_per_page = fork_slope("fork_per_page", "a page")?;
    let fork_per_area = fork_slope("fork_per_area", "an area")?;
    let creation = probe("create_process")?;
    let creation_faults = Cost {
        value: creation.page_faults.unwrap_or(0.0),
        source: format!(
            "simulate --calibrate on {cpu}, {}: probe create_process: minor page faults per process, the spawner's \
             and its children's (getrusage), the median of {} rounds",
            machine.date, creation.rounds
        ),
    };
    let pti = match machine.pti {
        Some(true) => ", page-table isolation on",
        Some(false) => ", page-table isolation off",
        None => "",
    };
    Ok(CostModel {
        name: "calibrated".into(),
        description: format!(
            "calibrated on {cpu}, Linux {}{pti}, {}",
            machine.kernel_release, machine.date
        ),
        basis: format!(
            "measured on {cpu} on {} by simulate --calibrate (medians of {} rounds); ring-0 call: a function call \
             (Unikraft); instructions priced {}",
            machine.date,
            ring3_rounds(calibration),
            match core.microarchitecture() {
                Some(core) => format!("by LLVM's {} scheduling model", core.name),
                None => "at one cycle each, an assumption (no scheduling model for this CPU)".into(),
            }
        ),
        validation: None,
        ring3,
        ring0: EventCosts {
            abi_call: ring0_cost(0),
            yield_cpu: ring0_cost(1),
            send_receive: ring0_cost(2),
            create_process: ring0_cost(3),
        },
        translation: builtin::translation_costs(ghz.value),
        kernel_work,
        crossing_indirect: builtin::crossing_indirect(),
        fork_per_page,
        fork_per_area,
        creation_faults,
        instruction_costs: core,
        branch_mispredict: Some(column("branch_mispredict")?),
        cpi: Cost {
            value: 1.0,
            source: "the guest clock's rate: one cycle per guest instruction (instructions are priced by the \
                     microarchitecture where there is one)"
                .into(),
        },
        ghz,
    })
}

/// The instruction pricing for a CPU (`CORES`); `cpi` where no row matches.
fn core_for(vendor_id: &str, family: u32, model: u32) -> InstructionCosts {
    CORES
        .iter()
        .find(|(vendor, row_family, models, _)| {
            *vendor == vendor_id
                && *row_family == family
                && models.iter().any(|range| range.contains(&model))
        })
        .and_then(|(.., core)| InstructionCosts::by_name(core))
        .unwrap_or(InstructionCosts::Cpi)
}

/// Where `--cost-model calibrated` keeps this machine's calibration:
/// `$XDG_CACHE_HOME/ringsim/calibrated.toml`, else `$HOME/.cache/ringsim/calibrated.toml`.
pub fn cache_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cache"))
        })?;
    Some(base.join("ringsim").join("calibrated.toml"))
}

/// Whether `model` was calibrated on a CPU like this machine's.
pub fn is_for_this_machine(model: &CostModel) -> bool {
    calibrate::cpu_model_name().is_ok_and(|name| {
        model
            .description
            .starts_with(&format!("calibrated on {name} ("))
    })
}

fn ring3_rounds(calibration: &Calibration) -> u32 {
    calibration.probe("null_call").map_or(0, |p| p.rounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::work::CLASSES;

    #[test]
    fn each_cpu_is_priced_by_its_nearest_core() {
        let name = |vendor, family, model| core_for(vendor, family, model).name();
        assert_eq!(name("AuthenticAMD", 0x1a, 0x02), "znver4");
        assert_eq!(name("AuthenticAMD", 0x19, 0x11), "znver4");
        assert_eq!(name("AuthenticAMD", 0x19, 0x01), "znver3");
        assert_eq!(name("GenuineIntel", 6, 0x8f), "sapphirerapids");
        assert_eq!(name("GenuineIntel", 6, 0x55), "skylake-server");
        assert_eq!(name("HygonGenuine", 0x18, 0), "cpi");
        for (.., core) in CORES {
            assert!(InstructionCosts::by_name(core).is_some(), "{core}");
        }
    }

    #[test]
    fn the_class_probes_are_in_class_order() {
        for (i, (class, _)) in CLASS_PROBES.iter().enumerate() {
            assert_eq!(class.index(), i, "{class:?}");
        }
    }

    #[test]
    fn a_quick_calibration_makes_a_complete_model_that_reads_back() {
        let calibration = calibrate::run(&calibrate::Options::quick()).unwrap();
        let model = model(&calibration).unwrap();
        let read = super::super::parse_toml(&model.to_toml(), "calibrated.toml").unwrap();
        assert_eq!(read, model);
        assert!(is_for_this_machine(&model), "{}", model.description);
        let ring3 = &model.ring3;
        // Sane on any x86-64 machine, real or virtual.
        assert!(
            (20.0..20_000.0).contains(&ring3.abi_call.value),
            "{ring3:?}"
        );
        assert!(
            ring3.yield_cpu.value > ring3.abi_call.value * 0.5,
            "{ring3:?}"
        );
        assert!(
            ring3.send_receive.value > 2.0 * ring3.abi_call.value,
            "{ring3:?}"
        );
        assert!(
            ring3.create_process.value > 10.0 * ring3.abi_call.value,
            "{ring3:?}"
        );
        assert!((0.5..6.0).contains(&model.ghz.value), "{}", model.ghz.value);
        let mispredict = model.branch_mispredict.as_ref().expect("measured");
        assert!((5.0..100.0).contains(&mispredict.value), "{mispredict:?}");
        assert!(mispredict.source.contains("branch_mispredict"));
        assert_eq!(model.ring0.abi_call.value, FUNCTION_CALL.0);
        for (class, costs) in CLASSES.iter().zip(&model.kernel_work.0) {
            assert!(costs.base.value >= 0.0 && costs.base.value < 1e6);
            // An epoll_wait's bytes are its ready events' records, each a poll and a copy.
            let most = if class.0 == WorkClass::EpollWait {
                10_000.0
            } else {
                5.0
            };
            assert!((0.0..most).contains(&costs.per_byte.value), "{class:?}");
            assert!(!costs.base.source.is_empty());
        }
        let file_read = model.kernel_work.class(WorkClass::FileRead);
        assert!(
            file_read.base.source.contains("file_read"),
            "{}",
            file_read.base.source
        );
    }
}
