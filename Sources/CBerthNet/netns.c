// Network namespaces. setns(CLONE_NEWNET) and unshare(CLONE_NEWNET) only change the calling
// thread, so every entry happens on a fresh pthread that exits afterwards; anything created
// there (a socket, a bind mount of its namespace) keeps the namespace it was created in.
#define _GNU_SOURCE
#include "CBerthNet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

struct netns_job {
    const char *path;
    void (*fn)(void *);
    void *ctx;
    int err;
};

static void *netns_thread(void *arg) {
    struct netns_job *job = arg;
    if (job->path == NULL) {
        if (unshare(CLONE_NEWNET) != 0) { job->err = errno; return NULL; }
    } else {
        int fd = open(job->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) { job->err = errno; return NULL; }
        int rc = setns(fd, CLONE_NEWNET);
        int saved = errno;
        close(fd);
        if (rc != 0) { job->err = saved; return NULL; }
    }
    job->fn(job->ctx);
    return NULL;
}

int berth_netns_run(const char *path, void (*fn)(void *ctx), void *ctx) {
    struct netns_job job = { .path = path, .fn = fn, .ctx = ctx, .err = 0 };
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, netns_thread, &job);
    if (rc != 0) return rc;
    pthread_join(thread, NULL);
    return job.err;
}

int berth_netns_is_pinned(const char *path) {
    struct statfs st;
    return statfs(path, &st) == 0 && (unsigned long)st.f_type == (unsigned long)NSFS_MAGIC;
}

struct create_job {
    const char *path;
    int err;
};

static void create_in_new_namespace(void *arg) {
    struct create_job *job = arg;
    // Loopback starts down in a new namespace; containers expect it up.
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { job->err = errno; return; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) { job->err = errno; close(s); return; }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) { job->err = errno; close(s); return; }
    close(s);

    char self[64];
    snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
    if (mount(self, job->path, "none", MS_BIND, NULL) != 0) job->err = errno;
}

int berth_netns_create(const char *path) {
    if (berth_netns_is_pinned(path)) return EEXIST;
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0) return errno;
    close(fd);
    struct create_job job = { .path = path, .err = 0 };
    int rc = berth_netns_run(NULL, create_in_new_namespace, &job);
    if (rc == 0) rc = job.err;
    if (rc != 0) unlink(path);
    return rc;
}

void berth_netns_remove(const char *path) {
    umount2(path, MNT_DETACH);
    unlink(path);
}

struct bind_job {
    int type;
    const char *address;
    uint16_t port;
    int fd;
    int err;
};

static void bind_socket(void *arg) {
    struct bind_job *job = arg;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, job->address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(job->port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, job->address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(job->port);
        len = sizeof *v6;
    } else {
        job->err = EINVAL;
        return;
    }
    int fd = socket(ss.ss_family, job->type | SOCK_CLOEXEC, 0);
    if (fd < 0) { job->err = errno; return; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        ((job->type & 0xf) == SOCK_STREAM && listen(fd, 128) != 0)) {
        job->err = errno;
        close(fd);
        return;
    }
    job->fd = fd;
}

int berth_netns_bind_socket(const char *path, int type, const char *address, uint16_t port,
                            int *fd_out) {
    struct bind_job job = { .type = type, .address = address, .port = port, .fd = -1, .err = 0 };
    int rc;
    if (path == NULL) {
        bind_socket(&job);
        rc = 0;
    } else {
        rc = berth_netns_run(path, bind_socket, &job);
    }
    if (rc == 0) rc = job.err;
    if (rc == 0) *fd_out = job.fd;
    return rc;
}
