/* Linux's answers in the corners of its sockets, one line each: a UDP disconnect (the port
 * and address it gives back), UDP connected to port 0, two UDP sockets sharing a port
 * (the one bound last receives), an address length whose register's upper half is set, a
 * receive of SIZE_MAX bytes and of none, an oversized datagram from a short buffer, a
 * v4-mapped bind on a v6-only socket, IP options of one byte, an AF_UNIX socket bound
 * again, SIOCOUTQ, a non-blocking TCP connect to a full accept queue (listen on it, a
 * listen that makes room, its listener closing), a refused connect's error, a seqpacket peek cut short, and
 * reads into buffers that run into unmapped memory. Ports the kernel chooses are never
 * printed. Usage: net_corners */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void result(const char *what, long ret) {
    if (ret < 0)
        printf("%s: %s\n", what, errno_name(errno));
    else
        printf("%s: %ld\n", what, ret);
}

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return in;
}

static struct sockaddr_in name_of(int fd) {
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    check(getsockname(fd, (struct sockaddr *)&in, &len) == 0, "getsockname");
    return in;
}

static unsigned short port_of(int fd) { return ntohs(name_of(fd).sin_port); }

static int udp_bound(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    check(fd >= 0, "socket");
    struct sockaddr_in at = loopback(0);
    check(bind(fd, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    return fd;
}

static void describe(const char *what, int fd) {
    struct sockaddr_in in = name_of(fd);
    printf("%s: %s, port %s\n", what, inet_ntoa(in.sin_addr), in.sin_port ? "kept" : "0");
}

static void udp(void) {
    int server = udp_bound();
    struct sockaddr_in to = loopback(port_of(server));
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};

    int autobound = socket(AF_INET, SOCK_DGRAM, 0);
    check(connect(autobound, (struct sockaddr *)&to, sizeof to) == 0, "connect");
    describe("udp connected, autobound", autobound);
    result("udp disconnect", connect(autobound, &unspec, sizeof unspec));
    describe("then", autobound);
    result("then a send", send(autobound, "x", 1, 0));

    int wildcard = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    check(bind(wildcard, (struct sockaddr *)&any, sizeof any) == 0, "bind");
    any.sin_port = htons(port_of(wildcard));
    close(wildcard);
    wildcard = socket(AF_INET, SOCK_DGRAM, 0);
    check(bind(wildcard, (struct sockaddr *)&any, sizeof any) == 0, "bind");
    describe("udp bound to the wildcard and a port", wildcard);
    check(connect(wildcard, (struct sockaddr *)&to, sizeof to) == 0, "connect");
    describe("connected", wildcard);
    check(connect(wildcard, &unspec, sizeof unspec) == 0, "disconnect");
    describe("disconnected", wildcard);

    int local = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in lo = loopback(0);
    check(bind(local, (struct sockaddr *)&lo, sizeof lo) == 0, "bind");
    check(connect(local, (struct sockaddr *)&to, sizeof to) == 0, "connect");
    check(connect(local, &unspec, sizeof unspec) == 0, "disconnect");
    describe("udp bound to 127.0.0.1 and port 0, disconnected", local);
    result("then bound again", bind(local, (struct sockaddr *)&lo, sizeof lo));
    close(local);

    int zero = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in port0 = loopback(0);
    result("udp connect to port 0", connect(zero, (struct sockaddr *)&port0, sizeof port0));
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    result("its getpeername", getpeername(zero, (struct sockaddr *)&peer, &len));
    result("a send", send(zero, "x", 1, 0));
    result("a sendto port 0", sendto(server, "x", 1, 0, (struct sockaddr *)&port0, sizeof port0));

    int one = 1, first = socket(AF_INET, SOCK_DGRAM, 0), second = socket(AF_INET, SOCK_DGRAM, 0);
    check(setsockopt(first, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    check(setsockopt(second, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    struct sockaddr_in shared = loopback(0);
    check(bind(first, (struct sockaddr *)&shared, sizeof shared) == 0, "bind");
    shared = loopback(port_of(first));
    result("udp bind to a shared port", bind(second, (struct sockaddr *)&shared, sizeof shared));
    check(sendto(server, "hello", 5, 0, (struct sockaddr *)&shared, sizeof shared) == 5, "sendto");
    char buf[64];
    result("the first bound receives", recv(first, buf, sizeof buf, MSG_DONTWAIT));
    result("the last bound receives", recv(second, buf, sizeof buf, MSG_DONTWAIT));
    close(second);
    check(sendto(server, "hello", 5, 0, (struct sockaddr *)&shared, sizeof shared) == 5, "sendto");
    result("once it closed, the first receives", recv(first, buf, sizeof buf, MSG_DONTWAIT));

    /* An address length is an int: the register's upper half is not looked at. */
    result("sendto with an address length of 1 << 32 | 16",
           syscall(SYS_sendto, server, "x", 1, 0, &shared, 0x100000000UL | sizeof shared));
    recv(first, buf, sizeof buf, MSG_DONTWAIT);
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = loopback(0);
    result("bind with the same", syscall(SYS_bind, tcp, &at, 0x100000000UL | sizeof at));
    result("bind with a length of -1", syscall(SYS_bind, socket(AF_INET, SOCK_STREAM, 0), &at, 0xffffffffUL));
    close(tcp);

    /* A datagram is checked for its size before it is copied. */
    char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(page != MAP_FAILED, "mmap");
    check(munmap(page + 4096, 4096) == 0, "munmap");
    result("udp send of 70000 bytes from a short buffer", sendto(server, page + 4000, 70000, 0, (struct sockaddr *)&shared, sizeof shared));
    result("of 65507", sendto(server, page + 4000, 65507, 0, (struct sockaddr *)&shared, sizeof shared));
    result("of 96, all there", sendto(server, page + 4000, 96, 0, (struct sockaddr *)&shared, sizeof shared));
    result("received", recv(first, buf, sizeof buf, MSG_DONTWAIT));
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "socketpair");
    check(write(pair[0], "abcdef", 6) == 6, "write");
    result("a stream read into a buffer that ends early", read(pair[1], page + 4092, 100));
    munmap(page, 4096);
    close(pair[0]);
    close(pair[1]);
    close(first);
    close(zero);
    close(autobound);
    close(wildcard);
    close(server);
}

static void receives(void) {
    static char buf[64];
    int pair[2], dgrams[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0, "socketpair");
    check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, dgrams) == 0, "socketpair");
    result("a receive of no bytes, none there", recv(pair[1], buf, 0, 0));
    result("a read of none", read(pair[1], buf, 0));
    result("a datagram receive of none", recv(dgrams[1], buf, 0, 0));
    check(write(pair[0], "abc", 3) == 3, "write");
    result("a receive of none, some there", recv(pair[1], buf, 0, 0));
    /* A receive's length is cut to MAX_RW_COUNT before its range is checked; a read's is
     * checked whole. */
    result("a receive of SIZE_MAX bytes", recv(pair[1], buf, (size_t)-1, 0));
    check(write(pair[0], "abc", 3) == 3, "write");
    result("a read of SIZE_MAX bytes", syscall(SYS_read, pair[1], buf, (size_t)-1));
    close(pair[0]);
    result("a receive of none at end of file", recv(pair[1], buf, 0, 0));
    close(pair[1]);
    close(dgrams[0]);
    close(dgrams[1]);
}

static void options(void) {
    int one = 1;
    int v6 = socket(AF_INET6, SOCK_DGRAM, 0);
    check(setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0, "IPV6_V6ONLY");
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
    check(inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr) == 1, "inet_pton");
    result("a v4-mapped bind on a v6-only socket", bind(v6, (struct sockaddr *)&mapped, sizeof mapped));
    result("a v4-mapped connect", connect(v6, (struct sockaddr *)&mapped, sizeof mapped));
    close(v6);

    int o = socket(AF_INET, SOCK_STREAM, 0);
    unsigned char byte = 0x20;
    result("IP_TOS of one byte", setsockopt(o, IPPROTO_IP, IP_TOS, &byte, 1));
    int value = 0;
    socklen_t len = sizeof value;
    check(getsockopt(o, IPPROTO_IP, IP_TOS, &value, &len) == 0, "getsockopt");
    printf("IP_TOS reads %#x in %u bytes\n", value, (unsigned)len);
    byte = 0;
    len = 1;
    check(getsockopt(o, IPPROTO_IP, IP_TOS, &byte, &len) == 0, "getsockopt");
    printf("asked for one byte: %#x in %u\n", byte, (unsigned)len);
    byte = 9;
    result("IP_TTL of one byte", setsockopt(o, IPPROTO_IP, IP_TTL, &byte, 1));
    len = 2;
    value = 0;
    check(getsockopt(o, IPPROTO_IP, IP_TTL, &value, &len) == 0, "getsockopt");
    printf("IP_TTL asked for two bytes: %d in %u\n", value, (unsigned)len);
    result("SO_KEEPALIVE of one byte", setsockopt(o, SOL_SOCKET, SO_KEEPALIVE, &byte, 1));
    close(o);
}

/* An AF_UNIX socket is named once: a path that exists is EADDRINUSE first, a new one
 * EINVAL (its file made and taken away), an abstract name EINVAL, an autobind nothing. */
static void unix_rebinds(void) {
    struct sockaddr_un a = {.sun_family = AF_UNIX}, b = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "net_corners.%07d.a", getpid());
    snprintf(b.sun_path, sizeof b.sun_path, "net_corners.%07d.b", getpid());
    struct sockaddr_un abstract = {.sun_family = AF_UNIX};
    snprintf(abstract.sun_path + 1, sizeof abstract.sun_path - 1, "net_corners.%07d", getpid());
    socklen_t abstract_len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract.sun_path + 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    check(bind(s, (struct sockaddr *)&a, sizeof a) == 0, "bind");
    result("unix bind again, to its own path", bind(s, (struct sockaddr *)&a, sizeof a));
    result("to a new path", bind(s, (struct sockaddr *)&b, sizeof b));
    printf("the new path is there: %s\n", access(b.sun_path, F_OK) == 0 ? "yes" : "no");
    result("to an abstract name", bind(s, (struct sockaddr *)&abstract, abstract_len));
    result("with only a family", bind(s, (struct sockaddr *)&abstract, sizeof(sa_family_t)));
    int t = socket(AF_UNIX, SOCK_DGRAM, 0);
    check(bind(t, (struct sockaddr *)&abstract, sizeof(sa_family_t)) == 0, "autobind");
    result("an autobound socket's autobind", bind(t, (struct sockaddr *)&abstract, sizeof(sa_family_t)));
    result("its bind to a path", bind(t, (struct sockaddr *)&b, sizeof b));
    printf("the path is there: %s\n", access(b.sun_path, F_OK) == 0 ? "yes" : "no");
    close(t);
    close(s);
    unlink(a.sun_path);
}

static void output_queues(void) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = loopback(0);
    check(bind(listener, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    check(listen(listener, 0) == 0, "listen");
    at = loopback(port_of(listener));
    int queued = -1;
    result("SIOCOUTQ of a listener", ioctl(listener, SIOCOUTQ, &queued));
    int client = socket(AF_INET, SOCK_STREAM, 0);
    result("SIOCOUTQ before connecting", ioctl(client, SIOCOUTQ, &queued));
    check(connect(client, (struct sockaddr *)&at, sizeof at) == 0, "connect");
    int server = accept(listener, NULL, NULL);
    check(server >= 0, "accept");
    check(write(client, "hello", 5) == 5, "write");
    check(ioctl(client, SIOCOUTQ, &queued) == 0, "SIOCOUTQ");
    printf("TCP SIOCOUTQ after a write the peer holds: %d\n", queued);
    check(ioctl(server, SIOCINQ, &queued) == 0, "SIOCINQ");
    printf("the peer's SIOCINQ: %d\n", queued);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    check(sendto(udp, "x", 1, 0, (struct sockaddr *)&at, sizeof at) == 1, "sendto");
    check(ioctl(udp, SIOCOUTQ, &queued) == 0, "SIOCOUTQ");
    printf("UDP SIOCOUTQ after a send: %d\n", queued);
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "socketpair");
    check(ioctl(pair[0], SIOCOUTQ, &queued) == 0, "SIOCOUTQ");
    printf("AF_UNIX SIOCOUTQ with nothing sent: %d\n", queued);
    close(pair[0]);
    close(pair[1]);
    close(udp);
    close(server);
    close(client);
    close(listener);
}

/* A listener at `at` with a backlog of 0 and one connection queued, so full, and a
 * non-blocking connect to it, which waits in SYN_SENT: the connecting socket. */
static int waiting_connect(int *listener, int *first, struct sockaddr_in *at) {
    *listener = socket(AF_INET, SOCK_STREAM, 0);
    *at = loopback(0);
    check(bind(*listener, (struct sockaddr *)at, sizeof *at) == 0, "bind");
    check(listen(*listener, 0) == 0, "listen");
    *at = loopback(port_of(*listener));
    *first = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(*first, (struct sockaddr *)at, sizeof *at) == 0, "connect");
    int waiting = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    result("a non-blocking connect to a full queue", connect(waiting, (struct sockaddr *)at, sizeof *at));
    return waiting;
}

/* A non-blocking connect to a full queue waits in SYN_SENT until an accept makes room. */
static void full_queue(void) {
    int listener, first;
    struct sockaddr_in at;
    int waiting = waiting_connect(&listener, &first, &at);
    result("connect again", connect(waiting, (struct sockaddr *)&at, sizeof at));
    char c;
    result("a read meanwhile", read(waiting, &c, 1));
    result("a write meanwhile", write(waiting, "x", 1));
    struct pollfd p = {.fd = waiting, .events = POLLIN | POLLOUT};
    result("poll for 100 ms", poll(&p, 1, 100));
    int got = accept(listener, NULL, NULL);
    check(got >= 0, "accept");
    p.revents = 0;
    result("after an accept, poll for 3 s", poll(&p, 1, 3000));
    printf("revents %#x\n", p.revents);
    result("connect again", connect(waiting, (struct sockaddr *)&at, sizeof at));
    check(write(waiting, "hi", 2) == 2, "write");
    int second = accept(listener, NULL, NULL);
    check(second >= 0, "accept");
    char buf[4];
    result("the listener's next connection reads", read(second, buf, sizeof buf));
    close(second);
    close(got);
    close(waiting);

    /* Made blocking, a connect in SYN_SENT waits for the connection: a child accepts. */
    waiting = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int third = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(third, (struct sockaddr *)&at, sizeof at) == 0, "connect");
    result("a non-blocking connect to a full queue", connect(waiting, (struct sockaddr *)&at, sizeof at));
    check(fcntl(waiting, F_SETFL, 0) == 0, "F_SETFL");
    /* The child's SIGCHLD is held, so that it never interrupts the connect (a tracer sees
     * the restart). */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    check(sigprocmask(SIG_BLOCK, &chld, NULL) == 0, "sigprocmask");
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        usleep(200 * 1000);
        close(accept(listener, NULL, NULL));
        _exit(0);
    }
    result("then made blocking, connect again", connect(waiting, (struct sockaddr *)&at, sizeof at));
    check(waitpid(child, NULL, 0) == child, "waitpid");
    check(sigprocmask(SIG_UNBLOCK, &chld, NULL) == 0, "sigprocmask");
    close(third);
    close(waiting);
    close(first);
    close(listener);
}

/* Listen on a socket in SYN_SENT; a listen that raises the backlog makes room. */
static void listen_makes_room(void) {
    int listener, first;
    struct sockaddr_in at;
    int waiting = waiting_connect(&listener, &first, &at);
    result("listen on it", listen(waiting, 1));
    check(fcntl(waiting, F_SETFL, 0) == 0, "F_SETFL");
    result("made blocking, a recv with MSG_DONTWAIT", recv(waiting, (char[1]){0}, 1, MSG_DONTWAIT));
    check(listen(listener, 4) == 0, "listen");
    struct pollfd p = {.fd = waiting, .events = POLLOUT};
    result("after a listen with a longer backlog, poll for 3 s", poll(&p, 1, 3000));
    result("connect again", connect(waiting, (struct sockaddr *)&at, sizeof at));
    close(waiting);
    close(first);
    close(listener);
}

/* A connect waiting in SYN_SENT whose listener closes is refused at its next SYN. */
static void listener_gone(void) {
    int listener, first;
    struct sockaddr_in at;
    int waiting = waiting_connect(&listener, &first, &at);
    close(first);
    close(listener);
    struct pollfd p = {.fd = waiting, .events = POLLIN | POLLOUT};
    result("its listener closed, poll for 5 s", poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    int error = 0;
    socklen_t len = sizeof error;
    check(getsockopt(waiting, SOL_SOCKET, SO_ERROR, &error, &len) == 0, "getsockopt");
    printf("SO_ERROR: %s\n", error ? errno_name(error) : "0");
    char c;
    result("a read", read(waiting, &c, 1));
    result("connect again", connect(waiting, (struct sockaddr *)&at, sizeof at));
    result("a read", read(waiting, &c, 1));
    close(waiting);
}

/* A refused non-blocking connect: its error once, to the next connect or read. */
static void refusals(void) {
    int gone = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = loopback(0);
    check(bind(gone, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    at = loopback(port_of(gone));
    close(gone);
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    result("a non-blocking connect to a closed port", connect(nb, (struct sockaddr *)&at, sizeof at));
    struct pollfd p = {.fd = nb, .events = POLLOUT};
    check(poll(&p, 1, 1000) == 1, "poll");
    result("connect again", connect(nb, (struct sockaddr *)&at, sizeof at));
    result("and again", connect(nb, (struct sockaddr *)&at, sizeof at));
    check(poll(&p, 1, 1000) == 1, "poll");
    char c;
    result("a read", read(nb, &c, 1));
    result("a second read", read(nb, &c, 1));
    p.events = POLLIN | POLLOUT;
    result("poll", poll(&p, 1, 0));
    printf("revents %#x\n", p.revents);
    result("a send", send(nb, "x", 1, MSG_NOSIGNAL));
    close(nb);
}

/* Reads whose buffers run into unmapped memory: the length asked is checked, then the copy
 * faults; what Linux took stays taken. */
static void cut_buffers(void) {
    char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(page != MAP_FAILED, "mmap");
    check(munmap(page + 4096, 4096) == 0, "munmap");
    char *end = page + 4092;

    int receiver = udp_bound();
    struct sockaddr_in to = loopback(port_of(receiver));
    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    check(sendto(sender, "0123456789", 10, 0, (struct sockaddr *)&to, sizeof to) == 10, "sendto");
    result("a udp receive of 10 bytes into 4", recv(receiver, end, 100, MSG_DONTWAIT));
    result("then", recv(receiver, end, 100, MSG_DONTWAIT));
    check(sendto(sender, "012", 3, 0, (struct sockaddr *)&to, sizeof to) == 3, "sendto");
    result("of 3 bytes into 4", recv(receiver, end, 100, MSG_DONTWAIT));
    close(sender);
    close(receiver);

    int counter = eventfd(5, EFD_NONBLOCK);
    check(counter >= 0, "eventfd");
    result("an eventfd read into 4 bytes", read(counter, end, 8));
    result("then", read(counter, end, 8));
    result("a write from 4 bytes", write(counter, end, 8));
    close(counter);

    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    check(timer >= 0, "timerfd_create");
    struct itimerspec once = {.it_value = {.tv_nsec = 1000}};
    check(timerfd_settime(timer, 0, &once, NULL) == 0, "timerfd_settime");
    struct pollfd expired = {.fd = timer, .events = POLLIN};
    check(poll(&expired, 1, 1000) == 1, "poll");
    result("a timerfd read into 4 bytes", read(timer, end, 8));
    result("then", read(timer, end, 8));
    close(timer);

    sigset_t users;
    sigemptyset(&users);
    sigaddset(&users, SIGUSR1);
    sigaddset(&users, SIGUSR2);
    check(sigprocmask(SIG_BLOCK, &users, NULL) == 0, "sigprocmask");
    int signals = signalfd(-1, &users, SFD_NONBLOCK);
    check(signals >= 0, "signalfd");
    raise(SIGUSR1);
    raise(SIGUSR2);
    char *one_record = page + 4096 - sizeof(struct signalfd_siginfo) - 4;
    result("a signalfd read of two records into one and 4 bytes", read(signals, one_record, 2 * sizeof(struct signalfd_siginfo)));
    result("then", read(signals, one_record, 2 * sizeof(struct signalfd_siginfo)));
    close(signals);
    check(sigprocmask(SIG_UNBLOCK, &users, NULL) == 0, "sigprocmask");

    int pair[2];
    check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, pair) == 0, "socketpair");
    check(send(pair[0], "ab", 2, 0) == 2, "send");
    check(send(pair[0], "cdefgh", 6, 0) == 6, "send");
    result("a seqpacket read of 2 bytes into 4", read(pair[1], end, 100));
    result("of 6", read(pair[1], end, 100));
    result("then", read(pair[1], end, 100));
    close(pair[0]);
    close(pair[1]);
    munmap(page, 4096);
}

/* A seqpacket peek cut short: MSG_TRUNC in the flags, the whole length if asked. */
static void seqpacket_peeks(void) {
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) == 0, "socketpair");
    check(send(pair[0], "0123456789", 10, 0) == 10, "send");
    char buf[16];
    struct iovec v = {buf, 4};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    long got = recvmsg(pair[1], &m, MSG_PEEK);
    printf("a seqpacket peek of 4 bytes of 10: %ld, MSG_TRUNC %s\n", got, m.msg_flags & MSG_TRUNC ? "set" : "clear");
    m.msg_flags = 0;
    got = recvmsg(pair[1], &m, MSG_PEEK | MSG_TRUNC);
    printf("with MSG_TRUNC: %ld\n", got);
    v.iov_len = sizeof buf;
    m.msg_flags = 0;
    got = recvmsg(pair[1], &m, MSG_PEEK);
    printf("a peek of it whole: %ld, MSG_TRUNC %s\n", got, m.msg_flags & MSG_TRUNC ? "set" : "clear");
    result("then a read", recv(pair[1], buf, sizeof buf, 0));
    close(pair[0]);
    close(pair[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    udp();
    receives();
    options();
    unix_rebinds();
    output_queues();
    full_queue();
    listen_makes_room();
    listener_gone();
    refusals();
    seqpacket_peeks();
    cut_buffers();
    return 0;
}
