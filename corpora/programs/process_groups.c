/* Process groups and sessions as Linux keeps them: the first process leads its own group;
 * setpgid moves itself and children that have not exec'd, within its session; setsid
 * makes a new session for a process that leads no group; kill(-pgid) reaches a group. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void result(const char *what, int r) {
    printf("%s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

/* A child that waits for a byte on `fd`, then exits with `code`. */
static pid_t waiting_child(int fd, int code) {
    pid_t child = fork();
    if (child == 0) {
        char byte;
        if (read(fd, &byte, 1) != 1)
            _exit(99);
        _exit(code);
    }
    return child;
}

int main(void) {
    pid_t me = getpid();
    printf("leads its group: %d\n", getpgrp() == me);
    result("setsid in a group leader", setsid());
    result("setpgid(0, -1)", setpgid(0, -1));
    result("setpgid of a process that is not a child", setpgid(1, 0));

    int go[2];
    pipe(go);
    pid_t b = waiting_child(go[0], 3);
    printf("a child starts in its parent's group: %d\n", getpgid(b) == me);
    result("setpgid of the child into a group of its own", setpgid(b, b));
    printf("the child leads its group now: %d\n", getpgid(b) == b);
    result("setpgid into a group no process is in", setpgid(b, 999999));
    result("setpgid of the child back into the parent's group", setpgid(b, me));
    setpgid(b, b);

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pid_t self = getpid();
        result("setsid in a child that leads no group", setsid() == self ? 0 : -1);
        printf("it leads its session and group: %d\n", getsid(0) == self && getpgrp() == self);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(c, &status, 0);

    result("kill of the child's group", kill(-b, SIGTERM));
    waitpid(b, &status, 0);
    printf("the group's process ended by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    result("kill of a group no process is in", kill(-999999, SIGTERM));
    return 0;
}
