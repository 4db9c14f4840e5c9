/* How a TCP connection ends, checked against Linux, call by call: the peer's close after
 * its FIN (a write is taken and answered by an RST, the next gets EPIPE), a close with data
 * unread (ECONNRESET once), SHUT_RD (the peer may still send), an RST after a FIN (EPIPE,
 * not ECONNRESET), a refused non-blocking connect, both ways shut, and an unconnected
 * socket; poll's bits at each step. Ports are never printed. Usage: tcp_close */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static long R(const char *what, long r) {
    if (r < 0)
        printf("%-50s = -1 %s\n", what, errno_name(errno));
    else
        printf("%-50s = %ld\n", what, r);
    return r;
}
#define T(x) R(#x, (long)(x))

static void pbits(const char *what, int fd) {
    struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    int r = poll(&p, 1, 0);
    printf("%-50s = %d revents=%s%s%s%s%s\n", what, r, p.revents & POLLIN ? "IN " : "",
           p.revents & POLLOUT ? "OUT " : "", p.revents & POLLERR ? "ERR " : "",
           p.revents & POLLHUP ? "HUP " : "", p.revents & POLLRDHUP ? "RDHUP " : "");
}

/* A TCP listener on 127.0.0.1, port 0; fills sin. */
static int tlisten(struct sockaddr_in *sin, int backlog) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(bind(l, (void *)sin, sizeof *sin) == 0, "bind");
    socklen_t n = sizeof *sin;
    check(getsockname(l, (void *)sin, &n) == 0, "getsockname");
    check(listen(l, backlog) == 0, "listen");
    return l;
}

/* A connected pair: *c the client, *s the server's end. */
static void tpair(int *c, int *s) {
    struct sockaddr_in sin;
    int l = tlisten(&sin, 5);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(*c, (void *)&sin, sizeof sin) == 0, "connect");
    *s = accept(l, 0, 0);
    check(*s >= 0, "accept");
    close(l);
}

/* Natively, lets loopback deliver what the last call sent; simulated, virtual time. */
static void nap(void) { usleep(20000); }

int main() {
  signal(SIGPIPE, SIG_IGN);
  int c, s; char b[64];
  puts("-- a: peer closes cleanly, then write");
  tpair(&c, &s); close(s); nap();
  pbits("poll after peer close", c);
  T(write(c, "x", 1)); nap();
  pbits("poll after write", c);
  T(write(c, "x", 1));
  T(read(c, b, 64));
  struct sockaddr_in6 a; socklen_t n = sizeof a;
  T(getpeername(c, (void*)&a, &n));
  close(c);
  puts("-- b: peer closes with unread data");
  tpair(&c, &s); T(write(c, "hello", 5)); nap(); close(s); nap();
  pbits("poll after reset", c);
  n = sizeof a; T(getpeername(c, (void*)&a, &n));
  int e; socklen_t el = 4; T(getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el)); printf("so_error=%s\n", errno_name(e));
  T(read(c, b, 64)); T(read(c, b, 64)); T(write(c, "x", 1));
  close(c);
  puts("-- b2: reset, then write first");
  tpair(&c, &s); T(write(c, "hello", 5)); nap(); close(s); nap();
  T(write(c, "x", 1)); T(write(c, "x", 1)); T(read(c, b, 64));
  close(c);
  puts("-- c: SHUT_RD then peer writes");
  tpair(&c, &s); T(shutdown(c, SHUT_RD));
  T(write(s, "abc", 3)); nap();
  pbits("poll c after SHUT_RD", c);
  pbits("poll s", s);
  T(read(c, b, 64)); T(write(s, "abc", 3)); close(c); close(s);
  puts("-- d: peer SHUT_WR, then close with unread data");
  tpair(&c, &s); T(write(c, "hello", 5)); T(shutdown(s, SHUT_WR)); nap(); close(s); nap();
  pbits("poll c", c);
  T(read(c, b, 64)); T(read(c, b, 64)); T(write(c, "x", 1)); T(write(c, "x", 1));
  close(c);
  puts("-- e: nonblocking connect to nothing");
  struct sockaddr_in sin; int l = tlisten(&sin, 1); close(l);
  c = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0);
  T(connect(c, (void*)&sin, sizeof sin)); nap();
  pbits("poll", c);
  el = 4; T(getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &el)); printf("so_error=%s\n", errno_name(e));
  T(connect(c, (void*)&sin, sizeof sin));
  close(c);
  puts("-- f: both shut down");
  tpair(&c, &s); T(shutdown(c, SHUT_WR)); T(shutdown(s, SHUT_WR)); nap();
  pbits("poll c", c);
  n = sizeof a; T(getpeername(c, (void*)&a, &n));
  T(shutdown(c, SHUT_RDWR));
  close(c); close(s);
  puts("-- g: unconnected");
  c = socket(AF_INET, SOCK_STREAM, 0);
  pbits("poll unconnected", c);
  T(shutdown(c, SHUT_WR));
  T(recv(c, b, 0, 0)); T(read(c, b, 0)); T(write(c, b, 0));
  return 0;
}
