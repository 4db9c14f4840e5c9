/* Userspace Bypass's microbenchmark: N 1 KiB preads at offset 0 of a file (default: this program). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 50000;
    const char *path = argc > 2 ? argv[2] : "/proc/self/exe";
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return 2;
    }
    char buf[1024];
    unsigned long checksum = 0;
    for (long i = 0; i < n; i++) {
        if (pread(fd, buf, sizeof buf, 0) < 0)
            return 1;
        checksum += (unsigned char)buf[i % sizeof buf];
    }
    printf("pread_loop: %ld preads, checksum %lu\n", n, checksum);
    return 0;
}
