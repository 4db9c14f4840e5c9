/* epoll, level-triggered, over a pipe, a socketpair and eventfds: epoll_ctl's errors (EEXIST,
 * ENOENT, EINVAL, EPERM for a regular file), what epoll_wait reports as each becomes ready
 * (sorted by data, since Linux lists them in the order they became ready), EPOLLONESHOT
 * until EPOLL_CTL_MOD, EPOLLRDHUP, an entry gone with its file, and a child blocked in
 * epoll_wait that its parent's write wakes. */
#include "check.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int add(int ep, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, op, fd, &ev);
}

/* Waits and prints the events, sorted by their data. */
static void show(int ep, int timeout, const char *when) {
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, timeout);
    check(n >= 0, "epoll_wait");
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && evs[j].data.u64 < evs[j - 1].data.u64; j--) {
            struct epoll_event t = evs[j];
            evs[j] = evs[j - 1];
            evs[j - 1] = t;
        }
    printf("%s: %d", when, n);
    for (int i = 0; i < n; i++)
        printf(" [%llu:%s%s%s%s]", (unsigned long long)evs[i].data.u64,
               evs[i].events & EPOLLIN ? " in" : "", evs[i].events & EPOLLOUT ? " out" : "",
               evs[i].events & EPOLLRDHUP ? " rdhup" : "", evs[i].events & EPOLLHUP ? " hup" : "");
    printf("\n");
}

int main(int argc, char **argv) {
    (void)argc;
    check(epoll_create(0) < 0, "epoll_create(0)");
    printf("epoll_create(0): %s\n", errno_name(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    check(ep >= 0, "epoll_create1");
    int p[2], s[2];
    check(pipe(p) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "pipe and socketpair");
    int e = eventfd(0, EFD_NONBLOCK);
    check(e >= 0, "eventfd");
    check(add(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1) == 0, "add the pipe");
    check(add(ep, EPOLL_CTL_ADD, s[0], EPOLLIN | EPOLLRDHUP, 2) == 0, "add the socket");
    check(add(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLONESHOT, 3) == 0, "add the eventfd");
    check(add(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 9) < 0, "adding twice");
    printf("add twice: %s\n", errno_name(errno));
    check(add(ep, EPOLL_CTL_MOD, s[1], EPOLLIN, 9) < 0, "modifying what is not there");
    printf("mod of a stranger: %s\n", errno_name(errno));
    check(add(ep, EPOLL_CTL_DEL, s[1], 0, 0) < 0, "deleting what is not there");
    printf("del of a stranger: %s\n", errno_name(errno));
    check(add(ep, EPOLL_CTL_ADD, ep, EPOLLIN, 9) < 0, "adding itself");
    printf("add itself: %s\n", errno_name(errno));
    int file = open(argv[0], O_RDONLY);
    check(file >= 0, "open");
    check(add(ep, EPOLL_CTL_ADD, file, EPOLLIN, 9) < 0, "adding a regular file");
    printf("add a regular file: %s\n", errno_name(errno));
    show(ep, 0, "nothing yet");
    uint64_t one = 1;
    check(write(p[1], "x", 1) == 1 && write(e, &one, 8) == 8, "writes");
    show(ep, -1, "pipe and eventfd");
    show(ep, 0, "again, the eventfd spent");
    char c;
    check(read(p[0], &c, 1) == 1, "drain the pipe");
    check(add(ep, EPOLL_CTL_MOD, e, EPOLLIN | EPOLLONESHOT, 4) == 0, "re-arm");
    show(ep, 0, "re-armed");
    check(write(s[1], "y", 1) == 1, "write to the socket");
    check(close(s[1]) == 0, "close the peer");
    show(ep, 0, "socket: data, then its peer gone");
    check(add(ep, EPOLL_CTL_DEL, p[0], 0, 0) == 0, "delete the pipe");
    close(e);
    show(ep, 0, "the socket only");
    int late = eventfd(0, 0);
    check(late >= 0 && add(ep, EPOLL_CTL_ADD, late, EPOLLIN, 5) == 0, "a blocking eventfd");
    check(add(ep, EPOLL_CTL_DEL, s[0], 0, 0) == 0, "delete the socket");
    fflush(stdout);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        show(ep, -1, "child woke");
        return 0;
    }
    check(write(late, &one, 8) == 8, "the parent's write");
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    struct epoll_event ev;
    check(epoll_wait(ep, &ev, 0, 0) < 0, "maxevents 0");
    printf("maxevents 0: %s\n", errno_name(errno));
    return 0;
}
