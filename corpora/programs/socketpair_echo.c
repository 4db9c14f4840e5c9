/* A connected AF_UNIX stream pair (socketpair): N one-byte round trips between a parent and
 * its forked child (send and recv, read and write), then what Linux answers at the edges: a
 * recv with nothing there under MSG_DONTWAIT, poll before and after data, sendto with an
 * address, recvfrom's empty peer name, shutdown's end of file, a send to a closed peer with
 * MSG_NOSIGNAL (EPIPE, no signal), a pair of another family, FIONREAD on a socket and a
 * pipe, the pair's names and some of its options. Usage: socketpair_echo [N] */
#include "check.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        close(sv[0]);
        char c;
        long echoed = 0;
        for (;;) {
            ssize_t got = echoed % 2 ? read(sv[1], &c, 1) : recv(sv[1], &c, 1, 0);
            if (got == 0)
                break;
            check(got == 1, "child recv");
            c++;
            check((echoed % 2 ? write(sv[1], &c, 1) : send(sv[1], &c, 1, 0)) == 1, "child send");
            echoed++;
        }
        printf("child: echoed %ld bytes, then end of file\n", echoed);
        return 0;
    }
    close(sv[1]);
    char c = 0, back;
    check(recv(sv[0], &back, 1, MSG_DONTWAIT) < 0, "an empty recv");
    printf("empty recv with MSG_DONTWAIT: %s\n", errno_name(errno));
    struct pollfd p = {.fd = sv[0], .events = POLLIN | POLLOUT};
    check(poll(&p, 1, 0) == 1, "poll");
    printf("poll before data: %s%s\n", p.revents & POLLIN ? "in " : "", p.revents & POLLOUT ? "out" : "");
    struct sockaddr_un somewhere = {.sun_family = AF_UNIX};
    strcpy(somewhere.sun_path, "/nowhere");
    check(sendto(sv[0], &c, 1, 0, (struct sockaddr *)&somewhere, sizeof somewhere) < 0, "sendto");
    printf("sendto with an address: %s\n", errno_name(errno));
    for (long i = 0; i < n; i++) {
        check(send(sv[0], &c, 1, 0) == 1, "send");
        if (i == 0) {
            p.revents = 0;
            p.events = POLLIN;
            check(poll(&p, 1, -1) == 1, "poll for the echo");
            printf("poll for the echo: %s\n", p.revents & POLLIN ? "in" : "?");
            struct sockaddr_un from;
            socklen_t len = sizeof from;
            check(recvfrom(sv[0], &back, 1, 0, (struct sockaddr *)&from, &len) == 1, "recvfrom");
            printf("recvfrom's peer name: %u bytes\n", (unsigned)len);
        } else {
            check(recv(sv[0], &back, 1, 0) == 1, "recv");
        }
        check(back == (char)(c + 1), "the echo");
        c = back;
    }
    printf("parent: %ld round trips, last byte %d\n", n, (unsigned char)c);
    check(shutdown(sv[0], SHUT_WR) == 0, "shutdown");
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    printf("child exited %d\n", WEXITSTATUS(status));
    p.events = POLLIN;
    p.revents = 0;
    check(poll(&p, 1, 0) == 1, "poll after the peer's end");
    printf("poll after the peer closed: %s%s\n", p.revents & POLLIN ? "in " : "", p.revents & POLLHUP ? "hup" : "");
    check(recv(sv[0], &back, 1, 0) == 0, "end of file");
    check(send(sv[0], &c, 1, MSG_NOSIGNAL) < 0, "a send after shutdown");
    printf("send after shutdown, MSG_NOSIGNAL: %s\n", errno_name(errno));
    check(shutdown(sv[0], 7) < 0, "a bad shutdown");
    printf("shutdown how 7: %s\n", errno_name(errno));
    check(shutdown(1, SHUT_RD) < 0, "shutdown of stdout");
    printf("shutdown of a pipe or file: %s\n", errno_name(errno));
    int other[2];
    check(socketpair(AF_INET, SOCK_STREAM, 0, other) < 0, "an AF_INET pair");
    printf("socketpair(AF_INET): %s\n", errno_name(errno));
    int queued, pair[2], pipe_ends[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0 && pipe(pipe_ends) == 0, "another pair");
    check(write(pair[0], "abc", 3) == 3 && write(pipe_ends[1], "hello", 5) == 5, "writes");
    check(ioctl(pair[1], FIONREAD, &queued) == 0, "FIONREAD on a socket");
    printf("FIONREAD: socket %d,", queued);
    check(ioctl(pipe_ends[0], FIONREAD, &queued) == 0, "FIONREAD on a pipe");
    printf(" pipe %d\n", queued);
    struct sockaddr_un me, peer;
    socklen_t me_len = sizeof me, peer_len = 1;
    check(getsockname(pair[0], (struct sockaddr *)&me, &me_len) == 0, "getsockname");
    check(getpeername(pair[0], (struct sockaddr *)&peer, &peer_len) == 0, "getpeername");
    printf("names: %u bytes, family %d; peer %u bytes in a 1-byte room\n", (unsigned)me_len,
           me.sun_family, (unsigned)peer_len);
    int type, domain, error = -1;
    socklen_t len = sizeof type;
    check(getsockopt(pair[0], SOL_SOCKET, SO_TYPE, &type, &len) == 0, "SO_TYPE");
    len = sizeof domain;
    check(getsockopt(pair[0], SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0, "SO_DOMAIN");
    len = sizeof error;
    check(getsockopt(pair[0], SOL_SOCKET, SO_ERROR, &error, &len) == 0, "SO_ERROR");
    printf("SO_TYPE %d, SO_DOMAIN %d, SO_ERROR %d (%u bytes)\n", type, domain, error, (unsigned)len);
    return 0;
}
