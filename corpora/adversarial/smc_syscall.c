/* Plants a syscall in code after it ran: a routine that returns at once is run (and so
 * translated), then its two nops become `syscall`, and the rerun must write the message. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char message[] = "planted syscall ran\n";

int main(void) {
    unsigned char *page = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 2;
    /* mov eax, 1; mov edi, 1; movabs rsi, message; mov edx, len; nop; nop; ret */
    unsigned char code[] = {0xb8, 1, 0, 0, 0, 0xbf, 1, 0, 0, 0, 0x48, 0xbe, 0, 0, 0, 0, 0, 0, 0, 0,
                            0xba, sizeof message - 1, 0, 0, 0, 0x90, 0x90, 0xc3};
    const char *address = message;
    memcpy(code + 12, &address, sizeof address);
    memcpy(page, code, sizeof code);
    ((void (*)(void))page)();
    write(1, "before\n", 7);
    page[25] = 0x0f; /* syscall */
    page[26] = 0x05;
    ((void (*)(void))page)();
    return 0;
}
