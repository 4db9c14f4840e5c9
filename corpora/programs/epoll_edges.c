/* epoll, edge-triggered (EPOLLET), checked against Linux: an entry is reported when its file
 * is ready and something arrived (for EPOLLIN) or left (for EPOLLOUT) since it was last
 * reported; not again while nothing changes, even with bytes still unread; again on
 * EPOLL_CTL_MOD; with EPOLLONESHOT once. Over a pipe, a socket pair, an eventfd and a
 * listening TCP socket's queue. Usage: epoll_edges */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static int ep;

static void add(int fd, unsigned events) {
    struct epoll_event e = {.events = events, .data.u32 = fd};
    check(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0, "epoll_ctl ADD");
}

static void wait_once(const char *what) {
    struct epoll_event out[8];
    int n = epoll_wait(ep, out, 8, 0);
    check(n >= 0, "epoll_wait");
    printf("%s: %d ready", what, n);
    for (int i = 0; i < n; i++)
        printf(" [%s%s%s%s]", out[i].events & EPOLLIN ? "in " : "", out[i].events & EPOLLOUT ? "out " : "",
               out[i].events & EPOLLHUP ? "hup " : "", out[i].events & EPOLLERR ? "err" : "");
    printf("\n");
}

int main(void) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    check(ep >= 0, "epoll_create1");
    int p[2];
    check(pipe(p) == 0, "pipe");
    add(p[0], EPOLLIN | EPOLLET);
    wait_once("an empty pipe");
    check(write(p[1], "ab", 2) == 2, "write");
    wait_once("after a write");
    wait_once("again, nothing read");
    char c;
    check(read(p[0], &c, 1) == 1, "read");
    wait_once("after reading one of two bytes");
    check(write(p[1], "c", 1) == 1, "write");
    wait_once("after another write");
    struct epoll_event mod = {.events = EPOLLIN | EPOLLET, .data.u32 = p[0]};
    check(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &mod) == 0, "epoll_ctl MOD");
    wait_once("after EPOLL_CTL_MOD");
    close(p[1]);
    wait_once("after the writer closed");
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);

    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    add(sv[0], EPOLLIN | EPOLLOUT | EPOLLET);
    wait_once("a socket pair");
    wait_once("again");
    check(write(sv[1], "x", 1) == 1, "write");
    wait_once("after the peer wrote");
    check(read(sv[0], &c, 1) == 1, "read");
    wait_once("after reading it");
    epoll_ctl(ep, EPOLL_CTL_DEL, sv[0], NULL);

    int ev = eventfd(0, 0);
    check(ev >= 0, "eventfd");
    add(ev, EPOLLIN | EPOLLET | EPOLLONESHOT);
    unsigned long one = 1;
    check(write(ev, &one, 8) == 8, "write");
    wait_once("an eventfd, one-shot, written");
    check(write(ev, &one, 8) == 8, "write");
    wait_once("written again, one-shot spent");
    epoll_ctl(ep, EPOLL_CTL_DEL, ev, NULL);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(bind(listener, (struct sockaddr *)&at, sizeof at) == 0 && listen(listener, 8) == 0, "listen");
    socklen_t len = sizeof at;
    check(getsockname(listener, (struct sockaddr *)&at, &len) == 0, "getsockname");
    add(listener, EPOLLIN | EPOLLET);
    int c1 = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(c1, (struct sockaddr *)&at, sizeof at) == 0, "connect");
    wait_once("a listener, one connection queued");
    wait_once("again, not accepted");
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(c2, (struct sockaddr *)&at, sizeof at) == 0, "connect");
    wait_once("a second connection");
    return 0;
}
