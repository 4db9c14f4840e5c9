//! The emulated CPU: Unicorn x86-64 with real 4-level page tables, a GDT, and a true ring 3
//! entered through `sysretq`.
//!
//! Guest paging with NX made real programs about 5× faster under Unicorn (stores leave the
//! self-modifying-code slow path) and is what gives ring 3 real teeth: at CPL 3 a touch of
//! a supervisor page raises #PF and `hlt` raises #GP, as on hardware (DESIGN.md).

pub mod cpuid;
pub mod faults;
pub mod guard;
pub mod paging;
pub mod physmem;
pub mod regs;
pub mod switch;

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::rc::Rc;

use unicorn_engine::{
    uc_chain_across_pages, uc_emu_stop, uc_engine, uc_error, uc_hook, uc_hook_add, uc_inline_block,
    uc_inline_counting_set, uc_reg_read, uc_reg_write, Arch, HookType, Mode, Prot, RegisterX86,
    UcHookId, Unicorn, X86CpuModel, X86Insn,
};

use crate::bt::cache::CacheSync;
use crate::bt::layout::{self, Hypercall, RUNTIME};
use crate::memory::{Access, USER_END};
use crate::system::{Finished, Flow, RunUntil, System};
use syscalls::x86_64::Sysno;

/// Start of the kernel half of the address space.
pub const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;
const GDT: u64 = KERNEL_BASE;
/// A `sysretq` that drops the CPU from ring 0 to the program's entry at ring 3.
const ENTER_USER: u64 = KERNEL_BASE + 0x1000;
/// LSTAR's target. Syscalls are taken by Unicorn's hook, so reaching it is a bug: `ud2`.
const LSTAR_TARGET: u64 = ENTER_USER + 0x10;

const SYSRETQ: [u8; 3] = [0x48, 0x0f, 0x07];
const UD2: [u8; 2] = [0x0f, 0x0b];

// Linux's x86-64 GDT layout, so the guest sees Linux's selectors: user code 0x33, user data
// (and SS) 0x2b, 32-bit user code 0x23. SYSRET takes CS = STAR[63:48] + 16 and SS =
// STAR[63:48] + 8 from the 32-bit user code selector, as Linux sets it.
const GDT_ENTRIES: [u64; 7] = [
    0,
    0x00cf_9b00_0000_ffff, // 0x08 kernel code, 32-bit, DPL 0
    0x00af_9b00_0000_ffff, // 0x10 kernel code, 64-bit, DPL 0
    0x00cf_9300_0000_ffff, // 0x18 kernel data, DPL 0
    0x00cf_fb00_0000_ffff, // 0x23 user code, 32-bit, DPL 3
    0x00cf_f300_0000_ffff, // 0x2b user data, DPL 3
    0x00af_fb00_0000_ffff, // 0x33 user code, 64-bit, DPL 3
];
const STAR: u64 = (0x23 << 48) | (0x10 << 32);

const MSR_EFER: u32 = 0xc000_0080;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SFMASK: u32 = 0xc000_0084;
const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;
/// The x87 control word after FNINIT: every exception masked, 64-bit precision, round to
/// nearest.
const FNINIT_FCW: u64 = 0x37f;
/// The x87 tag word after FNINIT: every register empty.
const FNINIT_FTW: u64 = 0xffff;
/// MXCSR's reset value: every SSE exception masked, round to nearest.
const MXCSR_DEFAULT: u64 = 0x1f80;
const MSR_BNDCFGS: u32 = 0xd90;
const BNDCFGS_ENABLE: u64 = 1 << 0;
/// Keeps bound registers across branches without a BND prefix (all of the guest's).
const BNDCFGS_PRESERVE: u64 = 1 << 1;
/// RFLAGS at entry to ring 3: IF and the always-one bit, as Linux starts a process.
const USER_RFLAGS: u64 = 0x202;

/// Failures of the emulator itself (not of the guest).
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("the emulator failed to {action}: {error:?}")]
    Setup {
        action: &'static str,
        error: uc_error,
    },
    #[error("the emulator stopped with {error:?} at guest rip {rip:#x}")]
    Emulation { error: uc_error, rip: u64 },
}

fn setup<T>(action: &'static str, result: Result<T, uc_error>) -> Result<T, MachineError> {
    result.map_err(|error| MachineError::Setup { action, error })
}

pub struct Machine {
    uc: Unicorn<'static, System>,
    /// Where emulation begins: the `sysretq` into ring 3, or the ring-0 runtime's start.
    start: u64,
    /// The CPU state of every task but the running one.
    saved: HashMap<crate::kernel::process::Pid, switch::SavedCpu>,
    /// The CPU as a program starts on it (what execve gives the new image).
    initial: unicorn_engine::Context,
}

impl Machine {
    /// Builds the machine around a loaded program; `entry` and `stack_pointer` are where
    /// ring 3 starts.
    pub fn new(mut system: System, entry: u64, stack_pointer: u64) -> Result<Self, MachineError> {
        let ring0 = system.cache.is_some();
        let (start, first_block) = if ring0 {
            prepare_ring0(&mut system, entry, stack_pointer)?
        } else {
            (ENTER_USER, CacheSync::default())
        };
        let mem = &mut system.kernel.proc.mem;
        for (page, execute) in [(GDT, false), (ENTER_USER, true)] {
            mem.map_kernel_page(page, execute)
                .map_err(|_| MachineError::Setup {
                    action: "map the kernel pages",
                    error: uc_error::NOMEM,
                })?;
        }
        let gdt: Vec<u8> = GDT_ENTRIES.iter().flat_map(|e| e.to_le_bytes()).collect();
        mem.fill(GDT, &gdt);
        mem.fill(ENTER_USER, &SYSRETQ);
        mem.fill(LSTAR_TARGET, &UD2);
        let (host_ram, cr3) = (mem.phys().borrow().host_base(), mem.cr3());

        let mut uc = setup(
            "open Unicorn",
            Unicorn::new_with_data(Arch::X86, Mode::MODE_64, system),
        )?;
        // Must precede any other use of the engine.
        setup(
            "select the CPU model",
            uc.ctl_set_cpu_model(X86CpuModel::DENVERTON as i32),
        )?;
        // SAFETY: the host RAM belongs to the system's address space, which lives inside
        // the engine's own data and so outlives every use the engine makes of it.
        setup("map guest RAM", unsafe {
            uc.mem_map_ptr(0, physmem::PHYS_SIZE, Prot::ALL, host_ram.cast())
        })?;

        let mut gdtr = [0u8; 24];
        gdtr[8..16].copy_from_slice(&GDT.to_le_bytes());
        gdtr[16..20].copy_from_slice(&((GDT_ENTRIES.len() * 8 - 1) as u32).to_le_bytes());
        setup("load the GDT", uc.reg_write_long(RegisterX86::GDTR, &gdtr))?;
        setup("set CR3", uc.reg_write(RegisterX86::CR3, cr3))?;
        // Ring 0 needs XSAVE enabled to turn MPX on for the sandbox.
        let cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | if ring0 { CR4_OSXSAVE } else { 0 };
        setup("set CR4", uc.reg_write(RegisterX86::CR4, cr4))?;
        write_msr(&uc, MSR_EFER, EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)?;
        setup(
            "set CR0",
            uc.reg_write(
                RegisterX86::CR0,
                CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
            ),
        )?;
        write_msr(&uc, MSR_STAR, STAR)?;
        write_msr(&uc, MSR_LSTAR, LSTAR_TARGET)?;
        write_msr(&uc, MSR_SFMASK, 0x4_7700)?;
        if ring0 {
            write_msr(&uc, MSR_BNDCFGS, BNDCFGS_ENABLE | BNDCFGS_PRESERVE)?;
        }

        // SYSRETQ loads RIP from RCX and RFLAGS from R11; Linux starts with RDX = 0.
        setup(
            "set the entry registers",
            uc.reg_write(RegisterX86::RCX, entry),
        )?;
        setup(
            "set the entry registers",
            uc.reg_write(RegisterX86::R11, USER_RFLAGS),
        )?;
        setup(
            "set the entry registers",
            uc.reg_write(RegisterX86::RSP, stack_pointer),
        )?;

        // Linux starts a process with the FPU as FNINIT leaves it and MXCSR's default, every
        // exception masked (`fpstate_init_fxstate`); Unicorn's reset leaves both 0, which
        // unmasks them all and sets the x87 to single precision.
        for (register, value) in [
            (RegisterX86::FPCW, FNINIT_FCW),
            (RegisterX86::FPTAG, FNINIT_FTW),
            (RegisterX86::MXCSR, MXCSR_DEFAULT),
        ] {
            setup("set the FPU's initial state", uc.reg_write(register, value))?;
        }
        let initial = setup("save the initial CPU state", uc.context_init())?;
        let mut machine = Self {
            uc,
            start,
            saved: HashMap::new(),
            initial,
        };
        setup("use exits", machine.uc.ctl_exits_enable())?;
        machine.install_hooks(ring0)?;
        // The first block's code may be writable: it is watched like any later block's.
        catch_up(&mut machine.uc, &first_block);
        Ok(machine)
    }

    fn install_hooks(&mut self, ring0: bool) -> Result<(), MachineError> {
        let uc = &mut self.uc;
        // Unicorn runs in and out at any privilege level (it has no I/O permission check);
        // at ring 3 with IOPL 0 they raise #GP.
        setup(
            "add the in hook",
            uc.add_insn_in_hook(|uc, _, _| {
                general_protection_fault(uc);
                0
            }),
        )?;
        setup(
            "add the out hook",
            uc.add_insn_out_hook(|uc, _, _, _| general_protection_fault(uc)),
        )?;
        // sysenter in long mode is the CPU model's to carry out (Unicorn's core would only
        // step past it).
        setup(
            "add the sysenter hook",
            uc.add_insn_sys_hook(X86Insn::SYSENTER, 1, 0, |uc| {
                let rip = uc.pc_read().unwrap_or(0);
                let (eax, regs) = (reg(uc, RegisterX86::RAX), compat_args(uc));
                let length = instruction_length(uc, rip);
                uc.get_data_mut().sysenter(eax, regs, rip, length);
                let _ = uc.emu_stop();
            }),
        )?;
        setup(
            "add the syscall hook",
            uc.add_insn_sys_hook(X86Insn::SYSCALL, 1, 0, on_syscall),
        )?;
        setup("add the interrupt hook", uc.add_intr_hook(on_interrupt))?;
        let handle = uc.get_handle();
        let system: *mut System = uc.get_data_mut();
        // Ring 3 counts the guest's own code; ring 0 counts the code cache and stubs.
        let counted = if ring0 {
            layout::BASE..u64::MAX
        } else {
            0..USER_END - 1
        };
        // SAFETY: the system lives in the engine's heap-allocated data, which neither moves
        // nor dies while the engine runs. The pointer is used only inside these raw hooks,
        // which Unicorn calls one at a time and never from within another hook, while the
        // Rust side holds no borrow of the data across `emu_start` (each wrapper hook and
        // the run loop borrow it afresh and let go before the engine runs again). Under
        // Stacked Borrows those fresh borrows would retire this pointer's tag: the argument
        // is that no two live references overlap, not a proof under that model.
        unsafe { raw_block_hook(handle, system.cast(), counted)? };
        // SAFETY: as for the block hook; the counters' addresses stay put as long
        // (`System::inline_counting`).
        unsafe { raw_inline_counting(handle, system)? };
        if ring0 {
            // The code cache and the stubs keep their frames while their address space
            // lives (a fork or an exec gives the new one a fresh cache on other frames, and
            // a frame that held code is reused only after every translation is dropped), so
            // direct jumps between them may chain across pages: a jump to another page went
            // through QEMU's lookup (`helper_lookup_tb_ptr`) on every run.
            // SAFETY: a live engine handle.
            let result = unsafe { uc_chain_across_pages(handle, layout::BASE, u64::MAX) };
            setup("chain the code cache's jumps", result.into())?;
        }
        // SAFETY: the callbacks match Unicorn's `uc_cb_insn_cpuid_t` and get the system,
        // as the block hook does.
        unsafe {
            raw_insn_hook(handle, X86Insn::CPUID, on_cpuid, system.cast())?;
            raw_insn_hook(handle, X86Insn::RDTSC, on_rdtsc, system.cast())?;
            raw_insn_hook(handle, X86Insn::RDTSCP, on_rdtscp, system.cast())?;
        }
        Ok(())
    }

    /// Runs the program until it exits, faults, or the simulator stops it.
    pub fn run(mut self) -> Result<Finished, MachineError> {
        // At ring 0 the first block is translated before the start: it may already have
        // ended the run (an unfetchable entry point).
        if self.uc.get_data().stop.is_some() {
            return Ok(self.uc.get_data_mut().finish());
        }
        self.uc.get_data_mut().start_quantum();
        let mut start = self.start;
        loop {
            // Unicorn's exits list stands for `until`: at every start Unicorn drops the
            // translations at each exit, looking its page up as the CPU would, and at ring 3
            // the old `until` (a kernel page) made that lookup a page fault the CPU
            // remembered, so the guest's next real fault came out as a double fault. With
            // no place to stop, the list is empty and nothing is looked up.
            let exits: Vec<u64> = self
                .uc
                .get_data()
                .run_until
                .map(RunUntil::address)
                .into_iter()
                .collect();
            setup("set the places to stop", self.uc.ctl_set_exits(&exits))?;
            let result = self.uc.emu_start(start, 0, 0, 0);
            let rip = self.uc.pc_read().unwrap_or(0);
            let system = self.uc.get_data_mut();
            let stopped = system.stop.is_some();
            match result {
                // Stopped before the block after a store that changed translated code, to
                // bring the CPU up to date: go on.
                Ok(()) if !stopped && system.resync.is_some() => {
                    let sync = system.take_resync();
                    start = system.resume_after_store(rip);
                    catch_up(&mut self.uc, &sync);
                    continue;
                }
                // At the place `run_until` names.
                Ok(()) if !stopped && system.run_until.map(RunUntil::address) == Some(rip) => {
                    if let Some(next) = system.reached_run_until(rip) {
                        start = next;
                        continue;
                    }
                }
                // Stopped before a block with an instruction the CPU model lacks: run up
                // to it.
                Ok(()) if !stopped && system.run_until.is_some() => {
                    // Unicorn stops at `until` only in code it translates after being told:
                    // a translation already holding the place must go.
                    if let Some(until) = system.run_until.map(RunUntil::address) {
                        let _ = self.uc.ctl_remove_cache(until, until + 1);
                    }
                    start = rip;
                    continue;
                }
                Ok(()) => {}
                Err(uc_error::INSN_INVALID) if !stopped => system.invalid_instruction(rip),
                Err(error) => return Err(MachineError::Emulation { error, rip }),
            }
            let system = self.uc.get_data();
            if system.stop.is_some() {
                break;
            }
            if !system.wants_switch() {
                return Err(MachineError::Emulation {
                    error: uc_error::OK,
                    rip,
                });
            }
            match self.reschedule()? {
                Some(next) => start = next,
                None => break,
            }
        }
        Ok(self.uc.get_data_mut().finish())
    }
}

fn on_syscall(uc: &mut Unicorn<'_, System>) {
    use RegisterX86::{R10, R11, R8, R9, RAX, RCX, RDI, RDX, RFLAGS, RSI, RSP};
    let rip = uc.pc_read().unwrap_or(0);
    let flow = match layout::hypercall_at(rip) {
        Some(Hypercall::CompatEntry) => {
            let args = compat_args(uc);
            let guest_rip = uc
                .get_data()
                .kernel
                .proc
                .mem
                .read_kernel_u64(RUNTIME.target);
            let eax = reg(uc, RAX);
            uc.get_data_mut()
                .compat_syscall("int 0x80", eax, &args, guest_rip)
        }
        Some(Hypercall::Emulate) => crate::bt::emulate::emulate(uc),
        Some(call) if call != Hypercall::KernelEntry => uc.get_data_mut().hypercall(call, rip),
        entry => {
            let nr = reg(uc, RAX);
            // The calls that read registers; the CPU is where they live.
            if nr == Sysno::arch_prctl as u64 {
                let (fs, gs) = (reg(uc, RegisterX86::FS_BASE), reg(uc, RegisterX86::GS_BASE));
                let registers = &mut uc.get_data_mut().kernel.registers;
                (registers.fs_base_now, registers.gs_base_now) = (fs, gs);
            }
            if nr == Sysno::sigaltstack as u64 || nr == Sysno::rt_sigreturn as u64 {
                let rsp = regs::guest_rsp(uc);
                let mut user = regs::user_regs(uc);
                user.eflags = reg(uc, RFLAGS);
                let registers = &mut uc.get_data_mut().kernel.registers;
                (registers.rsp_now, registers.user_now) = (rsp, user);
            }
            let args = [
                reg(uc, RDI),
                reg(uc, RSI),
                reg(uc, RDX),
                reg(uc, R10),
                reg(uc, R8),
                reg(uc, R9),
            ];
            // From the kernel entry, the return address on the kernel stack lies in the
            // translation of the guest's syscall (whatever its length, prefixes included).
            let guest_rip = if entry.is_some() {
                let system = uc.get_data();
                system.guest_rip(system.kernel.proc.mem.read_kernel_u64(reg(uc, RSP)))
            } else {
                rip
            };
            uc.get_data_mut().syscall(nr, &args, guest_rip)
        }
    };
    let ring0 = uc.get_data().cache.is_some();
    let system = uc.get_data_mut();
    let registers = &mut system.kernel.registers;
    let (fs_base, gs_base) = (registers.fs_base.take(), registers.gs_base.take());
    let stopped = system.stop.is_some();
    if let Some(base) = fs_base {
        set_segment_base(uc, SegmentBase::Fs, base);
    }
    if let Some(base) = gs_base {
        set_segment_base(uc, SegmentBase::Gs, base);
    }
    let cache_sync = sync_address_space(uc);
    match flow {
        _ if stopped => {
            let _ = uc.emu_stop();
        }
        // From ring 3, the syscall contract: RAX = result, RCX = next RIP, R11 = RFLAGS
        // (Unicorn moves RIP past the instruction when the hook returns). From the kernel
        // entry, RCX was set by the translated code and R11 by the entry stub. A parked
        // call gets RAX when it completes.
        Flow::Return(ret) | Flow::Reschedule(Some(ret)) => {
            let _ = uc.reg_write(RAX, ret);
            if !ring0 {
                let _ = uc.reg_write(RCX, rip + syscall_length(uc, rip));
                let _ = uc.reg_write(R11, reg(uc, RFLAGS));
            }
            if matches!(flow, Flow::Reschedule(_)) {
                let _ = uc.emu_stop();
            }
        }
        Flow::Reschedule(None) => {
            if !ring0 {
                let _ = uc.reg_write(RCX, rip + syscall_length(uc, rip));
                let _ = uc.reg_write(R11, reg(uc, RFLAGS));
            }
            let _ = uc.emu_stop();
        }
        Flow::Continue(sync) => catch_up(uc, &sync),
        Flow::Stop => {
            let _ = uc.emu_stop();
        }
    }
    if let Some(sync) = cache_sync {
        catch_up(uc, &sync);
    }
}

/// Drops every translation the CPU holds if `wanted`, or if freed code frames come back
/// into use (`PhysMem::recycle`): Unicorn keys translations by physical page.
pub(crate) fn flush_translations(uc: &mut Unicorn<'_, System>, wanted: bool) {
    let phys = Rc::clone(uc.get_data().kernel.proc.mem.phys());
    let mut phys = phys.borrow_mut();
    if phys.recycle() || wanted {
        let _ = uc.ctl_flush_tb();
        phys.translations_flushed();
    }
}

/// Brings the CPU up to date with what the kernel did to the address space (a syscall, a
/// resolved fault). Returns what the code cache must catch up with, at ring 0, once the
/// caller has done its own part.
fn sync_address_space(uc: &mut Unicorn<'_, System>) -> Option<CacheSync> {
    let ring0 = uc.get_data().cache.is_some();
    let system = uc.get_data_mut();
    let sync = system.kernel.proc.mem.take_sync();
    if !sync.changed_code.is_empty() {
        system.blocks.forget_all();
    }
    for &page in &sync.stale_pages {
        system.blocks.forget_page(page);
    }
    // At ring 0, guest code changed by the kernel (a read into it, an unmap or a change of
    // protection, a copy on write) takes its translations with it; so does code translated
    // from a page that had no frame yet (read as zeros), whose watch needs the new frame.
    let mut pages = [sync.stale_pages.clone(), sync.zero_code_pages].concat();
    let cache_sync = if ring0 && (!sync.changed_code.is_empty() || !pages.is_empty()) {
        pages.extend(system.translated_pages().into_iter().filter(|page| {
            sync.changed_code
                .iter()
                .any(|range| range.start < page + physmem::PAGE_SIZE && *page < range.end)
        }));
        Some(system.code_changed(&pages))
    } else {
        None
    };
    // A changed address space may have moved the frames before watched pages; the TLB is
    // flushed after the watches change, so the emulator sees both.
    if sync.flush_tlb {
        if ring0 {
            watch_page_tails(uc);
        }
        let _ = uc.ctl_flush_tlb();
    } else if ring0 && sync.frames_given && watch_page_tails(uc) {
        let _ = uc.ctl_flush_tlb();
    }
    flush_translations(uc, !sync.changed_code.is_empty());
    for page in sync.stale_pages {
        let _ = uc.ctl_remove_cache(page, page + physmem::PAGE_SIZE);
    }
    cache_sync
}

/// A CPU exception or software interrupt: the guest's `int 0x80` at ring 3 is served; a
/// write to a page shared since a fork is resolved and the guest goes on; anything else
/// ends the process as the exception would.
fn on_interrupt(uc: &mut Unicorn<'_, System>, vector: u32) {
    let rip = uc.pc_read().unwrap_or(0);
    if uc.get_data().is_int80(vector, rip) {
        // At ring 3 RIP is already past the int 0x80: serve it and go on.
        use RegisterX86::RAX;
        let args = compat_args(uc);
        let eax = reg(uc, RAX);
        match uc
            .get_data_mut()
            .compat_syscall("int 0x80", eax, &args, rip - 2)
        {
            Flow::Return(ret) => {
                let _ = uc.reg_write(RAX, ret);
            }
            _ => {
                let _ = uc.emu_stop();
            }
        }
        return;
    }
    let cr2 = uc.reg_read(RegisterX86::CR2).unwrap_or(0);
    let access = if vector == faults::PAGE_FAULT {
        faulting_access(uc, rip, cr2)
    } else {
        Access::Read
    };
    if uc.get_data_mut().fault(vector, rip, cr2, access) {
        if let Some(sync) = sync_address_space(uc) {
            catch_up(uc, &sync);
        }
    } else {
        let _ = uc.emu_stop();
    }
}

/// What the instruction at `rip` (in the guest's code at ring 3, the code cache's at ring 0)
/// was doing when it faulted at `cr2`.
fn faulting_access(uc: &Unicorn<'_, System>, rip: u64, cr2: u64) -> Access {
    let system = uc.get_data();
    let instruction = match &system.cache {
        Some(cache) if rip >= USER_END => cache.instruction_at(rip),
        _ => Some(system.kernel.proc.mem.instruction_at(rip)),
    };
    match instruction {
        Some(instruction) => faults::faulting_access(&instruction, &regs::guest_regs(uc, rip), cr2),
        None => Access::Read,
    }
}

/// The segment bases the guest can set.
#[derive(Clone, Copy)]
pub enum SegmentBase {
    Fs,
    Gs,
}

/// Sets the FS or GS base: in the CPU, where it lives, and at ring 0 in the runtime's copy,
/// from which the sandbox checks FS- and GS-relative accesses (translated code cannot read
/// the base register without an instruction of its own). The one place both change.
pub fn set_segment_base(uc: &mut Unicorn<'_, System>, which: SegmentBase, base: u64) {
    let (register, slot) = match which {
        SegmentBase::Fs => (RegisterX86::FS_BASE, RUNTIME.fs_base),
        SegmentBase::Gs => (RegisterX86::GS_BASE, RUNTIME.gs_base),
    };
    let _ = uc.reg_write(register, base);
    let system = uc.get_data_mut();
    if system.cache.is_some() {
        system.kernel.proc.mem.fill(slot, &base.to_le_bytes());
    }
}

/// Ends the process as a #GP at ring 3 does.
fn general_protection_fault(uc: &mut Unicorn<'_, System>) {
    let rip = uc.pc_read().unwrap_or(0);
    let resumed = uc
        .get_data_mut()
        .fault(faults::GENERAL_PROTECTION, rip, 0, Access::Read);
    debug_assert!(!resumed, "only page faults are resolved");
    let _ = uc.emu_stop();
}

/// Brings the CPU up to date with the code cache: code-cache pages patched in place lose
/// their emulator translations, and each frame named gets a write hook if live translations
/// come from it and loses it if none do any more, as do the ends of the frames before those
/// pages (a new hook flushes the TLB, so that it sees every write).
fn catch_up(uc: &mut Unicorn<'_, System>, sync: &CacheSync) {
    flush_translations(uc, false);
    for &page in &sync.patched {
        let _ = uc.ctl_remove_cache(page, page + physmem::PAGE_SIZE);
    }
    let mut watching = false;
    for &frame in &sync.frames {
        let wanted = uc
            .get_data()
            .cache
            .as_ref()
            .is_some_and(|c| c.watches(frame));
        let range = frame..frame + physmem::PAGE_SIZE;
        watching |= set_watch(
            uc,
            frame,
            wanted,
            Watch::Frame,
            range,
            move |uc, address, size| uc.get_data_mut().watched_write(frame, address, size),
        );
    }
    if !sync.frames.is_empty() {
        watching |= watch_page_tails(uc);
    }
    if watching {
        let _ = uc.ctl_flush_tlb();
    }
}

/// The last bytes of a frame, where one store may begin and run on into the next page:
/// Unicorn checks such a store against hooks by its first byte only. The simulated CPU's
/// widest single store is 16 bytes (SSE); 64, a cache line, leaves room for wider ones
/// should the CPU model grow AVX.
const SPILL: u64 = 64;

/// Watches the end of the frame of the page before each watched page (its frame may change
/// whenever the address space does, so this follows every change). Returns whether a hook
/// was added.
pub(crate) fn watch_page_tails(uc: &mut Unicorn<'_, System>) -> bool {
    let system = uc.get_data_mut();
    let Some(cache) = &system.cache else {
        return false;
    };
    let mut wanted: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for page in cache.watched_pages() {
        let before = page.checked_sub(physmem::PAGE_SIZE);
        if let Some(frame) = before.and_then(|b| system.kernel.proc.mem.writable_frame(b)) {
            wanted.entry(frame).or_default().push(page);
        }
    }
    let mut frames: Vec<u64> = system.tail_hooks.keys().copied().collect();
    frames.extend(wanted.keys());
    frames.sort_unstable();
    frames.dedup();
    system.tail_pages = wanted;
    let mut added = false;
    for frame in frames {
        let wanted = uc.get_data().tail_pages.contains_key(&frame);
        let end = frame + physmem::PAGE_SIZE;
        added |= set_watch(
            uc,
            frame,
            wanted,
            Watch::Tail,
            end - SPILL..end,
            move |uc, address, size| uc.get_data_mut().watched_tail_write(frame, address, size),
        );
    }
    added
}

/// Which of the system's write hooks.
#[derive(Clone, Copy)]
enum Watch {
    /// A whole frame of guest code.
    Frame,
    /// The end of the frame before a page of guest code.
    Tail,
}

/// Adds or removes the `kind` write hook keyed by `frame` on the physical `range`, so that
/// it exists exactly when `wanted`; `on_write` gets each store's address and size. Returns
/// whether a hook was added.
fn set_watch(
    uc: &mut Unicorn<'_, System>,
    frame: u64,
    wanted: bool,
    kind: Watch,
    range: std::ops::Range<u64>,
    mut on_write: impl FnMut(&mut Unicorn<'_, System>, u64, u64) + 'static,
) -> bool {
    fn hooks(system: &mut System, kind: Watch) -> &mut HashMap<u64, UcHookId> {
        match kind {
            Watch::Frame => &mut system.watch_hooks,
            Watch::Tail => &mut system.tail_hooks,
        }
    }
    match (wanted, hooks(uc.get_data_mut(), kind).get(&frame).copied()) {
        (true, None) => {
            let hook = uc.add_mem_hook(
                HookType::MEM_WRITE,
                range.start,
                range.end - 1,
                move |uc, _, address, size, _| {
                    on_write(uc, address, size as u64);
                    true
                },
            );
            match hook {
                Ok(hook) => {
                    hooks(uc.get_data_mut(), kind).insert(frame, hook);
                    return true;
                }
                // Without the watch, changed code would run stale: stop loudly.
                Err(error) => {
                    uc.get_data_mut().unsupported(format!(
                        "watching guest code for changes (the emulator refused a write hook: \
                         {error:?})"
                    ));
                    let _ = uc.emu_stop();
                }
            }
        }
        (false, Some(hook)) => {
            hooks(uc.get_data_mut(), kind).remove(&frame);
            let _ = uc.remove_hook(hook);
        }
        _ => {}
    }
    false
}

/// The length of the guest's syscall instruction at `rip`: 2, unless prefixed.
fn syscall_length(uc: &Unicorn<'_, System>, rip: u64) -> u64 {
    let mut bytes = [0u8; 2];
    uc.get_data().kernel.proc.mem.fetch(rip, &mut bytes);
    if bytes == [0x0f, 0x05] {
        return 2;
    }
    instruction_length(uc, rip)
}

/// The length of the guest instruction at `rip`.
fn instruction_length(uc: &Unicorn<'_, System>, rip: u64) -> u64 {
    uc.get_data().kernel.proc.mem.instruction_at(rip).len() as u64
}

/// The arguments of an `int 0x80` call: EBX ECX EDX ESI EDI EBP, whole (the call keeps their
/// low halves). `sysenter` reads the same registers.
pub fn compat_args(uc: &Unicorn<'_, System>) -> [u64; 6] {
    use RegisterX86::{RBP, RBX, RCX, RDI, RDX, RSI};
    [RBX, RCX, RDX, RSI, RDI, RBP].map(|register| reg(uc, register))
}

fn reg(uc: &Unicorn<'_, System>, register: RegisterX86) -> u64 {
    uc.reg_read(register).unwrap_or(0)
}

/// Lays out the ring-0 runtime: stubs, slots, kernel stack, and the program's first block.
/// Returns where emulation starts, and what the CPU must catch up with once it exists.
fn prepare_ring0(
    system: &mut System,
    entry: u64,
    stack_pointer: u64,
) -> Result<(u64, CacheSync), MachineError> {
    let no_memory = |_| MachineError::Setup {
        action: "map the ring-0 runtime",
        error: uc_error::NOMEM,
    };
    let mem = &mut system.kernel.proc.mem;
    mem.map_kernel_page(layout::STUBS, true)
        .map_err(no_memory)?;
    mem.map_kernel_page(layout::DATA, false)
        .map_err(no_memory)?;
    for page in
        (layout::KERNEL_STACK..layout::KERNEL_STACK_TOP).step_by(physmem::PAGE_SIZE as usize)
    {
        mem.map_kernel_page(page, false).map_err(no_memory)?;
    }
    for (address, code) in layout::stubs() {
        mem.fill(address, &code);
    }
    mem.fill(RUNTIME.user_rsp, &stack_pointer.to_le_bytes());
    mem.fill(RUNTIME.target, &entry.to_le_bytes());
    // The first block is found as any later one is: through the dispatcher.
    let sync = match system.hypercall(Hypercall::Dispatch, layout::DISPATCH) {
        Flow::Continue(sync) => sync,
        Flow::Stop | Flow::Return(_) | Flow::Reschedule(_) => CacheSync::default(),
    };
    Ok((layout::START, sync))
}

/// Writes a model-specific register through Unicorn's `uc_x86_msr` structure.
fn write_msr(uc: &Unicorn<'static, System>, msr: u32, value: u64) -> Result<(), MachineError> {
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&msr.to_le_bytes());
    raw[8..].copy_from_slice(&value.to_le_bytes());
    setup("write an MSR", uc.reg_write_long(RegisterX86::MSR, &raw))
}

type InsnCallback = unsafe extern "C" fn(*mut uc_engine, *mut c_void) -> i32;

/// Adds an instruction hook whose callback may skip the instruction, which the Rust
/// wrapper cannot express (DESIGN.md).
///
/// # Safety
/// `user_data` must stay valid for as long as the engine runs.
unsafe fn raw_insn_hook(
    handle: *mut uc_engine,
    insn: X86Insn,
    callback: InsnCallback,
    user_data: *mut c_void,
) -> Result<(), MachineError> {
    let mut hook: uc_hook = 0;
    // SAFETY: a valid engine handle, a callback of the right type, and the variadic
    // instruction argument that INSN hooks take.
    let result = unsafe {
        uc_hook_add(
            handle,
            &mut hook,
            HookType::INSN.0 as i32,
            callback as *mut c_void,
            user_data,
            1,
            0,
            insn as i32,
        )
    };
    setup("add an instruction hook", result.into())
}

/// Adds the block hook that counts instructions, as a plain C callback: the Rust
/// wrapper's per-call proxy (a weak-reference upgrade and a handle rebuild) cost about
/// 10 % of a `busybox sha256sum` run (perf, this machine), and it runs once per block.
///
/// # Safety
/// `system` must point to the engine's `System` for as long as the engine runs.
unsafe fn raw_block_hook(
    handle: *mut uc_engine,
    system: *mut c_void,
    range: std::ops::Range<u64>,
) -> Result<(), MachineError> {
    let mut hook: uc_hook = 0;
    let callback: unsafe extern "C" fn(*mut uc_engine, u64, u32, *mut c_void) = on_block;
    // SAFETY: a valid engine handle and a callback of `uc_cb_hookcode_t`'s type. Ring 3
    // counts the user half (the kernel-half entry stub is the machine's own), ring 0 the
    // code cache and the runtime's stubs.
    let result = unsafe {
        uc_hook_add(
            handle,
            &mut hook,
            HookType::BLOCK.0 as i32,
            callback as *mut c_void,
            system,
            range.start,
            range.end,
        )
    };
    setup("add the block hook", result.into())
}

/// Lets the blocks the block hook covers count themselves: their translations add what
/// `System::inline_counts` says to the system's counters, and call the hook only when the
/// system's gate says so (Unicorn's patch, `vendor/README.md`). Without it the hook ran
/// for every block: 40 % of a ring-3 `busybox bc` run (perf, BENCHMARKS.md, issue 12).
///
/// # Safety
/// `system` must point to the engine's `System` for as long as the engine runs.
unsafe fn raw_inline_counting(
    handle: *mut uc_engine,
    system: *mut System,
) -> Result<(), MachineError> {
    // SAFETY: per the caller; no other reference to the system is live here.
    let counting = unsafe { (*system).inline_counting() };
    let callback: unsafe extern "C" fn(
        *mut uc_engine,
        u64,
        u32,
        *mut uc_inline_block,
        *mut c_void,
    ) = on_translate_block;
    // SAFETY: a valid engine handle, counters that outlive the engine's runs, and a
    // callback of `uc_cb_inline_block_t`'s type.
    let result =
        unsafe { uc_inline_counting_set(handle, &counting, Some(callback), system.cast()) };
    setup("count blocks inline", result.into())
}

/// Unicorn translates a block the block hook covers: what its translation adds.
unsafe extern "C" fn on_translate_block(
    _uc: *mut uc_engine,
    addr: u64,
    size: u32,
    block: *mut uc_inline_block,
    system: *mut c_void,
) {
    // SAFETY: as in `on_block`.
    let system = unsafe { &mut *system.cast::<System>() };
    let counts = system.inline_counts(addr, size);
    // SAFETY: Unicorn passes a block to fill, zeroed.
    let block = unsafe { &mut *block };
    match counts {
        Some(counts) => *block = counts,
        None => block.hook = 1,
    }
}

unsafe extern "C" fn on_block(uc: *mut uc_engine, addr: u64, size: u32, system: *mut c_void) {
    // SAFETY: `system` is the engine's system (see `raw_block_hook`), and no other
    // reference to it is live while Unicorn runs this hook.
    let system = unsafe { &mut *system.cast::<System>() };
    if !system.enter_block(addr, size) {
        // SAFETY: Unicorn calls this with its live handle.
        unsafe { uc_emu_stop(uc) };
    }
}

/// Reads a 64-bit register through the raw API.
///
/// # Safety
/// `uc` must be a live engine handle.
unsafe fn raw_read(uc: *mut uc_engine, reg: RegisterX86) -> u64 {
    let mut value = 0u64;
    // SAFETY: per the caller, and `value` is a u64 to fill.
    unsafe { uc_reg_read(uc, reg as i32, (&raw mut value).cast()) };
    value
}

/// # Safety
/// `uc` must be a live engine handle.
unsafe fn raw_write(uc: *mut uc_engine, reg: RegisterX86, value: u64) {
    // SAFETY: per the caller, and `value` is a u64 to read.
    unsafe { uc_reg_write(uc, reg as i32, (&raw const value).cast()) };
}

/// Writes what an instruction hook's `answer`, given the system, says to the registers.
/// Returns 1: Unicorn skips its own version of the instruction.
///
/// # Safety
/// `system` must be the engine's system (see `raw_block_hook`), `uc` its live handle.
unsafe fn answer<const N: usize>(
    uc: *mut uc_engine,
    system: *mut c_void,
    answer: impl FnOnce(&System) -> [(RegisterX86, u64); N],
) -> i32 {
    // SAFETY: per the caller; no other reference to the system is live in a hook.
    let system = unsafe { &*system.cast::<System>() };
    for (register, value) in answer(system) {
        // SAFETY: per the caller.
        unsafe { raw_write(uc, register, value) };
    }
    1
}

/// CPUID from the CPU model's table.
unsafe extern "C" fn on_cpuid(uc: *mut uc_engine, system: *mut c_void) -> i32 {
    // SAFETY: Unicorn calls this with its live handle.
    let (leaf, subleaf) = unsafe {
        (
            raw_read(uc, RegisterX86::RAX) as u32,
            raw_read(uc, RegisterX86::RCX) as u32,
        )
    };
    // SAFETY: the hook was added with the system (see `install_hooks`).
    unsafe {
        answer(uc, system, |system| {
            let [a, b, c, d] = cpuid::cpuid(system.kernel.cpu, leaf, subleaf);
            [
                (RegisterX86::RAX, a as u64),
                (RegisterX86::RBX, b as u64),
                (RegisterX86::RCX, c as u64),
                (RegisterX86::RDX, d as u64),
            ]
        })
    }
}

/// RDTSC reads the virtual clock, so timing loops are reproducible (Unicorn's TSC is the
/// host's).
unsafe extern "C" fn on_rdtsc(uc: *mut uc_engine, system: *mut c_void) -> i32 {
    // SAFETY: the hook was added with the system (see `install_hooks`).
    unsafe {
        answer(uc, system, |system| {
            let [eax, edx] = tsc_halves(system);
            [(RegisterX86::RAX, eax), (RegisterX86::RDX, edx)]
        })
    }
}

/// RDTSCP reads the virtual clock as RDTSC does, and TSC_AUX, which Linux sets to the CPU
/// and node number: 0, the one CPU.
unsafe extern "C" fn on_rdtscp(uc: *mut uc_engine, system: *mut c_void) -> i32 {
    // SAFETY: the hook was added with the system (see `install_hooks`).
    unsafe {
        answer(uc, system, |system| {
            let [eax, edx] = tsc_halves(system);
            [
                (RegisterX86::RAX, eax),
                (RegisterX86::RDX, edx),
                (RegisterX86::RCX, 0),
            ]
        })
    }
}

/// The virtual TSC's low and high halves, as RDTSC puts them in EAX and EDX.
fn tsc_halves(system: &System) -> [u64; 2] {
    let cycles = system.clock.read_tsc();
    [cycles & 0xffff_ffff, cycles >> 32]
}
