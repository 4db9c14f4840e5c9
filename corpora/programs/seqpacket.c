/* AF_UNIX SOCK_SEQPACKET, checked against Linux: messages kept whole on a connection, a
 * read that cuts one (the rest dropped; MSG_TRUNC), an empty message, FIONREAD, a message
 * longer than a stream's buffer, EMSGSIZE, a peer's close, listen/accept/connect by path and
 * abstract name, a connect to a stream listener, and round trips with a child.
 * Usage: seqpacket [round trips] */
#include "check.h"

#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void result(const char *what, long ret) {
    if (ret < 0)
        printf("%s: %s\n", what, errno_name(errno));
    else
        printf("%s: %ld\n", what, ret);
}

static socklen_t abstract_name(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path + 1, name);
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair");
    int type;
    socklen_t len = sizeof type;
    check(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len) == 0, "getsockopt");
    printf("SO_TYPE: %d\n", type);
    result("send hello", send(sv[0], "hello", 5, 0));
    result("send an empty message", send(sv[0], "", 0, 0));
    result("send world!", send(sv[0], "world!", 6, MSG_EOR));
    int queued;
    check(ioctl(sv[1], FIONREAD, &queued) == 0, "ioctl");
    printf("FIONREAD: %d\n", queued);
    char buf[16];
    struct iovec iov = {buf, 3};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    result("recvmsg into 3 bytes", recvmsg(sv[1], &m, 0));
    printf("what came: %.3s, MSG_TRUNC: %s\n", buf, m.msg_flags & MSG_TRUNC ? "yes" : "no");
    result("the empty message", recv(sv[1], buf, sizeof buf, 0));
    result("recv 2 bytes with MSG_TRUNC: the whole length", recv(sv[1], buf, 2, MSG_TRUNC));
    result("nothing left", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));

    static char big[300000];
    result("a 100000-byte message", send(sv[0], big, 100000, 0));
    result("read whole", recv(sv[1], big, sizeof big, 0));
    result("a 300000-byte message", send(sv[0], big, 300000, 0));
    close(sv[0]);
    result("recv after the peer's close", recv(sv[1], buf, sizeof buf, 0));
    result("send after the peer's close", send(sv[1], "x", 1, MSG_NOSIGNAL));

    int lone = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    result("recv unconnected", recv(lone, buf, sizeof buf, MSG_DONTWAIT));
    result("send unconnected", send(lone, "x", 1, MSG_NOSIGNAL));
    result("listen unbound", listen(lone, 1));

    struct sockaddr_un path = {.sun_family = AF_UNIX};
    snprintf(path.sun_path, sizeof path.sun_path, "seqpacket.sock.%d", getpid());
    unlink(path.sun_path);
    int stream = socket(AF_UNIX, SOCK_STREAM, 0);
    check(bind(stream, (struct sockaddr *)&path, sizeof path) == 0, "bind");
    check(listen(stream, 1) == 0, "listen");
    result("connect to a stream listener by path", connect(lone, (struct sockaddr *)&path, sizeof path));
    struct sockaddr_un name;
    socklen_t name_len = abstract_name(&name, "ringsim-seqpacket-stream");
    int stream2 = socket(AF_UNIX, SOCK_STREAM, 0);
    check(bind(stream2, (struct sockaddr *)&name, name_len) == 0, "bind");
    check(listen(stream2, 1) == 0, "listen");
    result("connect to a stream listener by abstract name", connect(lone, (struct sockaddr *)&name, name_len));
    close(stream);
    close(stream2);
    unlink(path.sun_path);

    int server = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    name_len = abstract_name(&name, "ringsim-seqpacket");
    check(bind(server, (struct sockaddr *)&name, name_len) == 0, "bind");
    check(listen(server, 4) == 0, "listen");
    fflush(stdout);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        int c = accept(server, NULL, NULL);
        check(c >= 0, "accept");
        char msg[64];
        ssize_t n;
        while ((n = recv(c, msg, sizeof msg, 0)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                msg[i] = msg[i] >= 'a' && msg[i] <= 'z' ? msg[i] - 32 : msg[i];
            check(send(c, msg, n, 0) == n, "send");
        }
        _exit(n == 0 ? 0 : 1);
    }
    int client = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    check(connect(client, (struct sockaddr *)&name, name_len) == 0, "connect");
    struct sockaddr_un peer;
    socklen_t peer_len = sizeof peer;
    check(getpeername(client, (struct sockaddr *)&peer, &peer_len) == 0, "getpeername");
    printf("the peer's name: %s\n", peer.sun_path + 1);
    int whole = 0;
    for (int i = 0; i < rounds; i++) {
        char msg[32], back[64];
        int n = snprintf(msg, sizeof msg, "message %d", i);
        check(sendto(client, msg, n, 0, (struct sockaddr *)&path, sizeof path) == n, "sendto");
        ssize_t got = recv(client, back, sizeof back, 0);
        whole += got == n && strncmp(back, "MESSAGE ", 8) == 0;
    }
    printf("round trips answered whole: %d of %d\n", whole, rounds);
    close(client);
    int status;
    waitpid(child, &status, 0);
    printf("the child's exit: %d\n", WEXITSTATUS(status));
    return 0;
}
