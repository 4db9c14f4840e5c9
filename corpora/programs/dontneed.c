/* MADV_DONTNEED as Linux answers it: a private file mapping's written page reads the file's
 * bytes again, an anonymous page reads zeros, and shared anonymous memory keeps what was
 * written. The file is made here and removed before the end. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    const char *path = "dontneed.tmp";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char page[4096];
    for (int i = 0; i < 2; i++) {
        memset(page, 'a' + i, sizeof page);
        write(fd, page, sizeof page);
    }
    char *file = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *anonymous = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    file[4096] = 'X';
    anonymous[0] = 'Y';
    shared[0] = 'Z';
    printf("before: %c %c %c\n", file[4096], anonymous[0], shared[0]);
    madvise(file, 8192, MADV_DONTNEED);
    madvise(anonymous, 4096, MADV_DONTNEED);
    madvise(shared, 4096, MADV_DONTNEED);
    printf("after: %c %d %c\n", file[4096], anonymous[0], shared[0]);
    /* The file changed under the mapping: a dropped page reads what it holds now. */
    memset(page, 'q', sizeof page);
    pwrite(fd, page, sizeof page, 4096);
    madvise(file, 8192, MADV_DONTNEED);
    printf("after the file changed: %c\n", file[4096]);
    close(fd);
    unlink(path);
    return 0;
}
