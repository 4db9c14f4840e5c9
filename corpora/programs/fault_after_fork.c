/* A fault after the simulator has stopped and restarted the CPU several times (a signal
 * handler, a fork, a wait): it must still be the plain SIGSEGV of a null pointer read, not a
 * nested fault (issue 9: Unicorn once remembered a fault of its own between runs). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int handled;

static void on_usr1(int signo) { handled = signo; }

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, NULL);
    raise(SIGUSR1);
    pid_t child = fork();
    if (child == 0)
        _exit(3);
    int status;
    waitpid(child, &status, 0);
    printf("handler saw %d, child exited %d\n", handled, WEXITSTATUS(status));
    fflush(stdout);
    volatile int *null_ish = (int *)0x10;
    return *null_ish;
}
