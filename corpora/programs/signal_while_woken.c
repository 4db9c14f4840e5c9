/* A signal sent to a task that was just woken, before it runs again: its wait must end
 * with the signal, not sleep again. The child blocks reading an empty pipe; the parent
 * closes another pipe (which wakes every pipe reader to look again), then kills the child
 * at once, and reports how the child ended. Usage: signal_while_woken */
#include "check.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int empty[2], other[2];
    check(pipe(empty) == 0 && pipe(other) == 0, "pipe");
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        char c;
        read(empty[0], &c, 1);
        return 0;
    }
    /* Let the child block first: natively a pause; simulated, the child runs until it
     * blocks before the parent's next slice. */
    usleep(100000);
    close(other[0]);
    close(other[1]);
    check(kill(child, SIGTERM) == 0, "kill");
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    printf("the child ended by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 0;
}
