//! Pricing a basic block: its throughput bound, its critical path and its recurrence,
//! combined as `PRICE` says.

use iced_x86::{FlowControl, InstructionInfoFactory, OpAccess, Register};

use crate::{Cost, Form, Instruction, Microarchitecture};

/// How a block's two bounds make its price in cycles per execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// The throughput bound alone: the block as the body of a loop whose executions
    /// overlap, so that only dispatch and the busiest port limit it (the bound llvm-mca
    /// and OSACA report for a block run repeatedly).
    Throughput,
    /// The larger of the throughput bound and the recurrence: executions overlap, but a
    /// chain carried from one execution into the next (a running sum, a hash's state)
    /// cannot finish faster than its latencies allow. llvm-mca's steady state of a block
    /// run as a loop is bound by both.
    Recurrence,
    /// The larger of the throughput bound and the critical path: an execution of the
    /// block does not overlap the next one, so its longest dependency chain must finish
    /// too. Pessimistic for hot loops whose chains are not carried between iterations.
    Larger,
}

/// The choice every `BlockCost::cycles` uses, settled by `bench/fidelity` (BENCHMARKS.md,
/// issue 11) once block prices were turned into seconds at the core's clock, not the TSC's:
/// the throughput bound alone left MD5's chained rounds at 0.6 of their native time, the
/// recurrence brought them to 1.2 and SHA-256 to 1.0; the critical path overestimated every
/// compute workload 2.2-3.3x. `BlockCost::cycles_by` gives the others.
pub const PRICE: Combine = Combine::Recurrence;

impl Combine {
    pub fn cycles(self, cost: &BlockCost) -> f64 {
        match self {
            Combine::Throughput => cost.throughput_bound,
            Combine::Recurrence => cost.throughput_bound.max(cost.recurrence),
            Combine::Larger => cost.throughput_bound.max(cost.critical_path),
        }
    }
}

/// What a block costs per execution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockCost {
    /// The price: `PRICE` applied to the two bounds.
    pub cycles: f64,
    /// max(uops / dispatch width, the busiest port's cycles, its branches), each instruction's use of a
    /// group of ports spread over the group as the model spreads it when the instruction
    /// runs alone. llvm-mca's own block bound balances groups against each other and can
    /// be lower (cpu_bound's hash block, two imuls on port 1 among four simple ALU ops:
    /// 3.0 here, 2.0 there, on skylake-server).
    pub throughput_bound: f64,
    /// The longest chain of latencies through registers and flags within the block.
    pub critical_path: f64,
    /// Cycles per execution of the chains the block carries from one execution into the
    /// next, through registers and flags, when it runs repeatedly: the growth per
    /// execution, once settled, of the time its registers' values are ready. None for a
    /// block that returns (`ends_in_return`).
    pub recurrence: f64,
    pub uops: u32,
    pub instructions: u32,
    /// Instructions with no row in the table, priced at its fallback.
    pub unpriced: u32,
}

impl BlockCost {
    /// The price under another combination of the bounds.
    pub fn cycles_by(&self, combine: Combine) -> f64 {
        combine.cycles(self)
    }
}

/// The number of RFLAGS bits iced tracks (`RflagsBits`).
const FLAG_BITS: usize = 16;

/// Executions of a block run before its recurrence is read, so that a chain passing
/// through several registers per execution (MD5's rotating state moves through four)
/// reaches its steady growth; and executions over which the growth is then read.
const SETTLING_RUNS: u32 = 4;
/// A multiple of every period up to 4 (and of 6), so that a chain that comes round every
/// 3 executions is read over whole turns.
const MEASURED_RUNS: u32 = 12;

/// Prices blocks on one microarchitecture. Keeps its working space between blocks, so
/// pricing allocates nothing per instruction; hold one and reuse it.
pub struct BlockPricer<'a> {
    uarch: &'a Microarchitecture,
    info: InstructionInfoFactory,
    /// When each full register's latest value is ready, in cycles from the block's start.
    register_ready: Vec<f64>,
    flag_ready: [f64; FLAG_BITS],
    port_cycles: Vec<f64>,
    /// The block's instructions' costs, looked up once for all the runs `recurrence` makes.
    costs: Vec<Cost<'a>>,
}

impl<'a> BlockPricer<'a> {
    pub fn new(uarch: &'a Microarchitecture) -> Self {
        BlockPricer {
            uarch,
            info: InstructionInfoFactory::new(),
            register_ready: vec![0.0; Register::values().len()],
            flag_ready: [0.0; FLAG_BITS],
            port_cycles: vec![0.0; uarch.ports.len()],
            costs: Vec::new(),
        }
    }

    /// The cost of one execution of `block`, its instructions in order.
    pub fn price(&mut self, block: &[Instruction]) -> BlockCost {
        self.register_ready.fill(0.0);
        self.flag_ready = [0.0; FLAG_BITS];
        self.port_cycles.fill(0.0);
        let (mut uops, mut instructions, mut unpriced) = (0, 0, 0);
        let mut critical_path: f64 = 0.0;
        // A cycle per branch: cores take at most one taken branch a cycle (Intel's only on
        // port 6), and a block's closing branch counts as taken, since whether it is taken
        // is not known here. bench/fidelity kept it: cpu_bound, md5sum, gzip and sort came
        // within 0.85-1.10 of their native time, from 0.78-0.88 without it.
        let mut branches = 0.0;
        self.costs.clear();
        for instruction in block {
            if instruction.flow_control() != FlowControl::Next {
                branches += 1.0;
            }
            let cost = self.uarch.cost_of(instruction).unwrap_or_else(|| {
                unpriced += 1;
                self.uarch.fallback()
            });
            instructions += 1;
            uops += cost.uops;
            for port_use in cost.ports {
                self.port_cycles[port_use.port] += port_use.cycles;
            }
            critical_path = critical_path.max(self.chain(instruction, &cost));
            self.costs.push(cost);
        }
        let busiest_port = self.port_cycles.iter().copied().fold(0.0, f64::max);
        let throughput_bound = (f64::from(uops) / f64::from(self.uarch.dispatch_width))
            .max(busiest_port)
            .max(branches);
        let mut cost = BlockCost {
            cycles: 0.0,
            throughput_bound,
            critical_path,
            recurrence: if ends_in_return(block) {
                0.0
            } else {
                self.recurrence(block)
            },
            uops,
            instructions,
            unpriced,
        };
        cost.cycles = PRICE.cycles(&cost);
        cost
    }

    /// Runs `block` (whose costs `price` looked up) again and again from where its first
    /// execution left the registers and flags, and returns how much later their values are ready per execution once
    /// settled: the largest growth of any one of them.
    fn recurrence(&mut self, block: &[Instruction]) -> f64 {
        let costs = std::mem::take(&mut self.costs);
        let run = |pricer: &mut Self, runs: u32| {
            for _ in 0..runs {
                for (instruction, cost) in block.iter().zip(&costs) {
                    pricer.chain(instruction, cost);
                }
            }
        };
        run(self, SETTLING_RUNS);
        let (registers, flags) = (self.register_ready.clone(), self.flag_ready);
        run(self, MEASURED_RUNS);
        let growth = |now: &[f64], then: &[f64]| {
            now.iter()
                .zip(then)
                .map(|(now, then)| now - then)
                .fold(0.0, f64::max)
        };
        self.costs = costs;
        growth(&self.register_ready, &registers).max(growth(&self.flag_ready, &flags))
            / f64::from(MEASURED_RUNS)
    }

    /// Extends the dependency chains by `instruction`: its results are ready `latency`
    /// cycles after the last of its inputs. Returns where the block's longest chain
    /// through it ends: when its results are ready, or when its inputs are for a branch
    /// (predicted: its own latency delays nothing) and for an instruction with no result
    /// (a nop). Chains through memory are not followed. The RSP updates of push, pop, call
    /// and ret are left out: the stack engine makes them at decode, so they chain nothing.
    fn chain(&mut self, instruction: &Instruction, cost: &Cost<'_>) -> f64 {
        let implicit_rsp = instruction.is_stack_instruction();
        let info = self.info.info(instruction);
        // A load-op instruction (add rax, [rbx]) reads its other operands only once its
        // load is under way: from them, its latency is `load_read_advance` shorter.
        let loads = info
            .used_memory()
            .iter()
            .any(|memory| reads(memory.access()));
        let address = [instruction.memory_base(), instruction.memory_index()]
            .map(|register| register.full_register());
        let (mut start, mut operands): (f64, f64) = (0.0, 0.0);
        let mut vector = false;
        for used in info.used_registers() {
            let register = used.register().full_register();
            if reads(used.access()) && !(implicit_rsp && register == Register::RSP) {
                let ready = self.register_ready[register as usize];
                if loads && !address.contains(&register) {
                    operands = operands.max(ready);
                    vector |= register.is_vector_register();
                } else {
                    start = start.max(ready);
                }
            }
        }
        for bit in bits(instruction.rflags_read()) {
            operands = operands.max(self.flag_ready[bit]);
        }
        let latency = f64::from(cost.latency);
        let advance = match (loads, vector) {
            (false, _) => 0,
            (true, false) => self.uarch.load_read_advance,
            (true, true) => self.uarch.vector_load_read_advance,
        };
        let advance = f64::from(advance).min(latency);
        let ready = (start + latency).max(operands + latency - advance);
        let start = start.max(operands);
        let mut has_result = instruction.rflags_modified() != 0
            || info
                .used_memory()
                .iter()
                .any(|memory| writes(memory.access()));
        for used in info.used_registers() {
            let register = used.register().full_register();
            if writes(used.access()) && !(implicit_rsp && register == Register::RSP) {
                self.register_ready[register as usize] = ready;
                has_result = true;
            }
        }
        for bit in bits(instruction.rflags_modified()) {
            self.flag_ready[bit] = ready;
        }
        if has_result && instruction.flow_control() == FlowControl::Next {
            ready
        } else {
            start
        }
    }
}

/// A block that returns is never run twice in a row: between two of its executions run its
/// caller and its function's first blocks, which set up again the registers it works on
/// (getc's last block loads the next byte through a pointer it reloads each call), so the
/// chains it would carry into itself run looped are not there. bench/fidelity: busybox
/// `wc -l` had been priced 1.65x its native time by such a chain (BENCHMARKS.md, issue 11).
fn ends_in_return(block: &[Instruction]) -> bool {
    block
        .last()
        .is_some_and(|last| last.flow_control() == FlowControl::Return)
}

/// A conditional write reads too: where it does not write, the old value stays.
fn reads(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Read
            | OpAccess::CondRead
            | OpAccess::ReadWrite
            | OpAccess::ReadCondWrite
            | OpAccess::CondWrite
    )
}

fn writes(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

/// The indexes of the bits set in `flags`.
fn bits(flags: u32) -> impl Iterator<Item = usize> {
    (0..FLAG_BITS).filter(move |bit| flags & (1 << bit) != 0)
}

impl Microarchitecture {
    /// The cost of `instruction`'s form, if the table has a row for it. A form that names
    /// a register twice and has no row of its own costs what the plain register form does.
    pub fn cost_of(&self, instruction: &Instruction) -> Option<Cost<'_>> {
        let form = Form::of(instruction);
        self.cost(instruction.code(), form).or_else(|| {
            (form == Form::SameRegister)
                .then(|| self.cost(instruction.code(), Form::Registers))
                .flatten()
        })
    }

    /// The cost of one execution of `block`. Makes a `BlockPricer` each call: to price
    /// many blocks, keep one.
    pub fn price_block(&self, block: &[Instruction]) -> BlockCost {
        BlockPricer::new(self).price(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::code_asm::*;
    use iced_x86::Code;

    fn block(build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<Instruction> {
        let mut assembler = CodeAssembler::new(64).expect("64-bit");
        build(&mut assembler).expect("assembles");
        assembler.instructions().to_vec()
    }

    fn uarch(name: &str) -> &'static Microarchitecture {
        crate::by_name(name).expect("a built-in table")
    }

    /// The row `instruction` is priced by: (uops, latency, rthroughput, port uses by name).
    fn row(
        uarch: &Microarchitecture,
        instruction: &Instruction,
    ) -> (u32, u32, f64, Vec<(String, f64)>) {
        let cost = uarch.cost_of(instruction).expect("a row");
        let ports = cost
            .ports
            .iter()
            .map(|used| (uarch.ports[used.port].to_string(), used.cycles))
            .collect();
        (cost.uops, cost.latency, cost.rthroughput, ports)
    }

    /// (throughput bound, critical path, recurrence).
    fn bounds(cost: BlockCost) -> (f64, f64, f64) {
        (cost.throughput_bound, cost.critical_path, cost.recurrence)
    }

    /// The same cycles on each of `ports`.
    fn each(ports: &[&str], cycles: f64) -> Vec<(String, f64)> {
        ports
            .iter()
            .map(|port| (port.to_string(), cycles))
            .collect()
    }

    const ZEN3_ALUS: [&str; 4] = ["Zn3ALU0", "Zn3ALU1", "Zn3ALU2", "Zn3ALU3"];
    const ZEN4_ALUS: [&str; 4] = ["Zn4ALU0", "Zn4ALU1", "Zn4ALU2", "Zn4ALU3"];
    const SKYLAKE_ALUS: [&str; 4] = ["SKXPort0", "SKXPort1", "SKXPort5", "SKXPort6"];
    /// Golden Cove's five integer ALU ports.
    const SAPPHIRE_RAPIDS_ALUS: [&str; 5] = [
        "SPRPort00",
        "SPRPort01",
        "SPRPort05",
        "SPRPort06",
        "SPRPort10",
    ];

    /// Whether two sums of port cycles agree (fifths do not add up exactly in binary).
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_branch_takes_a_cycle() {
        // add rax, rbx; jne back: 2 uops / 6 = 0.33, the busiest port under a cycle; the
        // branch, taken, a cycle.
        let mut a = CodeAssembler::new(64).unwrap();
        let mut top = a.create_label();
        a.set_label(&mut top).unwrap();
        a.add(rax, rbx).unwrap();
        a.jne(top).unwrap();
        let bytes = a.assemble(0x1000).unwrap();
        let loop_block: Vec<Instruction> =
            iced_x86::Decoder::with_ip(64, &bytes, 0x1000, iced_x86::DecoderOptions::NONE)
                .into_iter()
                .collect();
        for uarch in crate::all() {
            let cost = uarch.price_block(&loop_block);
            assert_eq!(cost.throughput_bound, 1.0, "{}", uarch.name);
        }
    }

    /// Pairs of registers whose first members all differ.
    const REGISTER_PAIRS: [(AsmRegister64, AsmRegister64); 8] = [
        (rax, rbx),
        (rcx, rdx),
        (rsi, rdi),
        (r8, r9),
        (r10, r11),
        (r12, r13),
        (r14, r15),
        (rbp, rbx),
    ];

    /// `count` (up to 8) adds, none reading another's result.
    fn independent_adds(a: &mut CodeAssembler, count: usize) -> Result<(), IcedError> {
        for (to, from) in REGISTER_PAIRS.into_iter().take(count) {
            a.add(to, from)?;
        }
        Ok(())
    }

    #[test]
    fn independent_adds_are_bound_by_the_alus() {
        let adds = block(|a| independent_adds(a, 8));
        // znver3, add r64, r64: 1 uop, latency 1, a quarter cycle on each of the 4 ALUs.
        let znver3 = uarch("znver3");
        assert_eq!(row(znver3, &adds[0]), (1, 1, 0.25, each(&ZEN3_ALUS, 0.25)));
        // 8 uops / 6 per cycle = 1.33; each ALU 8 × 0.25 = 2.0: bound 2.0. No add reads
        // another's result: critical path 1. Each add carries its register into the next
        // execution: recurrence 1. Price max(2.0, 1) = 2.0.
        let cost = znver3.price_block(&adds);
        assert_eq!((cost.uops, cost.instructions, cost.unpriced), (8, 8, 0));
        assert_eq!(bounds(cost), (2.0, 1.0, 1.0));
        assert_eq!(cost.cycles, 2.0);
        // skylake-server, the same on ports 0, 1, 5 and 6: the same bound.
        let skylake = uarch("skylake-server");
        assert_eq!(
            row(skylake, &adds[0]),
            (1, 1, 0.25, each(&SKYLAKE_ALUS, 0.25))
        );
        assert_eq!(skylake.price_block(&adds).cycles_by(Combine::Larger), 2.0);
        // znver4: as znver3, on its own 4 ALUs.
        let znver4 = uarch("znver4");
        assert_eq!(row(znver4, &adds[0]), (1, 1, 0.25, each(&ZEN4_ALUS, 0.25)));
        assert_eq!(bounds(znver4.price_block(&adds)), (2.0, 1.0, 1.0));
        // sapphirerapids: a fifth of a cycle on each of 5 ALU ports. 8 uops / 6 = 1.33;
        // each ALU port 8 × 0.2 = 1.6: bound 1.6. Critical path 1.
        let sapphire_rapids = uarch("sapphirerapids");
        assert_eq!(
            row(sapphire_rapids, &adds[0]),
            (1, 1, 0.2, each(&SAPPHIRE_RAPIDS_ALUS, 0.2))
        );
        let cost = sapphire_rapids.price_block(&adds);
        assert_eq!((cost.uops, cost.unpriced, cost.critical_path), (8, 0, 1.0));
        assert!(close(cost.throughput_bound, 1.6), "{cost:?}");
    }

    #[test]
    fn five_adds_and_two_loads_are_bound_by_dispatch_on_golden_cove_only() {
        let instructions = block(|a| {
            independent_adds(a, 5)?;
            a.mov(r12, qword_ptr(rbp))?;
            a.mov(r13, qword_ptr(rsp + 8))
        });
        let (add, load) = (&instructions[0], &instructions[5]);
        // sapphirerapids: the adds as above; mov r64, m64: 1 uop, latency 5, a third of a
        // cycle on each load port (2, 3, 11). 7 uops / 6 = 1.17; each ALU port 5 × 0.2 =
        // 1.0; each load port 0.67: the 6-wide rename binds before the 5 ALUs. The loads'
        // latency is the longest chain: 5.
        let sapphire_rapids = uarch("sapphirerapids");
        assert_eq!(
            row(sapphire_rapids, load),
            (
                1,
                5,
                0.33,
                each(&["SPRPort02", "SPRPort03", "SPRPort11"], 0.33)
            )
        );
        let cost = sapphire_rapids.price_block(&instructions);
        assert_eq!((cost.uops, cost.critical_path), (7, 5.0));
        assert!(close(cost.throughput_bound, 7.0 / 6.0), "{cost:?}");
        // znver4: the adds a quarter cycle on each of 4 ALUs, the load a third on each
        // AGU, LSU and load unit. Dispatch 7 / 6 = 1.17; each ALU 5 × 0.25 = 1.25: the
        // ALUs bind. Chain 5.
        let znver4 = uarch("znver4");
        assert_eq!(row(znver4, add), (1, 1, 0.25, each(&ZEN4_ALUS, 0.25)));
        let units = [
            "Zn4AGU0",
            "Zn4AGU1",
            "Zn4AGU2",
            "Zn4LSU.0",
            "Zn4LSU.1",
            "Zn4LSU.2",
            "Zn4Load.0",
            "Zn4Load.1",
            "Zn4Load.2",
        ];
        assert_eq!(row(znver4, load), (1, 5, 0.33, each(&units, 0.33)));
        // The loads' addresses are carried by no add: recurrence 1, the adds'.
        assert_eq!(bounds(znver4.price_block(&instructions)), (1.25, 5.0, 1.0));
    }

    #[test]
    fn eliminated_moves_are_bound_by_dispatch() {
        let moves = block(|a| {
            for (to, from) in REGISTER_PAIRS.into_iter().take(6) {
                a.mov(to, from)?;
                a.mov(from, to)?;
            }
            Ok(())
        });
        // znver3, mov r64, r64: 1 uop, latency 0, no port (eliminated at rename).
        let znver3 = uarch("znver3");
        assert_eq!(row(znver3, &moves[0]), (1, 0, 0.17, vec![]));
        // 12 uops / 6 per cycle = 2.0; no port; chains of latency 0. Price 2.0.
        assert_eq!(bounds(znver3.price_block(&moves)), (2.0, 0.0, 0.0));
    }

    #[test]
    fn dependent_multiplies_are_bound_by_their_chain() {
        let chain = block(|a| {
            for _ in 0..4 {
                a.imul_2(rax, rbx)?;
            }
            Ok(())
        });
        // znver3, imul r64, r64: 1 uop, latency 3, one cycle on ALU1 only.
        let znver3 = uarch("znver3");
        assert_eq!(row(znver3, &chain[0]), (1, 3, 1.0, each(&["Zn3ALU1"], 1.0)));
        // ALU1 4 × 1 = 4.0 (dispatch 4 / 6 = 0.67): bound 4.0. Each imul reads the
        // previous one's RAX: 4 × 3 = 12, and the next execution's first imul reads the
        // last one's: recurrence 12. Price max(4, 12) = 12.
        let cost = znver3.price_block(&chain);
        assert_eq!(bounds(cost), (4.0, 12.0, 12.0));
        assert_eq!(cost.cycles_by(Combine::Throughput), 4.0);
    }

    #[test]
    fn a_load_an_add_and_a_store() {
        let instructions = block(|a| {
            a.mov(rax, qword_ptr(rdi))?;
            a.add(rax, 1)?;
            a.mov(qword_ptr(rsi), rax)
        });
        let znver3 = uarch("znver3");
        let [load, add, store] = &instructions[..] else {
            panic!("three instructions");
        };
        // The load: 1 uop, latency 5, a third of a cycle on each AGU, LSU and load unit.
        let units = [
            "Zn3AGU0",
            "Zn3AGU1",
            "Zn3AGU2",
            "Zn3LSU.0",
            "Zn3LSU.1",
            "Zn3LSU.2",
            "Zn3Load.0",
            "Zn3Load.1",
            "Zn3Load.2",
        ];
        assert_eq!(row(znver3, load), (1, 5, 0.33, each(&units, 0.33)));
        // The add: 1 uop, latency 1, a quarter cycle on each ALU.
        assert_eq!(row(znver3, add).1, 1);
        // The store: 1 uop, latency 1; AGUs 0.33, LSUs 0.67, both store units 1 each.
        let (uops, latency, _, store_ports) = row(znver3, store);
        assert_eq!((uops, latency), (1, 1));
        assert!(store_ports.contains(&("Zn3Store.0".to_string(), 1.0)));
        assert!(store_ports.contains(&("Zn3LSU.0".to_string(), 0.67)));
        // Busiest: each store unit 1.0 and each LSU 0.33 + 0.67 = 1.0 (dispatch 3 / 6 =
        // 0.5): bound 1.0. Chain: RAX loaded at 5, added at 6, stored at 7. RAX is loaded
        // afresh each execution: no recurrence, and the price is the bound.
        let cost = znver3.price_block(&instructions);
        assert_eq!((cost.critical_path, cost.recurrence), (7.0, 0.0));
        assert!((cost.throughput_bound - 1.0).abs() < 1e-9, "{cost:?}");
        assert!((cost.cycles - 1.0).abs() < 1e-9, "{cost:?}");
        assert_eq!(cost.cycles_by(Combine::Larger), 7.0);
    }

    #[test]
    fn an_unknown_code_is_priced_at_the_fallback_and_counted() {
        // ENCLS (SGX, ring 0 only) is in no user program the tables were made from.
        let unknown = Instruction::with(Code::Encls);
        for uarch in crate::all() {
            assert!(uarch.cost_of(&unknown).is_none(), "{}", uarch.name);
            let fallback = uarch.fallback();
            let cost = uarch.price_block(&[unknown]);
            assert_eq!(
                (cost.instructions, cost.unpriced, cost.uops),
                (1, 1, fallback.uops)
            );
            // One instruction: its busiest port or its dispatch, against its latency.
            let busiest = fallback
                .ports
                .iter()
                .map(|used| used.cycles)
                .fold(0.0, f64::max);
            let throughput =
                busiest.max(f64::from(fallback.uops) / f64::from(uarch.dispatch_width));
            assert_eq!(cost.throughput_bound, throughput);
            let latency = f64::from(fallback.latency);
            assert_eq!(cost.cycles_by(Combine::Larger), throughput.max(latency));
            assert_eq!(cost.cycles, throughput.max(cost.recurrence));
        }
    }

    /// Assembles one block.
    type Build = fn(&mut CodeAssembler) -> Result<(), IcedError>;

    /// Chains worked out by hand: (table, block, each instruction's latency as its row
    /// gives it, the critical path, why).
    const CHAINS: [(&str, Build, &[u32], f64, &str); 3] = [
        (
            "znver3",
            |a| {
                a.imul_2(rax, rbx)?;
                a.xor(eax, eax)?;
                a.add(rax, rcx)
            },
            &[3, 0, 1],
            3.0,
            "xor eax, eax (a zero idiom: its own row, latency 0) reads nothing: the add \
             waits for it (ready at 0), not for the imul (ready at 3): max(3, 0 + 1)",
        ),
        (
            "znver3",
            |a| {
                let mut target = a.create_label();
                a.imul_2(rax, rbx)?;
                a.cmp(rax, rcx)?;
                a.set_label(&mut target)?;
                a.jne(target)
            },
            &[3, 1, 1],
            4.0,
            "the jne waits for the flags at 3 + 1 and, predicted, ends the chain there",
        ),
        (
            "skylake-server",
            |a| a.nop_1(dword_ptr(rax + rax)),
            &[1],
            0.0,
            "a nop has no result: no chain ends after it",
        ),
    ];

    #[test]
    fn a_load_op_waits_for_its_register_operand_only_once_its_load_is_under_way() {
        let sums = block(|a| {
            for offset in [0, 8, 16, 24] {
                a.add(rax, qword_ptr(rbx + offset))?;
            }
            Ok(())
        });
        // znver4, add r64, m64: latency 5, the load's 4 and the add's 1; RAX is read 4
        // cycles in (load-read-advance). The first add's result is ready at 5, each next
        // one's a cycle later: critical path 8, and each execution carries RAX 4 cycles on.
        let znver4 = uarch("znver4");
        assert_eq!(znver4.load_read_advance, 4);
        assert_eq!(row(znver4, &sums[0]).1, 5);
        let cost = znver4.price_block(&sums);
        assert_eq!((cost.critical_path, cost.recurrence), (8.0, 4.0));
    }

    #[test]
    fn a_vector_load_op_reads_its_register_operand_later_still() {
        // znver3, addsd xmm0, [rsi]: latency 10, the vector load's 7 and the add's 3;
        // XMM0 is read 7 cycles in (vector-load-read-advance), so a chain of them grows
        // by the add's 3 an execution, as addsd xmm0, xmm1's does.
        let znver3 = uarch("znver3");
        assert_eq!(znver3.vector_load_read_advance, 7);
        let folded = block(|a| a.addsd(xmm0, qword_ptr(rsi)));
        assert_eq!(row(znver3, &folded[0]).1, 10);
        assert_eq!(znver3.price_block(&folded).recurrence, 3.0);
        let registers = block(|a| a.addsd(xmm0, xmm1));
        assert_eq!(znver3.price_block(&registers).recurrence, 3.0);
    }

    #[test]
    fn a_chain_through_two_registers_is_carried_over_two_executions() {
        let swap = block(|a| {
            a.mov(rcx, rax)?;
            a.imul_3(rax, rbx, 3)?;
            a.lea(rbx, qword_ptr(rcx + 1))
        });
        // znver3: the imul 3 cycles, the lea (with a displacement) 2. The new RAX comes
        // from the old RBX (3), the new RBX from the old RAX (0 + 2): neither carries
        // itself, but RAX → RBX → RAX closes a loop of 5 cycles over two executions.
        // Recurrence 2.5; critical path 3; ALU1, the imul's one port, also takes a quarter
        // of the lea: bound 1.25.
        let znver3 = uarch("znver3");
        let latencies: Vec<u32> = swap.iter().map(|i| row(znver3, i).1).collect();
        assert_eq!(latencies, [0, 3, 2]);
        let cost = znver3.price_block(&swap);
        assert_eq!(bounds(cost), (1.25, 3.0, 2.5));
        assert_eq!(cost.cycles, 2.5);
    }

    #[test]
    fn a_block_that_returns_carries_no_chain_into_itself() {
        // getc's last block: the byte it loads would be the next execution's pointer if
        // the block looped onto itself; it returns, and the caller's call reloads it.
        let getc_tail = |a: &mut CodeAssembler| {
            a.lea(rdx, qword_ptr(rax + 1))?;
            a.mov(qword_ptr(rdi + 8), rdx)?;
            a.movzx(eax, byte_ptr(rax))
        };
        let znver4 = uarch("znver4");
        let looped = znver4.price_block(&block(|a| {
            getc_tail(a)?;
            a.jmp(0x1000)
        }));
        assert!(looped.recurrence >= 4.0, "{looped:?}");
        let returns = znver4.price_block(&block(|a| {
            getc_tail(a)?;
            a.ret()
        }));
        assert_eq!(returns.recurrence, 0.0);
        assert_eq!(returns.critical_path, looped.critical_path);
        assert_eq!(returns.cycles, returns.throughput_bound);
    }

    #[test]
    fn a_chain_through_three_registers_is_read_over_whole_turns() {
        let rotation = block(|a| {
            a.lea(rdx, qword_ptr(rax + 1))?;
            a.imul_3(rax, rbx, 3)?;
            a.mov(rbx, rcx)?;
            a.mov(rcx, rdx)
        });
        // znver3: RAX → RDX (the lea, 2) → RCX (0) → RBX in the next execution (0) → RAX
        // in the one after (the imul, 3): 5 cycles every 3 executions.
        let cost = uarch("znver3").price_block(&rotation);
        assert!((cost.recurrence - 5.0 / 3.0).abs() < 1e-9, "{cost:?}");
    }

    #[test]
    fn critical_paths_worked_out_by_hand() {
        for (name, build, latencies, path, why) in CHAINS {
            let instructions = block(build);
            let uarch = uarch(name);
            let read: Vec<u32> = instructions.iter().map(|i| row(uarch, i).1).collect();
            assert_eq!(read, latencies, "{why}");
            assert_eq!(
                uarch.price_block(&instructions).critical_path,
                path,
                "{why}"
            );
        }
        // The zero idiom's row: 1 uop, latency 0, no port.
        let xor = block(|a| a.xor(eax, eax));
        assert_eq!(row(uarch("znver3"), &xor[0]), (1, 0, 0.17, vec![]));
    }

    #[test]
    fn pushes_do_not_chain_through_rsp() {
        let pushes = block(|a| {
            for register in [rbx, rbp, r12, r13] {
                a.push(register)?;
            }
            Ok(())
        });
        // znver3, push r64: latency 1, both store units 1 cycle each. The stack engine
        // updates RSP: chain 1, not 4, and nothing carried between executions. Store units
        // 4 × 1 = 4.0: price 4.
        let znver3 = uarch("znver3");
        assert_eq!(row(znver3, &pushes[0]).1, 1);
        assert_eq!(bounds(znver3.price_block(&pushes)), (4.0, 1.0, 0.0));
    }

    #[test]
    fn the_sandbox_check_is_priced_by_its_stand_in() {
        let check = Instruction::with2(Code::Bndcu_bnd_rm64, Register::BND0, Register::RAX)
            .expect("encodes");
        // skylake-server: one integer uop (the stand-in `cmp`): ports 0, 1, 5, 6.
        let skylake = uarch("skylake-server");
        assert_eq!(
            row(skylake, &check),
            (1, 1, 0.25, each(&SKYLAKE_ALUS, 0.25))
        );
        // znver3 and znver4: a hint NOP, 1 uop.
        for name in ["znver3", "znver4"] {
            let zen = uarch(name);
            assert_eq!(row(zen, &check).0, 1, "{name}");
            assert_eq!(zen.price_block(&[check]).unpriced, 0, "{name}");
        }
        // sapphirerapids: a hint NOP, which its model dispatches as no uop and no port.
        let sapphire_rapids = uarch("sapphirerapids");
        assert_eq!(row(sapphire_rapids, &check), (0, 1, 0.0, vec![]));
        let cost = sapphire_rapids.price_block(&[check]);
        assert_eq!((cost.unpriced, cost.cycles), (0, 0.0));
        // A check only reads (its register and BND0): it delays no chain, and three
        // checks cost their throughput, 3 uops on 4 ALUs: 0.75 cycles.
        let checks = [Register::RAX, Register::RBX, Register::RCX].map(|register| {
            Instruction::with2(Code::Bndcu_bnd_rm64, Register::BND0, register).expect("encodes")
        });
        let cost = skylake.price_block(&checks);
        assert_eq!((cost.critical_path, cost.throughput_bound), (0.0, 0.75));
    }
}
