/* Wake-ups another thread causes: a thread blocked in epoll_wait (timeout -1) woken by an
 * EPOLL_CTL_ADD of a ready eventfd, then by an EPOLL_CTL_MOD re-arming a spent EPOLLONESHOT
 * entry; and a thread blocked in a read of an empty socket that a shutdown of the peer's
 * writing way ends with end of file. The main thread sleeps 100 ms natively (no time at all
 * simulated) so that the other blocks first, and prints only once the other has ended. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static int ep, sv[2];

static void say(const char *text, long n) {
    printf("%s %ld\n", text, n);
    fflush(stdout);
}

static void *waiter(void *unused) {
    (void)unused;
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, -1);
    say("epoll_wait woke with data", n == 1 ? (long)out.data.u64 : -1);
    return 0;
}

static void *reader(void *unused) {
    (void)unused;
    char c;
    say("the blocked read returned", read(sv[1], &c, 1));
    return 0;
}

static void after_the_other_blocks(void) {
    usleep(100000);
}

int main(void) {
    // stdout's buffer made here, so that no thread mallocs (a thread's first malloc makes
    // it an arena, whose trimming depends on where the host put it).
    say("threads wait", 3);
    ep = epoll_create1(0);
    int e = eventfd(1, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 5};
    pthread_t t;
    pthread_create(&t, 0, waiter, 0);
    after_the_other_blocks();
    long added = epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    pthread_join(t, 0);
    say("add", added);
    pthread_create(&t, 0, waiter, 0);
    after_the_other_blocks();
    ev.data.u64 = 6;
    long modified = epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev);
    pthread_join(t, 0);
    say("mod", modified);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pthread_create(&t, 0, reader, 0);
    after_the_other_blocks();
    long shut = shutdown(sv[0], SHUT_WR);
    pthread_join(t, 0);
    say("shutdown", shut);
    return 0;
}
