#define _GNU_SOURCE
#include "berth_sys.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int berth_connect_unix(const char *path) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int berth_set_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

static volatile pid_t forward_to;

static void forward(int sig) {
    if (forward_to > 0) kill(forward_to, sig);
}

void berth_forward_signals(pid_t pid) {
    forward_to = pid;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

pid_t berth_waitpid(pid_t pid, int *status, int options) {
    pid_t r;
    do { r = waitpid(pid, status, options); } while (r < 0 && errno == EINTR);
    return r;
}

int berth_exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}

int berth_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int berth_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

static int winch_pipe[2] = {-1, -1};

static void on_winch(int sig) {
    (void)sig;
    int e = errno;
    ssize_t unused = write(winch_pipe[1], "w", 1);
    (void)unused;
    errno = e;
}

static void copy_winsize(int from, int to) {
    struct winsize ws;
    if (ioctl(from, TIOCGWINSZ, &ws) == 0) ioctl(to, TIOCSWINSZ, &ws);
}

int berth_tty_proxy(int master, pid_t pid, int *status) {
    struct termios saved;
    int is_tty = isatty(0) && tcgetattr(0, &saved) == 0;
    if (is_tty) {
        struct termios raw = saved;
        cfmakeraw(&raw);
        tcsetattr(0, TCSANOW, &raw);
        copy_winsize(0, master);
    }
    if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_winch;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGWINCH, &sa, NULL);
    }
    char buf[8192];
    int stdin_open = 1;
    for (;;) {
        struct pollfd fds[3] = {{master, POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}, {winch_pipe[0], POLLIN, 0}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[2].revents & POLLIN) {
            while (read(winch_pipe[0], buf, sizeof buf) > 0) {}
            if (is_tty) copy_winsize(0, master);
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(master, buf, sizeof buf);
            if (n <= 0) break;  // EIO: the last process holding the pty's other side is gone
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(1, buf + off, (size_t)(n - off));
                if (w <= 0) { if (errno == EINTR) continue; break; }
                off += w;
            }
        }
        if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n <= 0) {
                stdin_open = 0;
                // End of our input: send the terminal's EOF character, as typing ^D would.
                char eof = 4;
                ssize_t unused = write(master, &eof, 1);
                (void)unused;
            } else {
                for (ssize_t off = 0; off < n;) {
                    ssize_t w = write(master, buf + off, (size_t)(n - off));
                    if (w <= 0) { if (errno == EINTR) continue; break; }
                    off += w;
                }
            }
        }
    }
    if (is_tty) tcsetattr(0, TCSANOW, &saved);
    pid_t r;
    do { r = waitpid(pid, status, 0); } while (r < 0 && errno == EINTR);
    return r == pid ? 0 : -1;
}
