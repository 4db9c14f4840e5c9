/* One store across a page boundary changes code: `mov eax, 1; ret` at the start of the second
 * of two RWX pages runs, then a single 8-byte store that begins 4 bytes before that page
 * makes it `mov eax, 2; ret`. Prints "1 2", as natively. (Unicorn checks a store against
 * write hooks by its first byte, which lies in the page before the code.) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*generated)(void);

int main(void) {
    unsigned char *pages = mmap(0, 8192, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
        return 2;
    unsigned char *code = pages + 4096;
    const unsigned char return_one[] = {0xb8, 1, 0, 0, 0, 0xc3};
    memcpy(code, return_one, sizeof return_one);
    int before = ((generated)code)();
    uint64_t straddling;
    memcpy(&straddling, code - 4, sizeof straddling);
    straddling = (straddling & ~(0xffull << 40)) | (2ull << 40); /* code[1] = 2 */
    *(volatile uint64_t *)(code - 4) = straddling;
    int after = ((generated)code)();
    printf("%d %d\n", before, after);
    return 0;
}
