/* Tries to run code in the kernel half or in the middle of translated code: by jmp, by
 * call, and by ret. Each must end with SIGSEGV, as at ring 3. Usage: jump_kernel jmp|call|ret */
#include <string.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "jmp";
    void *middle_of_cache = (void *)0xffffffff81000005ULL;
    void *kernel = (void *)0xffff800000001000ULL;
    if (!strcmp(what, "jmp"))
        __asm__ volatile("jmp *%0" ::"r"(kernel));
    if (!strcmp(what, "call"))
        __asm__ volatile("call *%0" ::"r"(middle_of_cache));
    if (!strcmp(what, "ret"))
        __asm__ volatile("push %0; ret" ::"r"(middle_of_cache));
    return 0;
}
