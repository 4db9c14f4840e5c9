/* A real deadlock: a parent and its forked child each read first from a pipe that only the
 * other would write, after reading. With no argument nothing ever ends it: natively it hangs
 * (run it only under a timeout), and simulate must find that every task is blocked and say
 * so. With `alarm`, both first call alarm(1) with SIGALRM's default action, so both die by
 * SIGALRM, natively and in the simulator, whose virtual clock jumps to the deadline when every
 * task is blocked. Prints one line naming the mode, then nothing: reaching the end is a failure. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads one byte, then would answer on the other pipe; neither read can return while both live.
 * Each closes the ends it does not use, so that if one is killed the other's read sees EOF. */
static void read_then_write(int from_other, int unused_read_end, int to_other,
                            int unused_write_end, int with_alarm) {
    close(unused_read_end);
    close(unused_write_end);
    if (with_alarm)
        alarm(1);
    char byte;
    if (read(from_other, &byte, 1) == 1)
        write(to_other, &byte, 1);
}

int main(int argc, char **argv) {
    int with_alarm = argc > 1 && strcmp(argv[1], "alarm") == 0;
    if (argc > 1 && !with_alarm) {
        fprintf(stderr, "usage: deadlock [alarm]\n");
        return 2;
    }
    printf("deadlock: %s\n", with_alarm ? "both processes set alarm(1), then block"
                                        : "both processes block for ever");
    fflush(stdout);
    /* SIGALRM's default action is the point of the alarm mode, whatever the caller left. */
    signal(SIGALRM, SIG_DFL);
    int to_parent[2], to_child[2];
    if (pipe(to_parent) != 0 || pipe(to_child) != 0) {
        perror("deadlock: pipe");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("deadlock: fork");
        return 1;
    }
    if (child == 0)
        read_then_write(to_child[0], to_parent[0], to_parent[1], to_child[1], with_alarm);
    else
        read_then_write(to_parent[0], to_child[0], to_child[1], to_parent[1], with_alarm);
    fprintf(stderr, "deadlock: the %s's read returned\n", child == 0 ? "child" : "parent");
    return 1;
}
