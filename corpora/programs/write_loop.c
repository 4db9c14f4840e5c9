/* Small-buffer write loop: N writes of a 16-byte line to stdout (default 20000). */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    static const char line[16] = "0123456789abcde\n";
    for (long i = 0; i < n; i++)
        if (write(1, line, sizeof line) != sizeof line)
            return 1;
    return 0;
}
