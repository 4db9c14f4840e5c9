/* Moves the stack to a kernel address, then pushes and calls. Must end with SIGSEGV, as at
 * ring 3. Usage: stack_pivot mov|xchg */
#include <stdint.h>
#include <string.h>

int main(int argc, char **argv) {
    uint64_t kernel_stack = 0xffffffff80020000ULL;
    if (argc > 1 && !strcmp(argv[1], "xchg"))
        __asm__ volatile("xchg %0, %%rsp; push %%rax; call 1f; 1:" : "+r"(kernel_stack) :: "memory");
    else
        __asm__ volatile("mov %0, %%rsp; push %%rax; call 1f; 1:" ::"r"(kernel_stack) : "memory");
    return 0;
}
