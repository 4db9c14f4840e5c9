/* The other library with `greet` (see greet_a.c). */
const char *greet(void) { return "hello from library b, mapped where a was"; }
