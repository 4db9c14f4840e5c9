/* mremap across what Linux keeps as one area: three pages whose middle one was made
 * read-only and writable again, and two mappings made side by side, each grown with
 * MREMAP_MAYMOVE. Prints "ok 7" and "ok2", as natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    char *three = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (three == MAP_FAILED)
        return 2;
    mprotect(three + 4096, 4096, PROT_READ);
    mprotect(three + 4096, 4096, PROT_READ | PROT_WRITE);
    three[0] = 7;
    char *grown = mremap(three, 3 * 4096, 8 * 4096, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) {
        printf("mremap: %s\n", strerror(errno));
        return 1;
    }
    printf("ok %d\n", grown[0]);
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    char *first = mmap((void *)0x20000000, 4096, PROT_READ | PROT_WRITE, flags, -1, 0);
    mmap((void *)0x20001000, 4096, PROT_READ | PROT_WRITE, flags, -1, 0);
    void *both = mremap(first, 2 * 4096, 4 * 4096, MREMAP_MAYMOVE);
    printf("%s\n", both == MAP_FAILED ? strerror(errno) : "ok2");
    return 0;
}
