/* Shared by create_proc and vfork_exec: where the tiny_true they exec lives. */
#include <stdio.h>
#include <string.h>

/* argv[2] if given, else tiny_true in argv[0]'s directory ("." when argv[0] has no slash, as
 * when found through PATH from the current directory). */
static inline void tiny_true_path(int argc, char **argv, char *path, size_t size) {
    if (argc > 2) {
        snprintf(path, size, "%s", argv[2]);
        return;
    }
    const char *slash = strrchr(argv[0], '/');
    if (slash)
        snprintf(path, size, "%.*s/tiny_true", (int)(slash - argv[0]), argv[0]);
    else
        snprintf(path, size, "./tiny_true");
}
