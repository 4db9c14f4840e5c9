/* CPU-bound program: a sieve of Eratosthenes and an FNV-1a hash; almost no syscalls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 2000000;
    char *composite = calloc(limit + 1, 1);
    if (!composite)
        return 1;
    long primes = 0;
    unsigned long hash = 1469598103934665603UL;
    for (long i = 2; i <= limit; i++) {
        if (composite[i])
            continue;
        primes++;
        hash = (hash ^ (unsigned long)i) * 1099511628211UL;
        for (long j = i * i; j <= limit; j += i)
            composite[j] = 1;
    }
    printf("cpu_bound: %ld primes below %ld, hash %016lx\n", primes, limit, hash);
    free(composite);
    return 0;
}
