// Paths resolved by the kernel under constraints (openat2), and mounts made through the
// descriptors that gives (the new mount API): a path is resolved once, safely, and what was
// resolved is what gets mounted, with no check-then-use gap for a hostile tree to swap a
// symlink into.
#ifndef BERTH_MOUNT_H
#define BERTH_MOUNT_H

#include <linux/openat2.h>  // RESOLVE_*

// O_PATH, which Swift's Glibc module does not show (glibc defines it only with _GNU_SOURCE).
#define BERTH_O_PATH 010000000

// openat2(2), which glibc does not wrap: `path` resolved from `dirfd` under `resolve`
// (RESOLVE_* of <linux/openat2.h>), retried while the kernel answers EAGAIN (a rename raced the
// lookup). Returns the fd or -1 with errno set.
int berth_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve);

// A detached clone of the mount at what `fd` refers to (or, with fd AT_FDCWD (-100), at `path`,
// following a final symlink): nothing else refers to it, so with `readonly` (read-only, nosuid,
// nodev) nobody can make it writable again. Returns its O_PATH fd, or -1 with errno set.
int berth_detached_mount(int fd, const char *path, int readonly);

// Bind-mounts what `fd` refers to (or, with fd AT_FDCWD (-100), `path`) onto `target`, through a
// detached clone of the mount (open_tree + move_mount); `readonly` also makes it read-only,
// nosuid and nodev before it is attached. Returns 0 or -1 with errno set.
int berth_bind_mount(int fd, const char *path, const char *target, int readonly);

#endif
