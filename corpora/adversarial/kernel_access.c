/* Tries to read or write the kernel half, the code cache and the translator's data, by
 * absolute address, through a base register, and through a far index. Each must end with
 * SIGSEGV, as at ring 3. Usage: kernel_access read|write|cache|slots|index|fs */
#include <stdint.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "read";
    volatile uint64_t *kernel = (uint64_t *)0xffff800000000000ULL;
    volatile uint64_t *cache = (uint64_t *)0xffffffff81000000ULL;
    volatile uint64_t *slots = (uint64_t *)0xffffffff80010000ULL;
    if (!strcmp(what, "read"))
        return (int)*kernel;
    if (!strcmp(what, "write"))
        *kernel = 1;
    if (!strcmp(what, "cache"))
        *cache = 0xcc;
    if (!strcmp(what, "slots"))
        return (int)*slots;
    if (!strcmp(what, "index")) {
        uint64_t base = 0, index = 0xffffffff81000000ULL / 8, value;
        __asm__ volatile("mov (%1,%2,8), %0" : "=r"(value) : "r"(base), "r"(index));
        return (int)value;
    }
    if (!strcmp(what, "fs")) {
        uint64_t value, offset = 0xffffffff81000000ULL;
        __asm__ volatile("mov %%fs:(%1), %0" : "=r"(value) : "r"(offset));
        return (int)value;
    }
    return 0;
}
