/* seccomp_probe: tries, from inside a container, the calls Berth's default seccomp profile must
 * refuse and the ones ordinary programs need, and prints one "name=RESULT" line for each, RESULT
 * being "ok" or the errno's name (EPERM, ENOSYS, ...).
 *
 * Where the kernel itself would refuse an unprivileged caller with EPERM, the probe either performs
 * the real attack from a new user namespace (where it holds every capability) or passes arguments
 * the kernel rejects with another errno, so that EPERM can only come from the filter.
 *
 * Built with `cc -static -pthread` and bind-mounted into a busybox container by
 * test_seccomp_default.py. Single file, no dependencies beyond libc and the kernel headers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/mount.h>
#include <linux/userfaultfd.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* <linux/keyctl.h> is not always installed; these are its values. */
#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_THREAD_KEYRING (-1)

extern char **environ;

static void report(const char *name, long rc, int err) {
    if (rc >= 0) printf("%s=ok\n", name);
    else printf("%s=%s\n", name, strerrorname_np(err) ? strerrorname_np(err) : "E?");
}

/* Runs `body` in a child made by a raw clone(2) with `flags`: reports clone's own errno, or the
 * errno the child exits with (0 for success). Raw, so glibc's clone3 path is not involved. */
static void in_clone_child(const char *name, unsigned long flags, int (*body)(void)) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(body ? body() : 0);
    if (pid < 0) { report(name, -1, errno); return; }
    int status = 0;
    waitpid((pid_t)pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    report(name, code == 0 ? 0 : -1, code);
}

/* The escape the deny-list allowed: tmpfs through the new mount API, in a new user+mount
 * namespace, although mount(2) is refused. */
static int mount_tmpfs_with_fsmount(void) {
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0) return errno;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) return errno;
    int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
    if (mnt < 0) return errno;
    if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    return 0;
}

static int do_unshare_ns(void) {
    return unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) < 0 ? errno : 0;
}

static void *thread_body(void *arg) { return arg; }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const unsigned long ns_flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET;
    long rc;

    /* Must be refused without CAP_SYS_ADMIN. */
    in_clone_child("clone_newuser_newns_newnet", ns_flags, NULL);
    in_clone_child("unshare_newuser_newns_newnet", 0, do_unshare_ns);
    in_clone_child("userns_fsmount_tmpfs", CLONE_NEWUSER | CLONE_NEWNS, mount_tmpfs_with_fsmount);
    /* fsconfig has no capability check of its own: on fd -1 the kernel answers EINVAL. */
    rc = syscall(SYS_fsconfig, -1, FSCONFIG_CMD_CREATE, NULL, NULL, 0); report("fsconfig_badfd", rc, errno);
    rc = syscall(SYS_bpf, 0x7fff, NULL, 0); report("bpf_badcmd", rc, errno);                  /* EINVAL if let through */
    rc = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0); report("perf_event_open_null", rc, errno);  /* EFAULT */

    /* Must be refused (Berth's intentional differences from Docker 20.10 included). */
    rc = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER); report("socket_netlink_netfilter", rc, errno);
    /* The kernel reads family and protocol as int: garbage in the upper halves must not get past the filter. */
    rc = syscall(SYS_socket, (1L << 32) | AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (1L << 32) | NETLINK_NETFILTER);
    report("socket_netlink_netfilter_high_bits", rc, errno);
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    rc = syscall(SYS_io_uring_setup, 1, &params); report("io_uring_setup", rc, errno);
    int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
    rc = self < 0 ? -1 : syscall(SYS_pidfd_getfd, self, 1, 0); report("pidfd_getfd", rc, errno);
    rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1); report("keyctl", rc, errno);
    rc = syscall(SYS_add_key, "user", "berth-probe", "x", 1, KEY_SPEC_THREAD_KEYRING); report("add_key", rc, errno);
    /* UFFD_USER_MODE_ONLY needs no privilege, so only the filter can refuse it. */
    rc = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY); report("userfaultfd", rc, errno);
    rc = personality(PER_BSD); report("personality_bsd", rc, errno);
    if (rc >= 0) personality(PER_LINUX);

    /* Must keep working. */
    rc = personality(PER_LINUX); report("personality_linux", rc, errno);
    rc = personality(0xffffffff); report("personality_query", rc, errno);
    rc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); report("socket_inet", rc, errno);
    rc = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); report("socket_netlink_route", rc, errno);
    rc = syscall(SYS_pidfd_open, getpid(), 0); report("pidfd_open", rc, errno);
    /* Docker answers clone3 with ENOSYS so that glibc falls back to clone(2). */
    rc = syscall(SYS_clone3, NULL, 0); report("clone3", rc, errno);
    /* Newer than every syscall the profile names: ENOSYS (runc's rule), so libc falls back. */
    rc = syscall(452 /* fchmodat2, same number on every architecture */, AT_FDCWD, "/nonexistent", 0755, 0);
    report("fchmodat2_newer_than_profile", rc, errno);
    pid_t child = fork();
    if (child == 0) _exit(0);
    if (child > 0) waitpid(child, NULL, 0);
    report("fork", child, errno);
    pthread_t thread;
    int terr = pthread_create(&thread, NULL, thread_body, NULL);
    if (terr == 0) pthread_join(thread, NULL);
    report("pthread_create", terr == 0 ? 0 : -1, terr);
    pid_t spawned;
    char *argv[] = {"/bin/true", NULL};
    int serr = posix_spawn(&spawned, argv[0], NULL, NULL, argv, environ);
    int status = 1;
    if (serr == 0) waitpid(spawned, &status, 0);
    report("posix_spawn_true", serr == 0 && status == 0 ? 0 : -1, serr ? serr : ECHILD);
    return 0;
}
