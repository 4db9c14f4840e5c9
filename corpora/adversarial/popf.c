/* Tries to set IF and IOPL 3 with popf, then reads the flags back: ring 3's popf keeps
 * IOPL 0 and IF 1 silently. Prints what it sees. */
#include <stdint.h>
#include <stdio.h>

int main(void) {
    uint64_t flags;
    __asm__ volatile("pushfq; orq $0x3200, (%%rsp); popfq; pushfq; popq %0" : "=r"(flags));
    printf("if=%lu iopl=%lu\n", (flags >> 9) & 1, (flags >> 12) & 3);
    __asm__ volatile("pushfq; andq $~0x200, (%%rsp); popfq; pushfq; popq %0" : "=r"(flags));
    printf("after clearing IF: if=%lu\n", (flags >> 9) & 1);
    return 0;
}
