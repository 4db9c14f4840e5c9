/* Measures, in TSC ticks, what the built-in cost models' kernel-work defaults are derived
 * from: a null syscall (getppid) and pread of 1 byte and of 64 KiB from the page cache.
 * Prints the median of 7 runs of 20000 calls each. Build: cc -O2 -o host_costs host_costs.c */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

static char buf[65536];

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ticks(int fd, long op) {
    double runs[7];
    for (int r = 0; r < 7; r++) {
        unsigned long long t0 = __rdtsc();
        for (int i = 0; i < 20000; i++) {
            if (op < 0)
                syscall(SYS_getppid);
            else if (pread(fd, buf, op, 0) != op)
                exit(1);
        }
        runs[r] = (double)(__rdtsc() - t0) / 20000;
    }
    qsort(runs, 7, sizeof runs[0], cmp);
    return runs[3];
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/proc/self/exe";
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    double null_call = median_ticks(fd, -1);
    double small = median_ticks(fd, 1);
    double large = median_ticks(fd, sizeof buf);
    printf("getppid %.0f\npread_1B %.0f\npread_64KiB %.0f\n", null_call, small, large);
    printf("kernel_base %.0f\nper_byte %.4f\n", small - null_call, (large - small) / (sizeof buf - 1));
    return 0;
}
