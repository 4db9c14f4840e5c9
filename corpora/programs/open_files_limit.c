/* RLIMIT_NOFILE as a process sets it: lowered to 64, descriptors run out at 64 (EMFILE) and
 * dup2 beyond it is EBADF; raised again within the hard limit, more fit; a soft limit above
 * the hard one is EINVAL; a forked child inherits the limit. The host's own limits are never
 * printed. Usage: open_files_limit */
#include "check.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int fill(void) {
    int last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0)
        last = fd;
    printf("opened up to descriptor %d, then %s\n", last, errno_name(errno));
    return last;
}

int main(void) {
    struct rlimit limit;
    check(getrlimit(RLIMIT_NOFILE, &limit) == 0, "getrlimit");
    rlim_t hard = limit.rlim_max;
    limit.rlim_cur = 64;
    check(setrlimit(RLIMIT_NOFILE, &limit) == 0, "setrlimit 64");
    int last = fill();
    printf("dup2 to 64: %s\n", dup2(0, 64) < 0 ? errno_name(errno) : "ok");
    printf("F_DUPFD from 64: %s\n", fcntl(0, F_DUPFD, 64) < 0 ? errno_name(errno) : "ok");
    limit.rlim_cur = hard + (hard != RLIM_INFINITY);
    printf("a soft limit above the hard one: %s\n",
           setrlimit(RLIMIT_NOFILE, &limit) < 0 ? errno_name(errno) : "ok");
    limit.rlim_cur = 96;
    check(setrlimit(RLIMIT_NOFILE, &limit) == 0, "setrlimit 96");
    fill();
    for (int fd = 3; fd <= last + 32; fd++)
        close(fd);
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        struct rlimit inherited;
        check(getrlimit(RLIMIT_NOFILE, &inherited) == 0, "getrlimit");
        printf("the child's soft limit: %lu\n", (unsigned long)inherited.rlim_cur);
        return 0;
    }
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    return 0;
}
