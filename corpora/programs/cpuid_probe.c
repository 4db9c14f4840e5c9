/* Prints what CPUID and RDTSC tell a program: vendor, brand, SSE4.2/AVX bits, and whether
 * the time-stamp counter moves forward. Its output describes the CPU it runs on, so it is
 * checked against the simulator's fixed CPUID, not against a native run. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

int main(void) {
    unsigned a, b, c, d;
    char vendor[13] = {0}, brand[49] = {0};
    __cpuid(0, a, b, c, d);
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    for (unsigned leaf = 0; leaf < 3; leaf++) {
        __cpuid(0x80000002 + leaf, a, b, c, d);
        unsigned regs[4] = {a, b, c, d};
        memcpy(brand + 16 * leaf, regs, 16);
    }
    __cpuid(1, a, b, c, d);
    unsigned long long t0 = __rdtsc(), t1 = __rdtsc();
    printf("vendor=%s\nbrand=%s\nsse4.2=%u avx=%u\ntsc advances=%d\n", vendor, brand, (c >> 20) & 1,
           (c >> 28) & 1, t1 > t0);
    return 0;
}
