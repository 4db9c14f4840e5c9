/* The essay's PSR column (process send-receive): a parent and its forked child pass one byte
 * back and forth through two pipes, N round trips (default 10000). The child adds one to each
 * byte it returns, so the parent can check every reply; the parent waits for the child. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* One byte each way; any short transfer or error is a failure. */
static int send_byte(int fd, unsigned char byte) { return write(fd, &byte, 1) == 1 ? 0 : -1; }

static int receive_byte(int fd, unsigned char *byte) { return read(fd, byte, 1) == 1 ? 0 : -1; }

static int echo_incremented(int from_parent, int to_parent, long n) {
    for (long i = 0; i < n; i++) {
        unsigned char byte;
        if (receive_byte(from_parent, &byte) != 0 || send_byte(to_parent, byte + 1) != 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0) {
        perror("psr: pipe");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("psr: fork");
        return 1;
    }
    if (child == 0) {
        close(down[1]);
        close(up[0]);
        _exit(echo_incremented(down[0], up[1], n));
    }
    close(down[0]);
    close(up[1]);
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        unsigned char sent = (unsigned char)i, reply;
        if (send_byte(down[1], sent) != 0 || receive_byte(up[0], &reply) != 0) {
            perror("psr: round trip");
            return 1;
        }
        if (reply != (unsigned char)(sent + 1)) {
            fprintf(stderr, "psr: sent %u, got back %u\n", sent, reply);
            return 1;
        }
        sum += reply;
    }
    int status;
    if (waitpid(child, &status, 0) != child) {
        perror("psr: waitpid");
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "psr: child ended with status %#x\n", status);
        return 1;
    }
    printf("psr: %ld round trips, replies sum to %lu\n", n, sum);
    return 0;
}
