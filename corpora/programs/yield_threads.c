/* The essay's Yield column between two threads of one process: the main thread and a second
 * thread each call sched_yield N times (default 10000). Both are pinned to one CPU, the first
 * in the process's own affinity mask, so that natively too a yield hands the CPU to the other
 * thread instead of returning at once on an idle second CPU. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "one_cpu.h"

static long iterations;

static long yield_n(void) {
    long done = 0;
    while (done < iterations && sched_yield() == 0)
        done++;
    return done;
}

static void *second_thread(void *unused) {
    (void)unused;
    return (void *)yield_n();
}

int main(int argc, char **argv) {
    iterations = argc > 1 ? atol(argv[1]) : 10000;
    if (pin_to_one_cpu() != 0) {
        perror("yield_threads: pinning to one CPU");
        return 1;
    }
    pthread_t other;
    int err = pthread_create(&other, NULL, second_thread, NULL);
    if (err != 0) {
        fprintf(stderr, "yield_threads: pthread_create: %s\n", strerror(err));
        return 1;
    }
    long main_yields = yield_n();
    void *other_yields;
    err = pthread_join(other, &other_yields);
    if (err != 0) {
        fprintf(stderr, "yield_threads: pthread_join: %s\n", strerror(err));
        return 1;
    }
    printf("main thread: %ld yields\n", main_yields);
    printf("second thread: %ld yields\n", (long)other_yields);
    return main_yields == iterations && (long)other_yields == iterations ? 0 : 1;
}
