/* Execs itself N times (default 3), through /proc/self/exe, then prints how many images ran.
 * Each new image's first fetch faults while the block that made the execve is still the last
 * one the CPU ran: its count must not be worked out again in the new image. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    long left = argc > 1 ? atol(argv[1]) : 3;
    long done = argc > 2 ? atol(argv[2]) : 0;
    if (left <= 0) {
        printf("reexec: %ld images after the first\n", done);
        return 0;
    }
    char next_left[24], next_done[24];
    snprintf(next_left, sizeof next_left, "%ld", left - 1);
    snprintf(next_done, sizeof next_done, "%ld", done + 1);
    char *next_argv[] = {argv[0], next_left, next_done, NULL};
    execve("/proc/self/exe", next_argv, environ);
    perror("reexec: execve");
    return 1;
}
