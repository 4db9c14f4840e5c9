/* The essay's ABI call column: N null syscalls (getppid, default 100000), each from an inline
 * `syscall` in one asm loop, so the user-mode work per call is exactly six instructions
 * (mov, syscall, test, js, dec, jnz) whatever the compiler does. getppid_loop measures the
 * same through glibc's syscall(), whose wrapper adds a dozen instructions per call. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long left = n;
    long result = 0;
    if (left > 0)
        __asm__ volatile("1:\n\t"
                         "mov $110, %%eax\n\t" /* getppid */
                         "syscall\n\t"
                         "test %%rax, %%rax\n\t"
                         "js 2f\n\t"
                         "dec %[left]\n\t"
                         "jnz 1b\n"
                         "2:"
                         : [left] "+r"(left), "=a"(result)
                         :
                         : "rcx", "r11", "memory", "cc");
    if (left != 0) {
        fprintf(stderr, "abi_call: getppid failed with %ld after %ld calls\n", result, n - left);
        return 1;
    }
    printf("abi_call: %ld calls\n", n);
    return 0;
}
