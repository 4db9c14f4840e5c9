//! The essay's four columns (Aiken et al., "Deconstructing Process Isolation", MSPC 2006:
//! ABI call, Yield, PSR, Create Proc), measured end to end on the corpus microbenchmarks
//! under every built-in cost model, per operation, at ring 3 and translated at ring 0.
//!
//! Each run is made at two sizes and the difference divided by the operations between
//! them, so that start-up and the one-time translation of the loop cancel. At ring 3 the
//! estimate per operation is the model's column plus named terms, and nothing else: the
//! loop's own user instructions, the syscalls and switches it makes beyond the column's
//! (the column is its syscalls, its switches and, for a process, the kernel's creation
//! work), and the kernel work of its syscalls (a base per syscall, the bytes copied). At
//! ring 0 the same operation costs what the translated run executes: printed beside it, the
//! essay's question answered (`cargo test --test essay_columns -- --nocapture`); a ring-0
//! ABI call costs exactly the model's ring-0 figure plus the loop's other instructions.

mod common;

use std::ffi::OsStr;

use sim::costs::{builtin, CostModel};

/// One microbenchmark: the corpus program, its argument at the two sizes and what one
/// operation is made of in the model's terms.
struct Column {
    name: &'static str,
    program: &'static str,
    extra_args: &'static [&'static str],
    sizes: [u64; 2],
    /// Operations per unit of the size argument.
    per_unit: u64,
    column: fn(&CostModel) -> f64,
    /// The kernel work of its syscalls (and, for Create Proc, of its page faults) that the
    /// column already holds.
    column_work: fn(&CostModel) -> f64,
    syscalls: f64,
    thread_switches: f64,
    process_switches: f64,
    /// Process creations (each a fork, an exec and a reaping wait).
    creations: f64,
}

const COLUMNS: &[Column] = &[
    Column {
        name: "ABI call",
        program: "abi_call",
        extra_args: &[],
        sizes: [1000, 2000],
        per_unit: 1,
        column: |m| m.ring3.abi_call.value,
        column_work: |_| 0.0,
        syscalls: 1.0,
        thread_switches: 0.0,
        process_switches: 0.0,
        creations: 0.0,
    },
    // Each of the two threads yields `size` times: an operation is one yield.
    Column {
        name: "Yield",
        program: "yield_threads",
        extra_args: &[],
        sizes: [100, 200],
        per_unit: 2,
        column: |m| m.ring3.yield_cpu.value,
        column_work: |_| 0.0,
        syscalls: 1.0,
        thread_switches: 1.0,
        process_switches: 0.0,
        creations: 0.0,
    },
    Column {
        name: "PSR",
        program: "psr",
        extra_args: &[],
        sizes: [100, 200],
        per_unit: 1,
        column: |m| m.ring3.send_receive.value,
        column_work: CostModel::send_receive_work,
        syscalls: 4.0,
        thread_switches: 0.0,
        process_switches: 2.0,
        creations: 0.0,
    },
    Column {
        name: "Create Proc",
        program: "create_proc",
        extra_args: &["tiny_true"],
        sizes: [10, 20],
        per_unit: 1,
        column: |m| m.ring3.create_process.value,
        column_work: CostModel::create_process_charged_work,
        // fork, execve, the child's exit_group, wait4.
        syscalls: sim::costs::CREATION_SYSCALLS,
        thread_switches: 0.0,
        process_switches: 2.0,
        creations: 1.0,
    },
];

/// The JSON report of `program size extra_args` under `model`, translated at ring 0 (it
/// has both estimates).
fn report(column: &Column, model: &str, size: u64) -> serde_json::Value {
    let stage = corpora::stage();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let program = stage.join(column.program);
    let size = size.to_string();
    let mut args: Vec<&OsStr> = ["--cost-model", model, "--report", "json", "--report-file"]
        .into_iter()
        .map(OsStr::new)
        .collect();
    args.push(file.as_os_str());
    args.push(program.as_os_str());
    args.push(OsStr::new(&size));
    let companions: Vec<_> = column.extra_args.iter().map(|a| stage.join(a)).collect();
    args.extend(companions.iter().map(|c| c.as_os_str()));
    let output = common::simulate_in(&stage, &args);
    assert!(output.status.success(), "{} under {model}", column.program);
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The change of `field` between the two runs, per operation.
fn per_op(small: &serde_json::Value, large: &serde_json::Value, ops: f64, field: &[&str]) -> f64 {
    let value = |r: &serde_json::Value| {
        field
            .iter()
            .fold(r, |v, key| &v[*key])
            .as_f64()
            .unwrap_or_else(|| panic!("no {field:?}"))
    };
    (value(large) - value(small)) / ops
}

#[test]
fn every_column_per_operation_is_the_model_plus_named_terms() {
    let mut table = String::from(
        "model           column       published   ring 3/op   = column + excess + instructions + syscalls + switches + syscall work   ring 0/op\n",
    );
    for name in builtin::names() {
        let model = builtin::by_name(name).unwrap();
        for column in COLUMNS {
            let [small, large] = column.sizes.map(|size| report(column, name, size));
            let ops = ((column.sizes[1] - column.sizes[0]) * column.per_unit) as f64;
            let d = |field: &[&str]| per_op(&small, &large, ops, field);
            let published = (column.column)(&model);
            let crossing = model.ring3.abi_call.value + model.crossing_indirect.value;
            // Under `cpi` each guest instruction costs cpi; under a microarchitecture its
            // blocks' prices.
            let instructions = d(&["ring3", "user_instruction_cycles"]);
            if model.instruction_costs.name() == "cpi" {
                let priced = d(&["guest_instructions"]) * model.cpi.value;
                assert!(
                    (instructions - priced).abs() <= 2.0 / ops,
                    "{name} {}",
                    column.name
                );
            }
            let syscalls = (d(&["syscalls", "total"]) - column.syscalls) * crossing;
            let switches = (d(&["scheduling", "thread_switches"]) - column.thread_switches)
                * model.thread_switch(&model.ring3)
                + (d(&["scheduling", "process_switches"]) - column.process_switches)
                    * model.process_switch(&model.ring3);
            let work = d(&["ring3", "kernel_work_cycles"])
                - column.creations * model.creation_work(&model.ring3)
                - (column.column_work)(&model);
            // What the model charges for the operation's own syscalls, switches and creation
            // can exceed the measured column: its kernel work per syscall is Linux's, more
            // than a Singularity channel's whole round trip. The excess is a term of its own.
            let floor = column.syscalls * crossing
                + (column.column_work)(&model)
                + column.thread_switches * model.thread_switch(&model.ring3)
                + column.process_switches * model.process_switch(&model.ring3)
                + column.creations * model.creation_work(&model.ring3);
            let excess = floor - published;
            assert!(
                excess >= -1e-6,
                "{name} {}: the model's floor {floor}",
                column.name
            );
            let ring3 = d(&["ring3", "cycles"]);
            let ring0 = d(&["ring0", "cycles"]);
            table += &format!(
                "{name:15} {:11} {published:11.0} {ring3:11.1}   = {published:.0} + {excess:.1} + {instructions:.1} + {syscalls:.1} + {switches:.1} + {work:.1}   {ring0:11.1}\n",
                column.name
            );
            let explained = published + excess + instructions + syscalls + switches + work;
            // Each total is rounded to whole cycles: four terms, at most half a cycle each.
            assert!(
                (ring3 - explained).abs() <= 2.0 / ops * 4.0,
                "{name} {}: ring 3 {ring3} per operation, explained {explained}\n{table}",
                column.name
            );
            // At ring 0 the call is charged once: the model's ring-0 ABI-call figure is the
            // whole call, and of the translated loop only the instructions other than the
            // call's own (the guest's five besides `syscall`, copied one for one) add to it.
            if column.name == "ABI call" {
                let loop_cycles = d(&["ring0", "translated_instruction_cycles"]);
                if model.instruction_costs.name() == "cpi" {
                    let loop_instructions = d(&["guest_instructions"]) - 1.0;
                    let priced = loop_instructions * model.cpi.value;
                    assert!(
                        (loop_cycles - priced).abs() <= 2.0 / ops,
                        "{name}: {loop_cycles}"
                    );
                }
                // The translated loop, calls aside, costs what the guest's loop does less its
                // `syscall` (under a microarchitecture the guest price already leaves it out).
                assert!(
                    (loop_cycles - instructions).abs() <= 1.0 + 2.0 / ops,
                    "{name}: translated loop {loop_cycles}, guest loop {instructions}"
                );
                let charged = model.ring0.abi_call.value + loop_cycles;
                assert!(
                    (ring0 - charged).abs() <= 2.0 / ops * 4.0,
                    "{name}: ring 0 {ring0} per call, the model's call {charged}"
                );
            }
            // The operation makes no more syscalls and switches than the column holds, but
            // for the child's own start and end in Create Proc.
            if column.creations == 0.0 {
                assert_eq!(syscalls, 0.0, "{name} {}", column.name);
                assert_eq!(switches, 0.0, "{name} {}", column.name);
            }
        }
    }
    eprintln!("{table}");
}
