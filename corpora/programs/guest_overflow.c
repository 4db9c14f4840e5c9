/* Syscall arguments at the edges of 64-bit arithmetic, one case per argv[1]: each must end
 * as it does natively, and never abort the simulator (issue 8, item D; the jumps to the last
 * pages are in faults.c).
 * Only cases whose outcome Linux 6.1 and later kernels agree on: mremap with a new length
 * beyond TASK_SIZE answers EFAULT on 6.1 and EINVAL from 6.17, so it is a unit test of the
 * simulator instead (sim/tests/syscall_fuzz.rs). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TASK_SIZE 0x7ffffffff000UL

/* The raw syscall's result, printed as the errno name when it failed. */
static void show(const char *what, long ret) {
    if (ret < 0 && ret > -4096)
        printf("%s: %s\n", what, strerrorname_np((int)-ret));
    else
        printf("%s: %s\n", what, ret == 0 ? "0" : "a value");
}

static long raw(long nr, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* Sleeps for ever: the alarm ends the process with SIGALRM. */
static int sleep_forever(int absolute) {
    struct timespec invalid = {0, 1000000000}, forever = {INT64_MAX, 0};
    show("nanosleep 1e9 ns", raw(SYS_nanosleep, (long)&invalid, 0, 0, 0, 0, 0));
    fflush(stdout);
    alarm(1);
    if (absolute)
        raw(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, (long)&forever, 0, 0, 0);
    else
        raw(SYS_nanosleep, (long)&forever, 0, 0, 0, 0, 0);
    return 3;
}

static int lengths(void) {
    long anon = MAP_PRIVATE | MAP_ANONYMOUS, rw = PROT_READ | PROT_WRITE;
    show("mmap 0x10000", raw(SYS_mmap, 0x10000, 0x1000, rw, anon | MAP_FIXED, -1, 0));
    show("mremap shrink from 2^64", raw(SYS_mremap, 0x10000, -0x10000L, 0x2000, 0, 0, 0));
    show("mremap grow to TASK_SIZE", raw(SYS_mremap, 0x10000, 0x1000, TASK_SIZE, 0, 0, 0));
    show("mremap move to TASK_SIZE",
         raw(SYS_mremap, 0x10000, 0x1000, TASK_SIZE, MREMAP_MAYMOVE, 0, 0));
    show("munmap to 2^64", raw(SYS_munmap, 0x11000, -0x1000L, 0, 0, 0, 0));
    show("munmap the top page", raw(SYS_munmap, TASK_SIZE, 0x1000, 0, 0, 0, 0));
    show("mmap the top page", raw(SYS_mmap, TASK_SIZE, 0x1000, rw, anon | MAP_FIXED, -1, 0));
    show("mmap 2^64 - 4096 bytes", raw(SYS_mmap, 0, -0x1000L, rw, anon, -1, 0));
    show("mmap 2^64 - 1 bytes", raw(SYS_mmap, 0, -1L, rw, anon, -1, 0));
    show("mprotect to 2^64", raw(SYS_mprotect, 0x10000, -0x1000L, rw, 0, 0, 0));
    show("madvise to 2^64", raw(SYS_madvise, 0x10000, -0x1000L, MADV_DONTNEED, 0, 0, 0));
    return 0;
}

/* A private file mapping far larger than the file (and than the host's memory): Linux maps
 * it at once; the simulator must not hold it all on the host. */
static int huge_file_mapping(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    unsigned long len = 24UL << 30;
    unsigned char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    printf("mapped: %s\n", memcmp(p, "\177ELF", 4) ? "not an ELF" : "an ELF");
    show("munmap", raw(SYS_munmap, (long)p, len, 0, 0, 0, 0));
    return 0;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "nanosleep"))
        return sleep_forever(0);
    if (!strcmp(what, "clock_nanosleep"))
        return sleep_forever(1);
    if (!strcmp(what, "lengths"))
        return lengths();
    if (!strcmp(what, "file_mapping"))
        return huge_file_mapping();
    fprintf(stderr, "usage: guest_overflow nanosleep|clock_nanosleep|lengths|file_mapping\n");
    return 2;
}
