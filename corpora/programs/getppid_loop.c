/* Null-syscall loop: N getppid calls (default 100000), the ABI-call column of the cost table. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long sum = 0;
    for (long i = 0; i < n; i++)
        sum += syscall(SYS_getppid);
    printf("getppid_loop: %ld calls\n", n);
    return sum == 0 ? 1 : 0;
}
