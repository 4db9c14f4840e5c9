/* Segment loads and far transfers, legal and not, as a 64-bit Linux process may try them.
 * Legal ones print what they see; the rest must end with SIGSEGV, as at ring 3.
 * Usage: segments legal|kernel_ds|null_ss|kernel_cs|iret_kernel */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void legal(void) {
    unsigned short ds;
    __asm__ volatile("mov %1, %%ds; mov %%ds, %0" : "=r"(ds) : "r"((unsigned short)0x2b));
    printf("ds=%#x\n", ds);
    __asm__ volatile("mov %0, %%ss" ::"r"((unsigned short)0x2b));
    /* retf to the same code segment */
    __asm__ volatile("pushq $0x33; lea 1f(%%rip), %%rax; push %%rax; lretq; 1:" ::: "rax", "memory");
    puts("retf returned");
    /* iretq with a frame of our own */
    __asm__ volatile("mov %%rsp, %%rax; pushq $0x2b; push %%rax; pushfq; pushq $0x33; lea 1f(%%rip), %%rax; push %%rax; iretq; 1:" ::: "rax", "memory");
    puts("iretq returned");
    /* far jmp through a 16:32 pointer (AMD ignores REX.W here, so no 16:64 form) */
    struct __attribute__((packed)) { uint32_t offset; uint16_t selector; } far;
    __asm__ volatile("lea 1f(%%rip), %%rax; mov %%eax, %0; movw $0x33, %1; ljmp *%0; 1:" : "=m"(far.offset), "=m"(far.selector) :: "rax", "memory");
    puts("far jmp landed");
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "legal";
    if (!strcmp(what, "legal"))
        legal();
    if (!strcmp(what, "kernel_ds"))
        __asm__ volatile("mov %0, %%ds" ::"r"((unsigned short)0x18));
    if (!strcmp(what, "null_ss"))
        __asm__ volatile("mov %0, %%ss" ::"r"((unsigned short)0));
    if (!strcmp(what, "kernel_cs"))
        __asm__ volatile("pushq $0x10; lea 1f(%%rip), %%rax; push %%rax; lretq; 1:" ::: "rax", "memory");
    if (!strcmp(what, "iret_kernel"))
        __asm__ volatile("mov %%rsp, %%rax; pushq $0x18; push %%rax; pushfq; pushq $0x10; lea 1f(%%rip), %%rax; push %%rax; iretq; 1:" ::: "rax", "memory");
    return 0;
}
