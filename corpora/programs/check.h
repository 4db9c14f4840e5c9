/* The corpus programs' own checks: a step that fails prints the program, the step and
 * errno's name, and ends the program with status 1. Include it first (it needs
 * _GNU_SOURCE for errno's name and the program's). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *errno_name(int err) {
    const char *name = strerrorname_np(err);
    return name ? name : "an unknown errno";
}

static void check(int ok, const char *what) {
    if (!ok) {
        printf("%s: %s failed: %s\n", program_invocation_short_name, what, errno_name(errno));
        exit(1);
    }
}
