/* User and group ids, and the machine's name: prints its ids, sets them to its own (as
 * busybox does to drop privileges: it must succeed), then to other ids (EPERM for an ordinary
 * user; root may, and loses root's power once no uid is 0), and prints the uname fields that
 * name the architecture. Its output depends on the host user, the same natively and
 * simulated: the guest runs as the host user. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Neither the host user's id nor 0 on any machine this runs on. */
#define OTHER 54321

static void show(const char *what, int r) {
    printf("%s = %s\n", what, r == 0 ? "0" : strerror(errno));
}

static void ids(void) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("uid %u %u %u (getuid %u geteuid %u) gid %u %u %u (getgid %u getegid %u)\n", r, e,
           s, getuid(), geteuid(), gr, ge, gs, getgid(), getegid());
}

int main(void) {
    ids();
    gid_t groups[256];
    int n = getgroups(256, groups);
    printf("groups: %d\n", n);

    /* Its own ids: what busybox does first thing as any user. */
    uid_t uid = getuid();
    gid_t gid = getgid();
    show("setgid(own)", setgid(gid));
    show("setuid(own)", setuid(uid));
    show("setregid(-1, own)", setregid(-1, gid));
    show("setreuid(own, own)", setreuid(uid, uid));
    show("setresgid(own, -1, own)", setresgid(gid, -1, gid));
    show("setresuid(-1, own, -1)", setresuid(-1, uid, -1));
    printf("setfsuid(own) answers the old: %d\n", setfsuid(uid) == (int)uid);
    /* Only root may set its groups, even to the ones it has. */
    show("setgroups(own)", setgroups(n, groups));
    ids();

    /* Other ids: root may, a user may not. */
    show("setgid(other)", setgid(OTHER));
    show("setresuid(-1, other, -1)", setresuid(-1, OTHER, -1));
    ids();
    /* Back to the effective id it had: root's power returns with uid 0. */
    show("setresuid(-1, own, -1)", setresuid(-1, uid, -1));
    show("setuid(other)", setuid(OTHER));
    ids();
    show("setuid(own)", setuid(uid));
    show("setgroups(none)", setgroups(0, NULL));
    ids();

    struct utsname u;
    show("uname", uname(&u));
    printf("sysname %s machine %s nodename set %d release set %d\n", u.sysname, u.machine,
           u.nodename[0] != 0, u.release[0] != 0);
    return 0;
}
