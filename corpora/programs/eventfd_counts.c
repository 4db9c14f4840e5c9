/* eventfd counters as Linux keeps them: a read takes the whole count (one under
 * EFD_SEMAPHORE) and waits while it is 0, a write adds and waits past the largest count;
 * EAGAIN under EFD_NONBLOCK, EINVAL for a short buffer or the count 2^64 - 1, poll's view
 * of each state, and a child blocked in a read that its parent's write wakes. */
#include "check.h"

#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void show_poll(int fd, const char *when) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    check(poll(&p, 1, 0) >= 0, "poll");
    printf("poll %s: %s%s\n", when, p.revents & POLLIN ? "in " : "", p.revents & POLLOUT ? "out" : "");
}

int main(void) {
    uint64_t v;
    int fd = eventfd(3, EFD_CLOEXEC | EFD_NONBLOCK);
    check(fd >= 0, "eventfd");
    show_poll(fd, "at 3");
    check(read(fd, &v, 8) == 8, "read");
    printf("read: %llu\n", (unsigned long long)v);
    check(read(fd, &v, 8) < 0, "an empty read");
    printf("empty read: %s\n", errno_name(errno));
    show_poll(fd, "at 0");
    v = 5;
    check(write(fd, &v, 8) == 8, "write 5");
    v = 7;
    check(write(fd, &v, 8) == 8, "write 7");
    check(read(fd, &v, 8) == 8, "read the sum");
    printf("read after 5 and 7: %llu\n", (unsigned long long)v);
    uint32_t small;
    check(read(fd, &small, 4) < 0, "a short read");
    printf("4-byte read: %s\n", errno_name(errno));
    v = UINT64_MAX;
    check(write(fd, &v, 8) < 0, "writing 2^64 - 1");
    printf("write of 2^64 - 1: %s\n", errno_name(errno));
    v = UINT64_MAX - 1;
    check(write(fd, &v, 8) == 8, "writing the largest count");
    show_poll(fd, "at the largest count");
    v = 1;
    check(write(fd, &v, 8) < 0, "a write past the largest count");
    printf("write past it: %s\n", errno_name(errno));
    int sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    check(sem >= 0, "a semaphore");
    for (int i = 0; i < 3; i++) {
        ssize_t got = read(sem, &v, 8);
        printf("semaphore read %d: %s\n", i, got == 8 ? (v == 1 ? "1" : "?") : errno_name(errno));
    }
    int wake = eventfd(0, 0);
    check(wake >= 0, "a blocking eventfd");
    fflush(stdout);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        check(read(wake, &v, 8) == 8, "the child's read");
        printf("child woke with %llu\n", (unsigned long long)v);
        return 0;
    }
    v = 42;
    check(write(wake, &v, 8) == 8, "the parent's write");
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    printf("child exited %d\n", WEXITSTATUS(status));
    check(eventfd(0, 0x4000) < 0, "bad flags");
    printf("bad flags: %s\n", errno_name(errno));
    return 0;
}
