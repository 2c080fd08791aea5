// The container process from clone() to execve(). See berth_spawn.h.
//
// Everything the child runs must be async-signal-safe: the parent is a multi-threaded Swift
// process, so the child may not malloc, lock, or call into Swift. It reads the plan the
// parent prepared (its copy-on-write copy of the parent's memory) and makes system calls.
#define _GNU_SOURCE
#include "berth_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

// Messages over the SOCK_SEQPACKET sync socket, one struct per datagram.
enum {
    MSG_MAPS = 1,      // child -> parent: write uid/gid maps for pid `value` (0: the cloned pid)
    MSG_MAPS_DONE,     // parent -> child
    MSG_PID,           // intermediate -> parent: the container's pid is `value`
    MSG_NS_READY,      // child -> parent: namespaces exist, waiting for MSG_GO
    MSG_GO,            // parent -> child
    MSG_READY,         // child -> parent: set up and blocked on the exec fifo
    MSG_ERROR,         // child -> parent: `text` says what failed, `value` is errno (or 0)
};

typedef struct {
    int32_t type;
    int32_t value;
    char text[BERTH_ERR_MAX];
} berth_msg;

// ---------------------------------------------------------------------------------------
// Async-signal-safe string helpers (no stdio in the child).

typedef struct {
    char buf[BERTH_ERR_MAX];
    size_t len;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
    if (!s) s = "(null)";
    while (*s && b->len + 1 < sizeof b->buf) b->buf[b->len++] = *s++;
    b->buf[b->len] = 0;
}

static void sb_num(sbuf *b, long long v) {
    char tmp[24];
    int i = 0;
    unsigned long long u = v < 0 ? (unsigned long long)(-v) : (unsigned long long)v;
    do { tmp[i++] = (char)('0' + u % 10); u /= 10; } while (u && i < 22);
    if (v < 0) tmp[i++] = '-';
    char out[24];
    int j = 0;
    while (i) out[j++] = tmp[--i];
    out[j] = 0;
    sb_add(b, out);
}

// "/proc/self/fd/N" for a descriptor, so mount() acts on an already resolved location.
static void fd_path(char out[32], int fd) {
    sbuf b = {.len = 0};
    sb_add(&b, "/proc/self/fd/");
    sb_num(&b, fd);
    memcpy(out, b.buf, b.len + 1);
}

static int sync_fd = -1;
// Set in the grandchild when entering a pid or time namespace took a fork: its MSG_NS_READY and
// its parent's MSG_PID race on the socket, and the runtime must wait for both.
static int forked = 0;
// After `start` released us: failures are written here for `start` to report (see child_main).
static int fifo_fd = -1;
// The state JSON for in-container hooks, sent by the parent once the pid is known: as
// createContainer hooks see it ("creating") and as startContainer hooks do ("created").
static char state_creating[32768], state_created[32768];

static int send_msg(int fd, int type, int value, const char *text) {
    berth_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.value = value;
    if (text) {
        size_t n = strlen(text);
        if (n >= sizeof m.text) n = sizeof m.text - 1;
        memcpy(m.text, text, n);
    }
    ssize_t r;
    do { r = send(fd, &m, sizeof m, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof m ? 0 : -1;
}

static int recv_msg(int fd, berth_msg *m) {
    ssize_t r;
    int resets = 0;
    // A peer that closes its end with data still unread in its own queue leaves ECONNRESET
    // pending on ours, and the kernel reports a pending error before queued messages
    // (__skb_try_recv_datagram checks sock_error first). Reading it clears it: the message
    // the peer sent before closing (or the end of file) comes with the next recv.
    do { r = recv(fd, m, sizeof *m, 0); } while (r < 0 && (errno == EINTR || (errno == ECONNRESET && resets++ == 0)));
    if (r == 0) return 0;
    if (r != (ssize_t)sizeof *m) return -1;
    return 1;
}

// Reports a failure to the parent and exits. `what` names the step and its argument.
__attribute__((noreturn)) static void die_code(int code, int err, const char *a, const char *b, const char *c) {
    sbuf s = {.len = 0};
    sb_add(&s, a);
    if (b) sb_add(&s, b);
    if (c) sb_add(&s, c);
    if (sync_fd >= 0 && send_msg(sync_fd, MSG_ERROR, err, s.buf) == 0) _exit(code);
    if (fifo_fd >= 0) {
        // `start` is reading: it fails with this message.
        ssize_t unused = write(fifo_fd, "E", 1);
        unused = write(fifo_fd, s.buf, s.len);
        if (err) {
            unused = write(fifo_fd, ": errno ", 8);
            sbuf e = {.len = 0};
            sb_num(&e, err);
            unused = write(fifo_fd, e.buf, e.len);
        }
        (void)unused;
        _exit(code);
    }
    // No parent listening any more (after create): say it on the container's stderr.
    if (err) {
        sb_add(&s, ": errno ");
        sb_num(&s, err);
    }
    sb_add(&s, "\n");
    ssize_t unused = write(2, "berth-runtime: ", 15);
    unused = write(2, s.buf, s.len);
    (void)unused;
    _exit(code);
}

#define die(err, a, b, c) die_code(1, (err), (a), (b), (c))

static void wait_for(int type) {
    berth_msg m;
    int r = recv_msg(sync_fd, &m);
    if (r <= 0) _exit(1);  // the runtime went away: abandon quietly
    if (m.type != type) die(0, "unexpected message from runtime", NULL, NULL);
}

// MSG_GO is followed by two datagrams holding the state JSON (each possibly empty).
static void receive_state(char *buf, size_t size) {
    ssize_t r;
    do { r = recv(sync_fd, buf, size - 1, 0); } while (r < 0 && errno == EINTR);
    if (r < 0) _exit(1);
    buf[r] = 0;
}

// ---------------------------------------------------------------------------------------
// Paths inside the new root, resolved by the kernel with RESOLVE_IN_ROOT so that symlinks
// in the rootfs (including absolute ones and "..") can never lead outside it.

static int open_in_root(int rootfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (*path == '/') path++;
    if (!*path) path = ".";
    int fd;
    do { fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how); } while (fd < 0 && errno == EAGAIN);
    return fd;
}

// mkdir -p of `path` (absolute inside the root); with `leaf_file`, the last component is
// created as an empty file instead (bind mounts of files, device nodes). Returns an O_PATH
// fd of the leaf.
static int make_path(int rootfd, const char *path, int leaf_file) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, n + 1);
    // Walk each prefix: existing components are opened, missing ones created.
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        int last = (saved == 0);
        int fd = open_in_root(rootfd, buf, O_PATH);
        if (fd >= 0) {
            if (last) return fd;
            close(fd);
        } else if (errno == ENOENT) {
            // Create the component inside its (already resolved) parent.
            char *slash = strrchr(buf, '/');
            const char *name = slash ? slash + 1 : buf;
            int pfd;
            if (slash && slash != buf) {
                *slash = 0;
                pfd = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY);
                *slash = '/';
            } else {
                pfd = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
            }
            if (pfd < 0) return -1;
            int r;
            if (last && leaf_file) {
                r = openat(pfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (r >= 0) close(r);
            } else {
                r = mkdirat(pfd, name, 0755);
            }
            close(pfd);
            if (r < 0 && errno != EEXIST) return -1;
            fd = open_in_root(rootfd, buf, O_PATH);
            if (fd < 0) return -1;
            if (last) return fd;
            close(fd);
        } else {
            return -1;
        }
        buf[i] = saved;
    }
    errno = EINVAL;
    return -1;
}

// Flags a remount must keep: in a user namespace the kernel refuses to clear them.
static unsigned long locked_flags(const char *path) {
    struct statvfs st;
    if (statvfs(path, &st) != 0) return 0;
    unsigned long f = 0;
    if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) f |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (st.f_flag & ST_RDONLY) f |= MS_RDONLY;
    return f;
}

#define BIND_REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | \
                            MS_RELATIME | MS_STRICTATIME | MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK | MS_LAZYTIME)

static void do_mount(int rootfd, const berth_mount *m) {
    char target[32];
    int fd;
    if (m->kind == BERTH_SYMLINK) {
        // Create in the resolved parent; an existing entry is left alone.
        char buf[PATH_MAX];
        size_t n = strlen(m->destination);
        if (n >= sizeof buf) die(ENAMETOOLONG, "symlink ", m->destination, NULL);
        memcpy(buf, m->destination, n + 1);
        char *slash = strrchr(buf, '/');
        const char *name = slash + 1;
        *slash = 0;
        int pfd = make_path(rootfd, buf[0] ? buf : "/", 0);
        if (pfd < 0) die(errno, "creating the parent of symlink ", m->destination, NULL);
        int dfd = open_in_root(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
        close(pfd);
        if (dfd < 0) die(errno, "opening the parent of symlink ", m->destination, NULL);
        if (symlinkat(m->source, dfd, name) != 0 && errno != EEXIST) die(errno, "creating symlink ", m->destination, NULL);
        close(dfd);
        return;
    }
    if (m->kind == BERTH_REMOUNT) {
        fd = open_in_root(rootfd, m->destination, O_PATH);
        if (fd < 0) die(errno, "opening mount point ", m->destination, NULL);
        fd_path(target, fd);
        if (mount(NULL, target, NULL, MS_REMOUNT | m->flags, m->data) != 0)
            die(errno, "remounting ", m->destination, NULL);
        close(fd);
        return;
    }
    int leaf_file = 0;
    if (m->is_bind) {
        struct stat st;
        if (stat(m->source, &st) != 0) die(errno, "bind mount source ", m->source, NULL);
        leaf_file = !S_ISDIR(st.st_mode);
    }
    fd = make_path(rootfd, m->destination, leaf_file);
    if (fd < 0) die(errno, "creating mount point ", m->destination, NULL);
    fd_path(target, fd);
    if (m->is_bind) {
        if (mount(m->source, target, NULL, MS_BIND | (m->flags & MS_REC), NULL) != 0)
            die(errno, "bind mounting ", m->source, m->destination);
        close(fd);
        unsigned long extra = m->flags & BIND_REMOUNT_FLAGS;
        if (extra) {
            // A bind mount takes its flags only from a second, remounting call on the new mount.
            fd = open_in_root(rootfd, m->destination, O_PATH);
            if (fd < 0) die(errno, "reopening mount point ", m->destination, NULL);
            fd_path(target, fd);
            unsigned long f = MS_BIND | MS_REMOUNT | extra;
            if (mount(NULL, target, NULL, f, NULL) != 0) {
                f |= locked_flags(target) & ~MS_RDONLY;
                if (mount(NULL, target, NULL, f, NULL) != 0) die(errno, "remounting bind mount ", m->destination, NULL);
            }
            close(fd);
        }
    } else {
        if (mount(m->source ? m->source : m->fstype, target, m->fstype, m->flags, m->data) != 0)
            die(errno, "mounting ", m->fstype, m->destination[0] ? m->destination : "/");
        close(fd);
    }
    if (m->propagation) {
        fd = open_in_root(rootfd, m->destination, O_PATH);
        if (fd < 0) die(errno, "reopening mount point ", m->destination, NULL);
        fd_path(target, fd);
        if (mount(NULL, target, NULL, m->propagation, NULL) != 0)
            die(errno, "setting propagation of ", m->destination, NULL);
        close(fd);
    }
}

static void make_device(int rootfd, const berth_device *d, int bind) {
    char buf[PATH_MAX];
    size_t n = strlen(d->path);
    if (n >= sizeof buf) die(ENAMETOOLONG, "device ", d->path, NULL);
    memcpy(buf, d->path, n + 1);
    if (bind) {
        int fd = make_path(rootfd, d->path, 1);
        if (fd < 0) die(errno, "creating device mount point ", d->path, NULL);
        char target[32];
        fd_path(target, fd);
        if (mount(d->path, target, NULL, MS_BIND, NULL) != 0) die(errno, "bind mounting device ", d->path, NULL);
        close(fd);
        return;
    }
    char *slash = strrchr(buf, '/');
    const char *name = slash + 1;
    *slash = 0;
    int pfd = make_path(rootfd, buf[0] ? buf : "/", 0);
    if (pfd < 0) die(errno, "creating the directory of device ", d->path, NULL);
    close(pfd);
    int dfd = open_in_root(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
    if (dfd < 0) die(errno, "opening the directory of device ", d->path, NULL);
    mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
    unlinkat(dfd, name, 0);
    if (mknodat(dfd, name, type | (d->mode & 07777), makedev(d->major, d->minor)) != 0)
        die(errno, "creating device ", d->path, NULL);
    if (fchownat(dfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) != 0) die(errno, "chown of device ", d->path, NULL);
    close(dfd);
}

// After pivot_root: hide a path (runtime-spec maskedPaths).
static void mask_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return;
        die(errno, "masking ", path, NULL);
    }
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)
                                 : mount("/dev/null", path, NULL, MS_BIND, NULL);
    if (r != 0) die(errno, "masking ", path, NULL);
}

static void readonly_path(const char *path) {
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0) {
        if (errno == ENOENT) return;
        die(errno, "making read-only ", path, NULL);
    }
    unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(path);
    if (mount(NULL, path, NULL, f, NULL) != 0) die(errno, "making read-only ", path, NULL);
}

static void write_file(const char *path, const char *data, const char *what) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die(errno, what, path, NULL);
    size_t n = strlen(data);
    if (write(fd, data, n) != (ssize_t)n) die(errno, what, path, NULL);
    close(fd);
}

static void apply_sysctl(const berth_sysctl *s) {
    char path[PATH_MAX];
    sbuf b = {.len = 0};
    sb_add(&b, "/proc/sys/");
    size_t start = b.len;
    sb_add(&b, s->key);
    for (size_t i = start; i < b.len; i++) if (b.buf[i] == '.') b.buf[i] = '/';
    memcpy(path, b.buf, b.len + 1);
    write_file(path, s->value, "writing sysctl ");
}

static void pivot(const berth_plan *p) {
    if (p->no_pivot) {
        if (chdir(p->rootfs) != 0) die(errno, "chdir to rootfs ", p->rootfs, NULL);
        if (mount(p->rootfs, "/", NULL, MS_MOVE, NULL) != 0) die(errno, "moving rootfs to /", NULL, NULL);
        if (chroot(".") != 0) die(errno, "chroot", NULL, NULL);
        if (chdir("/") != 0) die(errno, "chdir /", NULL, NULL);
        return;
    }
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int newroot = open(p->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0 || newroot < 0) die(errno, "opening roots for pivot_root", NULL, NULL);
    if (fchdir(newroot) != 0) die(errno, "chdir to rootfs ", p->rootfs, NULL);
    // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only
    // the container's tree, with no directory needed for the old root.
    if (syscall(SYS_pivot_root, ".", ".") != 0) die(errno, "pivot_root to ", p->rootfs, NULL);
    if (fchdir(oldroot) != 0) die(errno, "chdir to old root", NULL, NULL);
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) != 0) die(errno, "making old root a slave", NULL, NULL);
    if (umount2(".", MNT_DETACH) != 0) die(errno, "detaching old root", NULL, NULL);
    if (chdir("/") != 0) die(errno, "chdir /", NULL, NULL);
    close(oldroot);
    close(newroot);
}

// Propagation the new root gets only after pivot_root: the rootfs cannot be bind-mounted from
// an unbindable tree, and pivot_root refuses a shared one.
static int propagation_after_pivot(unsigned long prop) { return (prop & (MS_SHARED | MS_UNBINDABLE)) != 0; }

static void setup_rootfs(const berth_plan *p) {
    unsigned long prop = p->rootfs_propagation ? p->rootfs_propagation : (MS_SLAVE | MS_REC);
    if (prop & MS_UNBINDABLE) prop = MS_PRIVATE | (prop & MS_REC);
    if (mount(NULL, "/", NULL, prop, NULL) != 0) die(errno, "setting rootfs propagation", NULL, NULL);
    // The new root must itself be a mount point for pivot_root.
    if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) die(errno, "bind mounting rootfs ", p->rootfs, NULL);
    if (prop & MS_SHARED) {
        // pivot_root refuses a new root whose parent mount is shared: make this bind private
        // and stack the real root on it. The requested sharing is applied after the pivot.
        if (mount(NULL, p->rootfs, NULL, MS_PRIVATE, NULL) != 0) die(errno, "making rootfs private ", p->rootfs, NULL);
        if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) die(errno, "bind mounting rootfs ", p->rootfs, NULL);
    }
    int rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) die(errno, "opening rootfs ", p->rootfs, NULL);
    for (int i = 0; i < p->n_mounts; i++) do_mount(rootfd, &p->mounts[i]);
    for (int i = 0; i < p->n_devices; i++) make_device(rootfd, &p->devices[i], p->bind_devices);
    close(rootfd);
}

// ---------------------------------------------------------------------------------------
// Hooks run from the child: fork + execve with the state JSON on stdin, bounded by a timeout.

static void run_hooks(const berth_hook *hooks, int n, const char *state, const char *stage) {
    for (int i = 0; i < n; i++) {
        const berth_hook *h = &hooks[i];
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) die(errno, stage, " hook: pipe", NULL);
        pid_t pid = fork();
        if (pid < 0) die(errno, stage, " hook: fork", NULL);
        if (pid == 0) {
            dup2(p[0], 0);
            execve(h->path, h->argv, h->envp);
            _exit(127);
        }
        close(p[0]);
        size_t len = state ? strlen(state) : 0, off = 0;
        while (off < len) {
            ssize_t w = write(p[1], state + off, len - off);
            if (w <= 0) break;  // the hook need not read its stdin
            off += (size_t)w;
        }
        close(p[1]);
        int status = 0;
        long waited_ms = 0;
        for (;;) {
            pid_t r = waitpid(pid, &status, h->timeout_sec > 0 ? WNOHANG : 0);
            if (r == pid) break;
            if (r < 0 && errno != EINTR) die(errno, stage, " hook: wait", NULL);
            if (r == 0) {
                if (waited_ms >= (long)h->timeout_sec * 1000) {
                    kill(pid, SIGKILL);
                    waitpid(pid, &status, 0);
                    die(ETIMEDOUT, stage, " hook timed out: ", h->path);
                }
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
                waited_ms += 2;
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die(0, stage, " hook failed: ", h->path);
    }
}

// ---------------------------------------------------------------------------------------
// The process itself.

static int has_slash(const char *s) { return strchr(s, '/') != NULL; }

// Finds the executable as execvp would, but with the container's PATH. Returns 0 and
// fills out, or an errno.
static int resolve_exec(const berth_plan *p, char out[PATH_MAX]) {
    if (has_slash(p->path)) {
        size_t n = strlen(p->path);
        if (n >= PATH_MAX) return ENAMETOOLONG;
        memcpy(out, p->path, n + 1);
        return access(out, X_OK) == 0 ? 0 : errno;
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char *const *e = p->envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
    int err = ENOENT;
    size_t nlen = strlen(p->path);
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dlen = end ? (size_t)(end - path) : strlen(path);
        if (dlen + nlen + 2 < PATH_MAX) {
            if (dlen == 0) { out[0] = '.'; dlen = 1; } else memcpy(out, path, dlen);
            out[dlen] = '/';
            memcpy(out + dlen + 1, p->path, nlen + 1);
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(out, X_OK) == 0) return 0;
                err = EACCES;
            }
        }
        if (!end) break;
        path = end + 1;
    }
    return err;
}

static void setup_terminal(const berth_plan *p) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) die(errno, "opening /dev/ptmx (is /dev/pts mounted?)", NULL, NULL);
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) != 0) die(errno, "unlocking the pty", NULL, NULL);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) die(errno, "opening the pty peer", NULL, NULL);
    if (p->rows || p->cols) {
        struct winsize ws = {.ws_row = p->rows, .ws_col = p->cols};
        ioctl(slave, TIOCSWINSZ, &ws);
    }
    if (fchown(slave, p->uid, p->gid) != 0 && errno != EINVAL && errno != EPERM) die(errno, "chown of the pty", NULL, NULL);
    if (berth_send_fd(p->console_socket, master, "/dev/ptmx") != 0) die(errno, "sending the pty to the console socket", NULL, NULL);
    close(master);
    close(p->console_socket);
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0) die(errno, "attaching the pty to stdio", NULL, NULL);
    if (slave > 2) close(slave);
    if (ioctl(0, TIOCSCTTY, 0) != 0) die(errno, "making the pty the controlling terminal", NULL, NULL);
}

static int capset_all(const berth_plan *p) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)p->cap_effective;
    data[1].effective = (uint32_t)(p->cap_effective >> 32);
    data[0].permitted = (uint32_t)p->cap_permitted;
    data[1].permitted = (uint32_t)(p->cap_permitted >> 32);
    data[0].inheritable = (uint32_t)p->cap_inheritable;
    data[1].inheritable = (uint32_t)(p->cap_inheritable >> 32);
    return (int)syscall(SYS_capset, &hdr, data);
}

static void install_seccomp(const berth_plan *p) {
    struct sock_fprog prog = {.len = (unsigned short)(p->seccomp_len / sizeof(struct sock_filter)),
                              .filter = (struct sock_filter *)p->seccomp_filter};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog) != 0)
        die(errno, "installing the seccomp filter", NULL, NULL);
}

// Closes every descriptor from `first` up except the ones the rest of setup still needs (the
// sync socket and the exec fifo, neither a directory). A host directory left open here would
// let a cwd of /proc/self/fd/N start the process outside its root (CVE-2024-21626).
static void close_runtime_fds(unsigned int first, int exec_fifo) {
    int keep[2] = {sync_fd, exec_fifo};
    unsigned int lo = first;
    for (;;) {
        // The next kept fd at or above lo, if any.
        int next = -1;
        for (int i = 0; i < 2; i++)
            if (keep[i] >= (int)lo && (next < 0 || keep[i] < next)) next = keep[i];
        unsigned int hi = next < 0 ? ~0U : (unsigned int)next - 1;
        if (next < 0 || (unsigned int)next > lo) {
            if (syscall(SYS_close_range, lo, hi, 0) != 0)
                for (unsigned int fd = lo; fd <= hi && fd < 65536; fd++) close((int)fd);
        }
        if (next < 0) return;
        lo = (unsigned int)next + 1;
    }
}

// chdir to the process's cwd, then check that it lies under the container's root: the kernel's
// getcwd reports a directory unreachable from our root as "(unreachable)..." (or fails).
static void enter_cwd(const char *cwd) {
    if (chdir(cwd) != 0) die(errno, "chdir to cwd ", cwd, NULL);
    char buf[PATH_MAX];
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    if (n < 0 && errno != ENAMETOOLONG)
        die(errno, "cwd ", cwd, " is outside the container's root (possible breakout attempt): refused");
    if (n > 0 && buf[0] != '/')
        die(0, "cwd ", cwd, " is outside the container's root (possible breakout attempt): refused");
}

static void finish_process(const berth_plan *p) {
    for (int i = 0; i < p->n_rlimits; i++) {
        struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
        if (setrlimit(p->rlimits[i].resource, &rl) != 0) die(errno, "setting an rlimit", NULL, NULL);
    }
    if (p->has_oom_score_adj) {
        sbuf b = {.len = 0};
        sb_num(&b, p->oom_score_adj);
        write_file("/proc/self/oom_score_adj", b.buf, "writing ");
    }
    if (p->cwd) enter_cwd(p->cwd);

    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, which the process may
    // be about to lose: do it now. With no_new_privs it goes last, just before execve.
    if (p->seccomp_filter && !p->no_new_privileges) install_seccomp(p);

    if (p->set_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die(errno, "PR_SET_KEEPCAPS", NULL, NULL);
    if (p->set_caps) {
        for (int c = 0; c <= p->last_cap; c++)
            if (!(p->cap_bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
                die(errno, "dropping a capability from the bounding set", NULL, NULL);
    }
    if (p->set_groups && setgroups((size_t)p->n_groups, p->groups) != 0) die(errno, "setgroups", NULL, NULL);
    if (setresgid(p->gid, p->gid, p->gid) != 0) die(errno, "setresgid", NULL, NULL);
    if (setresuid(p->uid, p->uid, p->uid) != 0) die(errno, "setresuid", NULL, NULL);
    if (p->set_caps) {
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) die(errno, "PR_SET_KEEPCAPS", NULL, NULL);
        if (capset_all(p) != 0) die(errno, "capset", NULL, NULL);
        for (int c = 0; c <= p->last_cap; c++)
            // As runc: an ambient capability that is not also inheritable and permitted cannot
            // be raised; that is not fatal.
            if (p->cap_ambient & (1ULL << c)) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
    }
    if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(errno, "PR_SET_NO_NEW_PRIVS", NULL, NULL);
}

static void reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &sa, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int cgroup2_by_write;  // clone3 could not place us: write cgroup2_procs instead

static void join_cgroup(const berth_plan *p) {
    for (int i = 0; i < p->n_cgroup_tasks; i++) write_file(p->cgroup_tasks[i], "0", "joining cgroup ");
    if (cgroup2_by_write && p->cgroup2_procs) write_file(p->cgroup2_procs, "0", "joining cgroup ");
}

// Stage A: get into the namespaces. Returns in the process that will become the container.
static void enter_namespaces(const berth_plan *p, int direct) {
    join_cgroup(p);
    int userns_new = p->new_namespaces & CLONE_NEWUSER;
    if (!direct) {
        // Joining the user namespace first gives the rights needed to join the others.
        for (int i = 0; i < p->n_joins; i++)
            if (p->joins[i].type == CLONE_NEWUSER && setns(p->joins[i].fd, CLONE_NEWUSER) != 0)
                die(errno, "joining the user namespace", NULL, NULL);
        if (userns_new && unshare(CLONE_NEWUSER) != 0) die(errno, "creating the user namespace", NULL, NULL);
    }
    if (userns_new) {
        if (send_msg(sync_fd, MSG_MAPS, direct ? 0 : getpid(), NULL) != 0) _exit(1);
        wait_for(MSG_MAPS_DONE);
        if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) die(errno, "becoming root in the user namespace", NULL, NULL);
    }
    if (direct) return;
    int needs_fork = 0;
    for (int i = 0; i < p->n_joins; i++) {
        const berth_join *j = &p->joins[i];
        if (j->type == CLONE_NEWUSER) continue;
        if (setns(j->fd, j->type) != 0) {
            sbuf b = {.len = 0};
            sb_add(&b, "joining namespace type ");
            sb_num(&b, j->type);
            die(errno, b.buf, NULL, NULL);
        }
        if (j->type == CLONE_NEWPID || j->type == CLONE_NEWTIME) needs_fork = 1;
    }
    int rest = p->new_namespaces & ~(CLONE_NEWUSER | CLONE_NEWCGROUP);
    if (rest && unshare(rest) != 0) die(errno, "creating namespaces", NULL, NULL);
    if (rest & CLONE_NEWPID) needs_fork = 1;
    if (p->new_time_namespace) {
        if (unshare(CLONE_NEWTIME) != 0) die(errno, "creating the time namespace", NULL, NULL);
        if (p->time_offsets) write_file("/proc/self/timens_offsets", p->time_offsets, "writing ");
        needs_fork = 1;
    }
    if (needs_fork) {
        // pid and time namespaces apply to children only: the grandchild is the container.
        pid_t pid = fork();
        if (pid < 0) die(errno, "fork into the pid namespace", NULL, NULL);
        if (pid > 0) {
            send_msg(sync_fd, MSG_PID, pid, NULL);
            _exit(0);
        }
        forked = 1;
    }
}

// A new network namespace starts with its loopback down; runc brings it up, and programs
// expect 127.0.0.1 to answer even with no other interface.
static void loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die(errno, "creating a socket to bring up lo", NULL, NULL);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) die(errno, "reading the flags of lo", NULL, NULL);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) die(errno, "bringing up lo", NULL, NULL);
    close(fd);
}

static void child_main(const berth_plan *p, int direct) {
    // Until execve this process is the runtime's binary with the host's files open: nothing in
    // the container may ptrace it or open its /proc/PID/{exe,fd,mem} (CVE-2019-5736). execve
    // makes the container's program dumpable again.
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die(errno, "PR_SET_DUMPABLE", NULL, NULL);
    reset_signals();
    enter_namespaces(p, direct);
    if (send_msg(sync_fd, MSG_NS_READY, forked, NULL) != 0) _exit(1);
    wait_for(MSG_GO);
    receive_state(state_creating, sizeof state_creating);
    receive_state(state_created, sizeof state_created);

    // The runtime has placed us in our cgroup: a new cgroup namespace is rooted there.
    if ((p->new_namespaces & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) != 0)
        die(errno, "creating the cgroup namespace", NULL, NULL);
    if (p->new_namespaces & CLONE_NEWNET) loopback_up();
    if (p->setsid && setsid() < 0) die(errno, "setsid", NULL, NULL);
    umask(0);
    if (p->setup_rootfs) {
        setup_rootfs(p);
        run_hooks(p->create_container_hooks, p->n_create_container_hooks, state_creating, "createContainer");
        pivot(p);
        if (propagation_after_pivot(p->rootfs_propagation) && mount(NULL, "/", NULL, p->rootfs_propagation, NULL) != 0)
            die(errno, "setting the propagation of /", NULL, NULL);
        for (int i = 0; i < p->n_sysctls; i++) apply_sysctl(&p->sysctls[i]);
        for (int i = 0; i < p->n_masked; i++) mask_path(p->masked_paths[i]);
        for (int i = 0; i < p->n_readonly; i++) readonly_path(p->readonly_paths[i]);
        if (p->readonly_rootfs && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"), NULL) != 0)
            die(errno, "making the root filesystem read-only", NULL, NULL);
    }
    if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) != 0) die(errno, "sethostname ", p->hostname, NULL);
    if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) != 0)
        die(errno, "setdomainname ", p->domainname, NULL);

    if (p->terminal) {
        setup_terminal(p);
    } else {
        for (int i = 0; i < 3; i++)
            if (p->stdio_fds[i] >= 0 && dup2(p->stdio_fds[i], i) < 0) die(errno, "attaching stdio", NULL, NULL);
    }
    // Only stdio and the preserved fds reach the process. Every other fd of the runtime's is
    // closed now, before the cwd is resolved; the two it still talks over close at execve.
    unsigned int first = 3 + (unsigned int)(p->preserve_fds > 0 ? p->preserve_fds : 0);
    close_runtime_fds(first, p->exec_fifo_fd);
    fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
    if (p->exec_fifo_fd >= 0) fcntl(p->exec_fifo_fd, F_SETFD, FD_CLOEXEC);
    // Preserved fds the caller did not open hold close-on-exec placeholders: they stay closed.
    for (int fd = 3; fd < (int)first; fd++)
        if (fd - 3 >= 64 || !(p->preserve_placeholders & (1ULL << (fd - 3)))) fcntl(fd, F_SETFD, 0);

    char exe[PATH_MAX];
    int err = resolve_exec(p, exe);
    if (err) {
        if (err == ENOENT) die_code(127, err, "exec: \"", p->path, "\": executable file not found in $PATH");
        die_code(126, err, "exec: \"", p->path, "\"");
    }
    finish_process(p);
    umask(p->has_umask ? p->umask : 022);

    if (p->exec_fifo_fd >= 0) {
        // create: report readiness, then block until `start` opens the fifo for reading.
        if (send_msg(sync_fd, MSG_READY, 0, NULL) != 0) _exit(1);
        close(sync_fd);
        sync_fd = -1;
        // `start` reads "0" (released), then either an error ("E...") or end of file, which
        // the close-on-exec fd gives it when execve succeeds.
        char path[32];
        fd_path(path, p->exec_fifo_fd);
        int fifo = open(path, O_WRONLY | O_CLOEXEC);
        if (fifo < 0) die(errno, "opening the exec fifo", NULL, NULL);
        if (write(fifo, "0", 1) != 1) die(errno, "writing the exec fifo", NULL, NULL);
        fifo_fd = fifo;
        close(p->exec_fifo_fd);
    }
    run_hooks(p->start_container_hooks, p->n_start_container_hooks, state_created, "startContainer");
    if (p->seccomp_filter && p->no_new_privileges) install_seccomp(p);
    execve(exe, p->argv, p->envp);
    die_code(errno == ENOENT ? 127 : 126, errno, "exec: \"", exe, "\"");
}

// ---------------------------------------------------------------------------------------
// Parent side.

static int write_map(pid_t pid, const char *file, const char *map, char err[BERTH_ERR_MAX]) {
    if (!map || !*map) return 0;
    sbuf b = {.len = 0};
    sb_add(&b, "/proc/");
    sb_num(&b, pid);
    sb_add(&b, "/");
    sb_add(&b, file);
    int fd = open(b.buf, O_WRONLY | O_CLOEXEC);
    size_t n = strlen(map);
    if (fd < 0 || write(fd, map, n) != (ssize_t)n) {
        int e = errno;
        sbuf m = {.len = 0};
        sb_add(&m, "writing ");
        sb_add(&m, b.buf);
        sb_add(&m, ": ");
        sb_add(&m, strerror(e));
        memcpy(err, m.buf, m.len + 1);
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static void set_err(char err[BERTH_ERR_MAX], const char *text, int e) {
    sbuf m = {.len = 0};
    sb_add(&m, text);
    if (e) {
        sb_add(&m, ": ");
        sb_add(&m, strerror(e));
    }
    memcpy(err, m.buf, m.len + 1);
}

// The child's MSG_ERROR as one line: its text and, when it sent one, errno's meaning.
static void error_from_msg(berth_msg *m, char err[BERTH_ERR_MAX]) {
    m->text[BERTH_ERR_MAX - 1] = 0;
    set_err(err, m->text, m->value);
}

static const berth_plan *current_plan;

// struct clone_args up to `cgroup` (Linux 5.7), spelled out so older headers do not matter.
struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL

int berth_spawn_begin(const berth_plan *plan, berth_child *child, char err[BERTH_ERR_MAX]) {
    int sv[2];
    child->pid = -1;
    child->sync_fd = -1;
    child->helper = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        set_err(err, "socketpair", errno);
        return -1;
    }
    // Without joins, a time namespace or a user namespace, clone() creates every namespace at
    // once and the child is the container. Otherwise the child first joins its cgroup (which
    // needs the host's root), then joins/unshares and forks where the kernel needs it.
    int direct = plan->n_joins == 0 && !plan->new_time_namespace && !(plan->new_namespaces & CLONE_NEWUSER);
    unsigned long flags = 0;
    if (direct) flags |= (unsigned long)(plan->new_namespaces & ~CLONE_NEWCGROUP);
    current_plan = plan;
    pid_t pid = -1;
    cgroup2_by_write = plan->cgroup2_fd < 0 ? 0 : 1;
    if (plan->cgroup2_fd >= 0) {
        struct clone_args_v2 args;
        memset(&args, 0, sizeof args);
        args.flags = flags | CLONE_INTO_CGROUP_FLAG;
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)plan->cgroup2_fd;
        pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0) cgroup2_by_write = 0;
        else if (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EOPNOTSUPP) {
            set_err(err, "clone3 into cgroup", errno);
            close(sv[0]);
            close(sv[1]);
            return -1;
        }
    }
    if (pid < 0) pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0) {
        set_err(err, "clone", errno);
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        sync_fd = sv[1];
        child_main(current_plan, direct);
        _exit(1);
    }
    close(sv[1]);
    child->pid = pid;
    child->sync_fd = sv[0];
    if (!direct) child->helper = pid;
    int ready = 0;  // MSG_NS_READY came from a forked grandchild before its parent's MSG_PID
    for (;;) {
        berth_msg m;
        int r = recv_msg(child->sync_fd, &m);
        if (r <= 0) {
            set_err(err, "container process exited while entering its namespaces", 0);
            berth_spawn_abort(child);
            return -1;
        }
        switch (m.type) {
        case MSG_MAPS: {
            pid_t target = m.value ? m.value : pid;
            if (write_map(target, "uid_map", plan->uid_map, err) != 0 ||
                write_map(target, "gid_map", plan->gid_map, err) != 0) {
                berth_spawn_abort(child);
                return -1;
            }
            send_msg(child->sync_fd, MSG_MAPS_DONE, 0, NULL);
            break;
        }
        case MSG_PID:
            // The intermediate process exits; the container is its child, now ours to track.
            waitpid(child->helper, NULL, 0);
            child->helper = 0;
            child->pid = m.value;
            if (ready) return 0;
            break;
        case MSG_NS_READY:
            if (m.value && child->helper) {
                ready = 1;
                break;
            }
            if (child->helper) {
                waitpid(child->helper, NULL, WNOHANG);
            }
            return 0;
        case MSG_ERROR: {
            error_from_msg(&m, err);
            berth_spawn_abort(child);
            return -1;
        }
        default:
            set_err(err, "unexpected message from the container process", 0);
            berth_spawn_abort(child);
            return -1;
        }
    }
}

static int send_state(int fd, const char *json) {
    size_t len = json ? strlen(json) : 0;
    if (len >= sizeof state_creating) len = 0;  // too large for the hooks: they get none
    return send(fd, json ? json : "", len, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int berth_spawn_finish(berth_child *child, const char *creating_json, const char *created_json,
                       char err[BERTH_ERR_MAX]) {
    if (send_msg(child->sync_fd, MSG_GO, 0, NULL) != 0 || send_state(child->sync_fd, creating_json) != 0 ||
        send_state(child->sync_fd, created_json) != 0) {
        set_err(err, "container process went away", errno);
        berth_spawn_abort(child);
        return -1;
    }
    berth_msg m;
    int r = recv_msg(child->sync_fd, &m);
    if (r == 0 || (r == 1 && m.type == MSG_READY)) {
        // EOF means execve() closed the socket: the process runs.
        close(child->sync_fd);
        child->sync_fd = -1;
        return 0;
    }
    if (r == 1 && m.type == MSG_ERROR) {
        error_from_msg(&m, err);
    } else if (r == 1) {
        set_err(err, m.type == MSG_NS_READY ? "unexpected message from the container process (ns-ready)"
                     : m.type == MSG_PID ? "unexpected message from the container process (pid)"
                     : "unexpected message from the container process", 0);
    } else {
        set_err(err, "reading from the container process", errno);
    }
    berth_spawn_abort(child);
    return -1;
}

void berth_spawn_abort(berth_child *child) {
    if (child->pid > 0) {
        kill(child->pid, SIGKILL);
        waitpid(child->pid, NULL, 0);
    }
    if (child->helper > 0 && child->helper != child->pid) {
        kill(child->helper, SIGKILL);
        waitpid(child->helper, NULL, 0);
    }
    if (child->sync_fd >= 0) close(child->sync_fd);
    child->sync_fd = -1;
    child->pid = -1;
    child->helper = 0;
}

int berth_send_fd(int sock, int fd, const char *name) {
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int berth_recv_fd(int sock) {
    char name[256];
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}
