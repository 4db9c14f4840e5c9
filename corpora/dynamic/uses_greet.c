/* Linked against libgreet_a.so, found beside the program ($ORIGIN): the tests take the
 * library away, cut it short or swap in one for another machine, and ld.so's error must end
 * the run as natively. */
#include <stdio.h>

const char *greet(void);

int main(void) {
    printf("%s\n", greet());
    return 0;
}
