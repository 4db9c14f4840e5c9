/* Small-buffer file copy: copies SRC to DST through a 64-byte buffer, then prints the byte count. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: file_copy SRC DST\n");
        return 2;
    }
    int in = open(argv[1], O_RDONLY);
    if (in < 0) {
        perror(argv[1]);
        return 1;
    }
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        perror(argv[2]);
        return 1;
    }
    char buf[64];
    long total = 0;
    ssize_t got;
    while ((got = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, got) != got)
            return 1;
        total += got;
    }
    close(in);
    close(out);
    printf("file_copy: %ld bytes\n", total);
    return got < 0;
}
