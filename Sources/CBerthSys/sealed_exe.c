// See berth_sealed_exe.h.
#define _GNU_SOURCE
#include "berth_sealed_exe.h"
#include "berth_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef ST_RDONLY
#define ST_RDONLY 1
#endif

extern char **environ;

// Set across our own re-exec only, so a failure to seal can never loop.
static const char marker[] = "_BERTH_SEALED_EXE";

int berth_exe_is_sealed(void) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int sealed = 0;
    struct statfs st;
    if (fstatfs(fd, &st) == 0 && (st.f_flags & ST_RDONLY)) sealed = 1;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_SEAL)) == (F_SEAL_WRITE | F_SEAL_SEAL)) sealed = 1;
    close(fd);
    return sealed;
}

// Where mounts cannot be made (no privilege, an old kernel): a copy in a memfd sealed against
// every change.
static int sealed_copy(void) {
    int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (src < 0) return -1;
    int fd = memfd_create("berth-sealed-exe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        close(src);
        return -1;
    }
    for (;;) {
        ssize_t n = sendfile(fd, src, NULL, 1 << 30);
        if (n == 0) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            close(src);
            close(fd);
            return -1;
        }
    }
    close(src);
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int berth_run_sealed(int argc, char **argv) {
    (void)argc;
    if (getenv(marker)) {
        unsetenv(marker);
        if (berth_exe_is_sealed()) return 0;
        errno = EROFS;  // re-executed, yet still writable: give up rather than loop
        return -1;
    }
    if (berth_exe_is_sealed()) return 0;
    // A read-only detached clone of the mount holding our binary: it lives as long as the
    // process executing from it.
    int fds[2] = {berth_detached_mount(AT_FDCWD, "/proc/self/exe", 1), -1};
    if (fds[0] < 0) fds[1] = sealed_copy();
    if (setenv(marker, "1", 1) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0) continue;
        syscall(SYS_execveat, fds[i], "", argv, environ, AT_EMPTY_PATH);
        close(fds[i]);
        if (i == 0) fds[1] = sealed_copy();  // the clone could not be executed: try the copy
    }
    int e = errno;
    unsetenv(marker);
    errno = e;
    return -1;
}
