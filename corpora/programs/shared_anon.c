/* MAP_SHARED | MAP_ANONYMOUS memory is shared with forked children: a counter both sides
 * add to, a page only the child touches first, and a private mapping that stays private. */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int *shared = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int *private = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    shared[0] = 1;
    private[0] = 1;
    pid_t child = fork();
    if (child == 0) {
        shared[0] += 10;
        shared[1024] = 7; /* the second page, untouched before the fork */
        private[0] = 99;
        _exit(0);
    }
    waitpid(child, NULL, 0);
    shared[0] += 100;
    printf("shared counter %d, second page %d, private %d\n", shared[0], shared[1024], private[0]);
    mprotect(shared, 4096, PROT_READ);
    mprotect(shared, 4096, PROT_READ | PROT_WRITE);
    child = fork();
    if (child == 0) {
        shared[0] = 5;
        _exit(0);
    }
    waitpid(child, NULL, 0);
    printf("after mprotect and another fork: %d\n", shared[0]);
    return 0;
}
