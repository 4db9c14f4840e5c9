/* A bounded fork bomb: forks until fork fails or CAP children exist (default 64). Every child
 * blocks reading a pipe until the parent closes its write end, so all of them are alive at
 * once; then they exit and the parent reaps them all. Prints how many forks succeeded and, if
 * one failed, its errno name: EAGAIN under simulate's --max-tasks, as under RLIMIT_NPROC.
 * The cap keeps a native run harmless. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long cap = argc > 1 ? atol(argv[1]) : 64;
    int release[2];
    if (pipe(release) != 0) {
        perror("fork_bomb: pipe");
        return 1;
    }
    long forked = 0;
    int fork_errno = 0;
    while (forked < cap) {
        pid_t child = fork();
        if (child < 0) {
            fork_errno = errno;
            break;
        }
        if (child == 0) {
            close(release[1]);
            char byte;
            _exit(read(release[0], &byte, 1) == 0 ? 0 : 1);
        }
        forked++;
    }
    close(release[1]);
    long reaped = 0, clean = 0;
    int status;
    while (wait(&status) > 0) {
        reaped++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            clean++;
    }
    if (errno != ECHILD) {
        perror("fork_bomb: wait");
        return 1;
    }
    printf("fork_bomb: %ld of %ld forks succeeded\n", forked, cap);
    if (fork_errno != 0)
        printf("fork_bomb: fork failed with %s\n", strerrorname_np(fork_errno));
    printf("fork_bomb: reaped %ld children, %ld saw EOF and exited 0\n", reaped, clean);
    return reaped == forked && clean == forked ? 0 : 1;
}
