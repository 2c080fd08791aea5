// The detached monitor: creates the container through the runtime, then one epoll loop
// carries its output to the log and to attach clients, relays stdin, and reaps it.
#define _GNU_SOURCE
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

// After the container's process exits: how long output still held open elsewhere (a process
// that escaped it, without a pid namespace) is waited for, and how long clients get to take
// what is queued for them.
#define DRAIN_MS 2000
#define CLOSE_MS 1000
// Quiet this long after activity: library code paged in by the burst is dropped again.

static const char *const socket_names[] = {"attach.sock", "ctl.sock", "console.sock"};

// Static: the line buffers are BSS, resident only once a stream uses them.
static struct monitor M;
static char read_buf[LOG_LINE_MAX];

void ep_add(struct monitor *m, struct source *s, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

void ep_mod(struct monitor *m, struct source *s, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};
    epoll_ctl(m->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

void ep_del(struct monitor *m, struct source *s)
{
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, s->fd, NULL);
}

// 'O' or 'E' + message to the launcher, which prints our pid or the message and exits.
static void report(struct monitor *m, char kind, const char *message)
{
    if (m->sync_fd < 0) return;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%c%s", kind, message);
    if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
    write_all(m->sync_fd, buf, (size_t)n);
    close(m->sync_fd);
    m->sync_fd = -1;
}

static void remove_sockets(struct monitor *m)
{
    for (size_t i = 0; i < sizeof socket_names / sizeof socket_names[0]; i++)
        unlinkat(m->dirfd, socket_names[i], 0);
}

__attribute__((format(printf, 2, 3))) static _Noreturn void fail(struct monitor *m, const char *fmt, ...)
{
    char message[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    report(m, 'E', message);
    if (m->dirfd >= 0) remove_sockets(m);
    _exit(1);
}

// ---- creating the container ----------------------------------------------------------------

static void make_pipe(struct monitor *m, int fds[2], int nonblocking_end)
{
    if (pipe2(fds, O_CLOEXEC) != 0) fail(m, "pipe: %s", strerror(errno));
    set_nonblocking(fds[nonblocking_end]);
}

// `RUNTIME --root R --log DIR/runtime.log --log-format json create --bundle B --pid-file DIR/pid
// [--console-socket DIR/console.sock] ID`, with the container's stdio as its own: the process
// it creates inherits them. --log keeps the runtime's warnings out of the container's stderr.
static void spawn_runtime(struct monitor *m)
{
    const struct options *o = &m->opt;
    int err[2], out[2] = {-1, -1}, in[2] = {-1, -1};
    int child_in = 0, child_out = 1;  // /dev/null
    make_pipe(m, err, 0);
    m->out[1].src = (struct source){SRC_OUTPUT, err[0]};
    if (!o->tty) {
        make_pipe(m, out, 0);
        child_out = out[1];
        m->out[0].src = (struct source){SRC_OUTPUT, out[0]};
        if (o->stdin_open) {
            make_pipe(m, in, 1);
            child_in = in[0];
            m->stdin_src = (struct source){SRC_STDIN, in[1]};
        }
    }

    char pid_file[PATH_MAX], log_file[PATH_MAX], console[PATH_MAX];
    snprintf(pid_file, sizeof pid_file, "%s/pid", o->dir);
    snprintf(log_file, sizeof log_file, "%s/runtime.log", o->dir);
    snprintf(console, sizeof console, "%s/console.sock", o->dir);
    // Too long for sun_path: the same socket through our directory fd, wherever the runtime's
    // working directory is (runc moves to the bundle first).
    if (strlen(console) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        snprintf(console, sizeof console, "/proc/%d/fd/%d/console.sock", (int)getpid(), m->dirfd);
    const char *argv[20];
    int n = 0;
    argv[n++] = o->runtime;
    argv[n++] = "--root";
    argv[n++] = o->runtime_root;
    argv[n++] = "--log";
    argv[n++] = log_file;
    argv[n++] = "--log-format";
    argv[n++] = "json";
    argv[n++] = "create";
    argv[n++] = "--bundle";
    argv[n++] = o->bundle;
    argv[n++] = "--pid-file";
    argv[n++] = pid_file;
    if (o->tty) {
        argv[n++] = "--console-socket";
        argv[n++] = console;
    }
    argv[n++] = o->id;
    argv[n] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_in, 0);
    posix_spawn_file_actions_adddup2(&fa, child_out, 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    // Our blocked SIGCHLD and ignored SIGPIPE/SIGHUP must not reach the container.
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawnp(&m->runtime_pid, o->runtime, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) fail(m, "cannot run %s: %s", o->runtime, strerror(rc));
    close(err[1]);
    if (out[1] >= 0) close(out[1]);
    if (in[0] >= 0) close(in[0]);
    // Read from the start: a hook that writes more than a pipe holds must not block create.
    for (int i = 0; i < 2; i++) {
        if (m->out[i].src.fd < 0) continue;
        m->out[i].open = true;
        ep_add(m, &m->out[i].src, EPOLLIN);
    }
}

static void console_accept(struct monitor *m)
{
    int fd = accept4(m->console_listen.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (m->console_conn.fd >= 0 || m->pty >= 0) {
        close(fd);  // one terminal per container
        return;
    }
    m->console_conn = (struct source){SRC_CONSOLE_CONN, fd};
    ep_add(m, &m->console_conn, EPOLLIN);
}

static void console_receive(struct monitor *m)
{
    int fd = recv_fd(m->console_conn.fd);
    if (fd < 0 && errno == EAGAIN) return;
    ep_del(m, &m->console_conn);
    close(m->console_conn.fd);
    m->console_conn.fd = -1;
    if (fd < 0) return;  // reported when create ends without a terminal
    set_nonblocking(fd);
    m->pty = fd;
    m->out[0].src = (struct source){SRC_OUTPUT, fd};
}

static void on_container_exit(struct monitor *m, int status);

// Container output (or hook output) to the log and to attach clients.
static void deliver(struct monitor *m, struct output *o, const char *data, size_t n)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    jsonlog_feed(&m->log, &o->lines, o->stream, data, n, &now);
    attach_broadcast(m, o->stream, data, n);
}

static void hold_create_stderr(struct monitor *m, const char *data, size_t n)
{
    size_t cap = sizeof m->create_err;
    if (m->create_err_len + n > cap) {
        deliver(m, &m->out[1], m->create_err, m->create_err_len);
        m->create_err_len = 0;
        if (n > cap) {
            deliver(m, &m->out[1], data, n - cap);
            data += n - cap;
            n = cap;
        }
    }
    memcpy(m->create_err + m->create_err_len, data, n);
    m->create_err_len += n;
}

// The runtime's stderr as one line for the launcher to print.
static void runtime_error_text(struct monitor *m, int status, char *text, size_t size)
{
    ssize_t r;
    while ((r = read(m->out[1].src.fd, read_buf, sizeof read_buf)) > 0) hold_create_stderr(m, read_buf, (size_t)r);
    size_t len = m->create_err_len < size - 1 ? m->create_err_len : size - 1;
    memcpy(text, m->create_err + m->create_err_len - len, len);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n') text[i] = ' ';
    text[len] = '\0';
    if (len == 0) {
        if (WIFEXITED(status)) snprintf(text, size, "exited with status %d (see %s/runtime.log)", WEXITSTATUS(status), m->opt.dir);
        else snprintf(text, size, "killed by signal %d", WTERMSIG(status));
    }
}

static void on_create_done(struct monitor *m, int status)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char text[sizeof m->create_err];
        runtime_error_text(m, status, text, sizeof text);
        fail(m, "create failed: %s", text);
    }
    // Create succeeded, so the runtime wrote no error: what it held is hook output.
    if (m->create_err_len > 0) deliver(m, &m->out[1], m->create_err, m->create_err_len);
    m->create_err_len = 0;
    char buf[32] = {0};
    int fd = openat(m->dirfd, "pid", O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
    if (pid <= 0) fail(m, "create succeeded but %s/pid holds no pid", m->opt.dir);
    m->container_pid = (pid_t)pid;

    if (m->opt.tty) {
        // The runtime sent the master before it exited: it waits in the socket if not read yet.
        if (m->pty < 0 && m->console_conn.fd < 0) console_accept(m);
        if (m->pty < 0 && m->console_conn.fd >= 0) console_receive(m);
        if (m->pty < 0) {
            kill(m->container_pid, SIGKILL);
            fail(m, "the runtime sent no terminal to %s/console.sock", m->opt.dir);
        }
        ep_del(m, &m->console_listen);
        close(m->console_listen.fd);
        m->console_listen.fd = -1;
        unlinkat(m->dirfd, "console.sock", 0);
        // The runtime's stderr is not the container's: the terminal carries everything.
        if (m->out[1].open) {
            ep_del(m, &m->out[1].src);
            close(m->out[1].src.fd);
            m->out[1].src.fd = -1;
            m->out[1].open = false;
        }
        m->out[0].open = true;
        ep_add(m, &m->out[0].src, EPOLLIN);
        if (m->opt.stdin_open) m->stdin_src = (struct source){SRC_STDIN, m->pty};
    }
    if (!m->opt.tty && m->stdin_src.fd >= 0) ep_add(m, &m->stdin_src, 0);
    m->phase = PHASE_RUNNING;
    report(m, 'O', "");

    for (int i = 0; i < m->n_early_exits; i++)
        if (m->early_exits[i].pid == m->container_pid) on_container_exit(m, m->early_exits[i].status);
    m->n_early_exits = 0;
}

// ---- running -------------------------------------------------------------------------------

static void on_container_exit(struct monitor *m, int status)
{
    m->wait_status = status;
    m->container_pid = -1;
    clock_gettime(CLOCK_REALTIME, &m->finished_at);
    clock_gettime(CLOCK_MONOTONIC, &m->deadline);
    timespec_add_ms(&m->deadline, DRAIN_MS);
    m->phase = PHASE_DRAINING;
    stdin_close(m);
}

static void reap(struct monitor *m)
{
    struct signalfd_siginfo si;
    while (read(m->signals.fd, &si, sizeof si) == (ssize_t)sizeof si) {}
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        if (pid == m->runtime_pid) {
            m->runtime_pid = 0;
            on_create_done(m, status);
        } else if (pid == m->container_pid) {
            on_container_exit(m, status);
        } else if (m->container_pid == 0 && m->n_early_exits < 16) {
            m->early_exits[m->n_early_exits].pid = pid;
            m->early_exits[m->n_early_exits].status = status;
            m->n_early_exits++;
        }
        // Anything else is an orphan reparented to us (we are a subreaper): reaped, ignored.
    }
}

static void output_end(struct monitor *m, struct output *o)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    jsonlog_end_stream(&m->log, &o->lines, o->stream, &now);
    ep_del(m, &o->src);
    o->open = false;
    if (o->src.fd == m->pty) {
        stdin_close(m);  // the master stays open for resize
    } else {
        close(o->src.fd);
        o->src.fd = -1;
    }
}

static void output_event(struct monitor *m, struct output *o, uint32_t events)
{
    if (events & EPOLLOUT) stdin_event(m, EPOLLOUT);  // the pty master carries stdin too
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    ssize_t r = read(o->src.fd, read_buf, sizeof read_buf);
    if (r > 0) {
        if (m->phase == PHASE_CREATING && o == &m->out[1]) hold_create_stderr(m, read_buf, (size_t)r);
        else deliver(m, o, read_buf, (size_t)r);
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        output_end(m, o);  // end of file, or EIO from a pty master whose terminal is closed
    }
}

static bool outputs_done(struct monitor *m)
{
    return !m->out[0].open && !m->out[1].open;
}

static void write_exit_file(struct monitor *m)
{
    int status = m->wait_status, code, sig = 0;
    if (WIFSIGNALED(status)) {
        sig = WTERMSIG(status);
        code = 128 + sig;
    } else {
        code = WEXITSTATUS(status);
    }
    char signal_text[16] = "null", finished[40], json[256];
    if (sig) snprintf(signal_text, sizeof signal_text, "%d", sig);
    format_timestamp(&m->finished_at, finished);
    int n = snprintf(json, sizeof json, "{\"exitCode\":%d,\"signal\":%s,\"oomKilled\":false,\"finishedAt\":\"%s\"}\n",
                     code, signal_text, finished);
    write_file_atomically(m->dirfd, "exit.json", json, (size_t)n);
}

// Output drained (or the drain deadline passed): the log is complete, exit.json is written,
// and only then do clients see end of file, so a client at EOF can read exit.json.
static void finish(struct monitor *m)
{
    for (int i = 0; i < 2; i++)
        if (m->out[i].open) output_end(m, &m->out[i]);
    jsonlog_flush(&m->log);
    fsync(m->log.fd);
    write_exit_file(m);
    struct source *listeners[] = {&m->attach_listen, &m->ctl_listen, &m->console_listen};
    for (int i = 0; i < 3; i++) {
        if (listeners[i]->fd < 0) continue;
        ep_del(m, listeners[i]);
        close(listeners[i]->fd);
        listeners[i]->fd = -1;
    }
    remove_sockets(m);
    m->phase = PHASE_CLOSING;
    clients_finish(m);
    clock_gettime(CLOCK_MONOTONIC, &m->deadline);
    timespec_add_ms(&m->deadline, CLOSE_MS);
}

static void dispatch(struct monitor *m, struct source *s, uint32_t events)
{
    if (s->fd < 0) return;  // closed earlier in this batch
    switch (s->kind) {
    case SRC_SIGNAL: reap(m); break;
    case SRC_ATTACH_LISTEN: attach_accept(m); break;
    case SRC_CTL_LISTEN: ctl_accept(m); break;
    case SRC_CONSOLE_LISTEN: console_accept(m); break;
    case SRC_CONSOLE_CONN: console_receive(m); break;
    case SRC_OUTPUT:
        if (((struct output *)s)->open) output_event(m, (struct output *)s, events);
        break;
    case SRC_STDIN: stdin_event(m, events); break;
    case SRC_ATTACH_CLIENT: attach_client_event(m, (struct client *)s, events); break;
    case SRC_CTL_CLIENT: ctl_client_event(m, (struct client *)s, events); break;
    }
}

static void setup(struct monitor *m)
{
    const struct options *o = &m->opt;
    // Detached: own session (no terminal, no caller's process group), stdio on /dev/null,
    // nothing keeps a directory busy, and orphans of the container come to us to be reaped.
    setsid();
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++)
        if (null != fd) dup2(null, fd);
    if (null > 2) close(null);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    if (chdir("/") != 0) fail(m, "chdir /: %s", strerror(errno));

    if (mkdir(o->dir, 0711) != 0 && errno != EEXIST) fail(m, "mkdir %s: %s", o->dir, strerror(errno));
    m->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (m->dirfd < 0) fail(m, "open %s: %s", o->dir, strerror(errno));
    // Left by an earlier run of the same container: they would describe this one wrongly.
    unlinkat(m->dirfd, "exit.json", 0);
    unlinkat(m->dirfd, "pid", 0);
    if (jsonlog_open(&m->log, m->dirfd, o->log_max_size, o->log_max_files) != 0)
        fail(m, "open %s/container.log: %s", o->dir, strerror(errno));

    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (m->epfd < 0) fail(m, "epoll_create1: %s", strerror(errno));
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    m->signals = (struct source){SRC_SIGNAL, signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)};
    if (m->signals.fd < 0) fail(m, "signalfd: %s", strerror(errno));
    ep_add(m, &m->signals, EPOLLIN);

    struct { struct source *src; int kind; const char *name; bool wanted; } listeners[] = {
        {&m->attach_listen, SRC_ATTACH_LISTEN, "attach.sock", true},
        {&m->ctl_listen, SRC_CTL_LISTEN, "ctl.sock", true},
        {&m->console_listen, SRC_CONSOLE_LISTEN, "console.sock", o->tty},
    };
    for (size_t i = 0; i < sizeof listeners / sizeof listeners[0]; i++) {
        if (!listeners[i].wanted) continue;
        int fd = listen_unix(m->dirfd, listeners[i].name);
        if (fd < 0) fail(m, "listen on %s/%s: %s", o->dir, listeners[i].name, strerror(errno));
        *listeners[i].src = (struct source){listeners[i].kind, fd};
        ep_add(m, listeners[i].src, EPOLLIN);
    }
}

_Noreturn void monitor_run(const struct options *opt, int sync_fd)
{
    struct monitor *m = &M;
    m->opt = *opt;
    m->sync_fd = sync_fd;
    m->dirfd = m->epfd = m->pty = -1;
    m->signals.fd = m->attach_listen.fd = m->ctl_listen.fd = -1;
    m->console_listen.fd = m->console_conn.fd = m->stdin_src.fd = -1;
    m->out[0] = (struct output){.src = {SRC_OUTPUT, -1}, .stream = STREAM_STDOUT};
    m->out[1] = (struct output){.src = {SRC_OUTPUT, -1}, .stream = STREAM_STDERR};
    m->phase = PHASE_CREATING;

    setup(m);
    spawn_runtime(m);

    struct epoll_event events[16];
    for (;;) {
        if (m->phase == PHASE_DRAINING && (outputs_done(m) || ms_until(&m->deadline) == 0)) finish(m);
        if (m->phase == PHASE_CLOSING && (clients_flushed(m) || ms_until(&m->deadline) == 0)) break;
        int timeout = m->phase >= PHASE_DRAINING ? (int)ms_until(&m->deadline) : -1;
        int n = epoll_wait(m->epfd, events, 16, timeout);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) dispatch(m, events[i].data.ptr, events[i].events);
        clients_free_closed(m);
    }
    while (m->clients) client_close(m, m->clients);
    clients_free_closed(m);
    _exit(0);
}
