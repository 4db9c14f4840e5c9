/* One of two libraries that export the same function: dlopen_greet loads one, unloads it and
 * loads the other, which the loader maps at the same address. */
const char *greet(void) { return "hello from library a"; }
