/* Shared by yield_threads and yield_procs: pinning to one CPU so a yield must switch tasks. */
#include <sched.h>

/* Pins the calling thread, and so the threads and processes it creates afterwards, to the first
 * CPU of its own affinity mask (never a fixed number: the host's CPUs and cgroup vary). */
static inline int pin_to_one_cpu(void) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed)) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            return sched_setaffinity(0, sizeof one, &one);
        }
    return -1;
}
