/* Userspace Bypass's microbenchmark: N preads of SIZE bytes (default 1 KiB, at most 64 KiB) at
 * offset 0 of a file (default: this program). Usage: pread_loop [N [FILE [SIZE]]] */
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
    static char buf[65536];
    long size = argc > 3 ? atol(argv[3]) : 1024;
    if (size < 1 || size > (long)sizeof buf) {
        fprintf(stderr, "pread_loop: SIZE must be 1 to %zu\n", sizeof buf);
        return 2;
    }
    unsigned long checksum = 0;
    for (long i = 0; i < n; i++) {
        if (pread(fd, buf, size, 0) < 0)
            return 1;
        checksum += (unsigned char)buf[i % size];
    }
    printf("pread_loop: %ld preads, checksum %lu\n", n, checksum);
    return 0;
}
