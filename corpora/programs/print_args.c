/* Prints its argv, one argument a line: whatever follows PROGRAM on simulate's command line,
 * --help and -- included, must reach the program as it does natively. */
#include <stdio.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        printf("%d: %s\n", i, argv[i]);
    return 0;
}
