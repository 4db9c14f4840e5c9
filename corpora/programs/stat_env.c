/* Prints what the loader and syscall layer hand a program: argv, selected env, auxv and file facts. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *v = getenv("RINGSIM_TEST");
    printf("RINGSIM_TEST=%s\n", v ? v : "(unset)");
    printf("AT_PAGESZ=%lu AT_SECURE=%lu\n", getauxval(AT_PAGESZ), getauxval(AT_SECURE));
    printf("AT_PLATFORM=%s\n", (const char *)getauxval(AT_PLATFORM));
    struct stat st;
    if (stat("/proc/self/exe", &st) == 0)
        printf("exe is a regular file: %d\n", S_ISREG(st.st_mode));
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    printf("readlink ok: %d\n", n > 0);
    unsigned short cs, ss;
    __asm__("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
    printf("cs=%#x ss=%#x\n", cs, ss);
    struct utsname u;
    uname(&u);
    printf("machine=%s\n", u.machine);
    int fds[2];
    if (pipe(fds) == 0) {
        write(fds[1], "pipe", 4);
        char got[5] = {0};
        read(fds[0], got, 4);
        printf("pipe says %s, fds %d %d\n", got, fds[0], fds[1]);
    }
    return 0;
}
