/* Moves into a directory it makes and sets umask 0777, as a guest may. Its own relative paths
 * and new files follow, as natively; simulate's report, syscall trace and translation dump must
 * not: they stay where the command line put them, with ordinary permissions (issue 8 C). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    mkdir("sub", 0755);
    if (chdir("sub") != 0)
        return 1;
    char cwd[4096];
    const char *last = getcwd(cwd, sizeof cwd) ? strrchr(cwd, '/') : NULL;
    printf("cwd ends in %s\n", last ? last : "(getcwd failed)");
    int fd = open("note", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "written in sub\n", 15) != 15 || close(fd) != 0)
        return 2;
    umask(0777);
    fd = open("masked", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 3;
    close(fd);
    unlink("masked");
    printf("a file made under umask %03o has mode %03o\n", umask(0777), st.st_mode & 0777);
    return 0;
}
