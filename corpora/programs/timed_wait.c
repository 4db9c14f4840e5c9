/* Timed waits on futexes: a condition variable nobody signals (pthread_cond_timedwait:
 * FUTEX_WAIT_BITSET with an absolute CLOCK_REALTIME deadline) and a semaphore nobody posts
 * (sem_timedwait), each timing out; then a condition variable signalled by another thread
 * before its deadline. Prints what each wait returned. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready;

static struct timespec in_ms(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static void *signaller(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    struct timespec deadline = in_ms(200);
    pthread_mutex_lock(&lock);
    int r = pthread_cond_timedwait(&cond, &lock, &deadline);
    pthread_mutex_unlock(&lock);
    printf("unsignalled condition: %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r));

    sem_t sem;
    sem_init(&sem, 0, 0);
    deadline = in_ms(100);
    r = sem_timedwait(&sem, &deadline);
    printf("unposted semaphore: %s\n", r == -1 && errno == ETIMEDOUT ? "ETIMEDOUT" : "other");

    pthread_t thread;
    pthread_mutex_lock(&lock);
    pthread_create(&thread, NULL, signaller, NULL);
    deadline = in_ms(5000);
    r = 0;
    while (!ready && r == 0)
        r = pthread_cond_timedwait(&cond, &lock, &deadline);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    printf("signalled condition: %s, ready %d\n", r == 0 ? "woken" : strerror(r), ready);
    return 0;
}
