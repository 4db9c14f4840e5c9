#define _GNU_SOURCE
/* A thread that ends holding a robust mutex: the kernel walks its robust list, so the
 * thread waiting for the mutex wakes and gets EOWNERDEAD, makes it consistent, and the
 * next lock is an ordinary one. Without the walk the waiter would wait for ever. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t mutex;
static int held[2];

static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mutex);
    if (write(held[1], "x", 1) != 1)
        return NULL;
    usleep(1000);
    return NULL;
}

int main(void) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mutex, &attr);
    pipe(held);
    pthread_t thread;
    pthread_create(&thread, NULL, holder, NULL);
    char byte;
    if (read(held[0], &byte, 1) != 1)
        return 1;
    int r = pthread_mutex_lock(&mutex);
    printf("lock after the holder ended: %s\n", r ? strerrorname_np(r) : "0");
    printf("consistent: %d\n", pthread_mutex_consistent(&mutex));
    pthread_mutex_unlock(&mutex);
    pthread_join(thread, NULL);
    r = pthread_mutex_lock(&mutex);
    printf("the next lock: %d\n", r);
    pthread_mutex_unlock(&mutex);
    return 0;
}
