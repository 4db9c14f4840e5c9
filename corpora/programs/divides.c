/* Integer division at its edges: div and idiv of 32 and 64 bits with a high half that is
 * not just the sign or zero (the full double-width dividend), negative operands, the
 * largest quotients that fit, and the three ways to fault (a zero divisor, a quotient too
 * big for the register, INT_MIN / -1), each caught by a SIGFPE handler that checks the
 * fault is reported at the division itself. Prints every quotient and remainder, so that a
 * run compares with its native run byte for byte. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf escape;
static volatile uintptr_t fault_at;

static void on_fpe(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    fault_at = (uintptr_t)info->si_addr;
    siglongjmp(escape, 1);
}

/* Each division is its own function, so that the faulting address can be checked to lie
 * in it. The 32-bit ones take and give their halves in the low 32 bits. */
#define DIVISION(name, type, insn)                                                          \
    __attribute__((noinline)) static void name(uint64_t *hi, uint64_t *lo, uint64_t divisor) { \
        type high = (type)*hi, low = (type)*lo;                                             \
        __asm__ volatile(insn " %2" : "+d"(high), "+a"(low) : "r"((type)divisor) : "cc");   \
        *hi = high;                                                                         \
        *lo = low;                                                                          \
    }
DIVISION(div64, uint64_t, "divq")
DIVISION(idiv64, uint64_t, "idivq")
DIVISION(div32, uint32_t, "divl")
DIVISION(idiv32, uint32_t, "idivl")

static const struct {
    const char *what;
    void (*op)(uint64_t *, uint64_t *, uint64_t);
    uint64_t hi, lo, divisor;
} CASES[] = {
    {"div64 small", div64, 0, 1000000007, 10},
    {"div64 128-bit dividend", div64, 0x12345678, 0x9abcdef012345678, 0x123456789},
    {"div64 largest quotient", div64, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff},
    {"div64 high half equal to divisor", div64, 7, 0, 7},
    {"div64 by zero", div64, 0, 5, 0},
    {"idiv64 negative", idiv64, 0xffffffffffffffff, (uint64_t)-1000000007, 10},
    {"idiv64 negative divisor", idiv64, 0, 1000000007, (uint64_t)-3},
    {"idiv64 by minus one", idiv64, 0xffffffffffffffff, (uint64_t)-12345, (uint64_t)-1},
    {"idiv64 128-bit dividend", idiv64, 0xffffffffffffff00, 0x0123456789abcdef, 0x7fffffffffffffff},
    {"idiv64 INT64_MIN / -1", idiv64, 0xffffffffffffffff, 0x8000000000000000, (uint64_t)-1},
    {"idiv64 quotient too big", idiv64, 1, 0, 2},
    {"idiv64 by zero", idiv64, 0, 5, 0},
    {"div32 small", div32, 0, 1000000007, 10},
    {"div32 64-bit dividend", div32, 0x1234, 0x56789abc, 0x12345},
    {"div32 largest quotient", div32, 0xfffffffe, 0xffffffff, 0xffffffff},
    {"div32 high half above divisor", div32, 9, 0, 7},
    {"div32 by zero", div32, 0, 5, 0},
    {"idiv32 negative", idiv32, 0xffffffff, (uint32_t)-1000007, 10},
    {"idiv32 negative divisor", idiv32, 0, 1000007, (uint32_t)-3},
    {"idiv32 by minus one", idiv32, 0xffffffff, (uint32_t)-12345, (uint32_t)-1},
    {"idiv32 64-bit dividend", idiv32, 0xffffff00, 0x01234567, 0x7fffffff},
    {"idiv32 INT32_MIN / -1", idiv32, 0xffffffff, 0x80000000, (uint32_t)-1},
    {"idiv32 quotient too big", idiv32, 1, 0, 2},
    {"idiv32 by zero", idiv32, 0, 5, 0},
};

/* Whether the fault was reported inside the function `op` (the division is a few bytes
 * into it). */
static int inside(uintptr_t at, const void *op) {
    return at >= (uintptr_t)op && at < (uintptr_t)op + 64;
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = on_fpe;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGFPE, &action, NULL);

    unsigned long total = 0;
    /* Many times round, so that the divisions run from translated code that is hot. */
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
            uint64_t hi = CASES[i].hi, lo = CASES[i].lo;
            if (sigsetjmp(escape, 1) == 0) {
                CASES[i].op(&hi, &lo, CASES[i].divisor);
                total += lo + hi;
                if (round == 0)
                    printf("%s: quotient %#llx remainder %#llx\n", CASES[i].what,
                           (unsigned long long)lo, (unsigned long long)hi);
            } else if (round == 0) {
                printf("%s: SIGFPE at the division: %d\n", CASES[i].what,
                       inside(fault_at, (void *)CASES[i].op));
            }
        }
    }
    printf("sum of every result: %lu\n", total);
    return 0;
}
