/* A static-PIE program: checks that the loader relocates ET_DYN images without PT_INTERP. */
#include <stdio.h>

static const char *greeting = "hello from a static PIE";

int main(int argc, char **argv) {
    printf("%s, argc=%d, argv[0]=%s\n", greeting, argc, argv[0]);
    return 0;
}
