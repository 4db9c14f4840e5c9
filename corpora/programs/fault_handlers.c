/* Faults delivered to the program's own handlers, as language runtimes, libsigsegv and
 * crash reporters use them: a SIGSEGV handler that makes the page writable and returns, one
 * that siglongjmps out of a null read, SIGFPE from an integer division by zero, SIGILL from
 * ud2 skipped by its handler, SIGTRAP from int3, a stack overflow caught on an alternate
 * stack, SA_RESETHAND's second fault, and a fault while its signal is blocked, which kills;
 * and in and out at ring 3 (#GP), whose handler sees the registers before the next
 * instructions.
 * Also the FPU's initial state: every exception masked, so 1.0 / 0.0 is inf. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf escape;
static char *page;
static volatile int faults;

static void install(int signo, void (*handler)(int, siginfo_t *, void *), int flags) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | flags;
    sigaction(signo, &action, NULL);
}

static void make_writable(int signo, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    (void)signo;
    faults++;
    printf("SIGSEGV at the page: %d, code ACCERR: %d, trapno %lld, err %#llx\n",
           (char *)info->si_addr == page + 8, info->si_code == SEGV_ACCERR,
           (long long)uc->uc_mcontext.gregs[REG_TRAPNO],
           (unsigned long long)uc->uc_mcontext.gregs[REG_ERR]);
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

static void *fault_address;

static void jump_out(int signo, siginfo_t *info, void *context) {
    (void)context;
    fault_address = info->si_addr;
    printf("signal %d, code %d\n", signo, info->si_code);
    siglongjmp(escape, 1);
}

static void skip_ud2(int signo, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    printf("SIGILL code ILL_ILLOPN: %d, at the ud2: %d\n", info->si_code == ILL_ILLOPN,
           (uint64_t)info->si_addr == (uint64_t)uc->uc_mcontext.gregs[REG_RIP]);
    (void)signo;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

static void on_trap(int signo, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    (void)signo;
    printf("SIGTRAP code SI_KERNEL: %d, trapno %lld\n", info->si_code == SI_KERNEL,
           (long long)uc->uc_mcontext.gregs[REG_TRAPNO]);
}

/* Called for a fault in `call *8(%rax)` with RAX 0 and every other general register but RBP
 * and RSP holding a known value: at ring 0 the translation loads the target through a
 * scratch register it had to spill, and the handler must still see the program's. */
static void check_registers(int signo, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    static const int order[] = {REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_R8,
                                REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
    int intact = g[REG_RAX] == 0;
    for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++)
        intact &= g[order[i]] == (greg_t)(0x1001 + i);
    printf("signal %d from a call through a null table at %p, registers intact: %d\n", signo,
           info->si_addr, intact);
    siglongjmp(escape, 1);
}

static void call_through_null_table(void) {
    __asm__ volatile("mov $0x1001, %%rbx\n mov $0x1002, %%rcx\n mov $0x1003, %%rdx\n"
                     "mov $0x1004, %%rsi\n mov $0x1005, %%rdi\n mov $0x1006, %%r8\n"
                     "mov $0x1007, %%r9\n mov $0x1008, %%r10\n mov $0x1009, %%r11\n"
                     "mov $0x100a, %%r12\n mov $0x100b, %%r13\n mov $0x100c, %%r14\n"
                     "mov $0x100d, %%r15\n xor %%eax, %%eax\n call *8(%%rax)\n" ::
                         : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                           "r12", "r13", "r14", "r15", "memory");
}

/* The #GP of an in or out at ring 3: the instructions after it must not have run. */
static void check_port_fault(int signo, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    printf("signal %d, code SI_KERNEL: %d, trapno %lld, rbx %lld, rcx %lld\n", signo,
           info->si_code == SI_KERNEL, (long long)g[REG_TRAPNO], (long long)g[REG_RBX],
           (long long)g[REG_RCX]);
    siglongjmp(escape, 1);
}

/* `in` (or `out`) after RBX = 1 and RCX = 2, then a register move, a load and an add. */
static void port_access(int out) {
    long value = 5;
    if (out)
        __asm__ volatile("mov $1, %%rbx\n mov $2, %%rcx\n outb %%al, $0x80\n mov $7, %%rbx\n"
                         "mov (%0), %%rcx\n add %%rcx, %%rbx\n" ::"r"(&value), "a"(0)
                         : "rbx", "rcx", "memory");
    else
        __asm__ volatile("mov $1, %%rbx\n mov $2, %%rcx\n inb $0x80, %%al\n mov $7, %%rbx\n"
                         "mov (%0), %%rcx\n add %%rcx, %%rbx\n" ::"r"(&value)
                         : "rax", "rbx", "rcx", "memory");
}

static int recurse(int depth) {
    volatile char buffer[1024];
    buffer[0] = (char)depth;
    return recurse(depth + 1) + buffer[0];
}

/* idiv, which the compiler may not fold away as it may a C division by zero. */
__attribute__((noinline)) static int divide(int a, int b) {
    int quotient;
    __asm__ volatile("cltd; idivl %2" : "=a"(quotient) : "a"(a), "r"(b) : "rdx");
    return quotient;
}

/* Runs `body` in a child and says how the child ended. */
static void in_child(const char *what, void (*body)(void)) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        body();
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("%s: %s %d\n", what, WIFSIGNALED(status) ? "killed by signal" : "exited",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void fault_while_blocked(void) {
    install(SIGSEGV, jump_out, 0);
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_BLOCK, &segv, NULL);
    *(volatile int *)8 = 1;
}

static void fault_twice_with_resethand(void) {
    install(SIGSEGV, jump_out, SA_RESETHAND | SA_NODEFER);
    if (sigsetjmp(escape, 1) == 0)
        *(volatile int *)16 = 1;
    *(volatile int *)24 = 1;
}

int main(void) {
    unsigned short fcw;
    unsigned int mxcsr;
    __asm__ volatile("fnstcw %0; stmxcsr %1" : "=m"(fcw), "=m"(mxcsr));
    printf("initial x87 control word %#x, MXCSR %#x\n", fcw, mxcsr);
    volatile double zero = 0.0;
    printf("1.0 / 0.0 = %f with the initial MXCSR\n", 1.0 / zero);

    page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    install(SIGSEGV, make_writable, 0);
    page[8] = 42;
    printf("after the handler: the store went through: %d, faults %d\n", page[8] == 42, faults);

    install(SIGSEGV, jump_out, 0);
    if (sigsetjmp(escape, 1) == 0)
        printf("%d\n", *(volatile int *)0);
    printf("the null read's si_addr: %p\n", fault_address);

    install(SIGFPE, jump_out, 0);
    if (sigsetjmp(escape, 1) == 0)
        printf("%d\n", divide(1, (int)zero));
    printf("the division's si_addr is in divide: %d\n",
           (char *)fault_address >= (char *)divide && (char *)fault_address < (char *)divide + 64);

    install(SIGILL, skip_ud2, 0);
    __asm__ volatile("ud2");
    printf("went on after ud2\n");

    install(SIGTRAP, on_trap, 0);
    __asm__ volatile("int3");
    printf("went on after int3\n");

    install(SIGSEGV, check_registers, 0);
    if (sigsetjmp(escape, 1) == 0)
        call_through_null_table();

    install(SIGSEGV, check_port_fault, 0);
    for (int out = 0; out < 2; out++)
        if (sigsetjmp(escape, 1) == 0)
            port_access(out);

    stack_t stack = {.ss_sp = malloc(65536), .ss_size = 65536};
    sigaltstack(&stack, NULL);
    install(SIGSEGV, jump_out, SA_ONSTACK);
    if (sigsetjmp(escape, 1) == 0)
        recurse(0);
    printf("caught the stack overflow on the alternate stack\n");

    in_child("a fault while SIGSEGV is blocked", fault_while_blocked);
    in_child("a second fault after SA_RESETHAND", fault_twice_with_resethand);
    return 0;
}
