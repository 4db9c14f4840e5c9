/* The legacy system-call ways in: int 0x80 (the 32-bit entry; here exit(7)), and sysenter
 * (#UD in long mode on AMD: SIGILL). Usage: legacy_entries int80|sysenter */
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "sysenter"))
        __asm__ volatile("sysenter");
    else
        __asm__ volatile("int $0x80" ::"a"(1), "b"(7));
    return 3;
}
