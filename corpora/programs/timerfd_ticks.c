/* timerfd, checked against Linux (the simulated clock is virtual): disarmed and armed
 * readings, a one-shot and a periodic timer read, blocking, through poll and epoll, an
 * absolute time already past, the previous setting given back, and the errors. Only what
 * does not depend on how long things take is printed. Usage: timerfd_ticks */
#include "check.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void result(const char *what, long ret) {
    if (ret < 0)
        printf("%s: %s\n", what, errno_name(errno));
    else
        printf("%s: %ld\n", what, ret);
}

static struct itimerspec ms(long value, long interval) {
    struct itimerspec t = {
        .it_value = {value / 1000, value % 1000 * 1000000},
        .it_interval = {interval / 1000, interval % 1000 * 1000000},
    };
    return t;
}

int main(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    check(fd >= 0, "timerfd_create");
    struct itimerspec now;
    check(timerfd_gettime(fd, &now) == 0, "timerfd_gettime");
    printf("disarmed: %ld.%09ld every %ld.%09ld\n", (long)now.it_value.tv_sec, now.it_value.tv_nsec,
           (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
    unsigned long count;
    result("a read, disarmed, non-blocking", read(fd, &count, sizeof count));
    struct itimerspec t = ms(1000, 0);
    check(timerfd_settime(fd, 0, &t, NULL) == 0, "timerfd_settime");
    check(timerfd_gettime(fd, &now) == 0, "timerfd_gettime");
    printf("armed for a second: within it %s\n",
           now.it_value.tv_sec == 0 && now.it_value.tv_nsec > 0 ? "yes" : "no");
    t = ms(200, 0);
    struct itimerspec old;
    check(timerfd_settime(fd, 0, &t, &old) == 0, "timerfd_settime");
    printf("the old setting: %s\n", old.it_value.tv_sec == 0 && old.it_value.tv_nsec > 0 ? "within a second" : "?");
    result("a read before it expires", read(fd, &count, sizeof count));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    result("poll until it expires", poll(&p, 1, -1));
    result("then a read", read(fd, &count, sizeof count));
    printf("expiries: %lu\n", count);
    result("a read after that", read(fd, &count, sizeof count));

    int blocking = timerfd_create(CLOCK_BOOTTIME, 0);
    t = ms(10, 10);
    check(timerfd_settime(blocking, 0, &t, NULL) == 0, "timerfd_settime");
    result("a blocking read of a periodic timer", read(blocking, &count, sizeof count));
    printf("expiries: %s\n", count >= 1 ? "one or more" : "none");
    struct timespec nap = {0, 100000000};
    nanosleep(&nap, NULL);
    check(read(blocking, &count, sizeof count) == 8, "read");
    printf("after sleeping ten periods: %s\n", count >= 9 ? "nine or more expiries" : "fewer");

    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = 7};
    check(epoll_ctl(ep, EPOLL_CTL_ADD, blocking, &e) == 0, "epoll_ctl");
    struct epoll_event out;
    result("epoll_wait for the next period", epoll_wait(ep, &out, 1, -1));
    printf("its data: %u\n", out.data.u32);

    int wall = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    t = ms(1000, 0);
    check(timerfd_settime(wall, TFD_TIMER_ABSTIME, &t, NULL) == 0, "timerfd_settime");
    result("an absolute wall-clock time long past, read", read(wall, &count, sizeof count));
    printf("expiries: %lu\n", count);

    result("a write", write(fd, &count, sizeof count));
    result("a read of 4 bytes", read(fd, &count, 4));
    result("timerfd_settime with bad flags", timerfd_settime(fd, 8, &t, NULL));
    t.it_value.tv_nsec = 1000000000;
    result("timerfd_settime with 1e9 ns", timerfd_settime(fd, 0, &t, NULL));
    result("timerfd_create on a CPU clock", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
    result("timerfd_create with bad flags", timerfd_create(CLOCK_MONOTONIC, 1));
    int pipefd[2];
    check(pipe(pipefd) == 0, "pipe");
    t = ms(10, 0);
    result("timerfd_settime of a pipe", timerfd_settime(pipefd[0], 0, &t, NULL));
    return 0;
}
