/* fork + execve + wait4 from a parent holding AREAS more one-page areas (alternately
 * read-only and read-write, so that none merge), to measure what an area adds to process
 * creation (BENCHMARKS.md, issue 11).
 * gcc -O2 -static -o fork_areas fork_areas.c
 * taskset -c 1 ./fork_areas AREAS TOUCH CHILD    TOUCH 1: write a byte to each writable area */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: fork_areas AREAS TOUCH CHILD\n");
        return 2;
    }
    const int processes = 400;
    int areas = atoi(argv[1]), touch = atoi(argv[2]);
    for (int i = 0; i < areas; i++) {
        int prot = (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE;
        char *area = mmap(0, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED)
            return 1;
        if (touch && !(i & 1))
            area[0] = 1;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < processes; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl(argv[3], argv[3], (char *)0);
            _exit(1);
        }
        waitpid(pid, 0, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("areas %d touch %d: %.1f us a process\n", areas, touch, ns / processes / 1e3);
    return 0;
}
