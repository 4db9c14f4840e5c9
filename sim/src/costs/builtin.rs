//! The built-in cost models, one row each, every value with its source.

use super::{Cost, CostModel, EventCosts, KernelWork};

/// One built-in model: ring-3 columns (ABI call, yield, send-receive, create process).
struct Row {
    name: &'static str,
    description: &'static str,
    ring3: [f64; 4],
    ring3_source: &'static str,
}

const SINGULARITY_TABLE: &str =
    "Aiken, Fähndrich, Hawblitzel, Hunt, Larus, \"Deconstructing Process Isolation\", MSPC 2006, Table 1 (cycles)";

const ROWS: &[Row] = &[
    Row {
        name: "linux",
        description: "Linux as measured by Aiken et al. (2006)",
        ring3: [437.0, 906.0, 5_797.0, 719_447.0],
        ring3_source: SINGULARITY_TABLE,
    },
    Row {
        name: "freebsd",
        description: "FreeBSD as measured by Aiken et al. (2006)",
        ring3: [878.0, 911.0, 13_304.0, 1_032_254.0],
        ring3_source: SINGULARITY_TABLE,
    },
    Row {
        name: "windows",
        description: "Windows as measured by Aiken et al. (2006)",
        ring3: [627.0, 753.0, 6_344.0, 5_375_735.0],
        ring3_source: SINGULARITY_TABLE,
    },
    Row {
        name: "singularity-sip",
        description: "Singularity, software-isolated processes in ring 0, no hardware switch (SIP-Phys)",
        ring3: [80.0, 365.0, 1_041.0, 388_162.0],
        ring3_source: SINGULARITY_TABLE,
    },
    Row {
        name: "singularity-hip",
        description: "Singularity, hardware-isolated processes in ring 3 (HIP-R3)",
        ring3: [304.0, 638.0, 2_580.0, 830_999.0],
        ring3_source: SINGULARITY_TABLE,
    },
    Row {
        name: "host",
        description: "This project's machine kind: 2 vCPU AMD EPYC Zen 5 VM, Debian 12, TSC 2.596 GHz",
        ring3: [282.0, 948.0, 10_200.0, 335_000.0],
        ring3_source: "measured on this machine kind with rdtsc, median of 7 (shared/DESIGN.md, \"Measured facts\"): \
                       raw getppid 273-291, sched_yield 912-984, 1-byte pipe ping-pong on one CPU, \
                       fork+exec+wait of a static musl `true`",
    },
];

/// Figures measured on this project's machine kind by bench/host_costs.c (BENCHMARKS.md).
const HOST_MEASUREMENT: &str = "bench/host_costs.c on this machine kind (BENCHMARKS.md)";

fn model(row: &Row) -> CostModel {
    let cost = |value: f64, source: &str| Cost {
        value,
        source: source.to_string(),
    };
    let [abi, yld, send, create] = row.ring3;
    CostModel {
        name: row.name.to_string(),
        description: row.description.to_string(),
        ring3: EventCosts {
            abi_call: cost(abi, row.ring3_source),
            yield_cpu: cost(yld, row.ring3_source),
            send_receive: cost(send, row.ring3_source),
            create_process: cost(create, row.ring3_source),
        },
        kernel_work: KernelWork {
            syscall_base: cost(
                700.0,
                &format!("{HOST_MEASUREMENT}: a 1-byte pread from the page cache minus a null getppid, TSC ticks"),
            ),
            per_byte: cost(
                0.0675,
                &format!("{HOST_MEASUREMENT}: slope of pread time between 1 byte and 64 KiB, TSC ticks per byte"),
            ),
        },
        crossing_indirect: cost(
            0.0,
            "off by default; FlexSC (Soares & Stumm, OSDI 2010) shows crossings also pollute caches and TLBs",
        ),
        cpi: cost(1.0, "assumption: one cycle per guest instruction (no CPU counters in this VM to measure it)"),
        ghz: cost(2.596, "this machine kind's TSC rate (shared/DESIGN.md), used to turn cycles into seconds"),
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
                &m.ring3.abi_call,
                &m.ring3.yield_cpu,
                &m.ring3.send_receive,
                &m.ring3.create_process,
                &m.kernel_work.syscall_base,
                &m.kernel_work.per_byte,
                &m.crossing_indirect,
                &m.cpi,
                &m.ghz,
            ];
            for c in costs {
                assert!(!c.source.is_empty(), "{}", m.name);
                assert!(c.value >= 0.0);
            }
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
