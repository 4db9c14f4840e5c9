/* sched_yield loop: N yields (default 50000), the yield column of the cost table. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 50000;
    for (long i = 0; i < n; i++)
        if (sched_yield() != 0)
            return 1;
    printf("yield_loop: %ld yields\n", n);
    return 0;
}
