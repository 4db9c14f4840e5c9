/* Generated and self-modifying code: writes `mov eax, imm32; ret` into an RWX page, runs it,
 * rewrites the immediate and runs it again; writes data beside the code between calls; then
 * does the same W^X-style, flipping the page between RW and RX with mprotect. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*generated)(void);

static void emit(unsigned char *at, int value) {
    unsigned char code[] = {0xb8, 0, 0, 0, 0, 0xc3};
    memcpy(code + 1, &value, sizeof value);
    memcpy(at, code, sizeof code);
}

int main(void) {
    unsigned char *rwx = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *wx = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rwx == MAP_FAILED || wx == MAP_FAILED)
        return 2;
    long total = 0;
    for (int round = 0; round < 4; round++) {
        emit(rwx, round * 7 + 1);
        int first = ((generated)rwx)();
        rwx[2048] = (unsigned char)round; /* data on the code's page */
        emit(rwx, first * 3);
        int second = ((generated)rwx)();

        mprotect(wx, 4096, PROT_READ | PROT_WRITE);
        emit(wx, round + 100);
        mprotect(wx, 4096, PROT_READ | PROT_EXEC);
        int third = ((generated)wx)();
        printf("round %d: %d %d %d\n", round, first, second, third);
        total += first + second + third;
    }
    printf("total %ld\n", total);
    return 0;
}
