/* The other library with `greet` (see greet_a.c), laid out as it is. */
#include <stdio.h>

static __thread int calls;
static char line[64];

const char *greet(void) {
    calls += 2;
    snprintf(line, sizeof line, "hello from library b, where a was (%d)", calls);
    return line;
}
