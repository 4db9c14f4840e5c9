//! The essay's four columns (Aiken et al., "Deconstructing Process Isolation", MSPC 2006:
//! ABI call, Yield, PSR, Create Proc), measured end to end on the corpus microbenchmarks
//! under every built-in cost model, per operation, at ring 3 and translated at ring 0, as
//! `experiment seed-table` measures them (`experiment::seed_table`).
//!
//! At ring 3 the estimate per operation is the model's column plus named terms, and nothing
//! else: the loop's own user instructions, the syscalls and switches it makes beyond the
//! column's, and the kernel work of its syscalls. At ring 0 the same operation costs what
//! the translated run executes: printed beside it, the essay's question answered (`cargo
//! test --test essay_columns -- --nocapture`); a ring-0 ABI call costs exactly the model's
//! ring-0 figure plus the loop's other instructions.

mod common;

use experiment::provenance::Model;
use experiment::runner::Runner;
use experiment::seed_table::{measure, COLUMNS};
use sim::costs::builtin;

#[test]
fn every_column_per_operation_is_the_model_plus_named_terms() {
    let runner = Runner::new(common::SIMULATE.into(), corpora::stage());
    let mut table = String::from(
        "model           column       published   ring 3/op   = column + excess + instructions + syscalls + switches + syscall work   ring 0/op\n",
    );
    for name in builtin::names() {
        let model = builtin::by_name(name).unwrap();
        for column in COLUMNS {
            let cell = measure(&runner, column, &Model::resolve(name).unwrap()).unwrap();
            let ops = ((column.sizes[1] - column.sizes[0]) * column.per_unit) as f64;
            // Under `cpi` each guest instruction costs cpi; under a microarchitecture its
            // blocks' prices.
            if model.instruction_costs.name() == "cpi" {
                let priced = cell.guest_instructions * model.cpi.value;
                assert!(
                    (cell.instructions - priced).abs() <= 2.0 / ops,
                    "{name} {}",
                    column.name
                );
            }
            // What the model charges for the operation's own syscalls, switches and creation
            // can exceed the measured column, never fall short of it.
            assert!(cell.excess >= -1e-6, "{name} {}: {cell:?}", column.name);
            table += &format!(
                "{name:15} {:11} {:11.0} {:11.1}   = {:.0} + {:.1} + {:.1} + {:.1} + {:.1} + {:.1}   {:11.1}\n",
                column.name,
                cell.published,
                cell.ring3,
                cell.published,
                cell.excess,
                cell.instructions,
                cell.extra_syscalls,
                cell.extra_switches,
                cell.work,
                cell.ring0
            );
            // Each total is rounded to whole cycles: four terms, at most half a cycle each.
            assert!(
                (cell.ring3 - cell.explained()).abs() <= 2.0 / ops * 4.0,
                "{name} {}: ring 3 {} per operation, explained {}\n{table}",
                column.name,
                cell.ring3,
                cell.explained()
            );
            // At ring 0 the call is charged once: the model's ring-0 ABI-call figure is the
            // whole call, and of the translated loop only the instructions other than the
            // call's own (the guest's five besides `syscall`, copied one for one) add to it.
            if column.name == "ABI call" {
                let loop_cycles = cell.ring0_instructions;
                if model.instruction_costs.name() == "cpi" {
                    let priced = (cell.guest_instructions - 1.0) * model.cpi.value;
                    assert!(
                        (loop_cycles - priced).abs() <= 2.0 / ops,
                        "{name}: {loop_cycles}"
                    );
                }
                // The translated loop, calls aside, costs what the guest's loop does less its
                // `syscall` (under a microarchitecture the guest price already leaves it out).
                assert!(
                    (loop_cycles - cell.instructions).abs() <= 1.0 + 2.0 / ops,
                    "{name}: translated loop {loop_cycles}, guest loop {}",
                    cell.instructions
                );
                let charged = model.ring0.abi_call.value + loop_cycles;
                assert!(
                    (cell.ring0 - charged).abs() <= 2.0 / ops * 4.0,
                    "{name}: ring 0 {} per call, the model's call {charged}",
                    cell.ring0
                );
            }
            // The operation makes no more syscalls and switches than the column holds, but
            // for the child's own start and end in Create Proc.
            if column.creations == 0.0 {
                assert_eq!(cell.extra_syscalls, 0.0, "{name} {}", column.name);
                assert_eq!(cell.extra_switches, 0.0, "{name} {}", column.name);
            }
        }
    }
    eprintln!("{table}");
}
