/* signalfd, checked against Linux: signals of its mask read as records instead of
 * delivered (kill, tgkill, a child's SIGCHLD with its status), several in one read, a
 * blocking read that a child's signal ends, poll and epoll (level- and edge-triggered),
 * a new mask through signalfd4, a child reading its own signals through an inherited
 * descriptor, and the errors. Ids are printed as whose they are. Usage: signalfd_reads */
#include "check.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void result(const char *what, long ret) {
    if (ret < 0)
        printf("%s: %s\n", what, errno_name(errno));
    else
        printf("%s: %ld\n", what, ret);
}

static const char *whose(unsigned pid, pid_t self, pid_t child) {
    if (pid == (unsigned)self)
        return "ours";
    if (pid == (unsigned)child)
        return "the child's";
    return pid == 0 ? "none" : "another";
}

/* Reads what fits in `room` records and prints each. */
static void read_records(int fd, int room, pid_t child) {
    struct signalfd_siginfo records[4];
    ssize_t got = read(fd, records, room * sizeof records[0]);
    if (got < 0) {
        printf("  read: %s\n", errno_name(errno));
        return;
    }
    printf("  read %zd bytes\n", got);
    for (int i = 0; i < got / (ssize_t)sizeof records[0]; i++) {
        struct signalfd_siginfo *r = &records[i];
        printf("  %s code %d pid %s uid %s", sigabbrev_np(r->ssi_signo), r->ssi_code,
               whose(r->ssi_pid, getpid(), child), r->ssi_uid == getuid() ? "ours" : "another");
        if (r->ssi_signo == SIGCHLD)
            printf(" status %d", r->ssi_status);
        printf("\n");
    }
}

int main(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGCHLD);
    check(sigprocmask(SIG_BLOCK, &mask, NULL) == 0, "sigprocmask");

    sigaddset(&mask, SIGKILL);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    check(fd >= 0, "signalfd");
    printf("nothing pending:\n");
    read_records(fd, 1, 0);
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    result("poll, nothing pending", poll(&p, 1, 0));

    kill(getpid(), SIGUSR2);
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
    result("poll, two pending", poll(&p, 1, 0));
    printf("poll's events: %s\n", p.revents == POLLIN ? "POLLIN" : "other");
    sigset_t pending;
    sigpending(&pending);
    printf("sigpending shows them: %s\n", sigismember(&pending, SIGUSR1) && sigismember(&pending, SIGUSR2) ? "yes" : "no");
    printf("a buffer for one record:\n");
    read_records(fd, 1, 0);
    printf("then the rest:\n");
    read_records(fd, 4, 0);
    sigpending(&pending);
    printf("still pending after the read: %s\n", sigismember(&pending, SIGUSR2) ? "yes" : "no");

    char small[64];
    result("a read into 64 bytes", read(fd, small, sizeof small));
    result("a write", write(fd, small, sizeof small));
    result("sizemask 4", signalfd(-1, &mask, 4));
    result("an unknown flag", syscall(SYS_signalfd4, -1, &mask, 8, 1));
    int pipefd[2];
    check(pipe(pipefd) == 0, "pipe");
    result("signalfd4 on a pipe", signalfd(pipefd[0], &mask, 0));
    result("signalfd4 on a closed descriptor", signalfd(100, &mask, 0));

    fflush(stdout);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0)
        _exit(7);
    int blocking = signalfd(-1, &mask, 0);
    printf("a blocking read until the child ends:\n");
    read_records(blocking, 1, child);
    waitpid(child, NULL, 0);

    int ep = epoll_create1(0);
    struct epoll_event level = {.events = EPOLLIN, .data.u32 = 1};
    struct epoll_event edge = {.events = EPOLLIN | EPOLLET, .data.u32 = 2};
    check(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &level) == 0, "epoll_ctl");
    check(epoll_ctl(ep, EPOLL_CTL_ADD, blocking, &edge) == 0, "epoll_ctl");
    struct epoll_event out[2];
    result("epoll_wait, nothing pending", epoll_wait(ep, out, 2, 0));
    kill(getpid(), SIGUSR1);
    result("epoll_wait, one pending", epoll_wait(ep, out, 2, 0));
    result("again: only the level-triggered entry", epoll_wait(ep, out, 2, 0));
    printf("its data: %u\n", out[0].data.u32);
    kill(getpid(), SIGUSR2);
    result("a second signal: both again", epoll_wait(ep, out, 2, 0));
    read_records(fd, 4, 0);

    sigset_t only_usr2;
    sigemptyset(&only_usr2);
    sigaddset(&only_usr2, SIGUSR2);
    result("signalfd4 with a new mask", signalfd(fd, &only_usr2, 0) == fd);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    printf("with the new mask:\n");
    read_records(fd, 4, 0);
    printf("the other through the first mask:\n");
    read_records(blocking, 4, 0);

    fflush(stdout);
    child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        kill(getpid(), SIGUSR2);
        struct signalfd_siginfo r;
        ssize_t got = read(fd, &r, sizeof r);
        printf("the child reads its own: %zd bytes, %s from itself: %s\n", got,
               sigabbrev_np(r.ssi_signo), r.ssi_pid == (unsigned)getpid() ? "yes" : "no");
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("the parent's, after the child's exit:\n");
    read_records(fd, 4, child);
    read_records(blocking, 4, child);
    return 0;
}
