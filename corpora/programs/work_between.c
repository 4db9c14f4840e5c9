/* The crossing curve's program: CALLS getppid calls with ITERS iterations of user work between
 * them, in one inline-asm loop so that the work per call is exact whatever the compiler does:
 * 5 + 5 * ITERS instructions besides the `syscall`. An iteration loads, adds and stores (two
 * memory accesses in five instructions, about the share of real code), so that translated it
 * pays the sandbox's checks as real code does. ITERS 0 is the densest case instead: calls
 * unrolled 64 to a loop, 1 + 2/64 instructions besides each (CALLS a multiple of 64).
 * Usage: work_between [ITERS [CALLS]] */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 100;
    long calls = argc > 2 ? atol(argv[2]) : 1000;
    volatile long cell = 0;
    long left = calls;
    long result = 0;
    if (iters < 0 || calls < 1) {
        fprintf(stderr, "work_between: ITERS must be 0 or more and CALLS 1 or more\n");
        return 2;
    }
    if (iters == 0) {
        if (calls % 64 != 0) {
            fprintf(stderr, "work_between: with ITERS 0, CALLS must be a multiple of 64\n");
            return 2;
        }
        __asm__ volatile("1:\n\t"
                         ".rept 64\n\t"
                         "mov $110, %%eax\n\t" /* getppid */
                         "syscall\n\t"
                         ".endr\n\t"
                         "sub $64, %[left]\n\t"
                         "jnz 1b"
                         : [left] "+r"(left), "=&a"(result)
                         :
                         : "rcx", "r11", "memory", "cc");
        printf("work_between: %ld calls, unrolled, last getppid %ld\n", calls,
               result > 0 ? 1L : result);
        return 0;
    }
    __asm__ volatile("1:\n\t"
                     "mov $110, %%eax\n\t" /* getppid */
                     "syscall\n\t"
                     "mov %[iters], %%rcx\n\t"
                     "jrcxz 3f\n"
                     "2:\n\t"
                     "mov (%[cell]), %%rdx\n\t"
                     "add $1, %%rdx\n\t"
                     "mov %%rdx, (%[cell])\n\t"
                     "dec %%rcx\n\t"
                     "jnz 2b\n"
                     "3:\n\t"
                     "dec %[left]\n\t"
                     "jnz 1b"
                     : [left] "+r"(left), "=&a"(result)
                     : [iters] "r"(iters), [cell] "r"(&cell)
                     : "rcx", "rdx", "r11", "memory", "cc");
    printf("work_between: %ld calls, %ld iterations of work each, last getppid %ld\n", calls,
           iters, result > 0 ? 1L : result);
    return cell == iters * calls ? 0 : 1;
}
