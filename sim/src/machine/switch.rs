//! Task switches on the one simulated CPU: saving and restoring each task's CPU state, and
//! making the CPU state of tasks a syscall created.
//!
//! A task's CPU state is Unicorn's context (the whole `CPUX86State`, FS and GS bases and
//! CR3 included) and, at ring 0, the runtime's slot page (the guest RSP during a syscall,
//! the spill slot, the segment-base copies, the dispatcher's target), which belongs to the
//! running task as the registers do. The kernel stack is empty at every switch: a task
//! stopped in a kernel entry has that entry's `ret` carried out for it before it is saved,
//! as Mach's continuations do, so one kernel stack serves every task.

use unicorn_engine::{Context, RegisterX86};

use super::{regs, set_segment_base, setup, Machine, MachineError, SegmentBase};
use crate::bt::layout::{self, RUNTIME};
use crate::kernel::exec::Image;
use crate::kernel::signal::Delivered;
use crate::kernel::tasks::{Spawn, Switch};
use crate::system::{Flow, System};

/// The bytes of the runtime's slot page that belong to the running task (the lookup's
/// saved registers too: a task may be switched out in the middle of a lookup).
const SLOTS: usize = (layout::SLOTS_END - RUNTIME.target) as usize;

/// A task's CPU state while another task runs.
pub struct SavedCpu {
    context: Context,
    /// The runtime's slots (ring 0).
    slots: Option<[u8; SLOTS]>,
}

impl Machine {
    /// Carries out what the kernel decided while the engine ran: makes the CPU state of
    /// the tasks it created, and switches tasks until one can run. Returns where that task
    /// goes on, or `None` when the run is over.
    pub(super) fn reschedule(&mut self) -> Result<Option<u64>, MachineError> {
        loop {
            self.flush_freed_translations();
            let spawned = std::mem::take(&mut self.uc.get_data_mut().kernel.spawned);
            if !spawned.is_empty() {
                self.spawn(&spawned)?;
            }
            if let Some(image) = self.uc.get_data_mut().kernel.execed.take() {
                self.start_image(image)?;
            }
            if let Some((regs, fx)) = self.uc.get_data_mut().kernel.registers.restore.take() {
                regs::set_user_regs(&mut self.uc, &regs, &fx);
            }
            if self.uc.get_data().interrupted {
                self.uc.get_data_mut().serve_interrupt();
            }
            self.deliver_signals();
            let system = self.uc.get_data();
            if !system.preempted && !system.kernel.must_switch() {
                return Ok(Some(self.uc.pc_read().unwrap_or(0)));
            }
            let outgoing = system.kernel.task.tid;
            let exited = matches!(system.kernel.task.state, crate::kernel::task::State::Exited);
            if !exited {
                let saved = self.save()?;
                self.saved.insert(outgoing, saved);
            }
            let resume = match self.uc.get_data_mut().switch() {
                Switch::Finished | Switch::Deadlock(_) => return Ok(None),
                Switch::To { resume } => resume,
            };
            let incoming = self.uc.get_data().kernel.task.tid;
            let saved = self.saved.remove(&incoming).expect("a task has CPU state");
            self.restore(&saved)?;
            if let Some((call, wake)) = resume {
                let flow = self.uc.get_data_mut().resume(call, wake);
                match flow {
                    Flow::Return(ret) | Flow::Reschedule(Some(ret)) => {
                        setup(
                            "return from a parked call",
                            self.uc.reg_write(RegisterX86::RAX, ret),
                        )?;
                    }
                    Flow::Reschedule(None) | Flow::Stop | Flow::Continue(_) => {}
                }
                if self.uc.get_data().stop.is_some() {
                    return Ok(None);
                }
            }
        }
    }

    /// Saves the running task's CPU state. At ring 0 a task stopped in a kernel entry,
    /// before its `ret`, returns from it first (see the module's doc).
    fn save(&mut self) -> Result<SavedCpu, MachineError> {
        let ring0 = self.uc.get_data().cache.is_some();
        if ring0 {
            self.return_from_kernel_entry()?;
        }
        let context = setup("save a task's CPU state", self.uc.context_init())?;
        let slots = ring0.then(|| {
            let mut slots = [0u8; SLOTS];
            let mem = &self.uc.get_data().kernel.proc.mem;
            mem.peek(RUNTIME.target, &mut slots)
                .expect("the slot page is mapped");
            slots
        });
        Ok(SavedCpu { context, slots })
    }

    /// Restores a saved CPU state. Unicorn's restore copies CR3 but keeps the TLB, so a
    /// change of address space is written to CR3 again, which flushes it (BENCHMARKS.md,
    /// issue 9).
    fn restore(&mut self, saved: &SavedCpu) -> Result<(), MachineError> {
        let before = self.uc.reg_read(RegisterX86::CR3).unwrap_or(0);
        setup(
            "restore a task's CPU state",
            self.uc.context_restore(&saved.context),
        )?;
        let cr3 = self.uc.reg_read(RegisterX86::CR3).unwrap_or(0);
        if cr3 != before {
            setup(
                "switch address spaces",
                self.uc.reg_write(RegisterX86::CR3, cr3),
            )?;
            if self.uc.get_data().cache.is_some() {
                // The watched pages are the new code cache's.
                super::watch_page_tails(&mut self.uc);
            }
        }
        if let Some(slots) = &saved.slots {
            self.uc
                .get_data_mut()
                .kernel
                .proc
                .mem
                .fill(RUNTIME.target, slots);
        }
        Ok(())
    }

    /// Carries out the `ret` of a kernel entry the CPU stopped before, and counts it, as
    /// the CPU would have.
    fn return_from_kernel_entry(&mut self) -> Result<(), MachineError> {
        let rip = self.uc.pc_read().unwrap_or(0);
        if !layout::is_entry_return(rip) {
            return Ok(());
        }
        let rsp = self.uc.reg_read(RegisterX86::RSP).unwrap_or(0);
        let system = self.uc.get_data_mut();
        let back = system.kernel.proc.mem.read_kernel_u64(rsp);
        system.count_runtime_instruction(rip);
        setup("return from the kernel entry", self.uc.set_pc(back))?;
        setup(
            "return from the kernel entry",
            self.uc.reg_write(RegisterX86::RSP, rsp + 8),
        )
    }

    /// Makes each new task's CPU state: the caller's, returning 0 from the call, on its own
    /// stack and with its own TLS when the call gave them. A new process runs on its own
    /// page tables; at ring 0 it starts with an empty code cache, so it goes on through the
    /// dispatcher at the guest instruction after the call (as Linux's `ret_from_fork` takes
    /// its own way back), with RSP the guest's.
    fn spawn(&mut self, spawned: &[Spawn]) -> Result<(), MachineError> {
        let ring0 = self.uc.get_data().cache.is_some();
        let at_entry_return = ring0 && layout::is_entry_return(self.uc.pc_read().unwrap_or(0));
        let parent = self.save()?;
        for spawn in spawned {
            let step = "make a task's CPU state";
            setup(step, self.uc.reg_write(RegisterX86::RAX, 0))?;
            let mut user_rsp = self.slot(RUNTIME.user_rsp);
            if let Some(stack) = spawn.stack {
                user_rsp = stack;
                if !ring0 {
                    setup(step, self.uc.reg_write(RegisterX86::RSP, stack))?;
                }
            }
            if let Some(tls) = spawn.tls {
                set_segment_base(&mut self.uc, SegmentBase::Fs, tls);
            }
            match spawn.process {
                Some(process) => {
                    setup(step, self.uc.reg_write(RegisterX86::CR3, process.cr3))?;
                    if ring0 {
                        setup(step, self.uc.reg_write(RegisterX86::RSP, user_rsp))?;
                        setup(step, self.uc.set_pc(layout::DISPATCH))?;
                    }
                    self.uc.get_data_mut().add_space(spawn.tid);
                }
                // The thread returns from the kernel entry as its parent did.
                None if at_entry_return => {
                    self.uc
                        .get_data_mut()
                        .count_runtime_instruction(layout::SYSCALL_ENTRY);
                }
                None => {}
            }
            let mut child = self.save()?;
            if let Some(slots) = &mut child.slots {
                put_slot(slots, RUNTIME.user_rsp, user_rsp);
                if let Some(process) = spawn.process {
                    put_slot(slots, RUNTIME.target, process.resume_at);
                }
            }
            self.saved.insert(spawn.tid, child);
            self.restore(&parent)?;
        }
        Ok(())
    }

    /// The running task starts a new image (execve): the CPU as the first program started
    /// on it, on the new page tables, at the new entry point and stack; at ring 0 with an
    /// empty code cache, entered through the runtime's start and the dispatcher.
    fn start_image(&mut self, image: Image) -> Result<(), MachineError> {
        let step = "start a new image";
        setup(step, self.uc.context_restore(&self.initial))?;
        setup(step, self.uc.reg_write(RegisterX86::CR3, image.cr3))?;
        let ring0 = self.uc.get_data().cache.is_some();
        if ring0 {
            let system = self.uc.get_data_mut();
            system.replace_space();
            let mem = &mut system.kernel.proc.mem;
            mem.fill(RUNTIME.user_rsp, &image.stack_pointer.to_le_bytes());
            mem.fill(RUNTIME.target, &image.entry.to_le_bytes());
            mem.fill(layout::NEXT, &layout::DISPATCH.to_le_bytes());
            for which in [SegmentBase::Fs, SegmentBase::Gs] {
                set_segment_base(&mut self.uc, which, 0);
            }
            super::watch_page_tails(&mut self.uc);
            setup(step, self.uc.set_pc(layout::START))
        } else {
            self.uc.get_data_mut().replace_space();
            setup(step, self.uc.reg_write(RegisterX86::RCX, image.entry))?;
            setup(
                step,
                self.uc.reg_write(RegisterX86::RSP, image.stack_pointer),
            )?;
            setup(step, self.uc.set_pc(super::ENTER_USER))
        }
    }

    /// The running task's value of the runtime slot at `address` (ring 0; 0 at ring 3).
    fn slot(&self, address: u64) -> u64 {
        let system = self.uc.get_data();
        if system.cache.is_none() {
            return 0;
        }
        system.kernel.proc.mem.read_kernel_u64(address)
    }

    /// Acts on the running task's signals as it leaves the syscall it stopped in, or after
    /// a fault its handler is to get, or, when it stopped between two of its instructions,
    /// as an interrupt's return to user mode does. Where the registers are not the guest's (a stub, a new image's start), the
    /// signal waits for the next guest instruction boundary.
    fn deliver_signals(&mut self) {
        let system = self.uc.get_data_mut();
        let fault = system.fault_frame.take();
        let kernel = &mut system.kernel;
        if !matches!(kernel.task.state, crate::kernel::task::State::Runnable) {
            return;
        }
        let at = kernel.task.at_syscall.take();
        let pending = kernel.signal_pending();
        let regs = match (&fault, at) {
            (Some(frame), _) => regs::fault_regs(&self.uc, frame),
            (None, Some(_)) => regs::user_regs(&self.uc),
            (None, None) if !pending => return,
            (None, None) => match regs::interrupted_regs(&self.uc) {
                Some(regs) => regs,
                None => {
                    self.uc.get_data_mut().interrupt_soon();
                    return;
                }
            },
        };
        let fx = regs::fx_state(&self.uc);
        let kernel = &mut self.uc.get_data_mut().kernel;
        if let Some(frame) = fault {
            kernel.task.signals.pending.add(frame.info);
        }
        if let Delivered::Registers(state) = kernel.deliver_signals(regs, &fx, at) {
            regs::set_user_regs(&mut self.uc, &state.0, &state.1);
            // The task goes on in a handler (or at a restarted syscall), not in the block
            // its last branch led to: which way that branch went is not known.
            self.uc.get_data_mut().forget_pending_branch();
        }
    }

    /// Drops the CPU's translations when freed frames that may hold code come back into
    /// use (`PhysMem::recycle`).
    pub(super) fn flush_freed_translations(&mut self) {
        super::flush_translations(&mut self.uc, false);
    }
}

/// Writes `value` into the saved slot image at the slot at `address`.
fn put_slot(slots: &mut [u8; SLOTS], address: u64, value: u64) {
    let at = (address - RUNTIME.target) as usize;
    slots[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

impl System {
    /// Counts an instruction of the runtime's stubs that the simulator carried out itself.
    pub fn count_runtime_instruction(&mut self, rip: u64) {
        self.count_translated(1, layout::stub_source(rip));
    }
}
