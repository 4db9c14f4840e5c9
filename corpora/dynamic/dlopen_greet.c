/* dlopen, dlsym and dlclose of a library of our own, then of another one that ld.so maps
 * where the first was: its code must run, not translations left from the first. Both keep
 * a thread-local counter, reached through __tls_get_addr. */
#include <dlfcn.h>
#include <stdio.h>

static int call(const char *path, const void **where) {
    void *library = dlopen(path, RTLD_NOW);
    if (!library) {
        printf("dlopen %s: %s\n", path, dlerror());
        return 1;
    }
    const char *(*greet)(void) = (const char *(*)(void))dlsym(library, "greet");
    if (!greet) {
        printf("dlsym: %s\n", dlerror());
        return 1;
    }
    printf("%s\n", greet());
    *where = (const void *)greet;
    return dlclose(library);
}

int main(void) {
    const void *first, *second;
    if (call("./libgreet_a.so", &first) || call("./libgreet_b.so", &second))
        return 1;
    printf("the second library's code is where the first's was: %d\n", first == second);
    void *missing = dlopen("./libmissing.so", RTLD_NOW);
    printf("dlopen of a missing library: %s\n", missing ? "loaded?" : "NULL");
    return 0;
}
