/* Four worker threads synchronised by a mutex, a condition variable and a barrier, with a
 * result that no interleaving can change. Phase 1: each worker sums its quarter of 0..N-1
 * (default N 20000) and adds it to a shared total under the mutex, a chunk at a time. At the
 * barrier, the one serial thread tells the main thread, through the condition variable, that
 * phase 1 is done; the main thread checks the total and broadcasts the start of phase 2, in
 * which every worker increments a shared counter N/4 times, taking the mutex for each one. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WORKERS = 4, CHUNK = 100 };

static long n;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t phase1_end;
/* All below are guarded by lock. */
static unsigned long total;
static long counter;
static int serial_threads;
static int phase1_done;
static int phase2_started;

static void add_range(long from, long to) {
    unsigned long partial = 0;
    for (long i = from; i < to; i++)
        partial += i;
    pthread_mutex_lock(&lock);
    total += partial;
    pthread_mutex_unlock(&lock);
}

static void *worker(void *index) {
    long k = (long)index;
    long from = n * k / WORKERS, to = n * (k + 1) / WORKERS;
    for (long i = from; i < to; i += CHUNK)
        add_range(i, i + CHUNK < to ? i + CHUNK : to);
    int serial = pthread_barrier_wait(&phase1_end) == PTHREAD_BARRIER_SERIAL_THREAD;
    pthread_mutex_lock(&lock);
    if (serial) {
        serial_threads++;
        phase1_done = 1;
        pthread_cond_broadcast(&changed);
    }
    while (!phase2_started)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    for (long i = from; i < to; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int fail(const char *what, int err) {
    fprintf(stderr, "pthread_workers: %s: %s\n", what, strerror(err));
    return 1;
}

int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 20000;
    int err = pthread_barrier_init(&phase1_end, NULL, WORKERS);
    if (err != 0)
        return fail("pthread_barrier_init", err);
    pthread_t threads[WORKERS];
    for (long k = 0; k < WORKERS; k++)
        if ((err = pthread_create(&threads[k], NULL, worker, (void *)k)) != 0)
            return fail("pthread_create", err);
    pthread_mutex_lock(&lock);
    while (!phase1_done)
        pthread_cond_wait(&changed, &lock);
    unsigned long phase1_total = total;
    phase2_started = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    for (int k = 0; k < WORKERS; k++)
        if ((err = pthread_join(threads[k], NULL)) != 0)
            return fail("pthread_join", err);
    unsigned long expected = n > 0 ? (unsigned long)n * (n - 1) / 2 : 0;
    printf("phase 1: %d workers summed 0..N-1 (N = %ld) to %lu\n", WORKERS, n, phase1_total);
    printf("barrier: %d serial thread\n", serial_threads);
    printf("phase 2: %d workers counted to %ld under the mutex\n", WORKERS, counter);
    if (phase1_total != expected || serial_threads != 1 || counter != n) {
        fprintf(stderr, "pthread_workers: expected %lu, 1 serial thread and %ld\n", expected, n);
        return 1;
    }
    return 0;
}
