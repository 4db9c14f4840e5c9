/* Executes one privileged instruction. Each must end with SIGSEGV (#GP), as at ring 3.
 * Usage: privileged hlt|cli|sti|in|out|rdmsr|wrmsr|movcr|lgdt|swapgs|wbinvd|invlpg */
#include <stdint.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "hlt";
    uint64_t descriptor[2] = {0, 0};
    if (!strcmp(what, "hlt")) __asm__ volatile("hlt");
    if (!strcmp(what, "cli")) __asm__ volatile("cli");
    if (!strcmp(what, "sti")) __asm__ volatile("sti");
    if (!strcmp(what, "in")) __asm__ volatile("inb $0x60, %%al" ::: "rax");
    if (!strcmp(what, "out")) __asm__ volatile("outb %%al, $0x80" ::"a"(0));
    if (!strcmp(what, "rdmsr")) __asm__ volatile("rdmsr" ::"c"(0xc0000080) : "rax", "rdx");
    if (!strcmp(what, "wrmsr")) __asm__ volatile("wrmsr" ::"c"(0xc0000080), "a"(0), "d"(0));
    if (!strcmp(what, "movcr")) __asm__ volatile("mov %%cr3, %%rax" ::: "rax");
    if (!strcmp(what, "lgdt")) __asm__ volatile("lgdt %0" ::"m"(descriptor));
    if (!strcmp(what, "swapgs")) __asm__ volatile("swapgs");
    if (!strcmp(what, "wbinvd")) __asm__ volatile("wbinvd");
    if (!strcmp(what, "invlpg")) __asm__ volatile("invlpg (%0)" ::"r"(descriptor));
    return 0;
}
