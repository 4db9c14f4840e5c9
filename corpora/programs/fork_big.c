/* Fork of a large process: argv[1] MiB (default 100) of written memory, then a fork. Each
 * side writes a few pages (the CPU's stores and the kernel's: a read from a pipe) and
 * checks that it sees its own writes and the other side does not. Under copy-on-write the
 * fork copies nothing and each written page is copied once (issue 9). Then argv[2] more
 * forks (default 0) whose children exit at once, for timing: BENCHMARKS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static unsigned long pages;
static unsigned char *memory;

/* Every page holds its own number, but `changed` pages hold `mark`. */
static int check(const char *who, unsigned long changed, unsigned char mark) {
    for (unsigned long page = 0; page < pages; page += 1) {
        unsigned char want = page < changed ? mark : (unsigned char)page;
        if (memory[page * PAGE] != want || memory[page * PAGE + PAGE - 1] != want) {
            printf("fork_big: %s sees page %lu wrong\n", who, page);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
    if (mib < 1) {
        fprintf(stderr, "fork_big: MIB must be at least 1 (each side writes 5 pages)\n");
        return 2;
    }
    pages = mib * 256;
    memory = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        return 2;
    for (unsigned long page = 0; page < pages; page += 1)
        for (unsigned long byte = 0; byte < PAGE; byte += 1)
            memory[page * PAGE + byte] = (unsigned char)page;
    int to_child[2];
    if (pipe(to_child) != 0)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        /* The child's own stores to pages 0-3, then the kernel's store into page 4. */
        for (unsigned long byte = 0; byte < 4 * PAGE; byte += 1)
            memory[byte] = 0xc1;
        size_t got = 0;
        while (got < PAGE) {
            ssize_t n = read(to_child[0], memory + 4 * PAGE + got, PAGE - got);
            if (n <= 0)
                _exit(3);
            got += n;
        }
        _exit(check("the child", 5, 0xc1));
    }
    /* The parent writes pages 0-1 while the child still shares them, and feeds the pipe. */
    for (unsigned long byte = 0; byte < 2 * PAGE; byte += 1)
        memory[byte] = 0xaa;
    unsigned char fill[PAGE];
    for (int i = 0; i < PAGE; i += 1)
        fill[i] = 0xc1;
    if (write(to_child[1], fill, PAGE) != PAGE)
        return 2;
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return 2;
    printf("fork_big: %lu MiB, child checked its pages: %s\n", mib,
           WEXITSTATUS(status) == 0 ? "ok" : "wrong");
    /* Pages 2 and up are as before the fork: the child's writes stayed in its copies. */
    int wrong = check("the parent", 2, 0xaa);
    printf("fork_big: parent checked its pages: %s\n", wrong ? "wrong" : "ok");
    unsigned long more = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    for (unsigned long i = 0; i < more; i += 1) {
        pid_t quick = fork();
        if (quick == 0)
            _exit(0);
        if (waitpid(quick, NULL, 0) != quick)
            return 2;
    }
    return WEXITSTATUS(status) | wrong;
}
