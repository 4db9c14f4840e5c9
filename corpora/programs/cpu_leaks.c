/* What the host could leak through the CPU: `cpu_leaks tsc` prints two RDTSC and one RDTSCP
 * reading and RDTSCP's TSC_AUX; `cpu_leaks rdrand` and `cpu_leaks rdseed` use the
 * instruction without asking CPUID, as careless code does. In the simulator the TSC is
 * virtual (the same on every run) and the CPU model lacks RDRAND and RDSEED: SIGILL. */
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "tsc";
    unsigned long long value = 0;
    if (!strcmp(what, "rdrand")) {
        __asm__ volatile("rdrand %0" : "=r"(value));
        printf("rdrand %llu\n", value);
    } else if (!strcmp(what, "rdseed")) {
        __asm__ volatile("rdseed %0" : "=r"(value));
        printf("rdseed %llu\n", value);
    } else {
        unsigned aux = 99;
        unsigned long long first = __rdtsc(), second = __rdtsc();
        unsigned long long third = __rdtscp(&aux);
        printf("rdtsc %llu %llu rdtscp %llu aux %u\n", first, second, third, aux);
    }
    return 0;
}
