//! The x86-64 signal frame as Linux 6.1 builds it on the guest's stack, and its undoing by
//! `rt_sigreturn`: arithmetic and bytes only, with no CPU and no kernel state, for the
//! kernel's signal delivery to drive.
//!
//! Sources, Linux 6.1 unless said otherwise: `arch/x86/kernel/signal.c` (`get_sigframe`,
//! `__setup_rt_frame`, `handle_signal`, `rt_sigreturn`, `restore_sigcontext`),
//! `arch/x86/kernel/fpu/signal.c` (`fpu__alloc_mathframe`, `save_xstate_epilog`),
//! `kernel/signal.c` (`signal_delivered`, `do_sigaction`, `do_sigaltstack`),
//! `arch/x86/include/uapi/asm/sigcontext.h`, `include/uapi/asm-generic/{ucontext,siginfo,
//! signal-defs}.h`. QEMU's `linux-user/i386/signal.c` builds the same frame but for the
//! software bytes of the FP state (`SW_BYTES` below).
//!
//! The simulated CPU has FXSR but not XSAVE (`machine/cpuid.rs`), so this is the frame Linux
//! builds on such a CPU: the FP state is the 512-byte FXSAVE image and `uc_flags` lacks
//! `UC_FP_XSTATE`. `corpora/programs/signal_frame.c` prints what a handler sees of a real
//! frame; a test below rebuilds its first block from this module and compares.
//!
//! Delivering a signal, in Linux's order (`arch_do_signal_or_restart`):
//! 1. `get_signal` takes the signal; [`SigAction::dequeued`] applies `SA_RESETHAND`.
//! 2. If the task stopped in a syscall, [`restart_after_signal`] settles its result (also
//!    when no handler runs).
//! 3. [`build`] places the frame; write [`SignalFrame::writes`] to guest memory.
//! 4. On success, load [`SignalFrame::handler_regs`] and [`SignalFrame::handler_fx`], and set
//!    the thread's blocked mask and altstack from the frame; a mask saved by sigsuspend,
//!    ppoll or pselect6 is consumed (the frame restores it).
//! 5. If [`build`] fails or a write faults, [`forced_sigsegv`] says what follows.
//!
//! `rt_sigreturn`, in Linux's order:
//! 1. Read [`UCONTEXT_SIZE`] bytes at the task's RSP (the handler's `ret` popped `pretcode`);
//!    a fault sends SIGSEGV. [`read_sigreturn_frame`] decodes them.
//! 2. Block [`SigreturnFrame::blocked`].
//! 3. Take [`SigreturnFrame::registers`]; [`UserRegs::check_user_segments`] fails where
//!    Linux's return to user mode would fault.
//! 4. [`SigreturnFrame::fpstate`]: `None` loads [`FxState::INIT`]; an address is read (512
//!    bytes) and [`FxState::check_restorable`]d. Any failure loads `FxState::INIT` and sends
//!    SIGSEGV, with the registers and mask already restored.
//! 5. Apply [`SigreturnFrame::uc_stack`] with [`AltStack::change`] at the restored RSP,
//!    ignoring its error, as `restore_altstack` does.
//! 6. Resume with the restored registers, RCX and R11 included (Linux returns with SYSRET
//!    only when they already equal RIP and RFLAGS): RAX is the call's result, and the call
//!    is never restarted (`orig_ax = -1`).

use std::ops::Range;

use nix::errno::Errno;

// ---------------------------------------------------------------------------------------
// ABI constants
// ---------------------------------------------------------------------------------------

/// `sa_flags` bits: include/uapi/asm-generic/signal-defs.h; `SA_RESTORER` from
/// arch/x86/include/uapi/asm/signal.h.
pub const SA_NOCLDSTOP: u64 = 0x0000_0001;
pub const SA_NOCLDWAIT: u64 = 0x0000_0002;
pub const SA_SIGINFO: u64 = 0x0000_0004;
/// Never kept, so that a program can tell that unknown flags are dropped.
pub const SA_UNSUPPORTED: u64 = 0x0000_0400;
/// Kept but meaningless on x86 (arm64's tag bits in `si_addr`).
pub const SA_EXPOSE_TAGBITS: u64 = 0x0000_0800;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// The flags `do_sigaction` keeps (include/linux/signal_types.h, `UAPI_SA_FLAGS`).
pub const UAPI_SA_FLAGS: u64 = SA_NOCLDSTOP
    | SA_NOCLDWAIT
    | SA_SIGINFO
    | SA_ONSTACK
    | SA_RESTART
    | SA_NODEFER
    | SA_RESETHAND
    | SA_EXPOSE_TAGBITS
    | SA_RESTORER;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// `ss_flags`: include/uapi/linux/signal.h and asm-generic/signal-defs.h.
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
pub const SS_AUTODISARM: u32 = 1 << 31;
/// The flag bits beside the mode (`SS_FLAG_BITS`).
pub const SS_FLAG_BITS: u32 = SS_AUTODISARM;
/// The smallest altstack sigaltstack accepts (arch/x86/include/uapi/asm/signal.h).
pub const MINSIGSTKSZ: u64 = 2048;

/// `uc_flags`: arch/x86/include/uapi/asm/ucontext.h.
pub const UC_FP_XSTATE: u64 = 0x1;
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// `si_code` for signals sent by someone (include/uapi/asm-generic/siginfo.h).
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_MESGQ: i32 = -3;
pub const SI_ASYNCIO: i32 = -4;
pub const SI_SIGIO: i32 = -5;
pub const SI_TKILL: i32 = -6;
/// `si_code` of SIGCHLD.
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_TRAPPED: i32 = 4;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
/// `si_code` of the faults x86 raises (arch/x86/kernel/traps.c, mm/fault.c).
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const ILL_ILLOPN: i32 = 2;
pub const FPE_INTDIV: i32 = 1;

/// The user code and data selectors (arch/x86/include/asm/segment.h: GDT entries 6 and 5,
/// RPL 3).
pub const USER_CS: u16 = 0x33;
pub const USER_DS: u16 = 0x2b;
/// The compatibility-mode code selector: sigreturn to it would run 32-bit code.
pub const USER32_CS: u16 = 0x23;

/// RFLAGS bits (arch/x86/include/uapi/asm/processor-flags.h).
pub const EFLAGS_CF: u64 = 1 << 0;
pub const EFLAGS_PF: u64 = 1 << 2;
pub const EFLAGS_AF: u64 = 1 << 4;
pub const EFLAGS_ZF: u64 = 1 << 6;
pub const EFLAGS_SF: u64 = 1 << 7;
pub const EFLAGS_TF: u64 = 1 << 8;
pub const EFLAGS_IF: u64 = 1 << 9;
pub const EFLAGS_DF: u64 = 1 << 10;
pub const EFLAGS_OF: u64 = 1 << 11;
pub const EFLAGS_RF: u64 = 1 << 16;
pub const EFLAGS_AC: u64 = 1 << 18;
/// The RFLAGS bits sigreturn takes from the frame; the others stay as they are
/// (arch/x86/include/asm/sighandling.h, `FIX_EFLAGS`). IF and IOPL are not the program's.
pub const FIX_EFLAGS: u64 = EFLAGS_AC
    | EFLAGS_OF
    | EFLAGS_DF
    | EFLAGS_TF
    | EFLAGS_SF
    | EFLAGS_ZF
    | EFLAGS_AF
    | EFLAGS_PF
    | EFLAGS_CF
    | EFLAGS_RF;
/// The bits `handle_signal` clears for the handler: DF for the ABI, RF and TF so that no
/// debug trap fires at its first instruction.
const HANDLER_CLEARS: u64 = EFLAGS_DF | EFLAGS_RF | EFLAGS_TF;

/// The signals no mask can block.
pub const UNBLOCKABLE: u64 = sigbit(libc::SIGKILL as u32) | sigbit(libc::SIGSTOP as u32);

/// The bit of signal `signo` (1..=64) in a `sigset_t` word.
pub const fn sigbit(signo: u32) -> u64 {
    1 << (signo - 1)
}

// ---------------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------------

/// Bytes below RSP that leaf functions may use (the x86-64 ABI's red zone); the frame
/// goes below them.
pub const RED_ZONE: u64 = 128;
/// `struct rt_sigframe` (arch/x86/include/asm/sigframe.h): `pretcode`, the ucontext, the
/// siginfo; the FP state lies above, apart.
pub const FRAME_SIZE: u64 = 440;
const PRETCODE: usize = 0;
const UC: usize = 8;
const INFO: usize = 312;
/// `struct ucontext` (include/uapi/asm-generic/ucontext.h): the kernel's, whose
/// `uc_sigmask` is one word (glibc's `ucontext_t` is longer, its mask 128 bytes).
pub const UCONTEXT_SIZE: usize = 304;
const UC_FLAGS: usize = 0;
const UC_LINK: usize = 8;
const UC_STACK: usize = 16;
const UC_MCONTEXT: usize = 40;
const UC_SIGMASK: usize = 296;
/// In `struct sigcontext`: the registers fill bytes 0..184, then the FP state's address,
/// then 64 reserved bytes that Linux neither writes nor reads.
const SC_FPSTATE: usize = UserRegs::SIZE;
/// `struct _fpx_sw_bytes` inside the FXSAVE image, in the bytes the CPU leaves to software.
const SW_RESERVED: usize = 464;
/// Where `uc_stack.ss_flags` ends: 4 bytes of padding follow, which Linux does not write.
const UC_STACK_FLAGS_END: usize = UC_STACK + 12;
/// The FP state's alignment (`fpu__alloc_mathframe`) and the frame's (`align_sigframe`).
const FPSTATE_ALIGN: u64 = 64;
const FRAME_ALIGN: u64 = 16;

/// `FP_XSTATE_MAGIC1` (arch/x86/include/uapi/asm/sigcontext.h).
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2_SIZE: u32 = 4;
/// The software bytes Linux 6.1 writes at [`SW_RESERVED`] even without XSAVE:
/// `save_xstate_epilog` fills them (`save_sw_bytes`) before it checks for XSAVE, since
/// Linux 5.16 (53599b4d54b9, "x86/fpu/signal: Prepare for variable sigframe length"). They
/// say magic1 = `FP_XSTATE_MAGIC1`, extended_size = 512 + 4, xfeatures = 0 (the FPU's
/// `user_xfeatures`, set only by XSAVE's initialization) and xstate_size = 512. No MAGIC2
/// follows, so a reader that checks it (Linux's own `check_xstate_in_sigframe`) sees plain
/// FXSAVE. QEMU writes magic1 = 0 instead; Linux 5.15 wrote zeros.
const SW_BYTES: [u8; 48] = {
    let mut bytes = [0u8; 48];
    let magic = FP_XSTATE_MAGIC1.to_le_bytes();
    let extended = (FxState::SIZE as u32 + FP_XSTATE_MAGIC2_SIZE).to_le_bytes();
    let size = (FxState::SIZE as u32).to_le_bytes();
    let mut i = 0;
    while i < 4 {
        bytes[i] = magic[i];
        bytes[4 + i] = extended[i];
        bytes[16 + i] = size[i];
        i += 1;
    }
    bytes
};

fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    buf[at..at + N].copy_from_slice(&bytes);
}

fn field<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf[at..at + N].try_into().expect("in bounds")
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(field(buf, at))
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(field(buf, at))
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(field(buf, at))
}

// ---------------------------------------------------------------------------------------
// Registers and FP state
// ---------------------------------------------------------------------------------------

/// A thread's registers as `struct sigcontext` holds them, in its order, up to the FP state
/// pointer. `err`, `trapno` and `cr2` are the thread's last fault (Linux keeps them in the
/// thread and writes them into every frame, stale or not); `oldmask` is the saved mask in a
/// frame and means nothing in a live thread. At a syscall, RCX and R11 hold what `syscall`
/// put there (the return address and RFLAGS), as Linux's `pt_regs` do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
}

impl UserRegs {
    /// Bytes 0..184 of `struct sigcontext`.
    pub const SIZE: usize = 184;

    /// The 64-bit fields with their offsets: r8 at 0 to eflags at 136, err at 152 to cr2
    /// at 176.
    fn words(&mut self) -> [(usize, &mut u64); 22] {
        [
            (0, &mut self.r8),
            (8, &mut self.r9),
            (16, &mut self.r10),
            (24, &mut self.r11),
            (32, &mut self.r12),
            (40, &mut self.r13),
            (48, &mut self.r14),
            (56, &mut self.r15),
            (64, &mut self.rdi),
            (72, &mut self.rsi),
            (80, &mut self.rbp),
            (88, &mut self.rbx),
            (96, &mut self.rdx),
            (104, &mut self.rax),
            (112, &mut self.rcx),
            (120, &mut self.rsp),
            (128, &mut self.rip),
            (136, &mut self.eflags),
            (152, &mut self.err),
            (160, &mut self.trapno),
            (168, &mut self.oldmask),
            (176, &mut self.cr2),
        ]
    }

    /// The selectors at 144..152. Linux writes GS and FS as 0 and never reads them back.
    fn selectors(&mut self) -> [(usize, &mut u16); 4] {
        [
            (144, &mut self.cs),
            (146, &mut self.gs),
            (148, &mut self.fs),
            (150, &mut self.ss),
        ]
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut copy = *self;
        let mut bytes = [0; Self::SIZE];
        for (at, value) in copy.words() {
            put(&mut bytes, at, value.to_le_bytes());
        }
        for (at, value) in copy.selectors() {
            put(&mut bytes, at, value.to_le_bytes());
        }
        bytes
    }

    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let mut regs = Self::default();
        for (at, value) in regs.words() {
            *value = u64_at(bytes, at);
        }
        for (at, value) in regs.selectors() {
            *value = u16_at(bytes, at);
        }
        regs
    }

    /// Whether Linux's return to user mode with these selectors resumes 64-bit code. With CS
    /// other than `USER_CS` or SS other than `USER_DS` the return faults (#GP, and the task
    /// gets SIGSEGV with these registers), or, with `USER32_CS`, runs 32-bit code, which
    /// ringsim does not; `sigreturn` can produce either.
    pub fn check_user_segments(&self) -> Result<(), SigreturnError> {
        if self.cs == USER_CS && self.ss == USER_DS {
            Ok(())
        } else {
            Err(SigreturnError::Segments {
                cs: self.cs,
                ss: self.ss,
            })
        }
    }
}

/// An FXSAVE image: `struct fxregs_state` (arch/x86/include/asm/fpu/types.h), the 64-bit
/// layout of Intel SDM vol. 1 table 10-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FxState(pub [u8; FxState::SIZE]);

const FCW: usize = 0;
const FSW: usize = 2;
const FTW: usize = 4;
const MXCSR: usize = 24;
const MXCSR_MASK: usize = 28;
const ST: usize = 32;
const XMM: usize = 160;
/// `fpstate_init_fxstate`'s control words.
pub const FCW_DEFAULT: u16 = 0x037f;
pub const MXCSR_DEFAULT: u32 = 0x1f80;
/// The MXCSR bits FXRSTOR accepts: the MXCSR_MASK that FXSAVE reports, 0xffff on every
/// x86-64 CPU with DAZ and under QEMU's TCG (`do_xsave_mxcsr`). Linux leaves the check to
/// the CPU when it restores a 64-bit frame.
pub const MXCSR_FEATURE_MASK: u32 = 0xffff;

impl FxState {
    pub const SIZE: usize = 512;

    /// The FPU as Linux gives it to a handler (`fpu__clear_user_states` loads
    /// `init_fpstate`): the default control words, every register empty and zero.
    pub const INIT: FxState = {
        let mut bytes = [0u8; Self::SIZE];
        let fcw = FCW_DEFAULT.to_le_bytes();
        let mxcsr = MXCSR_DEFAULT.to_le_bytes();
        bytes[FCW] = fcw[0];
        bytes[FCW + 1] = fcw[1];
        let mut i = 0;
        while i < 4 {
            bytes[MXCSR + i] = mxcsr[i];
            i += 1;
        }
        FxState(bytes)
    };

    pub fn fcw(&self) -> u16 {
        u16_at(&self.0, FCW)
    }

    pub fn set_fcw(&mut self, value: u16) {
        put(&mut self.0, FCW, value.to_le_bytes());
    }

    pub fn fsw(&self) -> u16 {
        u16_at(&self.0, FSW)
    }

    pub fn set_fsw(&mut self, value: u16) {
        put(&mut self.0, FSW, value.to_le_bytes());
    }

    /// The abridged tag word: bit i set when physical register i is not empty.
    pub fn ftw(&self) -> u8 {
        self.0[FTW]
    }

    pub fn set_ftw(&mut self, value: u8) {
        self.0[FTW] = value;
    }

    pub fn mxcsr(&self) -> u32 {
        u32_at(&self.0, MXCSR)
    }

    pub fn set_mxcsr(&mut self, value: u32) {
        put(&mut self.0, MXCSR, value.to_le_bytes());
    }

    pub fn mxcsr_mask(&self) -> u32 {
        u32_at(&self.0, MXCSR_MASK)
    }

    pub fn set_mxcsr_mask(&mut self, value: u32) {
        put(&mut self.0, MXCSR_MASK, value.to_le_bytes());
    }

    /// x87 register ST(i)'s 80 bits (i < 8), in a 16-byte slot.
    pub fn st(&self, i: usize) -> [u8; 10] {
        field(&self.0, ST + 16 * i)
    }

    pub fn set_st(&mut self, i: usize, value: [u8; 10]) {
        put(&mut self.0, ST + 16 * i, value);
    }

    /// XMMi (i < 16).
    pub fn xmm(&self, i: usize) -> [u8; 16] {
        field(&self.0, XMM + 16 * i)
    }

    pub fn set_xmm(&mut self, i: usize, value: [u8; 16]) {
        put(&mut self.0, XMM + 16 * i, value);
    }

    /// Whether FXRSTOR takes this image: it faults on a reserved MXCSR bit, and Linux then
    /// fails the sigreturn.
    pub fn check_restorable(&self) -> Result<(), SigreturnError> {
        match self.mxcsr() & !MXCSR_FEATURE_MASK {
            0 => Ok(()),
            _ => Err(SigreturnError::ReservedMxcsr(self.mxcsr())),
        }
    }

    /// The image as the frame holds it: the FXSAVE bytes, then Linux's software bytes.
    fn in_frame(&self) -> [u8; Self::SIZE] {
        let mut bytes = self.0;
        put(&mut bytes, SW_RESERVED, SW_BYTES);
        bytes
    }
}

// ---------------------------------------------------------------------------------------
// siginfo, sigaction, sigaltstack
// ---------------------------------------------------------------------------------------

/// A `siginfo_t` (include/uapi/asm-generic/siginfo.h): signo, errno and code at 0, 4, 8,
/// then at 16 the union. Linux clears the whole structure before filling it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo(pub [u8; SigInfo::SIZE]);

/// Offsets in the union: `_kill`/`_sigchld` pid and uid, `_sigchld` status and times,
/// `_sigfault` address.
const SI_PID: usize = 16;
const SI_UID: usize = 20;
const SI_STATUS: usize = 24;
const SI_UTIME: usize = 32;
const SI_STIME: usize = 40;
const SI_ADDR: usize = 16;

impl SigInfo {
    pub const SIZE: usize = 128;

    fn header(signo: u32, code: i32) -> Self {
        let mut bytes = [0; Self::SIZE];
        put(&mut bytes, 0, signo.to_le_bytes());
        put(&mut bytes, 8, code.to_le_bytes());
        SigInfo(bytes)
    }

    fn with_sender(mut self, pid: i32, uid: u32) -> Self {
        put(&mut self.0, SI_PID, pid.to_le_bytes());
        put(&mut self.0, SI_UID, uid.to_le_bytes());
        self
    }

    /// Sent by kill(2) (`prepare_kill_siginfo`), or by the kernel's `send_sig(sig, task, 0)`
    /// as for SIGPIPE: the sender's tgid and real uid.
    pub fn user(signo: u32, pid: i32, uid: u32) -> Self {
        Self::header(signo, SI_USER).with_sender(pid, uid)
    }

    /// Sent by tgkill or tkill (`do_tkill`), which is how glibc's raise sends.
    pub fn tkill(signo: u32, pid: i32, uid: u32) -> Self {
        Self::header(signo, SI_TKILL).with_sender(pid, uid)
    }

    /// Sent by the kernel as `SEND_SIG_PRIV`: SIGALRM from alarm(2) and `ITIMER_REAL`
    /// (`it_real_fn`), and `force_sig` (SIGSEGV for a bad frame, #GP, int3's SIGTRAP).
    pub fn kernel(signo: u32) -> Self {
        Self::header(signo, SI_KERNEL)
    }

    /// A fault at `addr` (`force_sig_fault`), with a code such as `SEGV_MAPERR`.
    pub fn fault(signo: u32, code: i32, addr: u64) -> Self {
        let mut info = Self::header(signo, code);
        put(&mut info.0, SI_ADDR, addr.to_le_bytes());
        info
    }

    /// SIGCHLD for a child that ended with `wait_status` (as wait4 reports it), as
    /// `do_notify_parent` fills it: its pid, its uid, and its user and system times in clock
    /// ticks (`USER_HZ`, 100 a second).
    pub fn child_exit(pid: i32, uid: u32, wait_status: i32, utime: i64, stime: i64) -> Self {
        let (code, status) = if wait_status & 0x80 != 0 {
            (CLD_DUMPED, wait_status & 0x7f)
        } else if wait_status & 0x7f != 0 {
            (CLD_KILLED, wait_status & 0x7f)
        } else {
            (CLD_EXITED, wait_status >> 8)
        };
        let mut info = Self::header(libc::SIGCHLD as u32, code).with_sender(pid, uid);
        put(&mut info.0, SI_STATUS, status.to_le_bytes());
        put(&mut info.0, SI_UTIME, utime.to_le_bytes());
        put(&mut info.0, SI_STIME, stime.to_le_bytes());
        info
    }

    pub fn signo(&self) -> i32 {
        i32::from_le_bytes(field(&self.0, 0))
    }

    pub fn errno(&self) -> i32 {
        i32::from_le_bytes(field(&self.0, 4))
    }

    pub fn code(&self) -> i32 {
        i32::from_le_bytes(field(&self.0, 8))
    }

    /// The sender's or the child's pid, for the codes whose union member has one.
    pub fn pid(&self) -> i32 {
        i32::from_le_bytes(field(&self.0, SI_PID))
    }

    pub fn uid(&self) -> u32 {
        u32_at(&self.0, SI_UID)
    }
}

/// `struct kernel_sigaction` as rt_sigaction reads and writes it on x86-64: handler,
/// flags, restorer, mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    pub const SIZE: usize = 32;

    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        Self {
            handler: u64_at(bytes, 0),
            flags: u64_at(bytes, 8),
            restorer: u64_at(bytes, 16),
            mask: u64_at(bytes, 24),
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        for (at, value) in [self.handler, self.flags, self.restorer, self.mask]
            .into_iter()
            .enumerate()
        {
            put(&mut bytes, 8 * at, value.to_le_bytes());
        }
        bytes
    }

    /// As `do_sigaction` stores it: unknown flags dropped (they read back as 0), SIGKILL
    /// and SIGSTOP out of the mask.
    pub fn installed(self) -> Self {
        Self {
            flags: self.flags & UAPI_SA_FLAGS,
            mask: self.mask & !UNBLOCKABLE,
            ..self
        }
    }

    /// As `get_signal` leaves it once it takes a signal for this handler: `SA_RESETHAND`
    /// puts back `SIG_DFL`, with the flags and mask unchanged. The handler still runs.
    pub fn dequeued(self) -> Self {
        if self.flags & SA_RESETHAND != 0 {
            Self {
                handler: SIG_DFL,
                ..self
            }
        } else {
            self
        }
    }
}

/// An alternate signal stack: a thread's (`sas_ss_sp`, `sas_ss_flags`, `sas_ss_size`) and
/// the `stack_t` of sigaltstack and `uc_stack` (sp at 0, flags at 8, size at 16).
///
/// The default is all zeros, as a program started by execve finds it (a native run of
/// `signal_frame` shows `uc_stack` 0, 0, 0): Linux's first task has zeros and fork copies
/// them. sigaltstack reports it disabled since its size is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

impl AltStack {
    pub const SIZE: usize = 24;

    /// `sas_ss_reset`: a new thread's (clone with `CLONE_VM` and not `CLONE_VFORK`), and an
    /// `SS_AUTODISARM` stack's once a handler runs on it.
    pub const RESET: AltStack = AltStack {
        sp: 0,
        flags: SS_DISABLE,
        size: 0,
    };

    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        Self {
            sp: u64_at(bytes, 0),
            flags: u32_at(bytes, 8),
            size: u64_at(bytes, 16),
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        put(&mut bytes, 0, self.sp.to_le_bytes());
        put(&mut bytes, 8, self.flags.to_le_bytes());
        put(&mut bytes, 16, self.size.to_le_bytes());
        bytes
    }

    /// `__on_sig_stack`: `sp` lies in the stack, its top included (stacks grow down).
    fn contains(&self, sp: u64) -> bool {
        sp > self.sp && sp - self.sp <= self.size
    }

    /// `on_sig_stack`: a thread at `sp` runs on the stack. Never with `SS_AUTODISARM`, whose
    /// stack is disarmed while a handler uses it.
    pub fn on_stack(&self, sp: u64) -> bool {
        self.flags & SS_AUTODISARM == 0 && self.contains(sp)
    }

    /// `sas_ss_flags`: the mode at `sp`; 0 means a handler may switch to the stack.
    fn mode_at(&self, sp: u64) -> u32 {
        if self.size == 0 {
            SS_DISABLE
        } else if self.on_stack(sp) {
            SS_ONSTACK
        } else {
            0
        }
    }

    /// What sigaltstack reports as the old stack to a thread at `sp`.
    pub fn reported(&self, sp: u64) -> AltStack {
        AltStack {
            flags: self.mode_at(sp) | (self.flags & SS_FLAG_BITS),
            ..*self
        }
    }

    /// sigaltstack's change to `new` for a thread at `sp` (`do_sigaltstack`): EPERM on the
    /// stack, EINVAL for an unknown mode, ENOMEM below `MINSIGSTKSZ`. `SS_DISABLE` keeps
    /// the flags but zeroes the stack.
    pub fn change(&mut self, new: AltStack, sp: u64) -> Result<(), Errno> {
        if self.on_stack(sp) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_FLAG_BITS;
        if ![0, SS_DISABLE, SS_ONSTACK].contains(&mode) {
            return Err(Errno::EINVAL);
        }
        if new == *self {
            return Ok(());
        }
        *self = if mode == SS_DISABLE {
            AltStack {
                sp: 0,
                flags: new.flags,
                size: 0,
            }
        } else if new.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        } else {
            new
        };
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------

/// Everything Linux's `setup_rt_frame` reads to deliver one signal to a thread.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// 1..=64.
    pub signo: u32,
    pub info: &'a SigInfo,
    /// The action as it was when the signal was taken (before `SigAction::dequeued`).
    pub action: &'a SigAction,
    /// The interrupted registers, after `restart_after_signal`.
    pub regs: &'a UserRegs,
    /// The FPU's FXSAVE image.
    pub fx: &'a FxState,
    /// The thread's blocked mask.
    pub blocked: u64,
    /// The mask sigsuspend, ppoll or pselect6 put aside, to be restored after the handler
    /// (`sigmask_to_save`); the frame saves it instead of `blocked`.
    pub saved_sigmask: Option<u64>,
    pub altstack: AltStack,
}

/// A signal frame ready to write, and the thread's state for entering the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalFrame {
    /// The frame's address, where `pretcode` is: the handler's RSP, 8 modulo 16 as after a
    /// call.
    pub frame: u64,
    /// The FXSAVE image's address, 64-aligned, 456 bytes above the frame.
    pub fpstate: u64,
    /// From `frame` to the end of the FP state; bytes Linux does not write are zero.
    image: Vec<u8>,
    /// The parts of `image` Linux writes, in its order.
    written: Vec<Range<usize>>,
    /// RIP the handler, RSP the frame, RDI the signal, RSI `&info`, RDX `&uc`, RAX 0, CS
    /// and SS the user selectors, DF, TF and RF clear; the rest as interrupted.
    pub handler_regs: UserRegs,
    /// The FPU for the handler.
    pub handler_fx: FxState,
    /// The thread's blocked mask in the handler (`signal_delivered`).
    pub blocked: u64,
    /// The thread's altstack in the handler: reset if it was `SS_AUTODISARM`.
    pub altstack: AltStack,
}

impl SignalFrame {
    /// The guest writes that build the frame: (address, bytes), in Linux's order (FP state,
    /// ucontext and `pretcode`, then siginfo, which only `SA_SIGINFO` writes). Near address
    /// 0 the frame wraps around, as Linux's arithmetic does, and the writes fault.
    pub fn writes(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.written.iter().map(|r| {
            (
                self.frame.wrapping_add(r.start as u64),
                &self.image[r.clone()],
            )
        })
    }

    /// The frame's bytes from `frame` through the FP state, unwritten bytes as zeros.
    pub fn image(&self) -> &[u8] {
        &self.image
    }
}

/// Why Linux cannot build a signal frame. Either way (and when a write of the frame
/// faults) the task gets SIGSEGV as [`forced_sigsegv`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// x86-64 has no default restorer.
    #[error("the handler has no SA_RESTORER, which x86-64 requires")]
    NoRestorer,
    /// The frame would leave the altstack it is on or enters.
    #[error("the signal frame at {frame:#x} overflows the alternate signal stack")]
    AltStackOverflow { frame: u64 },
}

/// What follows a failed frame (`force_sigsegv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedSigsegv {
    /// The failed signal was SIGSEGV: the process dies of SIGSEGV whatever its handler.
    Fatal,
    /// SIGSEGV with `SI_KERNEL` (`force_sig`): a handler runs if SIGSEGV has one and is not
    /// blocked or ignored; otherwise the action is reset to `SIG_DFL` and it kills.
    Deliver,
}

pub fn forced_sigsegv(signo: u32) -> ForcedSigsegv {
    if signo == libc::SIGSEGV as u32 {
        ForcedSigsegv::Fatal
    } else {
        ForcedSigsegv::Deliver
    }
}

/// Where `get_sigframe` puts the FP state and the frame for a thread at `rsp`.
fn place(d: &Delivery) -> Result<(u64, u64), SetupError> {
    let nested = d.altstack.on_stack(d.regs.rsp);
    let mut top = d.regs.rsp.wrapping_sub(RED_ZONE);
    // X/Open's switch: only if not on the stack already (checked below the red zone).
    let entering = d.action.flags & SA_ONSTACK != 0 && d.altstack.mode_at(top) == 0;
    if entering {
        top = d.altstack.sp.wrapping_add(d.altstack.size);
    }
    let fpstate = top.wrapping_sub(FxState::SIZE as u64) & !(FPSTATE_ALIGN - 1);
    let frame = (fpstate.wrapping_sub(FRAME_SIZE) & !(FRAME_ALIGN - 1)).wrapping_sub(8);
    if (nested || entering) && !d.altstack.contains(frame) {
        return Err(SetupError::AltStackOverflow { frame });
    }
    Ok((frame, fpstate))
}

/// `uc_flags` (`frame_uc_flags`): SS is saved; restore it strictly unless the interrupted
/// code was not 64-bit. No `UC_FP_XSTATE`: the CPU has no XSAVE.
fn uc_flags(regs: &UserRegs) -> u64 {
    let strict = if regs.cs == USER_CS {
        UC_STRICT_RESTORE_SS
    } else {
        0
    };
    UC_SIGCONTEXT_SS | strict
}

/// The frame and handler entry Linux's `x64_setup_rt_frame` and `handle_signal` make.
pub fn build(d: &Delivery) -> Result<SignalFrame, SetupError> {
    debug_assert!((1..=64).contains(&d.signo), "signal {}", d.signo);
    if d.action.flags & SA_RESTORER == 0 {
        return Err(SetupError::NoRestorer);
    }
    let (frame, fpstate) = place(d)?;
    let saved_mask = d.saved_sigmask.unwrap_or(d.blocked);
    let fp = fpstate.wrapping_sub(frame) as usize;
    let mut image = vec![0; fp + FxState::SIZE];
    image[fp..].copy_from_slice(&d.fx.in_frame());

    put(&mut image, PRETCODE, d.action.restorer.to_le_bytes());
    let uc = &mut image[UC..UC + UCONTEXT_SIZE];
    put(uc, UC_FLAGS, uc_flags(d.regs).to_le_bytes());
    put(uc, UC_LINK, 0u64.to_le_bytes());
    put(uc, UC_STACK, d.altstack.to_bytes());
    let saved = UserRegs {
        gs: 0,
        fs: 0,
        oldmask: saved_mask,
        ..*d.regs
    };
    put(uc, UC_MCONTEXT, saved.to_bytes());
    put(uc, UC_MCONTEXT + SC_FPSTATE, fpstate.to_le_bytes());
    put(uc, UC_SIGMASK, saved_mask.to_le_bytes());

    let mut written = vec![
        fp..fp + FxState::SIZE,
        PRETCODE..UC + UC_STACK_FLAGS_END,
        UC + UC_STACK_FLAGS_END + 4..UC + UC_MCONTEXT + SC_FPSTATE + 8,
        UC + UC_SIGMASK..UC + UCONTEXT_SIZE,
    ];
    if d.action.flags & SA_SIGINFO != 0 {
        put(&mut image, INFO, d.info.0);
        written.push(INFO..INFO + SigInfo::SIZE);
    }

    let mut handler_regs = UserRegs {
        rdi: u64::from(d.signo),
        rsi: frame.wrapping_add(INFO as u64),
        rdx: frame.wrapping_add(UC as u64),
        rax: 0,
        rip: d.action.handler,
        rsp: frame,
        cs: USER_CS,
        eflags: d.regs.eflags & !HANDLER_CLEARS,
        ..*d.regs
    };
    // `force_valid_ss`: USER_DS is the only user data selector ringsim's machine has.
    if handler_regs.ss != USER_DS {
        handler_regs.ss = USER_DS;
    }
    let this_signal = if d.action.flags & SA_NODEFER != 0 {
        0
    } else {
        sigbit(d.signo)
    };
    let altstack = if d.altstack.flags & SS_AUTODISARM != 0 {
        AltStack::RESET
    } else {
        d.altstack
    };
    Ok(SignalFrame {
        frame,
        fpstate,
        image,
        written,
        handler_regs,
        handler_fx: FxState::INIT,
        blocked: (d.blocked | d.action.mask | this_signal) & !UNBLOCKABLE,
        altstack,
    })
}

// ---------------------------------------------------------------------------------------
// Interrupted syscalls
// ---------------------------------------------------------------------------------------

/// Linux's internal results that ask for a restart; they never reach the program
/// (include/linux/errno.h).
pub const ERESTARTSYS: i64 = 512;
pub const ERESTARTNOINTR: i64 = 513;
pub const ERESTARTNOHAND: i64 = 514;
pub const ERESTART_RESTARTBLOCK: i64 = 516;
/// `__NR_restart_syscall` on x86-64.
pub const NR_RESTART_SYSCALL: u64 = 219;

/// What becomes of a syscall that a signal interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    /// It fails with EINTR.
    Eintr,
    /// It runs again: RAX gets the syscall number back and RIP goes back over `syscall`.
    Again,
    /// restart_syscall(2) runs instead, to finish it (a sleep's remaining time).
    RestartSyscall,
}

/// One restart code and its fate: with a handler that has `SA_RESTART`, with one that does
/// not, and with no handler (the signal was ignored or stopped the task).
struct RestartRow {
    code: i64,
    restart_handler: Resume,
    handler: Resume,
    no_handler: Resume,
}

/// `handle_signal` and `arch_do_signal_or_restart` in arch/x86/kernel/signal.c.
const RESTARTS: &[RestartRow] = &[
    RestartRow {
        code: ERESTARTSYS,
        restart_handler: Resume::Again,
        handler: Resume::Eintr,
        no_handler: Resume::Again,
    },
    RestartRow {
        code: ERESTARTNOINTR,
        restart_handler: Resume::Again,
        handler: Resume::Again,
        no_handler: Resume::Again,
    },
    RestartRow {
        code: ERESTARTNOHAND,
        restart_handler: Resume::Eintr,
        handler: Resume::Eintr,
        no_handler: Resume::Again,
    },
    RestartRow {
        code: ERESTART_RESTARTBLOCK,
        restart_handler: Resume::Eintr,
        handler: Resume::Eintr,
        no_handler: Resume::RestartSyscall,
    },
];

/// Settles a syscall whose result in `regs.rax` is a restart code, before a handler runs
/// (`handler_flags` its `sa_flags`) or when none does (`None`). `orig_rax` is the syscall
/// number. Call it only for a task stopped in a syscall, never after rt_sigreturn. Linux
/// steps back 2 bytes, the length of `syscall` without prefixes, whatever the instruction.
pub fn restart_after_signal(regs: &mut UserRegs, orig_rax: u64, handler_flags: Option<u64>) {
    let Some(row) = RESTARTS.iter().find(|r| regs.rax as i64 == -r.code) else {
        return;
    };
    let resume = match handler_flags {
        Some(flags) if flags & SA_RESTART != 0 => row.restart_handler,
        Some(_) => row.handler,
        None => row.no_handler,
    };
    regs.rax = match resume {
        Resume::Eintr => {
            regs.rax = -(Errno::EINTR as i64) as u64;
            return;
        }
        Resume::Again => orig_rax,
        Resume::RestartSyscall => NR_RESTART_SYSCALL,
    };
    regs.rip = regs.rip.wrapping_sub(2);
}

// ---------------------------------------------------------------------------------------
// rt_sigreturn
// ---------------------------------------------------------------------------------------

/// Why rt_sigreturn fails after it has restored the registers; Linux then resets the FPU
/// (for an FP state error) and sends SIGSEGV (`signal_fault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigreturnError {
    /// FXRSTOR needs a 16-byte aligned image.
    #[error("the saved FP state at {0:#x} is not 16-byte aligned")]
    MisalignedFpstate(u64),
    /// FXRSTOR faults on a reserved MXCSR bit.
    #[error("the saved MXCSR {0:#x} sets reserved bits")]
    ReservedMxcsr(u32),
    /// The return to user mode would fault, or would run 32-bit code.
    #[error("cannot return to 64-bit user mode with CS {cs:#x} and SS {ss:#x}")]
    Segments { cs: u16, ss: u16 },
}

/// The ucontext rt_sigreturn reads (`uc_flags`, `uc_stack`, the sigcontext up to its
/// reserved words, `uc_sigmask`; never the siginfo nor `pretcode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigreturnFrame {
    uc_flags: u64,
    saved: UserRegs,
    fpstate: u64,
    sigmask: u64,
    uc_stack: AltStack,
}

/// Decodes the ucontext at the RSP of a task in rt_sigreturn: the frame begins 8 bytes
/// lower (`regs->sp - sizeof(long)`), and its ucontext 8 bytes into it.
pub fn read_sigreturn_frame(uc: &[u8; UCONTEXT_SIZE]) -> SigreturnFrame {
    SigreturnFrame {
        uc_flags: u64_at(uc, UC_FLAGS),
        saved: UserRegs::from_bytes(&field(uc, UC_MCONTEXT)),
        fpstate: u64_at(uc, UC_MCONTEXT + SC_FPSTATE),
        sigmask: u64_at(uc, UC_SIGMASK),
        uc_stack: AltStack::from_bytes(&field(uc, UC_STACK)),
    }
}

impl SigreturnFrame {
    /// The mask to block (`set_current_blocked`: SIGKILL and SIGSTOP dropped).
    pub fn blocked(&self) -> u64 {
        self.sigmask & !UNBLOCKABLE
    }

    /// The altstack to restore, through [`AltStack::change`] at the restored RSP.
    pub fn uc_stack(&self) -> AltStack {
        self.uc_stack
    }

    /// Where to read the 512-byte FXSAVE image; `None` (a null pointer) means the FPU gets
    /// [`FxState::INIT`], as `fpu__restore_sig` does.
    pub fn fpstate(&self) -> Result<Option<u64>, SigreturnError> {
        match self.fpstate {
            0 => Ok(None),
            address if address % 16 != 0 => Err(SigreturnError::MisalignedFpstate(address)),
            address => Ok(Some(address)),
        }
    }

    /// The registers after rt_sigreturn, from those at its syscall (`restore_sigcontext`):
    /// the general registers, RIP and RSP from the frame; of RFLAGS only `FIX_EFLAGS`; CS and
    /// SS from the frame at privilege 3, SS made valid unless `UC_STRICT_RESTORE_SS`; the
    /// selectors FS and GS and the fault words unchanged.
    pub fn registers(&self, at_syscall: &UserRegs) -> UserRegs {
        let s = &self.saved;
        let mut regs = UserRegs {
            cs: s.cs | 3,
            ss: s.ss | 3,
            eflags: (at_syscall.eflags & !FIX_EFLAGS) | (s.eflags & FIX_EFLAGS),
            gs: at_syscall.gs,
            fs: at_syscall.fs,
            err: at_syscall.err,
            trapno: at_syscall.trapno,
            oldmask: at_syscall.oldmask,
            cr2: at_syscall.cr2,
            ..*s
        };
        // `force_valid_ss`, for old DOSEMU and CRIU frames.
        if self.uc_flags & UC_STRICT_RESTORE_SS == 0 && regs.cs == USER_CS {
            regs.ss = USER_DS;
        }
        regs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGHUP: u32 = libc::SIGHUP as u32;
    const SIGINT: u32 = libc::SIGINT as u32;
    const SIGUSR1: u32 = libc::SIGUSR1 as u32;
    const SIGUSR2: u32 = libc::SIGUSR2 as u32;
    const SIGTERM: u32 = libc::SIGTERM as u32;
    const SIGSEGV: u32 = libc::SIGSEGV as u32;

    /// glibc's `gregs[]` indices (sysdeps/unix/sysv/linux/x86/sys/ucontext.h), which name
    /// the 8-byte words of `struct sigcontext`; `uc_mcontext` is at 40 in both ucontexts.
    const REG_R12: usize = 4;
    const REG_RAX: usize = 13;
    const REG_RSP: usize = 15;
    const REG_RIP: usize = 16;
    const REG_EFL: usize = 17;
    const REG_CSGSFS: usize = 18;
    const REG_ERR: usize = 19;
    const REG_TRAPNO: usize = 20;
    const REG_OLDMASK: usize = 21;
    const REG_CR2: usize = 22;
    /// glibc's `mcontext_t.fpregs` follows the 23 gregs; `uc_sigmask` follows `uc_mcontext`.
    const FPREGS: usize = 40 + 23 * 8;
    const SIGMASK: usize = 40 + 256;

    fn regs() -> UserRegs {
        UserRegs {
            r8: 8,
            r9: 9,
            r10: 10,
            r11: 0x246,
            r12: 12,
            r13: 13,
            r14: 14,
            r15: 15,
            rdi: 0xd1,
            rsi: 0x51,
            rbp: 0xb9,
            rbx: 0xb8,
            rdx: 0xd8,
            rax: 0,
            rcx: 0x40_1000,
            rsp: 0x7fff_ffff_e000,
            rip: 0x40_1000,
            eflags: 0x246,
            cs: USER_CS,
            ss: USER_DS,
            err: 4,
            trapno: 14,
            cr2: 0x10,
            ..UserRegs::default()
        }
    }

    fn handler(flags: u64) -> SigAction {
        SigAction {
            handler: 0x40_2000,
            flags: flags | SA_RESTORER,
            restorer: 0x40_3000,
            mask: sigbit(SIGINT),
        }
    }

    struct Case {
        regs: UserRegs,
        fx: FxState,
        info: SigInfo,
        action: SigAction,
        blocked: u64,
        saved_sigmask: Option<u64>,
        altstack: AltStack,
    }

    impl Case {
        fn new() -> Self {
            Case {
                regs: regs(),
                fx: FxState::INIT,
                info: SigInfo::tkill(SIGUSR1, 1000, 1000),
                action: handler(SA_SIGINFO),
                blocked: sigbit(SIGHUP),
                saved_sigmask: None,
                altstack: AltStack::default(),
            }
        }

        fn build(&self) -> Result<SignalFrame, SetupError> {
            build(&Delivery {
                signo: SIGUSR1,
                info: &self.info,
                action: &self.action,
                regs: &self.regs,
                fx: &self.fx,
                blocked: self.blocked,
                saved_sigmask: self.saved_sigmask,
                altstack: self.altstack,
            })
        }
    }

    /// Guest memory after the frame's writes, from `frame` on; untouched bytes are 0xee.
    fn written(frame: &SignalFrame) -> Vec<u8> {
        let mut memory = vec![0xee; frame.image().len()];
        for (address, bytes) in frame.writes() {
            let at = (address - frame.frame) as usize;
            memory[at..at + bytes.len()].copy_from_slice(bytes);
        }
        memory
    }

    fn ucontext(memory: &[u8]) -> [u8; UCONTEXT_SIZE] {
        field(memory, UC)
    }

    #[test]
    fn offsets_are_linux_s() {
        // struct rt_sigframe: char *pretcode; struct ucontext uc; struct siginfo info
        // (arch/x86/include/asm/sigframe.h); sizeof 440 with the 304-byte ucontext.
        assert_eq!((PRETCODE, UC, INFO), (0, 8, 8 + UCONTEXT_SIZE));
        assert_eq!(FRAME_SIZE as usize, INFO + SigInfo::SIZE);
        // struct ucontext: flags, link, stack_t (24), sigcontext (256), sigset_t (8).
        assert_eq!(
            (UC_LINK, UC_STACK, UC_MCONTEXT, UC_SIGMASK),
            (8, 16, 40, 40 + 256)
        );
        // struct sigcontext (sigcontext.h): fpstate at 184, reserved1[8] to 256.
        assert_eq!(SC_FPSTATE, 184);
        // struct fxregs_state: sw_reserved is the last 48 of 512 bytes.
        assert_eq!(SW_RESERVED, FxState::SIZE - 48);
        // Each register lands on its glibc gregs index.
        let mut r = UserRegs::default();
        for (i, (at, value)) in r.words().into_iter().enumerate() {
            *value = i as u64 + 1;
            let index = if i < 18 { i } else { i + 1 };
            assert_eq!(at, 8 * index);
        }
        let bytes = r.to_bytes();
        assert_eq!(u64_at(&bytes, 8 * REG_RIP), 17);
        assert_eq!(u64_at(&bytes, 8 * REG_RSP), 16);
        assert_eq!(u64_at(&bytes, 8 * REG_R12), 5);
        assert_eq!(u64_at(&bytes, 8 * REG_ERR), 19);
        assert_eq!(u64_at(&bytes, 8 * REG_CR2), 22);
        let segments = UserRegs {
            cs: 0x33,
            gs: 0x1,
            fs: 0x2,
            ss: 0x2b,
            ..UserRegs::default()
        };
        // REG_CSGSFS holds cs, gs, fs, ss as four u16.
        let word = u64_at(&segments.to_bytes(), 8 * REG_CSGSFS);
        assert_eq!(word, 0x002b_0002_0001_0033);
        assert_eq!(UserRegs::from_bytes(&segments.to_bytes()), segments);
    }

    #[test]
    fn the_frame_holds_what_linux_writes() {
        let mut case = Case::new();
        case.fx.set_xmm(3, [0x5a; 16]);
        let built = case.build().unwrap();
        let memory = written(&built);
        let uc = &memory[UC..];
        assert_eq!(u64_at(&memory, PRETCODE), case.action.restorer);
        assert_eq!(
            u64_at(uc, UC_FLAGS),
            UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
        );
        assert_eq!(u64_at(uc, UC_LINK), 0);
        let greg = |i: usize| u64_at(uc, 40 + 8 * i);
        assert_eq!(greg(REG_RIP), case.regs.rip);
        assert_eq!(greg(REG_RSP), case.regs.rsp);
        assert_eq!(greg(REG_EFL), case.regs.eflags);
        assert_eq!(greg(REG_RAX), case.regs.rax);
        assert_eq!(greg(REG_TRAPNO), 14);
        assert_eq!(greg(REG_OLDMASK), sigbit(SIGHUP));
        assert_eq!(u64_at(uc, SIGMASK), sigbit(SIGHUP));
        assert_eq!(u64_at(uc, FPREGS), built.fpstate);
        // The siginfo, as given.
        assert_eq!(&memory[INFO..INFO + SigInfo::SIZE], &case.info.0[..]);
        // The FP state: the image, then the software bytes.
        let fp = (built.fpstate - built.frame) as usize;
        let fx = &memory[fp..fp + FxState::SIZE];
        assert_eq!(&fx[..SW_RESERVED], &case.fx.0[..SW_RESERVED]);
        assert_eq!(u32_at(fx, SW_RESERVED), FP_XSTATE_MAGIC1);
        assert_eq!(u32_at(fx, SW_RESERVED + 4), 516);
        assert_eq!(u64_at(fx, SW_RESERVED + 8), 0);
        assert_eq!(u32_at(fx, SW_RESERVED + 16), 512);
        assert!(fx[SW_RESERVED + 20..].iter().all(|&b| b == 0));
        // Untouched: uc_stack's padding, sigcontext's reserved words, the gap below fpstate.
        let untouched = |range: Range<usize>| memory[range].iter().all(|&b| b == 0xee);
        assert!(untouched(UC + 28..UC + 32));
        assert!(untouched(UC + 40 + 192..UC + 40 + 256));
        assert!(untouched(FRAME_SIZE as usize..fp));
    }

    #[test]
    fn without_sa_siginfo_the_siginfo_is_not_written() {
        let mut case = Case::new();
        case.action = handler(0);
        let built = case.build().unwrap();
        let memory = written(&built);
        assert!(memory[INFO..INFO + SigInfo::SIZE]
            .iter()
            .all(|&b| b == 0xee));
        // The handler still gets the pointer, as Linux passes it.
        assert_eq!(built.handler_regs.rsi, built.frame + INFO as u64);
    }

    #[test]
    fn handler_entry_registers() {
        let mut case = Case::new();
        case.regs.eflags = 0x246 | EFLAGS_DF | EFLAGS_TF | EFLAGS_RF | EFLAGS_CF;
        case.regs.rax = 0x1234;
        case.regs.ss = 0;
        let built = case.build().unwrap();
        let h = built.handler_regs;
        assert_eq!(h.rip, case.action.handler);
        assert_eq!(h.rsp, built.frame);
        assert_eq!(h.rdi, u64::from(SIGUSR1));
        assert_eq!(h.rsi, built.frame + 312);
        assert_eq!(h.rdx, built.frame + 8);
        assert_eq!(h.rax, 0);
        assert_eq!(h.eflags, 0x246 | EFLAGS_CF);
        assert_eq!((h.cs, h.ss), (USER_CS, USER_DS));
        // The rest is as interrupted.
        assert_eq!(
            (h.r8, h.r12, h.rbx, h.rbp, h.rcx),
            (8, 12, 0xb8, 0xb9, 0x40_1000)
        );
        assert_eq!(built.handler_fx, FxState::INIT);
        assert_eq!(
            (built.handler_fx.fcw(), built.handler_fx.mxcsr()),
            (0x37f, 0x1f80)
        );
        // The frame saved the SS it found.
        assert_eq!(u16_at(&written(&built), UC + 40 + 150), 0);
    }

    #[test]
    fn frame_alignment_for_any_rsp() {
        let mut case = Case::new();
        for rsp in (0x7fff_ffff_d000..0x7fff_ffff_d0c0).chain([0x1_0000, 0x7fff_ffff_ffff]) {
            case.regs.rsp = rsp;
            let built = case.build().unwrap();
            // The handler starts as after a call: RSP + 8 is 16-aligned.
            assert_eq!((built.frame + 8) % 16, 0, "rsp {rsp:#x}");
            assert_eq!(built.fpstate % 64, 0);
            assert_eq!(built.fpstate - built.frame, 456);
            let below_red_zone = rsp - RED_ZONE;
            let end = built.fpstate + FxState::SIZE as u64;
            assert!(end <= below_red_zone && below_red_zone - end < 64);
        }
    }

    const ALT: AltStack = AltStack {
        sp: 0x10_0000,
        flags: 0,
        size: 0x4000,
    };

    fn top(stack: AltStack) -> u64 {
        stack.sp + stack.size
    }

    #[test]
    fn sa_onstack_switches_to_the_altstack_once() {
        let mut case = Case::new();
        case.action = handler(SA_SIGINFO | SA_ONSTACK);
        case.altstack = ALT;
        let built = case.build().unwrap();
        assert_eq!(built.fpstate, top(ALT) - 512);
        assert_eq!(built.altstack, ALT);
        // The frame records the altstack as it was.
        let memory = written(&built);
        assert_eq!(AltStack::from_bytes(&field(&memory, UC + UC_STACK)), ALT);

        // Already on it: the frame goes below the interrupted RSP's red zone.
        case.regs.rsp = ALT.sp + 0x2000;
        let nested = case.build().unwrap();
        assert_eq!(nested.fpstate, (case.regs.rsp - 128 - 512) & !63);

        // SS_AUTODISARM: never "on" it, so each signal starts at its top again, and the
        // handler runs with the altstack reset.
        case.altstack.flags = SS_AUTODISARM;
        let disarmed = case.build().unwrap();
        assert_eq!(disarmed.fpstate, top(ALT) - 512);
        assert_eq!(disarmed.altstack, AltStack::RESET);

        // Without SA_ONSTACK, or with no altstack, the thread's stack.
        case.regs.rsp = regs().rsp;
        case.altstack = ALT;
        case.action = handler(SA_SIGINFO);
        assert_eq!(case.build().unwrap().fpstate, (regs().rsp - 640) & !63);
        case.action = handler(SA_SIGINFO | SA_ONSTACK);
        for disabled in [AltStack::default(), AltStack::RESET] {
            case.altstack = disabled;
            assert_eq!(case.build().unwrap().fpstate, (regs().rsp - 640) & !63);
        }
    }

    #[test]
    fn a_frame_that_overflows_the_altstack_fails() {
        let mut case = Case::new();
        case.action = handler(SA_SIGINFO | SA_ONSTACK);
        // Entering: the frame spans 968 bytes from 8 below a 16-byte boundary, so a stack
        // whose top is 64-aligned needs 1024.
        case.altstack = AltStack { size: 960, ..ALT };
        assert_eq!(
            case.build(),
            Err(SetupError::AltStackOverflow { frame: ALT.sp - 8 })
        );
        case.altstack.size = 1024;
        assert_eq!(case.build().unwrap().frame, ALT.sp + 56);
        // Nested near the bottom, even without SA_ONSTACK.
        case.altstack = ALT;
        case.action = handler(SA_SIGINFO);
        case.regs.rsp = ALT.sp + 1000;
        assert!(matches!(
            case.build(),
            Err(SetupError::AltStackOverflow { .. })
        ));
        case.regs.rsp = ALT.sp + 1200;
        assert!(case.build().is_ok());
        assert_eq!(forced_sigsegv(SIGUSR1), ForcedSigsegv::Deliver);
        assert_eq!(forced_sigsegv(SIGSEGV), ForcedSigsegv::Fatal);
    }

    #[test]
    fn the_stack_top_counts_as_on_the_altstack() {
        // `__on_sig_stack`: sp > base && sp - base <= size.
        assert!(ALT.on_stack(top(ALT)));
        assert!(!ALT.on_stack(ALT.sp));
        assert!(!ALT.on_stack(top(ALT) + 1));
        // Interrupted 128 bytes above the top, so that its red zone ends there, the thread
        // counts as on the stack: no switch, and no overflow check. One byte higher it
        // switches, and the frame does not fit.
        let mut case = Case::new();
        case.action = handler(SA_SIGINFO | SA_ONSTACK);
        case.altstack = AltStack { size: 960, ..ALT };
        case.regs.rsp = top(case.altstack) + RED_ZONE;
        assert!(case.build().is_ok());
        case.regs.rsp += 1;
        assert!(case.build().is_err());
    }

    #[test]
    fn a_frame_below_address_zero_wraps() {
        let mut case = Case::new();
        case.regs.rsp = 0x300;
        let built = case.build().unwrap();
        assert_eq!(built.fpstate, 0x80);
        assert_eq!(built.frame, 0x80u64.wrapping_sub(456));
        let addresses: Vec<u64> = built.writes().map(|(address, _)| address).collect();
        assert_eq!(addresses[..2], [0x80, built.frame]);
    }

    #[test]
    fn no_restorer_no_frame() {
        let mut case = Case::new();
        case.action.flags &= !SA_RESTORER;
        assert_eq!(case.build(), Err(SetupError::NoRestorer));
    }

    #[test]
    fn masks_in_the_handler_and_after() {
        let mut case = Case::new();
        case.blocked = sigbit(SIGHUP);
        case.action.mask = sigbit(SIGINT) | UNBLOCKABLE;
        let built = case.build().unwrap();
        assert_eq!(
            built.blocked,
            sigbit(SIGHUP) | sigbit(SIGINT) | sigbit(SIGUSR1)
        );
        case.action.flags |= SA_NODEFER;
        assert_eq!(
            case.build().unwrap().blocked,
            sigbit(SIGHUP) | sigbit(SIGINT)
        );
        // After sigsuspend the frame saves the mask it put aside; the handler's mask still
        // builds on the one sigsuspend installed.
        case.saved_sigmask = Some(sigbit(SIGTERM));
        let built = case.build().unwrap();
        let memory = written(&built);
        assert_eq!(u64_at(&memory, UC + SIGMASK), sigbit(SIGTERM));
        assert_eq!(u64_at(&memory, UC + 40 + 8 * REG_OLDMASK), sigbit(SIGTERM));
        assert_eq!(built.blocked, sigbit(SIGHUP) | sigbit(SIGINT));
        // rt_sigreturn never blocks SIGKILL or SIGSTOP.
        let mut uc = ucontext(&memory);
        put(&mut uc, UC_SIGMASK, u64::MAX.to_le_bytes());
        assert_eq!(read_sigreturn_frame(&uc).blocked(), !UNBLOCKABLE);
    }

    #[test]
    fn build_then_sigreturn_restores_everything() {
        let mut case = Case::new();
        case.action = handler(SA_SIGINFO | SA_ONSTACK);
        case.altstack = ALT;
        case.regs.eflags = 0x246 | EFLAGS_DF | EFLAGS_AC;
        case.fx.set_mxcsr(0x3f80);
        case.fx.set_fcw(0x27f);
        case.fx.set_st(7, [7; 10]);
        case.fx.set_xmm(15, [0xf; 16]);
        let built = case.build().unwrap();
        let memory = written(&built);
        let frame = read_sigreturn_frame(&ucontext(&memory));
        // The handler's state at its rt_sigreturn: after `ret` RSP is 8 above the frame.
        let at_syscall = UserRegs {
            rsp: built.frame + 8,
            eflags: 0x202,
            ..built.handler_regs
        };
        let restored = frame.registers(&at_syscall);
        assert_eq!(restored, case.regs);
        assert_eq!(restored.check_user_segments(), Ok(()));
        assert_eq!(frame.blocked(), case.blocked);
        assert_eq!(frame.uc_stack(), ALT);
        let fp = frame.fpstate().unwrap().unwrap();
        assert_eq!(fp, built.fpstate);
        let at = (fp - built.frame) as usize;
        let fx = FxState(field(&memory, at));
        assert_eq!(fx.check_restorable(), Ok(()));
        assert_eq!(&fx.0[..SW_RESERVED], &case.fx.0[..SW_RESERVED]);
        // The altstack comes back after an SS_AUTODISARM handler, once off it.
        let mut altstack = AltStack::RESET;
        altstack.change(frame.uc_stack(), restored.rsp).unwrap();
        assert_eq!(altstack, ALT);
    }

    #[test]
    fn sigreturn_takes_only_the_program_s_flags_and_fixes_selectors() {
        let built = Case::new().build().unwrap();
        let mut uc = ucontext(&written(&built));
        let at_syscall = UserRegs {
            eflags: 0x202,
            gs: 7,
            fs: 9,
            cr2: 0xdead,
            ..built.handler_regs
        };
        let mut saved = UserRegs::from_bytes(&field(&uc, UC_MCONTEXT));
        saved.eflags = !0;
        saved.cs = 0x30;
        saved.ss = 0x28;
        saved.gs = 0x99;
        put(&mut uc, UC_MCONTEXT, saved.to_bytes());
        let regs = read_sigreturn_frame(&uc).registers(&at_syscall);
        assert_eq!(regs.eflags, 0x202 | FIX_EFLAGS);
        assert_eq!((regs.cs, regs.ss), (USER_CS, USER_DS));
        assert_eq!((regs.gs, regs.fs, regs.cr2), (7, 9, 0xdead));

        // A bad SS stays with UC_STRICT_RESTORE_SS, and the return would fault; without it,
        // Linux puts USER_DS back.
        saved.ss = 0;
        put(&mut uc, UC_MCONTEXT, saved.to_bytes());
        let strict = read_sigreturn_frame(&uc).registers(&at_syscall);
        assert_eq!(strict.ss, 3);
        assert_eq!(
            strict.check_user_segments(),
            Err(SigreturnError::Segments { cs: USER_CS, ss: 3 })
        );
        put(&mut uc, UC_FLAGS, UC_SIGCONTEXT_SS.to_le_bytes());
        assert_eq!(read_sigreturn_frame(&uc).registers(&at_syscall).ss, USER_DS);
        saved.cs = USER32_CS;
        put(&mut uc, UC_MCONTEXT, saved.to_bytes());
        let compat = read_sigreturn_frame(&uc).registers(&at_syscall);
        assert!(compat.check_user_segments().is_err());
    }

    #[test]
    fn sigreturn_fp_state_checks() {
        let built = Case::new().build().unwrap();
        let mut uc = ucontext(&written(&built));
        for (pointer, expected) in [
            (0, Ok(None)),
            (0x1000, Ok(Some(0x1000))),
            (0x1008, Err(SigreturnError::MisalignedFpstate(0x1008))),
        ] {
            put(&mut uc, UC_MCONTEXT + SC_FPSTATE, u64::to_le_bytes(pointer));
            assert_eq!(read_sigreturn_frame(&uc).fpstate(), expected);
        }
        let mut fx = FxState::INIT;
        fx.set_mxcsr(0xffff);
        assert_eq!(fx.check_restorable(), Ok(()));
        fx.set_mxcsr(0x1_1f80);
        assert_eq!(
            fx.check_restorable(),
            Err(SigreturnError::ReservedMxcsr(0x1_1f80))
        );
    }

    #[test]
    fn interrupted_syscalls_follow_linux_s_table() {
        const NR_READ: u64 = 0;
        let eintr = -(Errno::EINTR as i64) as u64;
        // (result, handler flags, expected RAX, whether RIP steps back)
        let cases = [
            (ERESTARTSYS, Some(SA_RESTART), NR_READ, true),
            (ERESTARTSYS, Some(0), eintr, false),
            (ERESTARTSYS, None, NR_READ, true),
            (ERESTARTNOINTR, Some(0), NR_READ, true),
            (ERESTARTNOHAND, Some(SA_RESTART), eintr, false),
            (ERESTARTNOHAND, None, NR_READ, true),
            (ERESTART_RESTARTBLOCK, Some(SA_RESTART), eintr, false),
            (ERESTART_RESTARTBLOCK, None, NR_RESTART_SYSCALL, true),
        ];
        for (code, flags, rax, back) in cases {
            let mut r = UserRegs {
                rax: -code as u64,
                rip: 0x1002,
                ..UserRegs::default()
            };
            restart_after_signal(&mut r, NR_READ, flags);
            assert_eq!(r.rax, rax, "{code} {flags:?}");
            assert_eq!(r.rip, if back { 0x1000 } else { 0x1002 });
        }
        // Ordinary results stay.
        let mut r = UserRegs {
            rax: eintr,
            rip: 0x1002,
            ..UserRegs::default()
        };
        restart_after_signal(&mut r, NR_READ, None);
        assert_eq!((r.rax, r.rip), (eintr, 0x1002));
    }

    #[test]
    fn sigaltstack_rules() {
        let sp = 0x7fff_0000;
        let mut stack = AltStack::default();
        assert_eq!(stack.reported(sp).flags, SS_DISABLE);
        assert_eq!(
            stack.change(AltStack { size: 2047, ..ALT }, sp),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            stack.change(AltStack { flags: 4, ..ALT }, sp),
            Err(Errno::EINVAL)
        );
        stack.change(ALT, sp).unwrap();
        assert_eq!(stack.reported(sp), ALT);
        assert_eq!(stack.reported(ALT.sp + 8).flags, SS_ONSTACK);
        assert_eq!(stack.change(AltStack::RESET, ALT.sp + 8), Err(Errno::EPERM));
        // SS_AUTODISARM is reported, and never counts as on the stack.
        let armed = AltStack {
            flags: SS_AUTODISARM,
            ..ALT
        };
        stack.change(armed, sp).unwrap();
        assert_eq!(stack.reported(ALT.sp + 8).flags, SS_AUTODISARM);
        stack.change(AltStack::RESET, ALT.sp + 8).unwrap();
        assert_eq!(stack, AltStack::RESET);
        assert_eq!(stack.reported(sp).flags, SS_DISABLE);
        assert_eq!(AltStack::from_bytes(&ALT.to_bytes()), ALT);
    }

    #[test]
    fn sigaction_as_linux_keeps_it() {
        let raw = SigAction {
            handler: 0x40_1000,
            flags: SA_SIGINFO | SA_RESETHAND | SA_UNSUPPORTED | SA_RESTORER | 0x100,
            restorer: 0x40_2000,
            mask: UNBLOCKABLE | sigbit(SIGINT),
        };
        assert_eq!(SigAction::from_bytes(&raw.to_bytes()), raw);
        let kept = raw.installed();
        assert_eq!(kept.flags, SA_SIGINFO | SA_RESETHAND | SA_RESTORER);
        assert_eq!(kept.mask, sigbit(SIGINT));
        let taken = kept.dequeued();
        assert_eq!(
            taken,
            SigAction {
                handler: SIG_DFL,
                ..kept
            }
        );
        assert_eq!(handler(0).dequeued(), handler(0));
    }

    #[test]
    fn siginfo_layouts() {
        let user = SigInfo::user(SIGUSR2, 1000, 1001);
        assert_eq!(
            (
                user.signo(),
                user.errno(),
                user.code(),
                user.pid(),
                user.uid()
            ),
            (12, 0, SI_USER, 1000, 1001)
        );
        assert_eq!(SigInfo::tkill(SIGUSR1, 5, 6).code(), SI_TKILL);
        let alarm = SigInfo::kernel(libc::SIGALRM as u32);
        assert_eq!((alarm.code(), alarm.pid(), alarm.uid()), (SI_KERNEL, 0, 0));
        let fault = SigInfo::fault(SIGSEGV, SEGV_MAPERR, 0x10);
        assert_eq!(u64_at(&fault.0, 16), 0x10);
        assert!(fault.0[24..].iter().all(|&b| b == 0));
        // Wait statuses: exit(3), killed by SIGKILL, SIGSEGV with a core dump.
        for (status, code, si_status) in [
            (3 << 8, CLD_EXITED, 3),
            (9, CLD_KILLED, 9),
            (0x80 | 11, CLD_DUMPED, 11),
        ] {
            let child = SigInfo::child_exit(1001, 1000, status, 2, 1);
            assert_eq!((child.signo(), child.code()), (libc::SIGCHLD, code));
            assert_eq!(i32::from_le_bytes(field(&child.0, 24)), si_status);
            assert_eq!(u64_at(&child.0, 32), 2);
            assert_eq!(u64_at(&child.0, 40), 1);
        }
    }

    /// `printf("%#x")`: no prefix for zero.
    fn c_hex(value: u64) -> String {
        if value == 0 {
            "0".into()
        } else {
            format!("{value:#x}")
        }
    }

    fn yes(condition: bool) -> &'static str {
        if condition {
            "yes"
        } else {
            "no"
        }
    }

    /// The first block `signal_frame` prints, rebuilt from this module: SIGUSR1 from tgkill
    /// on the thread stack, with SIGHUP and SIGTERM blocked and SIGINT in sa_mask, after
    /// `probe_syscall` set MXCSR 0x3f80, XMM0, R12 and DF. Addresses are made up; the
    /// program prints none.
    fn rebuilt_first_block() -> Vec<String> {
        const XMM0: [u8; 16] = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        let (pid, uid) = (1000, 1000);
        let probe_resume = 0x40_1a2c;
        let interrupted = UserRegs {
            rip: probe_resume,
            rsp: 0x7ffd_1234_5678,
            r12: 0x1111,
            rax: 0,
            rcx: probe_resume,
            r11: 0x646,
            eflags: 0x646,
            cs: USER_CS,
            ss: USER_DS,
            ..UserRegs::default()
        };
        let mut fx = FxState::INIT;
        fx.set_mxcsr(0x3f80);
        fx.set_mxcsr_mask(MXCSR_FEATURE_MASK);
        fx.set_xmm(0, XMM0);
        let action = handler(SA_SIGINFO).installed();
        let built = build(&Delivery {
            signo: SIGUSR1,
            info: &SigInfo::tkill(SIGUSR1, pid, uid as u32),
            action: &action,
            regs: &interrupted,
            fx: &fx,
            blocked: sigbit(SIGHUP) | sigbit(SIGTERM),
            saved_sigmask: None,
            altstack: AltStack::default(),
        })
        .unwrap();
        let mut memory = written(&built);
        let h = built.handler_regs;
        let (uc, info) = (h.rdx, h.rsi);
        let at = |address: u64| (address - built.frame) as usize;
        let greg = |memory: &[u8], i: usize| u64_at(memory, at(uc) + 40 + 8 * i);
        let uc_flags = u64_at(&memory, at(uc));
        let fp = u64_at(&memory, at(uc) + FPREGS);
        let sw = at(fp) + SW_RESERVED;
        let fp_size = if uc_flags & UC_FP_XSTATE != 0 {
            u64::from(u32_at(&memory, sw + 4))
        } else {
            512
        };
        let top = greg(&memory, REG_RSP) - RED_ZONE;
        let end = fp + fp_size;
        let saved_fx = FxState(field(&memory, at(fp)));
        let cpu = &translator::cpu::MODELS[0];
        let osxsave = crate::machine::cpuid::cpuid(cpu, 1, 0)[2] & (1 << 27) != 0;
        let stack = AltStack::from_bytes(&field(&memory, at(uc) + UC_STACK));
        let si = SigInfo(field(&memory, at(info)));
        let mut lines = vec![
            format!("uc - info: {}", uc as i64 - info as i64),
            format!("rsp at entry mod 16: {}", h.rsp % 16),
            format!("frame starts 8 below uc: {}", yes(h.rsp + 8 == uc)),
            format!("fpstate - uc: {}", fp - uc),
            format!("fpstate 64-aligned: {}", yes(fp.is_multiple_of(64))),
            format!(
                "fpstate ends within 64 bytes below the stack top: {}",
                yes(end <= top && top - end < 64)
            ),
            format!("rax at entry: {}", h.rax),
            format!(
                "DF TF at entry: {} {}",
                u8::from(h.eflags & EFLAGS_DF != 0),
                u8::from(h.eflags & EFLAGS_TF != 0)
            ),
            format!(
                "saved rip is the syscall's end: {}",
                yes(greg(&memory, REG_RIP) == probe_resume)
            ),
            format!(
                "saved rsp - rsp before: {}",
                greg(&memory, REG_RSP) as i64 - interrupted.rsp as i64
            ),
            format!(
                "saved DF: {}",
                u8::from(greg(&memory, REG_EFL) & EFLAGS_DF != 0)
            ),
            format!("saved r12: {}", c_hex(greg(&memory, REG_R12))),
            format!(
                "uc_link: {}",
                match u64_at(&memory, at(uc) + UC_LINK) {
                    0 => "(nil)".to_string(),
                    link => format!("{link:#x}"),
                }
            ),
            format!(
                "uc_stack: sp {} flags {} size {}",
                stack.sp,
                c_hex(u64::from(stack.flags)),
                stack.size
            ),
            format!("uc_sigmask: {}", c_hex(u64_at(&memory, at(uc) + SIGMASK))),
            format!("oldmask: {}", c_hex(greg(&memory, REG_OLDMASK))),
            format!("blocked in handler: {}", c_hex(built.blocked)),
            format!(
                "uc_flags without UC_FP_XSTATE: {}",
                c_hex(uc_flags & !UC_FP_XSTATE)
            ),
            format!(
                "UC_FP_XSTATE as CPUID OSXSAVE: {}",
                yes((uc_flags & UC_FP_XSTATE != 0) == osxsave)
            ),
            format!(
                "sw_reserved magic1 FPXS: {}",
                yes(u32_at(&memory, sw) == FP_XSTATE_MAGIC1)
            ),
            format!(
                "sw_reserved extended_size - xstate_size: {}",
                u32_at(&memory, sw + 4) - u32_at(&memory, sw + 16)
            ),
            format!("saved fcw: {}", c_hex(saved_fx.fcw().into())),
            format!("saved mxcsr: {}", c_hex(saved_fx.mxcsr().into())),
            format!("saved xmm0 as set: {}", yes(saved_fx.xmm(0) == XMM0)),
            format!(
                "mxcsr in handler: {}",
                c_hex(built.handler_fx.mxcsr().into())
            ),
            format!(
                "si_signo si_errno si_code: {} {} {}",
                si.signo(),
                si.errno(),
                si.code()
            ),
            format!(
                "si_pid si_uid: {} {}",
                if si.pid() == pid { "getpid" } else { "other" },
                if si.uid() == uid as u32 {
                    "getuid"
                } else {
                    "other"
                }
            ),
        ];

        // What the handler changes, as the C handler does through its ucontext_t.
        let gregs = at(uc) + 40;
        put(&mut memory, gregs + 8 * REG_RAX, 77u64.to_le_bytes());
        put(&mut memory, gregs + 8 * REG_R12, 0x1234u64.to_le_bytes());
        let eflags = (greg(&memory, REG_EFL) | EFLAGS_CF | 0x3000) & !EFLAGS_IF;
        put(&mut memory, gregs + 8 * REG_EFL, eflags.to_le_bytes());
        put(&mut memory, at(fp) + MXCSR, 0x5f80u32.to_le_bytes());
        let mask = u64_at(&memory, at(uc) + SIGMASK) | UNBLOCKABLE | sigbit(SIGINT);
        put(&mut memory, at(uc) + SIGMASK, mask.to_le_bytes());

        let frame = read_sigreturn_frame(&field(&memory, at(uc)));
        let at_syscall = UserRegs {
            rsp: built.frame + 8,
            eflags: 0x246,
            ..h
        };
        let after = frame.registers(&at_syscall);
        after.check_user_segments().unwrap();
        let fx_address = frame.fpstate().unwrap().unwrap();
        let fx_after = FxState(field(&memory, at(fx_address)));
        fx_after.check_restorable().unwrap();
        let fix_bits = EFLAGS_CF | EFLAGS_DF | EFLAGS_IF | 0x3000;
        lines.extend([
            format!(
                "after sigreturn: rax {} r12 {}",
                after.rax,
                c_hex(after.r12)
            ),
            format!(
                "after sigreturn: CF DF IF IOPL {}",
                c_hex(after.eflags & fix_bits)
            ),
            format!("after sigreturn: mxcsr {}", c_hex(fx_after.mxcsr().into())),
            format!("after sigreturn: blocked {}", c_hex(frame.blocked())),
        ]);
        lines
    }

    /// Runs `corpora/programs/signal_frame` natively and compares its first block with the
    /// one this module rebuilds: the cross-check of the layout against a real kernel.
    #[test]
    fn native_signal_frame_agrees_with_the_first_block() {
        let program =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/build/signal_frame");
        let output = std::process::Command::new(&program)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build the corpus: make -C corpora)",
                    program.display()
                )
            });
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let native: Vec<&str> = text
            .lines()
            .skip(1)
            .take_while(|line| !line.starts_with('['))
            .collect();
        assert_eq!(rebuilt_first_block(), native);
    }
}
