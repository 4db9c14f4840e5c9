#define _GNU_SOURCE
/* A vfork child shares its parent's memory until it execs or exits: what it writes there
 * the parent sees. glibc's posix_spawn relies on it (its CLONE_VM | CLONE_VFORK child
 * writes the error of a failed exec where the parent reads it), as does this program. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile int shared;

int main(void) {
    pid_t child = vfork();
    if (child == 0) {
        shared = 42;
        _exit(7);
    }
    int status;
    waitpid(child, &status, 0);
    printf("the vfork child wrote %d and exited %d\n", shared, WEXITSTATUS(status));

    char *argv[] = {"missing", NULL};
    int error = posix_spawn(&child, "/nonexistent/missing", NULL, NULL, argv, environ);
    printf("posix_spawn of a missing program: %s\n", error ? strerrorname_np(error) : "0");
    return 0;
}
