// berth-monitor: shared types. See README.md in this folder for the contract.
#ifndef BERTH_MONITOR_H
#define BERTH_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct options {
    const char *runtime;       // runtime binary (PATH lookup when it has no slash)
    const char *runtime_root;  // absolute
    const char *id;
    const char *bundle;        // absolute
    const char *dir;           // absolute: the monitor's files live here
    bool tty;
    bool stdin_open;
    long long log_max_size;    // 0: never rotate
    int log_max_files;         // files kept, container.log included (Docker's max-file)
};

// ---- jsonlog.c: Docker's json-file log format ----------------------------------------------

enum { STREAM_STDOUT = 1, STREAM_STDERR = 2 };

// Docker's copier buffer: a line longer than this is logged in pieces.
#define LOG_LINE_MAX 16384

struct jsonlog {
    int dirfd;
    int fd;
    long long size;        // bytes in container.log, buffered ones included
    long long max_size;
    int max_files;
    size_t wlen;
    char wbuf[8192];
};

// Holds the unterminated tail of one stream until its newline arrives.
struct line_splitter {
    size_t len;
    char buf[LOG_LINE_MAX];
};

int jsonlog_open(struct jsonlog *log, int dirfd, long long max_size, int max_files);
// Logs DATA split at newlines; the unterminated tail waits in SP.
void jsonlog_feed(struct jsonlog *log, struct line_splitter *sp, int stream,
                  const char *data, size_t n, const struct timespec *now);
// End of a stream: its unterminated tail becomes a record of its own.
void jsonlog_end_stream(struct jsonlog *log, struct line_splitter *sp, int stream,
                        const struct timespec *now);
void jsonlog_flush(struct jsonlog *log);
// "2006-01-02T15:04:05.000000000Z" (Go's RFC3339Nano with fixed digits); returns its length.
size_t format_timestamp(const struct timespec *t, char out[40]);

// ---- sys.c: small OS helpers ----------------------------------------------------------------

int listen_unix(int dirfd, const char *name);
int recv_fd(int sock);  // -1 with errno EAGAIN: not yet; other errno: failed
int set_nonblocking(int fd);
int write_all(int fd, const void *buf, size_t n);
int write_file_atomically(int dirfd, const char *name, const char *data, size_t n);
char *absolute_path(const char *path);
void timespec_add_ms(struct timespec *t, long ms);
long ms_until(const struct timespec *deadline);

// ---- the event loop's state (monitor.c) and clients (attach.c) -----------------------------

// What an epoll event points at: the first member of every registered object.
struct source {
    enum {
        SRC_SIGNAL, SRC_ATTACH_LISTEN, SRC_CTL_LISTEN, SRC_CONSOLE_LISTEN, SRC_CONSOLE_CONN,
        SRC_OUTPUT, SRC_STDIN, SRC_ATTACH_CLIENT, SRC_CTL_CLIENT,
    } kind;
    int fd;
};

struct client {
    struct source src;     // first: epoll's data.ptr
    struct client *next;
    bool read_eof;         // the peer will send nothing more
    char *out;             // attach: frames not yet taken by the peer
    size_t out_off, out_len, out_cap;
    size_t line_len;       // ctl: a command without its newline yet
    char line[128];
};

// One container output: a stdout or stderr pipe, or the pty master (one stream, "stdout").
struct output {
    struct source src;
    int stream;
    bool open;
    struct line_splitter lines;
};

struct monitor {
    struct options opt;
    int epfd, dirfd, sync_fd;
    enum { PHASE_CREATING, PHASE_RUNNING, PHASE_DRAINING, PHASE_CLOSING } phase;
    pid_t runtime_pid, container_pid;
    int wait_status;
    struct timespec finished_at, deadline;

    struct source signals, attach_listen, ctl_listen, console_listen, console_conn;
    // [0] stdout pipe or the pty master; [1] the runtime's stderr, which without --tty is the
    // container's stderr from creation on (with --tty it is closed once create succeeded).
    struct output out[2];
    int pty;                     // master, -1 without --tty (kept for resize after output ends)
    // The runtime's stderr while it creates: its error message if create fails, else the
    // output of its hooks (logged as stderr). The newest bytes are kept; older ones logged.
    size_t create_err_len;
    char create_err[4096];

    // The container's stdin: a pipe's write end, or the pty master.
    struct source stdin_src;     // fd -1 once closed
    bool stdin_eof_requested;    // a client half-closed: close once the buffer is written
    bool input_paused;           // buffer full: attach clients are not read
    char *in;
    size_t in_off, in_len;

    struct client *clients, *closed_clients;

    // Exits reaped before the container's pid was known (pid file not read yet).
    struct { pid_t pid; int status; } early_exits[16];
    int n_early_exits;

    struct jsonlog log;
};

// attach.c
void attach_accept(struct monitor *m);
void ctl_accept(struct monitor *m);
void attach_broadcast(struct monitor *m, int stream, const char *data, size_t n);
void attach_client_event(struct monitor *m, struct client *c, uint32_t events);
void ctl_client_event(struct monitor *m, struct client *c, uint32_t events);
void client_close(struct monitor *m, struct client *c);
void clients_free_closed(struct monitor *m);
bool clients_flushed(struct monitor *m);
void clients_finish(struct monitor *m);
void stdin_event(struct monitor *m, uint32_t events);
void stdin_close(struct monitor *m);
void update_pty_events(struct monitor *m);

// monitor.c
void ep_add(struct monitor *m, struct source *s, uint32_t events);
void ep_mod(struct monitor *m, struct source *s, uint32_t events);
void ep_del(struct monitor *m, struct source *s);
// Runs the monitor (the detached child); reports creation on SYNC_FD; never returns.
_Noreturn void monitor_run(const struct options *opt, int sync_fd);

#endif
