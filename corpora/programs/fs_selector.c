/* Loading a selector into FS sets the FS base to the descriptor's, 0: arch_prctl(ARCH_GET_FS)
 * must then read 0, not the TLS pointer set before. Prints "tls set, after mov 0". TLS is
 * given back with ARCH_SET_FS before anything uses it. */
#include <asm/prctl.h>
#include <stdio.h>
#include <sys/syscall.h>

static long arch_prctl(long code, unsigned long address) {
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(SYS_arch_prctl), "D"(code), "S"(address)
                     : "rcx", "r11", "memory");
    return result;
}

int main(void) {
    unsigned long tls = 0, after = 1;
    arch_prctl(ARCH_GET_FS, (unsigned long)&tls);
    __asm__ volatile("mov %0, %%fs" ::"r"(0x2b));
    arch_prctl(ARCH_GET_FS, (unsigned long)&after);
    arch_prctl(ARCH_SET_FS, tls);
    printf("tls %s, after mov %lu\n", tls ? "set" : "unset", after);
    return 0;
}
