/* Guest signal handlers. SIGALRM: alarm(1), then sigsuspend until the handler has run (in the
 * simulator the clock is virtual, so the second passes at once when nothing else can run).
 * SIGCHLD, installed with SA_SIGINFO: N times (default 3) fork a child that exits with 7 and
 * sigsuspend until the handler has reaped it with waitpid. Both signals stay blocked except
 * inside sigsuspend, so each handler runs exactly where the program expects it. Prints what
 * the handlers saw. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHILD_STATUS = 7 };

static volatile sig_atomic_t alarm_count, alarm_signo;
static volatile sig_atomic_t child_count, child_signo, child_code, child_info_status;
static volatile sig_atomic_t reaped, reaped_exited_7;

static void on_alarm(int signo) {
    alarm_signo = signo;
    alarm_count++;
}

static void on_child(int signo, siginfo_t *info, void *context) {
    (void)context;
    child_signo = signo;
    child_code = info->si_code;
    child_info_status = info->si_status;
    child_count++;
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0) {
        reaped++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_STATUS)
            reaped_exited_7++;
    }
}

int main(int argc, char **argv) {
    long children = argc > 1 ? atol(argv[1]) : 3;
    sigset_t blocked, during_wait;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGALRM);
    sigaddset(&blocked, SIGCHLD);
    sigemptyset(&during_wait);
    struct sigaction alarm_action = {.sa_handler = on_alarm};
    struct sigaction child_action = {.sa_sigaction = on_child, .sa_flags = SA_SIGINFO | SA_RESTART};
    if (sigprocmask(SIG_BLOCK, &blocked, NULL) != 0 || sigaction(SIGALRM, &alarm_action, NULL) != 0 ||
        sigaction(SIGCHLD, &child_action, NULL) != 0) {
        perror("signal_handlers: setting up");
        return 1;
    }

    alarm(1);
    while (alarm_count == 0)
        sigsuspend(&during_wait);
    printf("SIGALRM: handler ran %d time(s) with signal %d\n", (int)alarm_count, (int)alarm_signo);

    for (long i = 0; i < children; i++) {
        pid_t child = fork();
        if (child < 0) {
            perror("signal_handlers: fork");
            return 1;
        }
        if (child == 0)
            _exit(CHILD_STATUS);
        while (reaped <= i)
            sigsuspend(&during_wait);
    }
    printf("SIGCHLD: handler ran %d time(s) with signal %d\n", (int)child_count, (int)child_signo);
    printf("SIGCHLD: last siginfo said code %s, status %d\n",
           child_code == CLD_EXITED ? "CLD_EXITED" : "other", (int)child_info_status);
    printf("SIGCHLD: reaped %d child(ren), %d of them exited with %d\n", (int)reaped,
           (int)reaped_exited_7, CHILD_STATUS);
    int ok = alarm_count == 1 && alarm_signo == SIGALRM && child_count == children && reaped == children &&
             reaped_exited_7 == children && (children == 0 || child_signo == SIGCHLD);
    return ok ? 0 : 1;
}
