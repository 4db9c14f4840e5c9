/* One of two libraries that export the same function: dlopen_greet loads one, unloads it and
 * loads the other, which the loader maps at the same address (they have one layout). Its
 * counter is thread-local: a library loaded by dlopen reaches its TLS through
 * __tls_get_addr (the dynamic TLS model). */
#include <stdio.h>

static __thread int calls;
static char line[64];

const char *greet(void) {
    calls++;
    snprintf(line, sizeof line, "hello from library a (call %d)", calls);
    return line;
}
