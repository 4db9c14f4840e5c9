/* What Linux answers at the edges of its sockets, over loopback and AF_UNIX, one line
 * each: names before and after bind, EADDRINUSE and SO_REUSEADDR, ECONNREFUSED, reads and
 * writes before connecting, a non-blocking connect and accept, a TCP socket connected to
 * itself, a close with unread data (ECONNRESET), options set and read back, socket
 * files, MSG_PEEK on streams and a message of too many iovecs. Ports and paths the kernel
 * or the pid choose are never printed (the pid is padded to one length: a name's length
 * is). Usage: net_edges */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void result(const char *what, int ret) {
    printf("%s: %s\n", what, ret < 0 ? errno_name(errno) : "ok");
}

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return in;
}

static unsigned short port_of(int fd) {
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    check(getsockname(fd, (struct sockaddr *)&in, &len) == 0, "getsockname");
    return ntohs(in.sin_port);
}

static int tcp(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    check(fd >= 0, "socket");
    return fd;
}

static int option(int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    check(getsockopt(fd, level, name, &value, &len) == 0, "getsockopt");
    return value;
}

/* A connected TCP pair: a listener's first connection, and the listener. */
static void tcp_pair(int *client, int *accepted) {
    int server = tcp();
    struct sockaddr_in at = loopback(0);
    check(bind(server, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    check(listen(server, 1) == 0, "listen");
    at.sin_port = htons(port_of(server));
    *client = tcp();
    check(connect(*client, (struct sockaddr *)&at, sizeof at) == 0, "connect");
    *accepted = accept(server, NULL, NULL);
    check(*accepted >= 0, "accept");
    close(server);
}

static void internet(void) {
    int a = tcp();
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    check(getsockname(a, (struct sockaddr *)&in, &len) == 0, "getsockname");
    printf("unbound name: %s port %d, %u bytes\n", inet_ntoa(in.sin_addr), ntohs(in.sin_port), (unsigned)len);
    char c = 'x';
    result("read before connecting", read(a, &c, 1));
    result("send before connecting", send(a, &c, 1, MSG_NOSIGNAL));
    result("getpeername before connecting", getpeername(a, (struct sockaddr *)&in, &len));
    result("accept before listening", accept(a, NULL, NULL));
    result("shutdown before connecting", shutdown(a, SHUT_RDWR));
    struct sockaddr_in at = loopback(0);
    at.sin_addr.s_addr = htonl(0x0a000001);
    result("bind to an address not here", bind(a, (struct sockaddr *)&at, sizeof at));
    result("bind with a short length", bind(a, (struct sockaddr *)&at, sizeof at - 1));
    at = loopback(0);
    result("bind to port 0", bind(a, (struct sockaddr *)&at, sizeof at));
    unsigned short port = port_of(a);
    printf("port picked: %s\n", port >= 1024 ? "unprivileged" : "privileged");
    result("bind again", bind(a, (struct sockaddr *)&at, sizeof at));
    int b = tcp();
    at.sin_port = htons(port);
    result("bind to a taken port", bind(b, (struct sockaddr *)&at, sizeof at));
    int one = 1;
    check(setsockopt(a, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    check(setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    result("bind to it with SO_REUSEADDR, neither listening", bind(b, (struct sockaddr *)&at, sizeof at));
    result("listen", listen(a, 4));
    result("listen on the same port", listen(b, 4));
    close(b);
    printf("SO_ACCEPTCONN: %d\n", option(a, SOL_SOCKET, SO_ACCEPTCONN));

    /* Nothing listens on a port that was bound and closed. */
    int gone = tcp();
    struct sockaddr_in free_port = loopback(0);
    check(bind(gone, (struct sockaddr *)&free_port, sizeof free_port) == 0, "bind");
    free_port.sin_port = htons(port_of(gone));
    close(gone);
    int c1 = tcp();
    result("connect to a closed port", connect(c1, (struct sockaddr *)&free_port, sizeof free_port));
    close(c1);

    /* A non-blocking connect, and accept. */
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    check(nb >= 0, "socket");
    result("non-blocking connect", connect(nb, (struct sockaddr *)&at, sizeof at));
    struct pollfd p = {.fd = nb, .events = POLLOUT};
    check(poll(&p, 1, 1000) == 1, "poll");
    printf("then poll: %s, SO_ERROR %d\n", p.revents & POLLOUT ? "out" : "?", option(nb, SOL_SOCKET, SO_ERROR));
    result("connect again", connect(nb, (struct sockaddr *)&at, sizeof at));
    int got = accept4(a, NULL, NULL, SOCK_NONBLOCK);
    check(got >= 0, "accept4");
    printf("accept4 SOCK_NONBLOCK: %s\n", fcntl(got, F_GETFL) & O_NONBLOCK ? "non-blocking" : "blocking");
    check(fcntl(a, F_SETFL, O_NONBLOCK) == 0, "F_SETFL");
    result("non-blocking accept, none waiting", accept(a, NULL, NULL));
    struct sockaddr_in mine, theirs;
    socklen_t mine_len = sizeof mine, theirs_len = sizeof theirs;
    check(getsockname(nb, (struct sockaddr *)&mine, &mine_len) == 0, "getsockname");
    check(getpeername(got, (struct sockaddr *)&theirs, &theirs_len) == 0, "getpeername");
    printf("the server's peer is the client: %s\n", memcmp(&mine, &theirs, sizeof mine) == 0 ? "yes" : "no");
    close(nb);
    close(got);
    close(a);

    /* A close with unread data resets the connection. */
    int client, accepted;
    tcp_pair(&client, &accepted);
    check(write(client, "ab", 2) == 2, "write");
    check(write(accepted, "xyz", 3) == 3, "write");
    close(accepted);
    char buf[8];
    ssize_t n = read(client, buf, sizeof buf);
    printf("after a close with unread data, the peer reads %zd bytes\n", n);
    result("then reads", read(client, buf, sizeof buf));
    result("and then", read(client, buf, sizeof buf));
    result("and writes", send(client, "q", 1, MSG_NOSIGNAL));
    close(client);

    /* An orderly close: end of file, then EPIPE. */
    tcp_pair(&client, &accepted);
    close(accepted);
    result("after an orderly close, the peer reads", read(client, buf, sizeof buf));
    close(client);

    /* A TCP socket bound to a port and connected to it is connected to itself. */
    int self = tcp();
    at = loopback(0);
    check(bind(self, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    at.sin_port = htons(port_of(self));
    result("connect to itself", connect(self, (struct sockaddr *)&at, sizeof at));
    check(write(self, "me", 2) == 2, "write");
    n = read(self, buf, sizeof buf);
    printf("and reads back %zd bytes: %.2s\n", n, buf);
    close(self);

    /* Options. */
    int o = tcp();
    printf("SO_TYPE %d, SO_PROTOCOL %d, TCP_NODELAY %d\n", option(o, SOL_SOCKET, SO_TYPE),
           option(o, SOL_SOCKET, SO_PROTOCOL), option(o, IPPROTO_TCP, TCP_NODELAY));
    int v = 4096;
    check(setsockopt(o, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0, "SO_RCVBUF");
    check(setsockopt(o, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");
    v = 30;
    check(setsockopt(o, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v) == 0, "TCP_KEEPIDLE");
    printf("set: SO_RCVBUF 4096 reads %d, TCP_NODELAY %d, TCP_KEEPIDLE %d\n", option(o, SOL_SOCKET, SO_RCVBUF),
           option(o, IPPROTO_TCP, TCP_NODELAY), option(o, IPPROTO_TCP, TCP_KEEPIDLE));
    result("setsockopt with a short length", setsockopt(o, SOL_SOCKET, SO_KEEPALIVE, &one, 2));
    result("setsockopt SO_TYPE", setsockopt(o, SOL_SOCKET, SO_TYPE, &one, sizeof one));
    result("setsockopt of an unknown option", setsockopt(o, SOL_SOCKET, 9999, &one, sizeof one));
    result("setsockopt IPV6_V6ONLY on IPv4", setsockopt(o, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    v = 0xff;
    check(setsockopt(o, IPPROTO_IP, IP_TOS, &v, sizeof v) == 0, "IP_TOS");
    printf("IP_TOS 0xff reads %#x (TCP keeps the ECN bits)\n", option(o, IPPROTO_IP, IP_TOS));
    v = 7;
    check(setsockopt(o, IPPROTO_IP, IP_TTL, &v, sizeof v) == 0, "IP_TTL");
    v = -1;
    result("IP_TTL -1", setsockopt(o, IPPROTO_IP, IP_TTL, &v, sizeof v));
    printf("then IP_TTL reads %d\n", option(o, IPPROTO_IP, IP_TTL));
    result("SO_KEEPALIVE with no length", setsockopt(o, SOL_SOCKET, SO_KEEPALIVE, &one, 0));
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    result("TCP_NODELAY on UDP", setsockopt(udp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    close(udp);
    struct linger l = {.l_onoff = 1, .l_linger = 5};
    check(setsockopt(o, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0, "SO_LINGER");
    struct linger back;
    socklen_t back_len = sizeof back;
    check(getsockopt(o, SOL_SOCKET, SO_LINGER, &back, &back_len) == 0, "getsockopt");
    printf("SO_LINGER reads on %d, %d s\n", back.l_onoff, back.l_linger);
    close(o);

    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    check(v6 >= 0, "socket");
    printf("IPV6_V6ONLY: %d\n", option(v6, IPPROTO_IPV6, IPV6_V6ONLY));
    close(v6);
}

static void unix_domain(void) {
    int a = socket(AF_UNIX, SOCK_STREAM, 0);
    check(a >= 0, "socket");
    char c = 0;
    result("unix read before connecting", read(a, &c, 1));
    result("unix send before connecting", send(a, &c, 1, MSG_NOSIGNAL));
    result("unix listen before bind", listen(a, 1));
    result("unix shutdown before connecting", shutdown(a, SHUT_WR));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "net_edges.%07d.sock", getpid());
    result("unix bind to a path", bind(a, (struct sockaddr *)&un, sizeof un));
    struct stat st;
    check(stat(un.sun_path, &st) == 0, "stat");
    printf("the path is a socket: %s\n", S_ISSOCK(st.st_mode) ? "yes" : "no");
    struct sockaddr_un name;
    socklen_t len = sizeof name;
    check(getsockname(a, (struct sockaddr *)&name, &len) == 0, "getsockname");
    printf("its name is %u bytes, the path's: %s\n", (unsigned)len,
           len == 2 + strlen(un.sun_path) + 1 && strcmp(name.sun_path, un.sun_path) == 0 ? "yes" : "no");
    int b = socket(AF_UNIX, SOCK_STREAM, 0);
    result("unix bind to the same path", bind(b, (struct sockaddr *)&un, sizeof un));
    result("unix connect before listen", connect(b, (struct sockaddr *)&un, sizeof un));
    check(listen(a, 0) == 0, "listen");
    result("unix connect", connect(b, (struct sockaddr *)&un, sizeof un));
    int full = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    result("unix non-blocking connect to a full queue", connect(full, (struct sockaddr *)&un, sizeof un));
    int got = accept(a, NULL, NULL);
    check(got >= 0, "accept");
    result("unix connect again", connect(b, (struct sockaddr *)&un, sizeof un));
    int nb = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    result("unix non-blocking connect to a queue with room", connect(nb, (struct sockaddr *)&un, sizeof un));
    check(write(b, "hi", 2) == 2, "write");
    close(got);
    char buf[4];
    result("unix read after a close with unread data", read(b, buf, sizeof buf));
    result("then", read(b, buf, sizeof buf));
    close(b);
    close(nb);
    close(full);
    close(a);
    result("unix connect after the listener closed", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&un, sizeof un));
    check(unlink(un.sun_path) == 0, "unlink");
    result("unix connect to a missing path", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&un, sizeof un));
    /* A file of its own, writable whoever runs it (a directory of root's would be EACCES
     * for another user, and the snapshot would follow the user). */
    snprintf(un.sun_path, sizeof un.sun_path, "net_edges.%07d.file", getpid());
    close(open(un.sun_path, O_CREAT | O_WRONLY, 0600));
    result("unix connect to a regular file", connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&un, sizeof un));
    unlink(un.sun_path);

    int auto1 = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un bare = {.sun_family = AF_UNIX};
    result("unix autobind", bind(auto1, (struct sockaddr *)&bare, sizeof(sa_family_t)));
    len = sizeof name;
    check(getsockname(auto1, (struct sockaddr *)&name, &len) == 0, "getsockname");
    printf("autobound name: %u bytes, abstract: %s\n", (unsigned)len, name.sun_path[0] == 0 ? "yes" : "no");
    int dup_name = socket(AF_UNIX, SOCK_STREAM, 0);
    result("unix bind to the same abstract name", bind(dup_name, (struct sockaddr *)&name, len));
    result("unix connect with only a family", connect(dup_name, (struct sockaddr *)&bare, sizeof(sa_family_t)));
    struct sockaddr_in inet = loopback(0);
    result("unix bind with a wrong family", bind(dup_name, (struct sockaddr *)&inet, sizeof inet));
    result("unix getsockopt TCP_NODELAY", getsockopt(dup_name, IPPROTO_TCP, TCP_NODELAY, &c, &len));
    int on = 1;
    result("unix SO_REUSEPORT", setsockopt(dup_name, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on));
}

/* MSG_PEEK on streams, TCP and AF_UNIX: the bytes stay for the next read; and a message
 * of more iovecs than UIO_MAXIOV. */
static void peeks(void) {
    int pairs[2][2];
    int listener = tcp();
    struct sockaddr_in at = loopback(0);
    check(bind(listener, (struct sockaddr *)&at, sizeof at) == 0, "bind");
    check(listen(listener, 1) == 0, "listen");
    at = loopback(port_of(listener));
    pairs[0][0] = tcp();
    check(connect(pairs[0][0], (struct sockaddr *)&at, sizeof at) == 0, "connect");
    pairs[0][1] = accept(listener, NULL, NULL);
    check(pairs[0][1] >= 0, "accept");
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[1]) == 0, "socketpair");
    const char *names[] = {"tcp", "unix"};
    for (int i = 0; i < 2; i++) {
        char buf[16] = {0};
        printf("%s peek with nothing sent: %zd (%s)\n", names[i],
               recv(pairs[i][1], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), errno_name(errno));
        check(send(pairs[i][0], "peekaboo", 8, 0) == 8, "send");
        ssize_t peeked = recv(pairs[i][1], buf, 4, MSG_PEEK);
        printf("%s peek of 4: %zd \"%.4s\"\n", names[i], peeked, buf);
        ssize_t got = recv(pairs[i][1], buf, sizeof buf, 0);
        printf("%s then a read: %zd \"%.*s\"\n", names[i], got, (int)got, buf);
        close(pairs[i][0]);
        printf("%s peek at end of file: %zd\n", names[i], recv(pairs[i][1], buf, sizeof buf, MSG_PEEK));
        close(pairs[i][1]);
    }
    close(listener);
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    static struct iovec many[1025];
    for (int i = 0; i < 1025; i++)
        many[i] = (struct iovec){"x", 1};
    struct msghdr m = {.msg_iov = many, .msg_iovlen = 1025};
    result("sendmsg of 1025 iovecs", (int)sendmsg(sv[0], &m, 0));
    m.msg_iovlen = 1024;
    printf("sendmsg of 1024 iovecs: %zd\n", sendmsg(sv[0], &m, 0));
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    internet();
    unix_domain();
    peeks();
    result("socket of an unknown family", socket(9999, SOCK_STREAM, 0));
    result("socket of an unknown type", socket(AF_INET, 99, 0));
    result("socket with a wrong protocol", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    result("bind of a file that is not a socket", bind(0, NULL, 0));
    return 0;
}
