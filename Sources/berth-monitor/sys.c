// Small OS helpers for the monitor: unix sockets, fd passing, files, clocks, memory.
#define _GNU_SOURCE
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

// Binds NAME inside DIRFD: a relative name keeps long directories within sun_path's 108 bytes.
// Changes the working directory for the bind and returns it to "/" (the monitor's own).
int listen_unix(int dirfd, const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(name) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    unlinkat(dirfd, name, 0);
    int rc = -1;
    if (fchdir(dirfd) == 0) {
        rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
        int saved = errno;
        if (chdir("/") != 0) rc = -1;
        errno = saved;
    }
    if (rc == 0) rc = fchmodat(dirfd, name, 0600, 0);
    if (rc == 0) rc = listen(fd, 16);
    if (rc != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

// Receives one fd sent with SCM_RIGHTS (the runtime's console socket protocol).
int recv_fd(int sock)
{
    char data[256];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    }
    errno = n == 0 ? ECONNRESET : EPROTO;
    return -1;
}

int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

// temp + fsync + rename + fsync(dir): a reader sees the old state or the whole new file,
// even across a power loss.
int write_file_atomically(int dirfd, const char *name, const char *data, size_t n)
{
    char tmp[NAME_MAX + 1];
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int rc = write_all(fd, data, n);
    if (rc == 0) rc = fsync(fd);
    if (close(fd) != 0) rc = -1;
    if (rc == 0) rc = renameat(dirfd, tmp, dirfd, name);
    if (rc == 0) rc = fsync(dirfd);
    if (rc != 0) unlinkat(dirfd, tmp, 0);
    return rc;
}

char *absolute_path(const char *path)
{
    if (path[0] == '/') return strdup(path);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
    char *out = malloc(strlen(cwd) + strlen(path) + 2);
    if (out) sprintf(out, "%s/%s", cwd, path);
    return out;
}

void timespec_add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

long ms_until(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000L;
    return ms < 0 ? 0 : ms + 1;
}

