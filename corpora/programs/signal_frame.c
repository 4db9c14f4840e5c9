/* Prints what the kernel's x86-64 signal frames look like from inside a handler: only facts
 * fixed by the frame's layout and Linux's rules, never an address, nor the size of the host's
 * XSAVE area (the simulated CPU has no XSAVE, the host has), so that the simulator, which
 * builds its frames with sim/src/kernel/sigframe.rs, must print exactly what Linux does.
 * Each block is one signal; sigframe.rs's tests rebuild the first block from the module. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* arch/x86/include/uapi/asm/ucontext.h, sigcontext.h and include/uapi/linux/signal.h
 * (Linux 6.1); glibc's headers have FP_XSTATE_MAGIC1 but not these. */
#define UC_FP_XSTATE 0x1
#define SS_AUTODISARM (1u << 31)
#define SW_RESERVED 464 /* struct _fpx_sw_bytes inside the 512-byte FXSAVE image */
#define FXSAVE_SIZE 512
#define RED_ZONE 128
#define EFLAGS_CF 0x1
#define EFLAGS_IF 0x200
#define EFLAGS_DF 0x400
#define EFLAGS_TF 0x100
#define EFLAGS_IOPL 0x3000
#define BIT(sig) (1UL << ((sig) - 1))
#define ALTSTACK_SIZE 65536

/* What the handler entry saw, before any C code ran: written by handler_entry. */
volatile uint64_t entry_rsp, entry_rax, entry_flags;
/* The test's handler, which handler_entry's C half calls. */
static void (*volatile test_handler)(int, siginfo_t *, ucontext_t *);

void handler_c(int sig, siginfo_t *info, void *uc) { test_handler(sig, info, uc); }

/* Every handler starts here: records RSP, RAX and RFLAGS as the kernel left them. PUSHFQ
 * writes below the frame, on the handler's own stack. */
void handler_entry(int, siginfo_t *, void *);
__asm__(".text\n"
        ".globl handler_entry\n"
        "handler_entry:\n"
        "    mov %rsp, entry_rsp(%rip)\n"
        "    mov %rax, entry_rax(%rip)\n"
        "    pushfq\n"
        "    popq entry_flags(%rip)\n"
        "    jmp handler_c\n");

/* A syscall made with known registers around it. Offsets are probe_syscall's. */
struct probe {
    uint64_t nr, a0, a1, a2;   /* 0: the call */
    uint64_t rsp_before;       /* 32 */
    uint64_t flags_after;      /* 40 */
    uint64_t r12_after;        /* 48 */
    uint64_t rax_after;        /* 56 */
    uint32_t mxcsr_before;     /* 64 */
    uint32_t mxcsr_after;      /* 68 */
    uint32_t mxcsr_default;    /* 72 */
    uint32_t unused;           /* 76 */
    uint8_t xmm0_before[16];   /* 80 */
};
/* Sets XMM0, MXCSR, R12 = 0x1111 and DF, makes the call, and records what the signal's
 * return left: RFLAGS, R12, RAX, MXCSR. probe_resume is where the syscall returns. */
void probe_syscall(struct probe *);
extern char probe_resume[];
__asm__(".text\n"
        ".globl probe_syscall\n"
        "probe_syscall:\n"
        "    push %r12\n"
        "    push %rbx\n"
        "    mov %rdi, %rbx\n"
        "    movdqu 80(%rbx), %xmm0\n"
        "    ldmxcsr 64(%rbx)\n"
        "    mov 0(%rbx), %rax\n"
        "    mov 8(%rbx), %rdi\n"
        "    mov 16(%rbx), %rsi\n"
        "    mov 24(%rbx), %rdx\n"
        "    mov $0x1111, %r12\n"
        "    mov %rsp, 32(%rbx)\n"
        "    std\n"
        "    syscall\n"
        ".globl probe_resume\n"
        "probe_resume:\n"
        "    pushfq\n"
        "    popq 40(%rbx)\n"
        "    cld\n"
        "    mov %r12, 48(%rbx)\n"
        "    mov %rax, 56(%rbx)\n"
        "    stmxcsr 68(%rbx)\n"
        "    ldmxcsr 72(%rbx)\n"
        "    pop %rbx\n"
        "    pop %r12\n"
        "    ret\n");

/* Loads from address 0x10; a handler moves the saved RIP from fault_load to fault_resume
 * and sets the saved RAX, which the function returns. */
long fault_probe(void);
extern char fault_load[], fault_resume[];
__asm__(".text\n"
        ".globl fault_probe\n"
        "fault_probe:\n"
        "    mov $0x10, %eax\n"
        ".globl fault_load\n"
        "fault_load:\n"
        "    mov (%rax), %rax\n"
        ".globl fault_resume\n"
        "fault_resume:\n"
        "    ret\n");

static const uint8_t XMM0_PATTERN[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                         0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
static _Alignas(16) char altstack[ALTSTACK_SIZE];
static _Alignas(16) char altstack_disarmed[ALTSTACK_SIZE];
/* The outer altstack handler's frame, for the nested one. */
static uintptr_t outer_uc;
static pid_t child;

static const char *yes(int condition) { return condition ? "yes" : "no"; }

static uint64_t blocked_now(void) {
    uint64_t mask = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, sizeof mask);
    return mask;
}

static void set_blocked(uint64_t mask) {
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
}

static void install(int sig, int flags, uint64_t mask) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handler_entry;
    action.sa_flags = SA_SIGINFO | flags;
    for (int s = 1; s <= 64; s++)
        if (mask & BIT(s))
            sigaddset(&action.sa_mask, s);
    sigaction(sig, &action, NULL);
}

static void tgkill_self(int sig) { syscall(SYS_tgkill, getpid(), gettid(), sig); }

static uint64_t uc_sigmask_word(ucontext_t *uc) { return *(uint64_t *)&uc->uc_sigmask; }

static int has_osxsave(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    return (c >> 27) & 1;
}

/* The bytes the fpstate occupies: the XSAVE area's as sw_reserved gives it when uc_flags
 * says XSAVE, else the FXSAVE image's (Linux 6.1 without XSAVE still fills sw_reserved, and
 * says 516, but places only the 512-byte image). */
static uint64_t fpstate_size(ucontext_t *uc) {
    const uint32_t *sw = (const uint32_t *)((char *)uc->uc_mcontext.fpregs + SW_RESERVED);
    return (uc->uc_flags & UC_FP_XSTATE) ? sw[1] : FXSAVE_SIZE;
}

/* Facts every frame shows: where its parts lie relative to each other and to the stack
 * it was built on (`top`: the interrupted RSP below its red zone, or the altstack's end). */
static void print_layout(siginfo_t *info, ucontext_t *uc, uint64_t top) {
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.fpregs;
    printf("uc - info: %ld\n", (long)((char *)uc - (char *)info));
    printf("rsp at entry mod 16: %lu\n", (unsigned long)(entry_rsp % 16));
    printf("frame starts 8 below uc: %s\n", yes(entry_rsp + 8 == (uintptr_t)uc));
    printf("fpstate - uc: %ld\n", (long)(fp - (uintptr_t)uc));
    printf("fpstate 64-aligned: %s\n", yes(fp % 64 == 0));
    uint64_t end = fp + fpstate_size(uc);
    printf("fpstate ends within 64 bytes below the stack top: %s\n",
           yes(end <= top && top - end < 64));
}

static void print_fpstate(ucontext_t *uc) {
    const uint8_t *fx = (const uint8_t *)uc->uc_mcontext.fpregs;
    const uint32_t *sw = (const uint32_t *)(fx + SW_RESERVED);
    printf("uc_flags without UC_FP_XSTATE: %#lx\n", uc->uc_flags & ~(unsigned long)UC_FP_XSTATE);
    printf("UC_FP_XSTATE as CPUID OSXSAVE: %s\n",
           yes(!!(uc->uc_flags & UC_FP_XSTATE) == has_osxsave()));
    printf("sw_reserved magic1 FPXS: %s\n", yes(sw[0] == FP_XSTATE_MAGIC1));
    printf("sw_reserved extended_size - xstate_size: %u\n", sw[1] - sw[4]);
    printf("saved fcw: %#x\n", uc->uc_mcontext.fpregs->cwd);
    printf("saved mxcsr: %#x\n", uc->uc_mcontext.fpregs->mxcsr);
    printf("saved xmm0 as set: %s\n", yes(!memcmp(fx + 160, XMM0_PATTERN, 16)));
    uint32_t mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    printf("mxcsr in handler: %#x\n", mxcsr);
}

static void print_stack_t(const char *what, const stack_t *s, const void *altstack_base) {
    printf("%s: sp %s flags %#x size %s\n", what,
           s->ss_sp == NULL ? "0" : s->ss_sp == altstack_base ? "altstack" : "other",
           (unsigned)s->ss_flags,
           s->ss_size == 0 ? "0" : s->ss_size == ALTSTACK_SIZE ? "altstack" : "other");
}

static void print_sender(siginfo_t *info) {
    printf("si_signo si_errno si_code: %d %d %d\n", info->si_signo, info->si_errno, info->si_code);
    printf("si_pid si_uid: %s %s\n",
           info->si_pid == 0 ? "0" : info->si_pid == getpid() ? "getpid" : "other",
           info->si_uid == 0 && info->si_pid == 0 ? "0"
           : info->si_uid == getuid()              ? "getuid"
                                                   : "other");
}

static struct probe first_probe;

static void on_thread_stack(int sig, siginfo_t *info, ucontext_t *uc) {
    uint64_t flags_at_entry = entry_flags, rax_at_entry = entry_rax;
    greg_t *gregs = uc->uc_mcontext.gregs;
    (void)sig;
    print_layout(info, uc, gregs[REG_RSP] - RED_ZONE);
    printf("rax at entry: %lu\n", (unsigned long)rax_at_entry);
    printf("DF TF at entry: %d %d\n", !!(flags_at_entry & EFLAGS_DF),
           !!(flags_at_entry & EFLAGS_TF));
    printf("saved rip is the syscall's end: %s\n", yes(gregs[REG_RIP] == (greg_t)probe_resume));
    printf("saved rsp - rsp before: %ld\n", (long)(gregs[REG_RSP] - first_probe.rsp_before));
    printf("saved DF: %d\n", !!(gregs[REG_EFL] & EFLAGS_DF));
    printf("saved r12: %#lx\n", (unsigned long)gregs[REG_R12]);
    printf("uc_link: %p\n", (void *)uc->uc_link);
    print_stack_t("uc_stack", &uc->uc_stack, altstack);
    printf("uc_sigmask: %#lx\n", (unsigned long)uc_sigmask_word(uc));
    printf("oldmask: %#lx\n", (unsigned long)gregs[REG_OLDMASK]);
    printf("blocked in handler: %#lx\n", (unsigned long)blocked_now());
    print_fpstate(uc);
    print_sender(info);
    /* Changes for rt_sigreturn to apply, or not: IF and IOPL are not the program's. */
    gregs[REG_RAX] = 77;
    gregs[REG_R12] = 0x1234;
    gregs[REG_EFL] = (gregs[REG_EFL] | EFLAGS_CF | EFLAGS_IOPL) & ~EFLAGS_IF;
    uc->uc_mcontext.fpregs->mxcsr = 0x5f80;
    *(uint64_t *)&uc->uc_sigmask |= BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGINT);
}

static void first(void) {
    puts("[tgkill SIGUSR1 on the thread stack]");
    install(SIGUSR1, 0, BIT(SIGINT));
    set_blocked(BIT(SIGHUP) | BIT(SIGTERM));
    test_handler = on_thread_stack;
    first_probe = (struct probe){.nr = SYS_tgkill, .a0 = getpid(), .a1 = gettid(), .a2 = SIGUSR1,
                                 .mxcsr_before = 0x3f80, .mxcsr_default = 0x1f80};
    memcpy(first_probe.xmm0_before, XMM0_PATTERN, 16);
    probe_syscall(&first_probe);
    printf("after sigreturn: rax %lu r12 %#lx\n", (unsigned long)first_probe.rax_after,
           (unsigned long)first_probe.r12_after);
    printf("after sigreturn: CF DF IF IOPL %#lx\n",
           (unsigned long)(first_probe.flags_after &
                           (EFLAGS_CF | EFLAGS_DF | EFLAGS_IF | EFLAGS_IOPL)));
    printf("after sigreturn: mxcsr %#x\n", first_probe.mxcsr_after);
    printf("after sigreturn: blocked %#lx\n", (unsigned long)blocked_now());
    set_blocked(0);
}

static void on_fault(int sig, siginfo_t *info, ucontext_t *uc) {
    greg_t *gregs = uc->uc_mcontext.gregs;
    (void)sig;
    print_layout(info, uc, gregs[REG_RSP] - RED_ZONE);
    printf("si_signo si_errno si_code: %d %d %d\n", info->si_signo, info->si_errno, info->si_code);
    printf("si_addr: %p\n", info->si_addr);
    printf("trapno err cr2: %ld %#lx %#lx\n", (long)gregs[REG_TRAPNO],
           (unsigned long)gregs[REG_ERR],
           (unsigned long)gregs[REG_CR2]);
    printf("saved rip is the load: %s\n", yes(gregs[REG_RIP] == (greg_t)fault_load));
    gregs[REG_RIP] = (greg_t)fault_resume;
    gregs[REG_RAX] = 5;
}

static void fault(void) {
    puts("[SIGSEGV from a load at 0x10]");
    install(SIGSEGV, 0, 0);
    test_handler = on_fault;
    printf("after sigreturn: returned %ld\n", fault_probe());
}

static void on_alarm(int sig, siginfo_t *info, ucontext_t *uc) {
    (void)sig;
    print_layout(info, uc, uc->uc_mcontext.gregs[REG_RSP] - RED_ZONE);
    print_sender(info);
}

static void alarm_signal(void) {
    puts("[SIGALRM from alarm during nanosleep]");
    install(SIGALRM, 0, 0);
    test_handler = on_alarm;
    alarm(1);
    struct timespec five = {5, 0};
    int r = nanosleep(&five, NULL);
    printf("nanosleep: %d %s\n", r, r ? strerrorname_np(errno) : "");
}

static void on_kill(int sig, siginfo_t *info, ucontext_t *uc) {
    (void)sig;
    print_layout(info, uc, uc->uc_mcontext.gregs[REG_RSP] - RED_ZONE);
    print_sender(info);
    printf("blocked in handler: %#lx\n", (unsigned long)blocked_now());
}

static void kill_nodefer_resethand(void) {
    puts("[kill SIGUSR2 with SA_NODEFER and SA_RESETHAND]");
    install(SIGUSR2, SA_NODEFER | SA_RESETHAND, BIT(SIGINT));
    test_handler = on_kill;
    syscall(SYS_kill, getpid(), SIGUSR2);
    struct sigaction now;
    sigaction(SIGUSR2, NULL, &now);
    printf("handler after: %s\n", now.sa_handler == SIG_DFL ? "SIG_DFL" : "still set");
    printf("flags after: %#x\n",
           now.sa_flags & (SA_SIGINFO | SA_NODEFER | SA_RESETHAND | SA_ONSTACK));
}

static void on_child(int sig, siginfo_t *info, ucontext_t *uc) {
    (void)sig;
    print_layout(info, uc, uc->uc_mcontext.gregs[REG_RSP] - RED_ZONE);
    printf("si_signo si_errno si_code: %d %d %d\n", info->si_signo, info->si_errno, info->si_code);
    printf("si_pid si_uid si_status: %s %s %d\n", yes(info->si_pid == child),
           yes(info->si_uid == getuid()), info->si_status);
    printf("uc_sigmask: %#lx\n", (unsigned long)uc_sigmask_word(uc));
}

static void child_exit(void) {
    puts("[SIGCHLD from a child's exit, unblocked after wait4]");
    install(SIGCHLD, 0, 0);
    test_handler = on_child;
    set_blocked(BIT(SIGCHLD));
    child = fork();
    if (child == 0)
        _exit(3);
    int status;
    waitpid(child, &status, 0);
    printf("wait status: exited %d\n", WEXITSTATUS(status));
    set_blocked(0);
}

static void on_nested(int sig, siginfo_t *info, ucontext_t *uc) {
    uintptr_t u = (uintptr_t)uc, base = (uintptr_t)altstack;
    (void)sig;
    (void)info;
    printf("nested: frame in the altstack: %s\n", yes(u > base && u < base + ALTSTACK_SIZE));
    printf("nested: below the outer frame: %s\n", yes(u < outer_uc));
    printf("nested: rsp at entry mod 16: %lu\n", (unsigned long)(entry_rsp % 16));
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.fpregs;
    uint64_t top = uc->uc_mcontext.gregs[REG_RSP] - RED_ZONE, end = fp + fpstate_size(uc);
    printf("nested: fpstate ends within 64 bytes below the interrupted red zone: %s\n",
           yes(end <= top && top - end < 64));
    print_stack_t("nested: uc_stack", &uc->uc_stack, altstack);
}

/* What a handler running on the altstack `stack` sees: its frame, and the altstack. */
static void print_on_altstack(siginfo_t *info, ucontext_t *uc, char *stack) {
    uintptr_t u = (uintptr_t)uc, base = (uintptr_t)stack;
    printf("frame in the altstack: %s\n", yes(u > base && u < base + ALTSTACK_SIZE));
    print_layout(info, uc, base + ALTSTACK_SIZE);
    print_stack_t("uc_stack", &uc->uc_stack, stack);
    stack_t now;
    sigaltstack(NULL, &now);
    print_stack_t("sigaltstack in handler", &now, stack);
}

static void on_altstack(int sig, siginfo_t *info, ucontext_t *uc) {
    (void)sig;
    outer_uc = (uintptr_t)uc;
    print_on_altstack(info, uc, altstack);
    stack_t other = {.ss_sp = altstack_disarmed, .ss_size = ALTSTACK_SIZE};
    errno = 0;
    int r = sigaltstack(&other, NULL);
    printf("sigaltstack change in handler: %d %s\n", r, r ? strerrorname_np(errno) : "");
    test_handler = on_nested;
    tgkill_self(SIGUSR2);
}

static void altstack_nested(void) {
    puts("[tgkill SIGUSR1 with SA_ONSTACK, then SIGUSR2 nested on the altstack]");
    stack_t s = {.ss_sp = altstack, .ss_size = ALTSTACK_SIZE};
    sigaltstack(&s, NULL);
    install(SIGUSR1, SA_ONSTACK, 0);
    install(SIGUSR2, SA_ONSTACK, 0);
    test_handler = on_altstack;
    tgkill_self(SIGUSR1);
    stack_t now;
    sigaltstack(NULL, &now);
    print_stack_t("sigaltstack after", &now, altstack);
}

static void on_disarmed(int sig, siginfo_t *info, ucontext_t *uc) {
    (void)sig;
    print_on_altstack(info, uc, altstack_disarmed);
}

static void altstack_autodisarm(void) {
    puts("[tgkill SIGUSR1 with SA_ONSTACK on an SS_AUTODISARM altstack]");
    stack_t s = {.ss_sp = altstack_disarmed, .ss_flags = SS_AUTODISARM, .ss_size = ALTSTACK_SIZE};
    sigaltstack(&s, NULL);
    test_handler = on_disarmed;
    tgkill_self(SIGUSR1);
    stack_t now;
    sigaltstack(NULL, &now);
    print_stack_t("sigaltstack after", &now, altstack_disarmed);
}

int main(void) {
    first();
    fault();
    alarm_signal();
    kill_nodefer_resethand();
    child_exit();
    altstack_nested();
    altstack_autodisarm();
    return 0;
}
