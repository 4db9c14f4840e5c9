/* Descriptors passed over AF_UNIX sockets (SCM_RIGHTS), checked against Linux: with a
 * stream's bytes (a read takes them and stops after their message), with a datagram, to
 * another process, with MSG_CMSG_CLOEXEC, into a control buffer too small (MSG_CTRUNC), to
 * a plain read (they are closed), and the errors. Usage: fd_passing */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static ssize_t send_fds(int sock, const char *bytes, int *fds, int n) {
    struct iovec v = {.iov_base = (void *)bytes, .iov_len = strlen(bytes)};
    char control[CMSG_SPACE(4 * sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    if (n > 0) {
        m.msg_control = control;
        m.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    return sendmsg(sock, &m, 0);
}

/* Receives into a buffer of `room` bytes with `control_room` bytes of control; prints what
 * came, and returns the first descriptor received, or -1. */
static int receive(int sock, size_t room, size_t control_room, int flags, const char *what) {
    char buf[64] = {0};
    char control[CMSG_SPACE(4 * sizeof(int))];
    struct iovec v = {.iov_base = buf, .iov_len = room};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = control_room};
    ssize_t got = recvmsg(sock, &m, flags);
    check(got >= 0, what);
    int first = -1, count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(&first, CMSG_DATA(c), sizeof(int));
        }
    }
    printf("%s: %zd bytes \"%.*s\", %d descriptors, controllen %zu%s%s\n", what, got, (int)got, buf, count,
           (size_t)m.msg_controllen, m.msg_flags & MSG_CTRUNC ? ", MSG_CTRUNC" : "",
           m.msg_flags & MSG_TRUNC ? ", MSG_TRUNC" : "");
    return first;
}

int main(void) {
    int sv[2], p[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    check(pipe(p) == 0, "pipe");
    check(send_fds(sv[0], "abc", &p[1], 1) == 3, "sendmsg");
    int got = receive(sv[1], sizeof(char[64]) - 1, CMSG_SPACE(sizeof(int)), 0, "a stream's message with one");
    printf("it is the lowest free number: %s\n", got == 7 ? "yes" : "no");
    check(write(got, "via", 3) == 3, "write through it");
    char back[8] = {0};
    check(read(p[0], back, sizeof back) == 3, "read");
    printf("through the received descriptor: %s\n", back);
    close(got);

    check(send_fds(sv[0], "xy", NULL, 0) == 2, "send");
    check(send_fds(sv[0], "z", &p[1], 1) == 1, "sendmsg");
    check(send_fds(sv[0], "after", NULL, 0) == 5, "send");
    got = receive(sv[1], 63, CMSG_SPACE(sizeof(int)), 0, "bytes before and with the descriptor");
    close(got);
    receive(sv[1], 63, CMSG_SPACE(sizeof(int)), 0, "then the rest");

    check(send_fds(sv[0], "q", &p[1], 1) == 1, "sendmsg");
    got = receive(sv[1], 63, CMSG_SPACE(sizeof(int)), MSG_CMSG_CLOEXEC, "with MSG_CMSG_CLOEXEC");
    printf("close-on-exec: %s\n", fcntl(got, F_GETFD) & FD_CLOEXEC ? "set" : "clear");
    close(got);

    check(send_fds(sv[0], "t", &p[1], 1) == 1, "sendmsg");
    receive(sv[1], 63, CMSG_LEN(0), 0, "into a control buffer with no room");
    printf("descriptor 7 after that: %s\n", fcntl(7, F_GETFD) < 0 ? errno_name(errno) : "open");

    check(send_fds(sv[0], "r", &p[1], 1) == 1, "sendmsg");
    char c;
    printf("a plain read takes %zd byte\n", read(sv[1], &c, 1));
    printf("descriptor 7 after that: %s\n", fcntl(7, F_GETFD) < 0 ? errno_name(errno) : "open");

    int bad = 999;
    printf("sendmsg of a descriptor not open: %s\n", send_fds(sv[0], "x", &bad, 1) < 0 ? errno_name(errno) : "ok");

    int dg[2];
    check(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) == 0, "socketpair");
    int two[2] = {p[0], p[1]};
    check(send_fds(dg[0], "datagram", two, 2) == 8, "sendmsg");
    got = receive(dg[1], 4, CMSG_SPACE(2 * sizeof(int)), 0, "a datagram with two, 4 bytes of room");
    close(got);
    close(got + 1);

    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(connect(udp, (struct sockaddr *)&to, sizeof to) == 0, "connect");
    printf("SCM_RIGHTS over UDP: %s\n", send_fds(udp, "x", &p[1], 1) < 0 ? errno_name(errno) : "ok");

    fflush(stdout);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        close(sv[0]);
        int fd = receive(sv[1], 63, CMSG_SPACE(sizeof(int)), 0, "the child receives");
        check(write(fd, "from the child", 14) == 14, "write");
        fflush(stdout);
        _exit(0);
    }
    int q[2];
    check(pipe(q) == 0, "pipe");
    check(send_fds(sv[0], "k", &q[1], 1) == 1, "sendmsg");
    close(q[1]);
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    char text[32] = {0};
    check(read(q[0], text, sizeof text) == 14, "read");
    printf("the parent reads: %s\n", text);
    return 0;
}
