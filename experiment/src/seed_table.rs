//! The essay's table (Aiken et al., "Deconstructing Process Isolation", MSPC 2006: ABI call,
//! Yield, PSR, Create Proc, for Singularity's SIP-Phys and HIP-R3, FreeBSD, Linux and
//! Windows), each cell measured end to end on the corpus microbenchmarks under that
//! system's cost model: per operation at ring 3, next to the published figure with what
//! makes the difference, and translated at ring 0, the essay's question.
//!
//! Each program runs at two sizes and the difference is divided by the operations between
//! them, so that start-up and the one-time translation of the loop cancel. At ring 3 an
//! operation costs the model's column plus named terms and nothing else: the loop's own
//! user instructions, the syscalls and switches it makes beyond the column's, and their
//! kernel work. At ring 0 it costs what the translated run executes.

use sim::costs::CostModel;

use crate::plot::{self, grouped, BarPanel};
use crate::provenance::{Model, Provenance};
use crate::runner::{per_unit, Mode, Run, Runner};
use crate::Error;

/// The systems of the essay's table, in its order, then this project's machine kind: the
/// model, the table's label and the plot's.
pub const SYSTEMS: &[(&str, &str, &str)] = &[
    ("singularity-sip", "Singularity SIP-Phys", "SIP-Phys"),
    ("singularity-hip", "Singularity HIP-R3", "HIP-R3"),
    ("freebsd", "FreeBSD", "FreeBSD"),
    ("linux", "Linux", "Linux"),
    ("windows", "Windows", "Windows"),
    ("host", "host (this machine kind)", "host"),
];

/// One microbenchmark: the corpus program, its argument at the two sizes and what one
/// operation is made of in the model's terms.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub program: &'static str,
    /// Programs of the corpus passed, by their staged path, after the size.
    pub companions: &'static [&'static str],
    pub sizes: [u64; 2],
    /// Operations per unit of the size argument.
    pub per_unit: u64,
    pub published: fn(&CostModel) -> f64,
    /// The kernel work of its syscalls (and, for Create Proc, of its page faults) that the
    /// column already holds.
    pub column_work: fn(&CostModel) -> f64,
    pub syscalls: f64,
    pub thread_switches: f64,
    pub process_switches: f64,
    /// Process creations (each a fork, an exec and a reaping wait).
    pub creations: f64,
}

pub const COLUMNS: &[Column] = &[
    Column {
        name: "ABI call",
        program: "abi_call",
        companions: &[],
        sizes: [1000, 2000],
        per_unit: 1,
        published: |m| m.ring3.abi_call.value,
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
        companions: &[],
        sizes: [100, 200],
        per_unit: 2,
        published: |m| m.ring3.yield_cpu.value,
        column_work: |_| 0.0,
        syscalls: 1.0,
        thread_switches: 1.0,
        process_switches: 0.0,
        creations: 0.0,
    },
    Column {
        name: "PSR",
        program: "psr",
        companions: &[],
        sizes: [100, 200],
        per_unit: 1,
        published: |m| m.ring3.send_receive.value,
        column_work: CostModel::send_receive_work,
        syscalls: 4.0,
        thread_switches: 0.0,
        process_switches: 2.0,
        creations: 0.0,
    },
    Column {
        name: "Create Proc",
        program: "create_proc",
        companions: &["tiny_true"],
        sizes: [10, 20],
        per_unit: 1,
        published: |m| m.ring3.create_process.value,
        column_work: CostModel::create_process_charged_work,
        // fork, execve, the child's exit_group, wait4.
        syscalls: sim::costs::CREATION_SYSCALLS,
        thread_switches: 0.0,
        process_switches: 2.0,
        creations: 1.0,
    },
];

/// One cell of the table: an operation under a model, in cycles per operation.
#[derive(Clone, Debug)]
pub struct Cell {
    pub model: String,
    pub column: &'static str,
    /// The model's figure for the column (the essay's, for its five systems).
    pub published: f64,
    pub ring3: f64,
    pub ring0: f64,
    /// What the model charges for the operation's own syscalls, switches and creation
    /// beyond the published figure (its kernel work per syscall is Linux's, more than a
    /// Singularity channel's whole round trip).
    pub excess: f64,
    /// The loop's user instructions at ring 3.
    pub instructions: f64,
    /// Syscalls and switches beyond the column's.
    pub extra_syscalls: f64,
    pub extra_switches: f64,
    /// Kernel work beyond what the column holds.
    pub work: f64,
    /// The translated loop's own instructions at ring 0.
    pub ring0_instructions: f64,
    /// Machine-independent counts per operation.
    pub guest_instructions: f64,
    pub syscalls: f64,
}

impl Cell {
    /// What the ring-3 figure is made of; it equals `ring3` to within rounding.
    pub fn explained(&self) -> f64 {
        self.published
            + self.excess
            + self.instructions
            + self.extra_syscalls
            + self.extra_switches
            + self.work
    }

    pub fn speedup(&self) -> f64 {
        self.ring3 / self.ring0
    }
}

/// The runs of `column` under `model`, at its two sizes.
pub fn runs(runner: &Runner, column: &Column, model: &Model) -> [Run; 2] {
    column.sizes.map(|size| {
        let companions = column.companions.iter();
        let args = std::iter::once(size.to_string())
            .chain(companions.map(|c| runner.corpus().join(c).display().to_string()))
            .collect();
        Run::new(column.program, args, &model.argument, Mode::Ring0)
    })
}

/// Measures `column` under `model`.
pub fn measure(runner: &Runner, column: &Column, model: &Model) -> Result<Cell, Error> {
    let costs = &model.costs;
    let [small, large] = runs(runner, column, model);
    let (small, large) = (runner.report(&small)?, runner.report(&large)?);
    let ops = ((column.sizes[1] - column.sizes[0]) * column.per_unit) as f64;
    let d = |path: &[&str]| per_unit(&small, &large, ops, path);
    let crossing = costs.ring3.abi_call.value + costs.crossing_indirect.value;
    let published = (column.published)(costs);
    let syscalls = d(&["syscalls", "total"])?;
    let floor = column.syscalls * crossing
        + (column.column_work)(costs)
        + column.thread_switches * costs.thread_switch(&costs.ring3)
        + column.process_switches * costs.process_switch(&costs.ring3)
        + column.creations * costs.creation_work(&costs.ring3);
    Ok(Cell {
        model: model.spec.clone(),
        column: column.name,
        published,
        ring3: d(&["ring3", "cycles"])?,
        ring0: d(&["ring0", "cycles"])?,
        excess: floor - published,
        instructions: d(&["ring3", "user_instruction_cycles"])?,
        extra_syscalls: (syscalls - column.syscalls) * crossing,
        extra_switches: (d(&["scheduling", "thread_switches"])? - column.thread_switches)
            * costs.thread_switch(&costs.ring3)
            + (d(&["scheduling", "process_switches"])? - column.process_switches)
                * costs.process_switch(&costs.ring3),
        work: d(&["ring3", "kernel_work_cycles"])?
            - column.creations * costs.creation_work(&costs.ring3)
            - (column.column_work)(costs),
        ring0_instructions: d(&["ring0", "translated_instruction_cycles"])?,
        guest_instructions: d(&["guest_instructions"])?,
        syscalls,
    })
}

/// The label of a system in the table: the essay's name for its models, else the model's.
pub fn label(model: &str) -> &str {
    SYSTEMS
        .iter()
        .find(|(name, _, _)| *name == model)
        .map_or(model, |(_, label, _)| label)
}

/// The label of a system in the plot.
fn short_label(model: &str) -> &str {
    SYSTEMS
        .iter()
        .find(|(name, _, _)| *name == model)
        .map_or(model, |(_, _, short)| short)
}

/// The models of the essay's table and `host`, in the table's order.
pub fn default_models() -> Result<Vec<Model>, Error> {
    SYSTEMS
        .iter()
        .map(|(model, _, _)| Model::resolve(model))
        .collect()
}

/// Every cell for `models`, row by row.
pub fn measure_all(runner: &Runner, models: &[Model]) -> Result<Vec<Cell>, Error> {
    let mut cells = Vec::new();
    for model in models {
        for column in COLUMNS {
            cells.push(measure(runner, column, model)?);
        }
    }
    Ok(cells)
}

/// The command that makes this table.
pub fn command(models: &[Model]) -> String {
    let specs: Vec<&str> = models.iter().map(|m| m.spec.as_str()).collect();
    format!("experiment seed-table --models {}", specs.join(","))
}

pub fn provenance(models: &[Model]) -> Provenance {
    Provenance::of(command(models), models)
}

/// One row per cell, every term: cycles to one decimal, counts to three.
pub fn to_csv(cells: &[Cell]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "system",
            "model",
            "operation",
            "published_cycles",
            "ring3_cycles",
            "ring0_cycles",
            "speedup",
            "excess_cycles",
            "instruction_cycles",
            "extra_syscall_cycles",
            "extra_switch_cycles",
            "kernel_work_cycles",
            "ring0_instruction_cycles",
            "guest_instructions",
            "syscalls",
        ])
        .expect("to memory");
    for cell in cells {
        // Rounded first, so that a term of -0.04 reads 0.0, not -0.0.
        let tenths = |v: f64| format!("{:.1}", (v * 10.0).round() / 10.0 + 0.0);
        writer
            .write_record([
                label(&cell.model).to_string(),
                cell.model.clone(),
                cell.column.to_string(),
                tenths(cell.published),
                tenths(cell.ring3),
                tenths(cell.ring0),
                format!("{:.2}", cell.speedup()),
                tenths(cell.excess),
                tenths(cell.instructions),
                tenths(cell.extra_syscalls),
                tenths(cell.extra_switches),
                tenths(cell.work),
                tenths(cell.ring0_instructions),
                format!("{:.3}", cell.guest_instructions),
                format!("{:.3}", cell.syscalls),
            ])
            .expect("to memory");
    }
    String::from_utf8(writer.into_inner().expect("to memory")).expect("ASCII")
}

/// The named terms that are not zero, as "+ 6 instructions + 66,327 kernel work".
fn explanation(cell: &Cell) -> String {
    let terms = [
        (cell.excess, "the model's floor"),
        (cell.instructions, "instructions"),
        (cell.extra_syscalls, "other syscalls"),
        (cell.extra_switches, "other switches"),
        (cell.work, "kernel work"),
    ];
    let named: Vec<String> = terms
        .iter()
        .filter(|(value, _)| value.round() != 0.0)
        .map(|(value, name)| {
            let sign = if *value < 0.0 { "−" } else { "+" };
            format!("{sign} {} {name}", grouped(value.abs()))
        })
        .collect();
    if named.is_empty() {
        "the published figure".to_string()
    } else {
        named.join(" ")
    }
}

/// The table in Markdown: ring 3 beside the published figure, then ring 0, then provenance.
pub fn to_markdown(cells: &[Cell], provenance: &Provenance) -> String {
    let mut text = String::from(
        "# The essay's table, simulated\n\n\
         Cycles per operation, measured end to end by `simulate` on the corpus \
         microbenchmarks (`abi_call`, `yield_threads`, `psr`, `create_proc`) under each \
         system's cost model, each at two sizes with the difference divided by the \
         operations between them.\n\n\
         ## Ring 3: the published figure, and what the simulated one adds\n\n\
         | system | operation | published | ring 3 | difference | made of |\n\
         |---|---|---:|---:|---:|---|\n",
    );
    for cell in cells {
        text += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            label(&cell.model),
            cell.column,
            grouped(cell.published),
            grouped(cell.ring3),
            grouped(cell.ring3 - cell.published),
            explanation(cell),
        );
    }
    text += "\n## Translated at ring 0: the essay's question\n\n\
             | system | ABI call | Yield | PSR | Create Proc |\n|---|---:|---:|---:|---:|\n";
    for row in cells.chunks(COLUMNS.len()) {
        let entries: Vec<String> = row
            .iter()
            .map(|c| format!("{} ({:.1}×)", grouped(c.ring0), c.speedup()))
            .collect();
        text += &format!("| {} | {} |\n", label(&row[0].model), entries.join(" | "));
    }
    text += "\nEach ring-0 entry is the operation's cycles translated, with the speedup over \
             ring 3 in brackets. An ABI call at ring 0 is the model's ring-0 call plus the \
             loop's other instructions; a switch still costs a switch, and a new process \
             translates its code again.\n\n";
    text + &provenance.to_markdown()
}

/// The plot: a panel per operation, a group of bars per system (published, ring 3, ring 0)
/// on a logarithmic axis.
pub fn to_svg(cells: &[Cell], provenance: &Provenance) -> String {
    let panels: Vec<BarPanel> = COLUMNS
        .iter()
        .map(|column| {
            let cells: Vec<&Cell> = cells.iter().filter(|c| c.column == column.name).collect();
            let series = |name: &str, value: fn(&Cell) -> f64| {
                (name.to_string(), cells.iter().map(|c| value(c)).collect())
            };
            BarPanel {
                title: column.name.to_string(),
                groups: cells
                    .iter()
                    .map(|c| short_label(&c.model).to_string())
                    .collect(),
                series: vec![
                    series("published", |c| c.published),
                    series("ring 3, simulated", |c| c.ring3),
                    series("ring 0, translated", |c| c.ring0),
                ],
            }
        })
        .collect();
    plot::grouped_bars(
        "The essay's table: cycles per operation",
        "cycles per operation",
        &provenance.footer(),
        &panels,
    )
}
