/* Signals and timers that reach a task computing without syscalls, as a timer interrupt
 * reaches it: a periodic ITIMER_REAL whose handler counts while the program spins, a
 * thread that spins until a sleeping one sets a flag, a spinning child killed by its
 * parent, and one killed by its own timer's SIGALRM. Before a task could be stopped
 * between two instructions, each of these spun for ever. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int ticks;
static atomic_int flag;

static void on_alarm(int signo) {
    (void)signo;
    atomic_fetch_add(&ticks, 1);
}

static void set_timer(long interval_us, long value_us) {
    struct itimerval timer = {
        .it_interval = {.tv_sec = 0, .tv_usec = interval_us},
        .it_value = {.tv_sec = 0, .tv_usec = value_us},
    };
    setitimer(ITIMER_REAL, &timer, NULL);
}

static void *sleeper(void *arg) {
    (void)arg;
    usleep(2000);
    atomic_store(&flag, 1);
    return NULL;
}

static void spin_forever(void) {
    for (;;)
        atomic_fetch_add(&flag, 1);
}

int main(void) {
    signal(SIGALRM, on_alarm);
    set_timer(1000, 1000);
    while (atomic_load(&ticks) < 3) {
    }
    set_timer(0, 0);
    struct itimerval left;
    getitimer(ITIMER_REAL, &left);
    printf("periodic timer: at least 3 ticks while spinning: %d; disarmed: %d\n",
           atomic_load(&ticks) >= 3, left.it_value.tv_usec == 0 && left.it_interval.tv_usec == 0);

    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, NULL);
    while (atomic_load(&flag) == 0) {
    }
    pthread_join(thread, NULL);
    printf("a spinning thread saw the sleeper's flag\n");

    int status;
    pid_t child = fork();
    if (child == 0)
        spin_forever();
    usleep(1000);
    kill(child, SIGTERM);
    waitpid(child, &status, 0);
    printf("spinning child killed by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);

    child = fork();
    if (child == 0) {
        signal(SIGALRM, SIG_DFL);
        set_timer(0, 1500);
        spin_forever();
    }
    waitpid(child, &status, 0);
    printf("spinning child killed by its timer: signal %d\n",
           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 0;
}
