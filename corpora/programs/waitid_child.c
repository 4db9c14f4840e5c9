/* waitid on children that exit and are killed: WNOHANG before any has ended, WNOWAIT that
 * leaves the zombie, then the reaping waits; prints what each siginfo said. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *code_name(int code) {
    return code == CLD_EXITED ? "CLD_EXITED" : code == CLD_KILLED ? "CLD_KILLED" : "other";
}

int main(void) {
    int go[2];
    if (pipe(go) != 0)
        return 1;
    pid_t exits = fork();
    if (exits == 0) {
        char byte;
        close(go[1]);
        if (read(go[0], &byte, 1) != 1)
            _exit(1);
        _exit(9);
    }
    siginfo_t info;
    memset(&info, 0xff, sizeof info);
    int r = waitid(P_ALL, 0, &info, WEXITED | WNOHANG);
    printf("WNOHANG before any end: %d, si_pid %d\n", r, info.si_pid);
    if (write(go[1], "x", 1) != 1)
        return 1;
    r = waitid(P_PID, exits, &info, WEXITED | WNOWAIT);
    printf("WNOWAIT: %d, %s, status %d, the child's pid: %d\n", r, code_name(info.si_code),
           info.si_status, info.si_pid == exits);
    r = waitid(P_PID, exits, &info, WEXITED);
    printf("reaped: %d, %s, status %d\n", r, code_name(info.si_code), info.si_status);

    pid_t killed = fork();
    if (killed == 0) {
        for (;;)
            pause();
    }
    kill(killed, SIGTERM);
    r = waitid(P_ALL, 0, &info, WEXITED);
    printf("killed: %d, %s, signal %d\n", r, code_name(info.si_code), info.si_status);
    r = waitid(P_ALL, 0, &info, WEXITED);
    printf("no child left: %d\n", r);
    return 0;
}
