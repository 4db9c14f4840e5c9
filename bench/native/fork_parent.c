/* fork + execve + wait4 from a static C parent, to set against the calibrate crate's
 * create_process probe, whose parent is 591 hand-assembled bytes (BENCHMARKS.md, issue 11).
 * gcc -O2 -static -o fork_parent fork_parent.c
 * taskset -c 1 ./fork_parent RAW CHILD    RAW 1: raw syscalls; 0: glibc's fork() and waitpid() */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fork_parent RAW CHILD\n");
        return 2;
    }
    const int processes = 400;
    int raw = atoi(argv[1]);
    char *child_argv[] = {argv[2], 0};
    char *child_env[] = {0};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < processes; i++) {
        long pid = raw ? syscall(SYS_fork) : fork();
        if (pid == 0) {
            if (raw)
                syscall(SYS_execve, argv[2], child_argv, child_env);
            else
                execve(argv[2], child_argv, child_env);
            syscall(SYS_exit_group, 1);
        }
        if (raw)
            syscall(SYS_wait4, pid, 0, 0, 0);
        else
            waitpid(pid, 0, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("raw %d: %.1f us a process\n", raw, ns / processes / 1e3);
    return 0;
}
