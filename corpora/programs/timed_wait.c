/* Timed waits on futexes: a condition variable nobody signals (pthread_cond_timedwait:
 * FUTEX_WAIT_BITSET with an absolute CLOCK_REALTIME deadline) and a semaphore nobody posts
 * (sem_timedwait), each timing out; then a condition variable signalled by another thread
 * before its deadline; then a sleep an alarm's handler cuts short, with the time it had
 * left. Prints what each wait returned. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
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

static void on_alarm(int signo) { (void)signo; }

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

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    alarm(1);
    struct timespec five = {5, 0}, left = {0, 0};
    r = nanosleep(&five, &left);
    /* Rounded: natively the signal lands a little after the second, later still under a
     * tracer. */
    long seconds = (long)left.tv_sec + (left.tv_nsec >= 500000000);
    printf("sleep cut short: %s, about %ld seconds left\n",
           r == -1 && errno == EINTR ? "EINTR" : "other", seconds);
    return 0;
}
