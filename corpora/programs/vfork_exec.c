/* vfork and kill between processes, N times each (default 10). vfork + execve of tiny_true
 * (which exits 0) and wait4; then fork a child that tells the parent it is ready through a
 * pipe and blocks reading another pipe that nobody writes, kill it with SIGTERM and wait4 for
 * it. Prints the decoded wait statuses. tiny_true is found as create_proc finds it: in
 * argv[0]'s directory ("." if argv[0] has no slash), or at argv[2]. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tiny_true_path.h"

extern char **environ;

enum { EXEC_FAILED = 127 };

/* Runs path under vfork and answers the child's wait status, or -1. */
static int vfork_exec(char *path) {
    char *child_argv[] = {path, NULL};
    pid_t child = vfork();
    if (child < 0)
        return -1;
    if (child == 0) {
        execve(path, child_argv, environ);
        _exit(EXEC_FAILED);
    }
    int status;
    return wait4(child, &status, 0, NULL) == child ? status : -1;
}

/* Kills a child blocked in read with SIGTERM and answers its wait status, or -1. */
static int kill_blocked_reader(void) {
    int ready[2], never_written[2];
    if (pipe(ready) != 0 || pipe(never_written) != 0)
        return -1;
    pid_t child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        char byte = 'r';
        if (write(ready[1], &byte, 1) != 1)
            _exit(1);
        read(never_written[0], &byte, 1);
        _exit(1);
    }
    char byte;
    int status = -1;
    if (read(ready[0], &byte, 1) == 1 && kill(child, SIGTERM) == 0 &&
        wait4(child, &status, 0, NULL) != child)
        status = -1;
    close(ready[0]);
    close(ready[1]);
    close(never_written[0]);
    close(never_written[1]);
    return status;
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("%s: WIFEXITED, WEXITSTATUS %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: WIFSIGNALED, WTERMSIG %d (SIG%s)\n", what, WTERMSIG(status),
               sigabbrev_np(WTERMSIG(status)));
    else
        printf("%s: status %#x\n", what, status);
}

/* A status of -1 means a call failed, and errno says why. */
static void report_failure(const char *what, long iteration, int status) {
    if (status == -1)
        fprintf(stderr, "vfork_exec: %s %ld: %s\n", what, iteration, strerror(errno));
    else
        fprintf(stderr, "vfork_exec: %s %ld: unexpected status %#x\n", what, iteration, status);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10;
    char path[4096];
    tiny_true_path(argc, argv, path, sizeof path);
    int exec_status = 0, kill_status = 0;
    for (long i = 0; i < n; i++) {
        exec_status = vfork_exec(path);
        if (exec_status == -1 || !WIFEXITED(exec_status) || WEXITSTATUS(exec_status) != 0) {
            report_failure("vfork+execve of tiny_true", i, exec_status);
            return 1;
        }
        kill_status = kill_blocked_reader();
        if (kill_status == -1 || !WIFSIGNALED(kill_status) || WTERMSIG(kill_status) != SIGTERM) {
            report_failure("kill", i, kill_status);
            return 1;
        }
    }
    printf("vfork_exec: %ld vfork+execve and %ld kills\n", n, n);
    describe("vfork+execve child", exec_status);
    describe("child killed in read", kill_status);
    return 0;
}
