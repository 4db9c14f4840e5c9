/* The essay's Yield column between two processes: a parent and its forked child each call
 * sched_yield N times (default 10000), then the parent waits for the child. Both are pinned
 * to one CPU, the first in the process's own affinity mask, so that natively too a yield
 * hands the CPU to the other process. Only the parent prints, after the child has exited. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "one_cpu.h"

static long yield_n(long n) {
    long done = 0;
    while (done < n && sched_yield() == 0)
        done++;
    return done;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    if (pin_to_one_cpu() != 0) {
        perror("yield_procs: pinning to one CPU");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("yield_procs: fork");
        return 1;
    }
    if (child == 0)
        _exit(yield_n(n) == n ? 0 : 1);
    long parent_yields = yield_n(n);
    int status;
    if (waitpid(child, &status, 0) != child) {
        perror("yield_procs: waitpid");
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "yield_procs: child ended with status %#x\n", status);
        return 1;
    }
    printf("parent: %ld yields\n", parent_yields);
    printf("child: %ld yields\n", n);
    return parent_yields == n ? 0 : 1;
}
