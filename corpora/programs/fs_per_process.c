/* A process's working directory and umask are its own: a child's chdir and umask, while
 * its parent waits for it and after it ends, leave the parent's as they were, and a child
 * forked later inherits the parent's. Usage: fs_per_process */
#include "check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    char before[4096], after[4096];
    check(getcwd(before, sizeof before) != NULL, "getcwd");
    umask(022);
    int ready[2], done[2];
    check(pipe(ready) == 0 && pipe(done) == 0, "pipe");
    pid_t child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        check(chdir("/") == 0, "chdir");
        umask(077);
        check(write(ready[1], "x", 1) == 1, "write");
        /* Stay alive while the parent looks. */
        char c;
        check(read(done[0], &c, 1) >= 0, "read");
        return 0;
    }
    char c;
    check(read(ready[0], &c, 1) == 1, "read");
    check(getcwd(after, sizeof after) != NULL, "getcwd");
    printf("while the child is in /: the parent's directory is unchanged: %s\n",
           strcmp(before, after) == 0 ? "yes" : "no");
    mode_t mask = umask(022);
    printf("the parent's umask: %03o\n", (unsigned)mask);
    int fd = open("fs_per_process.tmp", O_CREAT | O_WRONLY | O_TRUNC, 0666);
    check(fd >= 0, "open a relative path");
    struct stat st;
    check(fstat(fd, &st) == 0, "fstat");
    printf("a file it makes: %03o\n", (unsigned)(st.st_mode & 0777));
    close(fd);
    check(unlink("fs_per_process.tmp") == 0, "unlink");
    check(write(done[1], "y", 1) == 1, "write");
    int status;
    check(waitpid(child, &status, 0) == child, "waitpid");
    check(getcwd(after, sizeof after) != NULL, "getcwd");
    printf("after the child: unchanged: %s\n", strcmp(before, after) == 0 ? "yes" : "no");
    child = fork();
    check(child >= 0, "fork");
    if (child == 0) {
        check(getcwd(after, sizeof after) != NULL, "getcwd");
        printf("a later child starts in its parent's directory: %s, umask %03o\n",
               strcmp(before, after) == 0 ? "yes" : "no", (unsigned)umask(0));
        return 0;
    }
    check(waitpid(child, &status, 0) == child, "waitpid");
    return 0;
}
