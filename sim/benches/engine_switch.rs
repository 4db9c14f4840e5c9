//! Issue 9, decision 1 (shared/design/multiprocess.md §1): one Unicorn engine per address
//! space (option A), or one engine for the whole system whose tasks are saved contexts and
//! whose address spaces are CR3 roots (option B)? Measures a task switch both ways, the TLB
//! refill after B's CR3 flush, what a new engine costs in time and memory, and checks the
//! facts option B rests on (what `uc_context_restore` restores, whether it flushes the TLB,
//! whether translated blocks survive a CR3 switch).
//!
//! `cargo bench -p sim --bench engine_switch`; prints Markdown for BENCHMARKS.md.
//!
//! The engines are set up as `sim::machine` sets up its own (Denverton CPU model, 4-level page
//! tables with NX, EFER/CR0/CR4, a `sysretq` into ring 3), minus the hooks that do not bear on
//! a switch (the block counter, CPUID, RDTSC) and the GDT (`sysretq` loads CS and SS from STAR
//! without reading it, and nothing here faults).

use std::time::Instant;

use iced_x86::code_asm::{esi, qword_ptr, rax, rbx, rcx, rdi, rdx, CodeAssembler};
use sim::machine::paging::{Leaf, PageFlags, PageTables};
use sim::machine::physmem::{Frame, PhysMem, PAGE_SIZE, PHYS_SIZE};
use sim::machine::KERNEL_BASE;
use unicorn_engine::{
    uc_context_size, uc_reg_read, Arch, Context, Mode, Prot, RegisterX86, Unicorn, X86CpuModel,
    X86Insn,
};

/// The program: touch `pages` data pages, then `syscall`, forever.
const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x1000_0000;
/// A `sysretq` at ring 0 that drops to the program at ring 3 (RCX = entry, R11 = RFLAGS).
const ENTER_USER: u64 = KERNEL_BASE;
/// The `until` of every `emu_start`: never executed, so no restart throws translations away.
const NEVER_REACHED: u64 = ENTER_USER + 0x10;
const SYSRETQ: [u8; 3] = [0x48, 0x0f, 0x07];
const USER_RFLAGS: u64 = 0x202;

const MSR_EFER: u32 = 0xc000_0080;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// SCE | LME | LMA | NXE.
const EFER: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
/// PE | MP | ET | NE | WP | PG.
const CR0: u64 = (1 << 0) | (1 << 1) | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 31);
/// PAE | OSFXSR | OSXMMEXCPT.
const CR4: u64 = (1 << 5) | (1 << 9) | (1 << 10);
const STAR: u64 = (0x23 << 48) | (0x10 << 32);

/// Pages each task touches per syscall, with the loop iterations timed per repetition
/// (about 0.1-0.5 s each on the machine of BENCHMARKS.md).
const WORKLOADS: [(u32, u64); 3] = [(1, 200_000), (16, 50_000), (256, 5_000)];
/// Timed repetitions per figure (after one warm-up); the median is reported.
const REPETITIONS: usize = 9;

const KERNEL_PAGE: PageFlags = PageFlags {
    present: true,
    write: false,
    execute: true,
    user: false,
};
const USER_CODE: PageFlags = PageFlags {
    present: true,
    write: false,
    execute: true,
    user: true,
};
const USER_DATA: PageFlags = PageFlags {
    present: true,
    write: true,
    execute: false,
    user: true,
};

/// What the hooks count.
#[derive(Default)]
struct Counters {
    /// Syscalls until the hook stops the engine.
    syscalls_left: u64,
    /// Translated blocks of the program generated so far (after the engine's first block).
    translations: u64,
}

type Engine = Unicorn<'static, Counters>;

/// Which frame a new address space maps the program from.
#[derive(Clone, Copy)]
enum Text {
    /// The frame every address space over this memory maps (a fork child, or a shared libc).
    Shared,
    /// A frame of its own holding a copy.
    Copied,
}

/// Guest physical memory with the frames its address spaces share: the `sysretq` stub and the
/// program.
struct Physical {
    phys: PhysMem,
    stub: Frame,
    code: Frame,
    program: Vec<u8>,
    pages: u32,
}

impl Physical {
    /// Memory for the loop that touches `pages` pages.
    fn new(pages: u32) -> Self {
        Self::with_program(looping(pages), pages)
    }

    /// Memory for `program` (one page at most), with `pages` data pages per address space.
    fn with_program(program: Vec<u8>, pages: u32) -> Self {
        let mut phys = PhysMem::new().expect("reserve guest memory");
        let stub = phys.alloc().expect("a frame");
        phys.frame_mut(stub)[..SYSRETQ.len()].copy_from_slice(&SYSRETQ);
        assert!(
            program.len() as u64 <= PAGE_SIZE,
            "the program fits one page"
        );
        let code = phys.alloc().expect("a frame");
        phys.frame_mut(code)[..program.len()].copy_from_slice(&program);
        Self {
            phys,
            stub,
            code,
            program,
            pages,
        }
    }

    /// A new address space: the stub, the program, and data pages of its own whose first
    /// words hold `marker`. Returns its CR3.
    fn address_space(&mut self, text: Text, marker: u64) -> u64 {
        let phys = &mut self.phys;
        let tables = PageTables::new(phys).expect("a frame");
        let code = match text {
            Text::Shared => self.code,
            Text::Copied => {
                let frame = phys.alloc().expect("a frame");
                phys.frame_mut(frame)[..self.program.len()].copy_from_slice(&self.program);
                frame
            }
        };
        let mut map = |vaddr, frame, flags| {
            tables
                .map(phys, vaddr, Leaf { frame, flags })
                .expect("a frame for a page table");
        };
        map(ENTER_USER, self.stub, KERNEL_PAGE);
        map(CODE, code, USER_CODE);
        for page in 0..u64::from(self.pages) {
            let frame = phys.alloc().expect("a frame");
            phys.write_u64(frame * PAGE_SIZE, marker);
            tables
                .map(
                    phys,
                    DATA + page * PAGE_SIZE,
                    Leaf {
                        frame,
                        flags: USER_DATA,
                    },
                )
                .expect("a frame for a page table");
        }
        tables.cr3()
    }
}

/// The guest loop: `add rax, [page]` for each of `pages` pages, then `syscall`.
fn looping(pages: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut top = a.create_label();
    let mut touch = a.create_label();
    a.set_label(&mut top).unwrap();
    a.mov(rdi, DATA).unwrap();
    a.mov(esi, pages).unwrap();
    a.set_label(&mut touch).unwrap();
    a.add(rax, qword_ptr(rdi)).unwrap();
    a.add(rdi, PAGE_SIZE as i32).unwrap();
    a.dec(esi).unwrap();
    a.jnz(touch).unwrap();
    a.syscall().unwrap();
    a.jmp(top).unwrap();
    a.assemble(CODE).unwrap()
}

/// `blocks` distinct blocks of five instructions run in a row, then `syscall`, forever:
/// each run of it after the first translates nothing.
fn straight_line(blocks: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    for _ in 0..blocks {
        let mut next = a.create_label();
        a.add(rax, 1).unwrap();
        a.add(rbx, rax).unwrap();
        a.xor(rcx, rbx).unwrap();
        a.add(rdx, rcx).unwrap();
        a.jmp(next).unwrap();
        a.set_label(&mut next).unwrap();
    }
    a.syscall().unwrap();
    a.jmp(top).unwrap();
    a.assemble(CODE).unwrap()
}

/// An engine over `memory`, in ring 0 at the `sysretq` into the program, with address space
/// `cr3`. The caller keeps `memory` alive for as long as the engine.
fn engine(memory: &Physical, cr3: u64) -> Engine {
    let mut uc = Unicorn::new_with_data(Arch::X86, Mode::MODE_64, Counters::default())
        .expect("open Unicorn");
    uc.ctl_set_cpu_model(X86CpuModel::DENVERTON as i32)
        .expect("select the CPU model");
    // SAFETY: every caller drops the engine before `memory` (a field or tuple element
    // declared after the engine's, or an explicit drop).
    unsafe {
        uc.mem_map_ptr(0, PHYS_SIZE, Prot::ALL, memory.phys.host_base().cast())
            .expect("map guest RAM");
    }
    let registers = [
        (RegisterX86::CR3, cr3),
        (RegisterX86::CR4, CR4),
        (RegisterX86::CR0, CR0),
        (RegisterX86::RCX, CODE),
        (RegisterX86::R11, USER_RFLAGS),
    ];
    write_msr(&uc, MSR_EFER, EFER);
    for (register, value) in registers {
        uc.reg_write(register, value).expect("write a register");
    }
    for (msr, value) in [(MSR_STAR, STAR), (MSR_LSTAR, 0), (MSR_SFMASK, 0x4_7700)] {
        write_msr(&uc, msr, value);
    }
    uc.add_insn_sys_hook(X86Insn::SYSCALL, 1, 0, |uc| {
        let counters = uc.get_data_mut();
        counters.syscalls_left -= 1;
        if counters.syscalls_left == 0 {
            uc.emu_stop().expect("stop");
        }
    })
    .expect("add the syscall hook");
    // Called at each translation (after the engine's first): counts the program's blocks.
    uc.add_edge_gen_hook(CODE, CODE + PAGE_SIZE - 1, |uc, _, _| {
        uc.get_data_mut().translations += 1;
    })
    .expect("add the translation hook");
    uc
}

fn write_msr(uc: &Engine, msr: u32, value: u64) {
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&msr.to_le_bytes());
    raw[8..].copy_from_slice(&value.to_le_bytes());
    uc.reg_write_long(RegisterX86::MSR, &raw)
        .expect("write an MSR");
}

fn read_msr(uc: &Engine, msr: u32) -> u64 {
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&msr.to_le_bytes());
    // SAFETY: a live engine, and `raw` is a `uc_x86_msr` (u32 id, padding, u64 value) that
    // Unicorn fills in.
    let status = unsafe {
        uc_reg_read(
            uc.get_handle(),
            RegisterX86::MSR as i32,
            raw.as_mut_ptr().cast(),
        )
    };
    assert_eq!(status, unicorn_engine::uc_error::OK, "read an MSR");
    u64::from_le_bytes(raw[8..].try_into().unwrap())
}

fn register(uc: &Engine, register: RegisterX86) -> u64 {
    uc.reg_read(register).expect("read a register")
}

/// Enters the program at ring 3 and runs it to its first syscall.
fn enter(uc: &mut Engine) {
    uc.get_data_mut().syscalls_left = 1;
    uc.emu_start(ENTER_USER, NEVER_REACHED, 0, 0)
        .expect("enter ring 3");
}

/// Runs the current task on from where it stopped until it has made `syscalls` syscalls.
fn resume(uc: &mut Engine, syscalls: u64) {
    uc.get_data_mut().syscalls_left = syscalls;
    let rip = uc.pc_read().expect("read RIP");
    uc.emu_start(rip, NEVER_REACHED, 0, 0)
        .expect("run the task");
}

/// Loop iterations of some arrangement of tasks and engines: each ends in a syscall.
trait Workload {
    fn run(&mut self, iterations: u64);
}

/// One task on one engine.
struct Alone {
    uc: Engine,
    /// Stop at every syscall and start the engine again (else the hook just returns).
    restart: bool,
    _memory: Physical,
}

impl Alone {
    fn new(pages: u32, restart: bool) -> Self {
        let mut memory = Physical::new(pages);
        let cr3 = memory.address_space(Text::Shared, 1);
        let mut uc = engine(&memory, cr3);
        enter(&mut uc);
        Self {
            uc,
            restart,
            _memory: memory,
        }
    }
}

impl Workload for Alone {
    fn run(&mut self, iterations: u64) {
        if self.restart {
            for _ in 0..iterations {
                resume(&mut self.uc, 1);
            }
        } else {
            resume(&mut self.uc, iterations);
        }
    }
}

/// Option A: an engine per address space, each with its own memory; a switch starts the
/// other engine, whose state nobody touched.
struct EnginePerSpace {
    machines: [(Engine, Physical); 2],
    current: usize,
}

impl EnginePerSpace {
    fn new(pages: u32) -> Self {
        let machines = [1, 2].map(|marker| {
            let mut memory = Physical::new(pages);
            let cr3 = memory.address_space(Text::Shared, marker);
            let mut uc = engine(&memory, cr3);
            enter(&mut uc);
            (uc, memory)
        });
        Self {
            machines,
            current: 0,
        }
    }
}

impl Workload for EnginePerSpace {
    fn run(&mut self, iterations: u64) {
        for _ in 0..iterations {
            resume(&mut self.machines[self.current].0, 1);
            self.current ^= 1;
        }
    }
}

/// Option B: one engine; a switch saves the current task's context and restores the other's,
/// then (between processes) writes CR3, which flushes the TLB.
struct OneEngine {
    uc: Engine,
    contexts: [Context; 2],
    /// Each task's CR3, or none for two threads of one address space.
    roots: Option<[u64; 2]>,
    current: usize,
    /// Program blocks each task's first run translated.
    entry_translations: [u64; 2],
    _memory: Physical,
}

impl OneEngine {
    /// Two processes (`processes`) or two threads of one process, each entered at ring 3
    /// from the same boot context and run to its first syscall.
    fn new(pages: u32, text: Text, processes: bool) -> Self {
        let mut memory = Physical::new(pages);
        let first = memory.address_space(text, 1);
        let roots = processes.then(|| [first, memory.address_space(text, 2)]);
        let mut uc = engine(&memory, first);
        let boot = uc.context_init().expect("save a context");
        let mut entry_translations = [0; 2];
        let contexts = [0, 1].map(|task| {
            uc.context_restore(&boot).expect("restore a context");
            if let Some(roots) = roots {
                uc.reg_write(RegisterX86::CR3, roots[task])
                    .expect("write CR3");
            }
            let before = uc.get_data().translations;
            enter(&mut uc);
            entry_translations[task] = uc.get_data().translations - before;
            uc.context_init().expect("save a context")
        });
        Self {
            uc,
            contexts,
            roots,
            current: 1,
            entry_translations,
            _memory: memory,
        }
    }

    fn switch(&mut self) {
        self.uc
            .context_save(&mut self.contexts[self.current])
            .expect("save a context");
        self.current ^= 1;
        self.uc
            .context_restore(&self.contexts[self.current])
            .expect("restore a context");
        if let Some(roots) = self.roots {
            self.uc
                .reg_write(RegisterX86::CR3, roots[self.current])
                .expect("write CR3");
        }
    }
}

impl Workload for OneEngine {
    fn run(&mut self, iterations: u64) {
        for _ in 0..iterations {
            resume(&mut self.uc, 1);
            self.switch();
        }
    }
}

type Build = fn(u32) -> Box<dyn Workload>;

/// The arrangements timed, with their column heads.
const ARRANGEMENTS: [(&str, Build); 5] = [
    ("no switch, hook returns", |pages| {
        Box::new(Alone::new(pages, false))
    }),
    ("no switch, stop + restart", |pages| {
        Box::new(Alone::new(pages, true))
    }),
    ("A: other engine", |pages| {
        Box::new(EnginePerSpace::new(pages))
    }),
    ("B: threads (restore)", |pages| {
        Box::new(OneEngine::new(pages, Text::Shared, false))
    }),
    ("B: processes (restore + CR3)", |pages| {
        Box::new(OneEngine::new(pages, Text::Shared, true))
    }),
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median ns per iteration of each workload; the workloads take turns within each
/// repetition so that the machine's drift reaches all of them alike.
fn time_per_iteration(workloads: &mut [Box<dyn Workload>], iterations: u64) -> Vec<f64> {
    let mut samples = vec![Vec::new(); workloads.len()];
    for workload in workloads.iter_mut() {
        workload.run(iterations);
    }
    for _ in 0..REPETITIONS {
        for (workload, samples) in workloads.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            workload.run(iterations);
            samples.push(start.elapsed().as_nanos() as f64 / iterations as f64);
        }
    }
    samples.into_iter().map(median).collect()
}

fn switch_costs() {
    println!("ns per loop iteration (one syscall; a switch after it where there is one):\n");
    let heads: Vec<&str> = ARRANGEMENTS.iter().map(|(head, _)| *head).collect();
    println!(
        "| pages touched | {} | A − base | B threads − base | B processes − base | B processes / A |",
        heads.join(" | ")
    );
    println!("|---:|{}", "---:|".repeat(heads.len() + 4));
    for (pages, iterations) in WORKLOADS {
        let mut workloads: Vec<Box<dyn Workload>> =
            ARRANGEMENTS.iter().map(|(_, build)| build(pages)).collect();
        let ns = time_per_iteration(&mut workloads, iterations);
        let base = ns[0];
        println!(
            "| {pages} | {} | {:.0} | {:.0} | {:.0} | {:.2}× |",
            ns.iter()
                .map(|n| format!("{n:.0}"))
                .collect::<Vec<_>>()
                .join(" | "),
            ns[2] - base,
            ns[3] - base,
            ns[4] - base,
            (ns[4] - base) / (ns[2] - base),
        );
    }
    println!();
}

/// Per-task state a switch must carry: segment bases and MSRs.
const PER_TASK: [&str; 4] = ["FS_BASE", "GS_BASE", "LSTAR", "KERNEL_GS_BASE"];

/// Task `task`'s values of `PER_TASK`, different in each task.
fn per_task_values(task: u64) -> [u64; 4] {
    let scale = task + 1;
    [
        0x1000 * scale,
        0x2000 * scale,
        ENTER_USER + 0x100 * scale,
        0x3000 * scale,
    ]
}

fn set_per_task(uc: &mut Engine, task: u64) {
    let [fs, gs, lstar, kernel_gs] = per_task_values(task);
    uc.reg_write(RegisterX86::FS_BASE, fs)
        .expect("write FS_BASE");
    uc.reg_write(RegisterX86::GS_BASE, gs)
        .expect("write GS_BASE");
    write_msr(uc, MSR_LSTAR, lstar);
    write_msr(uc, MSR_KERNEL_GS_BASE, kernel_gs);
}

fn per_task(uc: &Engine) -> [u64; 4] {
    [
        register(uc, RegisterX86::FS_BASE),
        register(uc, RegisterX86::GS_BASE),
        read_msr(uc, MSR_LSTAR),
        read_msr(uc, MSR_KERNEL_GS_BASE),
    ]
}

/// What `uc_context_restore` brings back, and whether it flushes the TLB: two processes with
/// the same virtual data page, holding 1 and 2 in their own frames.
fn context_facts() {
    let mut system = OneEngine::new(1, Text::Shared, true);
    set_per_task(&mut system.uc, 1);
    system.switch();
    set_per_task(&mut system.uc, 0);
    // Task 0 runs, leaving its translation of the data page in the TLB; then task 1's
    // context is restored without the CR3 write.
    resume(&mut system.uc, 1);
    let uc = &mut system.uc;
    uc.context_save(&mut system.contexts[0]).expect("save");
    uc.context_restore(&system.contexts[1]).expect("restore");
    let cr3 = register(uc, RegisterX86::CR3);
    let restored = per_task(uc);
    uc.reg_write(RegisterX86::RAX, 0).expect("write RAX");
    resume(uc, 1);
    let stale = register(uc, RegisterX86::RAX);
    // The same with the full switch: back to task 0, which fills the TLB again, then to
    // task 1 with the CR3 write.
    system.current = 1;
    system.switch();
    resume(&mut system.uc, 1);
    system.switch();
    system.uc.reg_write(RegisterX86::RAX, 0).expect("write RAX");
    resume(&mut system.uc, 1);
    let fresh = register(&system.uc, RegisterX86::RAX);

    // SAFETY: a live engine handle.
    let size = unsafe { uc_context_size(system.uc.get_handle()) };
    println!("| `uc_context_restore` of task 1 after task 0 ran | observed |");
    println!("|---|---|");
    println!("| context size (CPU state only, the default mode) | {size} bytes |");
    let roots = system.roots.expect("two processes");
    println!(
        "| restores CR3 | {} ({cr3:#x}) |",
        if cr3 == roots[1] { "yes" } else { "no" }
    );
    for ((name, want), got) in PER_TASK.iter().zip(per_task_values(1)).zip(restored) {
        println!(
            "| restores {name} | {} ({got:#x}) |",
            if got == want { "yes" } else { "no" }
        );
    }
    let whose = |value| {
        if value == 2 {
            "its own frame"
        } else {
            "task 0's frame"
        }
    };
    println!(
        "| task 1 reads its data page (its frame holds 2, task 0's 1): restore only | {stale}: {} |",
        whose(stale)
    );
    println!(
        "| the same: restore + `reg_write(CR3)` | {fresh}: {} |",
        whose(fresh)
    );
    println!();
    assert_eq!(fresh, 2, "a CR3 write after the restore must flush the TLB");
}

/// Whether translated blocks survive a CR3 switch, and who translates what: the program's
/// blocks translated by each task's first run (from ring 0 to its first syscall), and by
/// 1,000 switches once every block has run.
fn translation_facts() {
    println!("| program blocks translated | task 0's first run | task 1's first run | 1,000 switches after |");
    println!("|---|---:|---:|---:|");
    let cases = [
        ("B, processes, program in one shared frame", Text::Shared),
        ("B, processes, program copied to a frame each", Text::Copied),
    ];
    for (name, text) in cases {
        let mut system = OneEngine::new(16, text, true);
        let [first, second] = system.entry_translations;
        system.run(2);
        let before = system.uc.get_data().translations;
        system.run(1_000);
        let after = system.uc.get_data().translations - before;
        println!("| {name} | {first} | {second} | {after} |");
    }
    let mut engines = EnginePerSpace::new(16);
    let count = |engines: &EnginePerSpace| {
        engines
            .machines
            .each_ref()
            .map(|(uc, _)| uc.get_data().translations)
    };
    let [first, second] = count(&engines);
    engines.run(2);
    let before: u64 = count(&engines).iter().sum();
    engines.run(1_000);
    let after = count(&engines).iter().sum::<u64>() - before;
    println!("| A, engine per address space | {first} | {second} | {after} |");
    println!();
}

/// Host memory, from /proc/self/status, in KiB.
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("a memory field")
}

/// What option A pays per fork+exec that option B does not: an engine, in time and memory.
fn engine_costs() {
    const ENGINES: usize = 16;
    let rss = memory_kib("VmRSS");
    let mut memories: Vec<(Physical, u64)> = (0..ENGINES)
        .map(|_| {
            let mut memory = Physical::new(16);
            let cr3 = memory.address_space(Text::Shared, 1);
            (memory, cr3)
        })
        .collect();
    let (rss_memory, size_memory) = (memory_kib("VmRSS"), memory_kib("VmSize"));
    let engines: Vec<Engine> = memories
        .iter()
        .map(|(memory, cr3)| {
            let mut uc = engine(memory, *cr3);
            enter(&mut uc);
            uc
        })
        .collect();
    let (rss_engines, size_engines) = (memory_kib("VmRSS"), memory_kib("VmSize"));
    drop(engines);

    let mut open = Vec::new();
    let mut first_run = Vec::new();
    let mut close = Vec::new();
    let mut new_task = Vec::new();
    for _ in 0..30 {
        let (memory, cr3) = &mut memories[0];
        let start = Instant::now();
        let mut uc = engine(memory, *cr3);
        let opened = Instant::now();
        enter(&mut uc);
        let entered = Instant::now();
        let context = uc.context_init().expect("save a context");
        let saved = Instant::now();
        drop(context);
        drop(uc);
        let closed = Instant::now();
        open.push((opened - start).as_nanos() as f64 / 1e3);
        first_run.push((entered - opened).as_nanos() as f64 / 1e3);
        new_task.push((saved - entered).as_nanos() as f64 / 1e3);
        close.push((closed - saved).as_nanos() as f64 / 1e3);
    }
    // Translation alone: the first run of a straight line of blocks against the second.
    const BLOCKS: u32 = 200;
    let mut memory = Physical::with_program(straight_line(BLOCKS), 0);
    let cr3 = memory.address_space(Text::Shared, 0);
    let mut translation = Vec::new();
    for _ in 0..30 {
        let mut uc = engine(&memory, cr3);
        let start = Instant::now();
        enter(&mut uc);
        let first = Instant::now();
        resume(&mut uc, 1);
        let second = Instant::now();
        let (first, second) = ((first - start).as_nanos(), (second - first).as_nanos());
        translation.push((first - second) as f64 / f64::from(BLOCKS) / 1e3);
    }

    println!("| a new engine (option A's price per address space) | median of 30 |");
    println!("|---|---:|");
    println!(
        "| `uc_open` + CPU model + map RAM + registers + hooks | {:.0} µs |",
        median(open)
    );
    println!(
        "| first run to the first syscall (translating the loop) | {:.0} µs |",
        median(first_run)
    );
    println!("| `uc_close` | {:.0} µs |", median(close));
    println!(
        "| translating a block of 5 instructions (first run − second, over {BLOCKS} blocks) | {:.1} µs |",
        median(translation)
    );
    println!(
        "| option B's new task instead: `context_alloc` + `context_save` | {:.1} µs |",
        median(new_task)
    );
    let per = |after: u64, before: u64| (after - before) as f64 / ENGINES as f64 / 1024.0;
    println!(
        "| resident memory per engine (after its first syscall; its guest memory apart) | {:.1} MiB |",
        per(rss_engines, rss_memory)
    );
    println!(
        "| address space reserved per engine | {:.0} MiB |",
        per(size_engines, size_memory)
    );
    println!(
        "| for scale: resident guest memory + page tables per address space (16 data pages) | {:.2} MiB |",
        per(rss_memory, rss)
    );
    println!();
}

fn main() {
    context_facts();
    translation_facts();
    engine_costs();
    switch_costs();
}
