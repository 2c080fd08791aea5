// Attach clients (live output out, stdin in), control clients (resize), and the stdin relay.
#define _GNU_SOURCE
#include "monitor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

// A client this far behind is disconnected: the container and the log never wait for it.
#define CLIENT_BACKLOG_MAX (1u << 20)
// Bytes for the container's stdin held before attach clients stop being read.
#define STDIN_BUFFER_MAX (64u << 10)

// ---- stdin relay ----------------------------------------------------------------------------

static bool stdin_accepting(struct monitor *m)
{
    return m->stdin_src.fd >= 0 && !m->stdin_eof_requested;
}

void update_pty_events(struct monitor *m)
{
    if (m->out[0].src.fd < 0 || !m->out[0].open) return;
    uint32_t ev = EPOLLIN;
    if (m->stdin_src.fd >= 0 && m->in_len > m->in_off) ev |= EPOLLOUT;
    ep_mod(m, &m->out[0].src, ev);
}

static void update_stdin_events(struct monitor *m)
{
    if (m->opt.tty) {
        update_pty_events(m);
    } else if (m->stdin_src.fd >= 0) {
        // Registered even when idle: EPOLLERR tells that the container's end is gone.
        ep_mod(m, &m->stdin_src, m->in_len > m->in_off ? EPOLLOUT : 0);
    }
}

static void set_input_paused(struct monitor *m, bool paused);

void stdin_close(struct monitor *m)
{
    free(m->in);
    m->in = NULL;
    m->in_off = m->in_len = 0;
    if (m->stdin_src.fd < 0) return;
    if (m->opt.tty) {
        m->stdin_src.fd = -1;  // the pty master is the output too: it stays open
        update_pty_events(m);
    } else {
        ep_del(m, &m->stdin_src);
        close(m->stdin_src.fd);
        m->stdin_src.fd = -1;
    }
    if (m->input_paused) set_input_paused(m, false);
}

static void stdin_write(struct monitor *m)
{
    while (m->stdin_src.fd >= 0 && m->in_len > m->in_off) {
        ssize_t w = write(m->stdin_src.fd, m->in + m->in_off, m->in_len - m->in_off);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            stdin_close(m);  // EPIPE/EIO: nobody reads the container's stdin any more
            return;
        }
        m->in_off += (size_t)w;
    }
    if (m->in_off == m->in_len) {
        free(m->in);
        m->in = NULL;
        m->in_off = m->in_len = 0;
        // A client half-closed: the container now reads end of file.
        if (m->stdin_eof_requested) stdin_close(m);
    }
    if (m->input_paused && m->in_len - m->in_off < STDIN_BUFFER_MAX / 2) set_input_paused(m, false);
    update_stdin_events(m);
}

// Takes what fits of DATA; returns the bytes taken.
static size_t stdin_push(struct monitor *m, const char *data, size_t n, bool unbounded)
{
    size_t pending = m->in_len - m->in_off;
    if (!unbounded && pending + n > STDIN_BUFFER_MAX) n = STDIN_BUFFER_MAX - pending;
    if (n == 0) return 0;
    if (m->in_off > 0) {
        memmove(m->in, m->in + m->in_off, pending);
        m->in_off = 0;
        m->in_len = pending;
    }
    size_t cap = pending + n > STDIN_BUFFER_MAX ? pending + n : STDIN_BUFFER_MAX;
    if (m->in == NULL || pending + n > STDIN_BUFFER_MAX) {
        char *p = realloc(m->in, cap);
        if (p == NULL) return 0;
        m->in = p;
    }
    memcpy(m->in + m->in_len, data, n);
    m->in_len += n;
    stdin_write(m);
    return n;
}

void stdin_event(struct monitor *m, uint32_t events)
{
    if (events & EPOLLERR) {
        stdin_close(m);
        return;
    }
    stdin_write(m);
}

// ---- clients --------------------------------------------------------------------------------

static void update_client_events(struct monitor *m, struct client *c)
{
    uint32_t ev = 0;
    if (!c->read_eof && !(c->src.kind == SRC_ATTACH_CLIENT && m->input_paused)) ev |= EPOLLIN | EPOLLRDHUP;
    if (c->out_len > c->out_off) ev |= EPOLLOUT;
    ep_mod(m, &c->src, ev);
}

static void set_input_paused(struct monitor *m, bool paused)
{
    m->input_paused = paused;
    for (struct client *c = m->clients; c; c = c->next)
        if (c->src.kind == SRC_ATTACH_CLIENT) update_client_events(m, c);
}

// Closed clients are freed after the current batch of epoll events, which may still name them.
void client_close(struct monitor *m, struct client *c)
{
    if (c->src.fd < 0) return;
    ep_del(m, &c->src);
    close(c->src.fd);
    c->src.fd = -1;
    for (struct client **p = &m->clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    c->next = m->closed_clients;
    m->closed_clients = c;
}

void clients_free_closed(struct monitor *m)
{
    while (m->closed_clients) {
        struct client *c = m->closed_clients;
        m->closed_clients = c->next;
        free(c->out);
        free(c);
    }
}

static void accept_clients(struct monitor *m, int listen_fd, int kind)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;  // EAGAIN, or out of fds: the client sees its connection closed
        struct client *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            return;
        }
        c->src.kind = kind;
        c->src.fd = fd;
        c->next = m->clients;
        m->clients = c;
        ep_add(m, &c->src, 0);
        update_client_events(m, c);
    }
}

void attach_accept(struct monitor *m) { accept_clients(m, m->attach_listen.fd, SRC_ATTACH_CLIENT); }
void ctl_accept(struct monitor *m) { accept_clients(m, m->ctl_listen.fd, SRC_CTL_CLIENT); }

static void client_flush(struct monitor *m, struct client *c)
{
    while (c->out_len > c->out_off) {
        ssize_t w = send(c->src.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            client_close(m, c);
            return;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len) {
        // Caught up: give a burst's buffer back rather than keep it for the container's life.
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
        if (m->phase == PHASE_CLOSING) {
            client_close(m, c);
            return;
        }
    }
    update_client_events(m, c);
}

// Sends HEAD then DATA, queueing what the socket does not take now.
static void client_send(struct monitor *m, struct client *c, const char *head, size_t head_len,
                        const char *data, size_t n)
{
    size_t total = head_len + n, done = 0;
    if (c->out_len == c->out_off) {
        struct iovec iov[2] = {{(void *)head, head_len}, {(void *)data, n}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t w = sendmsg(c->src.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            client_close(m, c);
            return;
        }
        done = w > 0 ? (size_t)w : 0;
        if (done == total) return;
    }
    size_t pending = c->out_len - c->out_off, rest = total - done;
    if (pending + rest > CLIENT_BACKLOG_MAX) {
        client_close(m, c);
        return;
    }
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    if (pending + rest > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < pending + rest) cap *= 2;
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            client_close(m, c);
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    if (done < head_len) {
        memcpy(c->out + c->out_len, head + done, head_len - done);
        c->out_len += head_len - done;
        done = head_len;
    }
    memcpy(c->out + c->out_len, data + (done - head_len), total - done);
    c->out_len += total - done;
    update_client_events(m, c);
}

// Docker's multiplexed stream: [stream, 0, 0, 0, big-endian uint32 length] + payload.
// With a tty there is one stream and the bytes go out raw, as Docker sends them.
void attach_broadcast(struct monitor *m, int stream, const char *data, size_t n)
{
    unsigned char head[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24),
                             (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    size_t head_len = m->opt.tty ? 0 : sizeof head;
    struct client *next;
    for (struct client *c = m->clients; c; c = next) {
        next = c->next;
        if (c->src.kind == SRC_ATTACH_CLIENT) client_send(m, c, (const char *)head, head_len, data, n);
    }
}

void attach_client_event(struct monitor *m, struct client *c, uint32_t events)
{
    if (events & EPOLLERR) {
        client_close(m, c);
        return;
    }
    if (events & EPOLLOUT) {
        client_flush(m, c);
        if (c->src.fd < 0) return;
    }
    bool hangup = events & EPOLLHUP;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !c->read_eof) {
        char buf[4096];
        for (;;) {
            size_t want = sizeof buf;
            if (stdin_accepting(m) && !hangup) {
                size_t room = STDIN_BUFFER_MAX - (m->in_len - m->in_off);
                if (room == 0) {
                    set_input_paused(m, true);
                    break;
                }
                if (room < want) want = room;
            }
            ssize_t r = recv(c->src.fd, buf, want, MSG_DONTWAIT);
            if (r > 0) {
                // Without --stdin (or once stdin is closed) input is read and dropped.
                if (stdin_accepting(m)) stdin_push(m, buf, (size_t)r, hangup);
                continue;
            }
            if (r < 0 && (errno == EINTR)) continue;
            if (r < 0 && errno == EAGAIN) break;
            if (r < 0) {
                client_close(m, c);
                return;
            }
            c->read_eof = true;
            // A half-close (shutdown(SHUT_WR)) is the end of the client's input: Docker's
            // stdin_once. A full close is a detach and leaves stdin open for the next client.
            // A pty has no separate end of input (the master is the output too): ignored there.
            if (!hangup && stdin_accepting(m) && !m->opt.tty) {
                m->stdin_eof_requested = true;
                stdin_write(m);
            }
            update_client_events(m, c);
            break;
        }
    }
    if (hangup) client_close(m, c);
}

static const char *ctl_command(struct monitor *m, char *line)
{
    if (strncmp(line, "resize ", 7) == 0) {
        char *end;
        unsigned long rows = strtoul(line + 7, &end, 10);
        if (end == line + 7 || *end != ' ') return "error: usage: resize ROWS COLS\n";
        char *cols_text = end + 1;
        unsigned long cols = strtoul(cols_text, &end, 10);
        if (end == cols_text || *end != '\0' || rows > 65535 || cols > 65535)
            return "error: usage: resize ROWS COLS\n";
        if (m->pty < 0) return "error: the container has no terminal\n";
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        if (ioctl(m->pty, TIOCSWINSZ, &ws) != 0) return "error: TIOCSWINSZ failed\n";
        return "ok\n";
    }
    return "error: unknown command\n";
}

void ctl_client_event(struct monitor *m, struct client *c, uint32_t events)
{
    if (events & EPOLLERR) {
        client_close(m, c);
        return;
    }
    for (;;) {
        ssize_t r = recv(c->src.fd, c->line + c->line_len, sizeof c->line - c->line_len, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) {
            client_close(m, c);
            return;
        }
        c->line_len += (size_t)r;
        char *nl;
        while ((nl = memchr(c->line, '\n', c->line_len)) != NULL) {
            *nl = '\0';
            if (nl > c->line && nl[-1] == '\r') nl[-1] = '\0';
            const char *reply = ctl_command(m, c->line);
            // Replies are a few bytes to a client that waits for them: one that does not read
            // them is not worth a queue.
            if (send(c->src.fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                client_close(m, c);
                return;
            }
            size_t used = (size_t)(nl - c->line) + 1;
            memmove(c->line, c->line + used, c->line_len - used);
            c->line_len -= used;
        }
        if (c->line_len == sizeof c->line) {
            const char *reply = "error: command too long\n";
            send(c->src.fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
            client_close(m, c);
            return;
        }
    }
    if (events & EPOLLHUP) client_close(m, c);
}

bool clients_flushed(struct monitor *m)
{
    for (struct client *c = m->clients; c; c = c->next)
        if (c->out_len > c->out_off) return false;
    return true;
}

// The container is gone: stop reading clients; each is closed once its output is delivered.
void clients_finish(struct monitor *m)
{
    struct client *next;
    for (struct client *c = m->clients; c; c = next) {
        next = c->next;
        if (c->src.kind == SRC_CTL_CLIENT || c->out_len == c->out_off) {
            client_close(m, c);
        } else {
            c->read_eof = true;
            update_client_events(m, c);
        }
    }
}
