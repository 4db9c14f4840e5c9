/* Calls a syscall the simulator does not model (io_uring_setup), then reports what it got.
 * Under `--on-unsupported-syscall enosys` it prints "io_uring_setup: errno 38" and exits 0. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long r = syscall(SYS_io_uring_setup, 0, 0);
    printf("io_uring_setup: %s %d\n", r < 0 ? "errno" : "returned", r < 0 ? errno : (int)r);
    return 0;
}
