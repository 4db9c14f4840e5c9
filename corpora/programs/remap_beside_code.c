/* An address-space change beside watched code: a JIT page runs, then the two pages before it
 * are mapped again over themselves, so their frames come back in another order. Loads and
 * stores after that must reach the new frames, as the kernel's own reads do. Prints
 * "1 loads d=9 a=7, kernel sees d=9 a=7", as natively. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*generated)(void);

int main(void) {
    int fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    unsigned char *code = mmap((void *)0x30002000, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, fixed, -1, 0);
    const unsigned char return_one[] = {0xb8, 1, 0, 0, 0, 0xc3};
    memcpy(code, return_one, sizeof return_one);
    volatile char *d = mmap((void *)0x30000000, 8192, PROT_READ | PROT_WRITE, fixed, -1, 0);
    volatile char *a = d + 4096;
    a[0] = 3;
    mprotect((void *)a, 4096, PROT_READ);
    int before = ((generated)code)();
    d[0] = 1;
    (void)a[0];
    mmap((void *)d, 8192, PROT_READ | PROT_WRITE, fixed, -1, 0);
    d[0] = 9;
    a[0] = 7;
    int p[2];
    if (pipe(p) != 0)
        return 2;
    if (write(p[1], (void *)d, 1) != 1 || write(p[1], (void *)a, 1) != 1)
        return 3;
    char got[2];
    if (read(p[0], got, 2) != 2)
        return 4;
    printf("%d loads d=%d a=%d, kernel sees d=%d a=%d\n", before, d[0], a[0], got[0], got[1]);
    return 0;
}
