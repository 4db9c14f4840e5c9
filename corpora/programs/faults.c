/* Ends by the fault named in argv[1], so tests can check the signal and exit status. */
#include <string.h>
#include <sys/mman.h>

/* Jumps to `target`, which cannot be fetched. */
static int jump(unsigned long target) {
    __asm__ volatile("jmp *%0" ::"r"(target));
    return 3;
}

/* Runs an instruction that starts at the end of an executable page and goes on into an
 * unmapped one. */
static int straddle(void) {
    unsigned char *p = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 0x1000, 0x1000);
    p[0xffe] = 0x48; /* movabs $imm64, %rax: 10 bytes, 8 of them on the unmapped page */
    p[0xfff] = 0xb8;
    return jump((unsigned long)p + 0xffe);
}

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
    /* Fetches at the ends of the address space and of the user half (translated at ring 0,
     * the decoder must stop there without overflowing) and across a page. */
    if (!strcmp(what, "jmp_top"))
        return jump(0xfffffffffffffffaUL);
    if (!strcmp(what, "jmp_user_end"))
        return jump(0x7ffffffffffaUL);
    if (!strcmp(what, "straddle"))
        return straddle();
    return 42;
}
