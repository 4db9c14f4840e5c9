/* select and pselect on pipes: a timeout on an empty pipe (the time left written back), a
 * pipe a child fills, a write end with room, a zero timeout, and the end of file; then
 * non-blocking pipes, by pipe2's flag and by F_SETFL. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int data[2], go[2];
    if (pipe(data) != 0 || pipe(go) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        char byte;
        close(data[0]);
        close(go[1]);
        if (read(go[0], &byte, 1) != 1)
            _exit(1);
        if (write(data[1], "hello", 5) != 5)
            _exit(1);
        _exit(0);
    }
    close(data[1]);
    close(go[0]);
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(data[0], &readable);
    struct timeval wait = {0, 50000};
    int r = select(data[0] + 1, &readable, NULL, NULL, &wait);
    printf("empty pipe: %d ready, %ld.%06ld s left\n", r, (long)wait.tv_sec, (long)wait.tv_usec);
    if (write(go[1], "x", 1) != 1)
        return 1;
    FD_ZERO(&readable);
    FD_SET(data[0], &readable);
    fd_set writable;
    FD_ZERO(&writable);
    FD_SET(go[1], &writable);
    r = select(data[0] + 1, &readable, &writable, NULL, NULL);
    printf("after the child wrote: %d ready, readable %d, writable %d\n", r,
           FD_ISSET(data[0], &readable), FD_ISSET(go[1], &writable));
    char buf[8];
    ssize_t n = read(data[0], buf, sizeof buf);
    printf("read %zd bytes\n", n);
    waitpid(child, NULL, 0);
    sigset_t none;
    sigemptyset(&none);
    struct timespec zero = {0, 0};
    FD_ZERO(&readable);
    FD_SET(data[0], &readable);
    r = pselect(data[0] + 1, &readable, NULL, NULL, &zero, &none);
    printf("at end of file: %d ready, readable %d\n", r, FD_ISSET(data[0], &readable));

    int quick[2];
    char byte;
    if (pipe2(quick, O_NONBLOCK) != 0)
        return 1;
    n = read(quick[0], &byte, 1);
    printf("empty O_NONBLOCK pipe: %zd, %s\n", n, n < 0 && errno == EAGAIN ? "EAGAIN" : "other");
    int slow[2];
    if (pipe(slow) != 0)
        return 1;
    fcntl(slow[0], F_SETFL, fcntl(slow[0], F_GETFL) | O_NONBLOCK);
    n = read(slow[0], &byte, 1);
    printf("empty pipe after F_SETFL: %zd, %s\n", n, n < 0 && errno == EAGAIN ? "EAGAIN" : "other");
    return 0;
}
