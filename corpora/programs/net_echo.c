/* A client and a server of our own, over one connection: the server (the parent) binds,
 * listens and accepts; its forked child connects and makes N request/response round trips
 * of 8 bytes (a counter the server answers with the counter plus one), then closes. The
 * transport is the first argument: unix (a socket file named by the pid, padded to one length
 * because the path's length reaches connect's arguments), abstract (an autobound abstract
 * name), tcp (127.0.0.1) or tcp6 (::1); the ports and names the kernel picks are used, never
 * printed. Usage: net_echo unix|abstract|tcp|tcp6 [N] */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int whole(int fd, void *buf, size_t len, int writing) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = writing ? write(fd, (char *)buf + done, len - done)
                            : read(fd, (char *)buf + done, len - done);
        if (n <= 0)
            return n == 0 && done == 0 ? 0 : -1;
        done += n;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "tcp";
    long n = argc > 2 ? atol(argv[2]) : 10000;
    struct sockaddr_storage at;
    socklen_t len;
    int family;
    memset(&at, 0, sizeof at);
    char path[64];
    snprintf(path, sizeof path, "net_echo.%07d.sock", getpid());
    if (strcmp(how, "tcp") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&at;
        in->sin_family = family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *in;
    } else if (strcmp(how, "tcp6") == 0) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&at;
        in6->sin6_family = family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        len = sizeof *in6;
    } else if (strcmp(how, "unix") == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&at;
        un->sun_family = family = AF_UNIX;
        strcpy(un->sun_path, path);
        len = sizeof *un;
    } else if (strcmp(how, "abstract") == 0) {
        at.ss_family = family = AF_UNIX;
        len = sizeof(sa_family_t);
    } else {
        printf("net_echo: unknown transport %s\n", how);
        return 2;
    }
    int server = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(server >= 0, "socket");
    int one = 1;
    if (family != AF_UNIX)
        check(setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    check(bind(server, (struct sockaddr *)&at, len) == 0, "bind");
    check(listen(server, 8) == 0, "listen");
    len = sizeof at;
    check(getsockname(server, (struct sockaddr *)&at, &len) == 0, "getsockname");

    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        int c = socket(family, SOCK_STREAM, 0);
        check(c >= 0, "client socket");
        if (family != AF_UNIX)
            check(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");
        check(connect(c, (struct sockaddr *)&at, len) == 0, "connect");
        for (long i = 0; i < n; i++) {
            unsigned long request = i, answer;
            check(whole(c, &request, sizeof request, 1) == 1, "client write");
            check(whole(c, &answer, sizeof answer, 0) == 1, "client read");
            if (answer != request + 1) {
                printf("net_echo: round trip %ld answered %lu\n", i, answer);
                return 1;
            }
        }
        close(c);
        return 0;
    }
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int conn = accept4(server, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);
    check(conn >= 0, "accept4");
    long served = 0;
    for (;;) {
        unsigned long request;
        int got = whole(conn, &request, sizeof request, 0);
        if (got == 0)
            break;
        check(got == 1, "server read");
        request++;
        check(whole(conn, &request, sizeof request, 1) == 1, "server write");
        served++;
    }
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    check(getsockname(conn, (struct sockaddr *)&local, &local_len) == 0, "accepted getsockname");
    printf("%s: %ld round trips served, client exited %d\n", how, served,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    int same = local_len == len && memcmp(&local, &at, len) == 0;
    printf("peer family %d, name %u bytes; the accepted socket is named as the listener: %s\n",
           peer.ss_family, (unsigned)peer_len, same ? "yes" : "no");
    close(conn);
    close(server);
    if (strcmp(how, "unix") == 0)
        check(unlink(path) == 0, "unlink");
    return 0;
}
