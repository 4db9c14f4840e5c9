/* Ends by the fault named in argv[1], so tests can check the signal and exit status. */
#include <string.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "segv")) {
        volatile long *p = (long *)0x10;
        return (int)*p;
    }
    if (!strcmp(what, "kernel")) {
        volatile long *p = (long *)0xffff800000000000UL;
        return (int)*p;
    }
    if (!strcmp(what, "div"))
        __asm__ volatile("xor %%ecx, %%ecx\n\tdiv %%ecx" ::: "eax", "ecx", "edx");
    if (!strcmp(what, "ud2"))
        __asm__ volatile("ud2");
    if (!strcmp(what, "hlt"))
        __asm__ volatile("hlt");
    if (!strcmp(what, "cli"))
        __asm__ volatile("cli");
    if (!strcmp(what, "int3"))
        __asm__ volatile("int3");
    if (!strcmp(what, "abort"))
        __builtin_trap();
    return 42;
}
