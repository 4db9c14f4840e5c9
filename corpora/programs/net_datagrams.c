/* Datagram sockets, UDP on loopback and AF_UNIX, checked against Linux: whole messages in
 * order, the sender's name, a buffer too short (the rest is lost; MSG_TRUNC), MSG_PEEK,
 * recvmsg's flags, a connected UDP socket refused by a port with nothing bound, sendto's
 * errors, an AF_UNIX receiver's queue limit, a socketpair of datagrams, and N
 * request/response round trips with a forked child over UDP. Ports and pids are never
 * printed (the socket files' pids are padded to one length: a name's length is).
 * Usage: net_datagrams [N] */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
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

static int udp_bound(struct sockaddr_in *at) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    check(fd >= 0, "socket");
    memset(at, 0, sizeof *at);
    at->sin_family = AF_INET;
    at->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(bind(fd, (struct sockaddr *)at, sizeof *at) == 0, "bind");
    socklen_t len = sizeof *at;
    check(getsockname(fd, (struct sockaddr *)at, &len) == 0, "getsockname");
    return fd;
}

static void udp(long n) {
    struct sockaddr_in server_at, client_at, from;
    int server = udp_bound(&server_at);
    int client = udp_bound(&client_at);
    char buf[64];
    socklen_t len;
    result("sendto 5 bytes", sendto(client, "hello", 5, 0, (struct sockaddr *)&server_at, sizeof server_at));
    result("sendto 0 bytes", sendto(client, "", 0, 0, (struct sockaddr *)&server_at, sizeof server_at));
    result("sendto 20 bytes", sendto(client, "twenty bytes, in one", 20, 0, (struct sockaddr *)&server_at, sizeof server_at));
    len = sizeof from;
    result("recvfrom", recvfrom(server, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
    printf("from the client: %s, name %u bytes\n", memcmp(&from, &client_at, sizeof from) == 0 ? "yes" : "no", (unsigned)len);
    result("recv of the empty one", recv(server, buf, sizeof buf, 0));
    result("recv with MSG_PEEK, 4 bytes of room", recv(server, buf, 4, MSG_PEEK));
    result("recv with MSG_TRUNC, 4 bytes of room", recv(server, buf, 4, MSG_TRUNC));
    result("recv with nothing queued, MSG_DONTWAIT", recv(server, buf, sizeof buf, MSG_DONTWAIT));
    sendto(client, "cut short", 9, 0, (struct sockaddr *)&server_at, sizeof server_at);
    struct iovec v = {.iov_base = buf, .iov_len = 3};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &v, .msg_iovlen = 1};
    result("recvmsg, 3 bytes of room", recvmsg(server, &m, 0));
    printf("its flags: %s, name %u bytes\n", m.msg_flags & MSG_TRUNC ? "MSG_TRUNC" : "none", (unsigned)m.msg_namelen);
    result("send before connecting", send(client, "x", 1, 0));
    struct sockaddr_in port0 = server_at;
    port0.sin_port = 0;
    result("sendto port 0", sendto(client, "x", 1, 0, (struct sockaddr *)&port0, sizeof port0));
    static char big[65508];
    result("sendto 65508 bytes", sendto(client, big, sizeof big, 0, (struct sockaddr *)&server_at, sizeof server_at));
    result("listen", listen(server, 1));
    result("accept", accept(server, NULL, NULL));

    /* A connected socket, to a port where nothing is bound: the refusal comes next call. */
    int lonely = udp_bound(&from);
    close(lonely);
    int refused = socket(AF_INET, SOCK_DGRAM, 0);
    check(connect(refused, (struct sockaddr *)&from, sizeof from) == 0, "connect");
    result("send to a port with nothing bound", send(refused, "x", 1, 0));
    result("then send", send(refused, "x", 1, 0));
    result("and again", send(refused, "x", 1, 0));
    close(refused);

    /* Round trips with a child over connected sockets. */
    fflush(stdout);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        check(connect(client, (struct sockaddr *)&server_at, sizeof server_at) == 0, "connect");
        for (long i = 0; i < n; i++) {
            unsigned long q = i, a = 0;
            check(send(client, &q, sizeof q, 0) == sizeof q, "send");
            check(recv(client, &a, sizeof a, 0) == sizeof a, "recv");
            if (a != q * 2) {
                printf("round trip %ld answered %lu\n", i, a);
                exit(1);
            }
        }
        exit(0);
    }
    long served = 0;
    for (long i = 0; i < n; i++) {
        unsigned long q;
        len = sizeof from;
        check(recvfrom(server, &q, sizeof q, 0, (struct sockaddr *)&from, &len) == sizeof q, "recvfrom");
        q *= 2;
        check(sendto(server, &q, sizeof q, 0, (struct sockaddr *)&from, len) == sizeof q, "sendto");
        served++;
    }
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    printf("udp: %ld round trips, the client exited %d\n", served, WEXITSTATUS(status));
    close(server);
    close(client);
}

static void unix_datagrams(void) {
    struct sockaddr_un at = {.sun_family = AF_UNIX};
    snprintf(at.sun_path, sizeof at.sun_path, "net_datagrams.%07d.sock", getpid());
    int receiver = socket(AF_UNIX, SOCK_DGRAM, 0);
    check(receiver >= 0, "socket");
    check(bind(receiver, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    int sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    check(sender >= 0, "socket");
    char buf[64];
    struct sockaddr_un from;
    socklen_t len = sizeof from;
    result("unix sendto", sendto(sender, "abc", 3, 0, (struct sockaddr *)&at, sizeof at));
    result("unix recvfrom", recvfrom(receiver, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
    printf("an unbound sender's name: %u bytes\n", (unsigned)len);
    result("unix send before connecting", send(sender, "x", 1, 0));
    int queued = 0;
    while (sendto(sender, "q", 1, 0, (struct sockaddr *)&at, sizeof at) == 1)
        queued++;
    printf("the receiver's queue took %d datagrams, then %s\n", queued, errno_name(errno));
    while (recv(receiver, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
    int stream = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un stream_at = at;
    stream_at.sun_path[0] = 'S';
    check(bind(stream, (struct sockaddr *)&stream_at, sizeof stream_at) == 0, "bind");
    result("unix sendto a stream socket's file", sendto(sender, "x", 1, 0, (struct sockaddr *)&stream_at, sizeof stream_at));
    close(stream);
    unlink(stream_at.sun_path);
    check(connect(sender, (struct sockaddr *)&at, sizeof at) == 0, "connect");
    len = sizeof from;
    check(getpeername(sender, (struct sockaddr *)&from, &len) == 0, "getpeername");
    printf("the connected sender's peer is the receiver: %s\n", strcmp(from.sun_path, at.sun_path) == 0 ? "yes" : "no");
    result("unix send connected", send(sender, "0123456789", 10, 0));
    result("unix recv, 4 bytes of room (the rest is lost)", recv(receiver, buf, 4, 0));
    result("unix recv then", recv(receiver, buf, sizeof buf, MSG_DONTWAIT));
    int other = socket(AF_UNIX, SOCK_DGRAM, 0);
    check(connect(receiver, (struct sockaddr *)&at, sizeof at) == 0, "connect to itself");
    result("unix sendto a receiver connected elsewhere", sendto(other, "x", 1, 0, (struct sockaddr *)&at, sizeof at));
    close(other);
    close(sender);
    close(receiver);
    result("unix sendto a closed receiver's file", sendto(socket(AF_UNIX, SOCK_DGRAM, 0), "x", 1, 0, (struct sockaddr *)&at, sizeof at));
    unlink(at.sun_path);
    result("unix sendto a missing file", sendto(socket(AF_UNIX, SOCK_DGRAM, 0), "x", 1, 0, (struct sockaddr *)&at, sizeof at));

    int pair[2];
    check(socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) == 0, "socketpair");
    check(send(pair[0], "one", 3, 0) == 3 && send(pair[0], "three", 5, 0) == 5, "send");
    struct pollfd p = {.fd = pair[1], .events = POLLIN | POLLOUT};
    check(poll(&p, 1, 0) == 1, "poll");
    printf("a pair's poll: %s%s\n", p.revents & POLLIN ? "in " : "", p.revents & POLLOUT ? "out" : "");
    result("a pair's first recv", recv(pair[1], buf, sizeof buf, 0));
    result("its second", read(pair[1], buf, sizeof buf));
    len = sizeof from;
    check(getsockname(pair[0], (struct sockaddr *)&from, &len) == 0, "getsockname");
    printf("a pair's name: %u bytes\n", (unsigned)len);

    /* A pair's sender is held to its send buffer, each datagram charged its overhead. */
    int full[2];
    check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, full) == 0, "socketpair");
    int sent = 0;
    while (send(full[0], "x", 1, 0) == 1 && sent < 100000)
        sent++;
    printf("a pair took %s one-byte datagrams, then %s\n", sent < 1000 ? "hundreds of" : "many", errno_name(errno));
    struct pollfd q = {.fd = full[0], .events = POLLOUT};
    printf("then POLLOUT: %s\n", poll(&q, 1, 0) == 1 ? "yes" : "no");
    /* A peer that is gone refuses once; then the socket is not connected. */
    close(full[1]);
    result("send to a closed peer", send(full[0], "x", 1, 0));
    result("and again", send(full[0], "x", 1, 0));
    /* A socket connected elsewhere refuses a connect. */
    struct sockaddr_un named = {.sun_family = AF_UNIX};
    snprintf(named.sun_path, sizeof named.sun_path, "net_datagrams.%07d.b.sock", getpid());
    int taken = socket(AF_UNIX, SOCK_DGRAM, 0), elsewhere = socket(AF_UNIX, SOCK_DGRAM, 0);
    check(bind(taken, (struct sockaddr *)&named, sizeof named) == 0, "bind");
    struct sockaddr_un auto_name = {.sun_family = AF_UNIX};
    check(bind(elsewhere, (struct sockaddr *)&auto_name, sizeof(sa_family_t)) == 0, "autobind");
    len = sizeof auto_name;
    check(getsockname(elsewhere, (struct sockaddr *)&auto_name, &len) == 0, "getsockname");
    check(connect(taken, (struct sockaddr *)&auto_name, len) == 0, "connect");
    int third = socket(AF_UNIX, SOCK_DGRAM, 0);
    result("connect to a socket connected elsewhere", connect(third, (struct sockaddr *)&named, sizeof named));
    unlink(named.sun_path);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    udp(n);
    unix_datagrams();
    return 0;
}
