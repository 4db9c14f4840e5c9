/* Lupine's "crossing" loop: M getppid calls with N busy iterations between them (N, M arguments). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long busy = argc > 1 ? atol(argv[1]) : 100;
    long calls = argc > 2 ? atol(argv[2]) : 20000;
    volatile long sink = 0;
    for (long c = 0; c < calls; c++) {
        for (long i = 0; i < busy; i++)
            sink += i;
        syscall(SYS_getppid);
    }
    printf("crossing: %ld calls, %ld busy iterations each\n", calls, busy);
    return 0;
}
