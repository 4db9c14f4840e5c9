/* Code on remapped pages: two RWX pages get `mov eax, 1; ret` and `mov eax, 11; ret` and run;
 * then the range is unmapped and mapped again, which hands its pages other frames, and the
 * first page gets `mov eax, 2; ret`, runs, is patched to `mov eax, 3; ret` and runs again.
 * Prints "1 11 2 3", as natively: a translation must follow the page's new frame. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*generated)(void);

static void emit(unsigned char *at, int value) {
    unsigned char code[] = {0xb8, 0, 0, 0, 0, 0xc3};
    memcpy(code + 1, &value, sizeof value);
    memcpy(at, code, sizeof code);
}

static unsigned char *map_code(void *at) {
    return mmap(at, 8192, PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED : 0), -1, 0);
}

int main(void) {
    unsigned char *code = map_code(0);
    if (code == MAP_FAILED)
        return 2;
    emit(code, 1);
    emit(code + 4096, 11);
    int first = ((generated)code)();
    int second = ((generated)(code + 4096))();
    munmap(code, 8192);
    if (map_code(code) != code)
        return 3;
    emit(code, 2);
    int third = ((generated)code)();
    emit(code, 3);
    int fourth = ((generated)code)();
    printf("%d %d %d %d\n", first, second, third, fourth);
    return 0;
}
