/* The essay's Create Proc column: N times (default 100) fork, execve of tiny_true (a static
 * program that only calls exit_group(0)) and wait4, checking each child's exit status.
 * tiny_true is found beside this program, in argv[0]'s directory ("." if argv[0] has no
 * slash); argv[2] names another path instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tiny_true_path.h"

extern char **environ;

/* The child's exit status when execve fails, as a shell reports "command not found". */
enum { EXEC_FAILED = 127 };

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100;
    char path[4096];
    tiny_true_path(argc, argv, path, sizeof path);
    char *child_argv[] = {path, NULL};
    for (long i = 0; i < n; i++) {
        pid_t child = fork();
        if (child < 0) {
            perror("create_proc: fork");
            return 1;
        }
        if (child == 0) {
            execve(path, child_argv, environ);
            fprintf(stderr, "create_proc: execve %s: %s\n", path, strerror(errno));
            _exit(EXEC_FAILED);
        }
        int status;
        if (wait4(child, &status, 0, NULL) != child) {
            perror("create_proc: wait4");
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "create_proc: child %ld ended with status %#x\n", i, status);
            return 1;
        }
    }
    printf("create_proc: %ld fork+execve+wait4, all exited 0\n", n);
    return 0;
}
