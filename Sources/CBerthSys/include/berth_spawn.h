// The container process, from clone() to execve().
//
// Swift (multi-threaded) prepares a fully resolved plan in memory; berth_spawn() clones a
// child that reads only that plan and makes raw system calls: no malloc, no locks, nothing
// that is not async-signal-safe. Errors travel back over a socketpair as one text line.
#ifndef BERTH_SPAWN_H
#define BERTH_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BERTH_ERR_MAX 512

enum { BERTH_MOUNT = 0, BERTH_SYMLINK = 1, BERTH_REMOUNT = 2 };

// One filesystem step inside the new root, in order. BERTH_SYMLINK creates destination
// pointing at source; BERTH_REMOUNT re-applies flags to an existing mount point (for a
// read-only tmpfs whose sub-mounts had to be made first).
typedef struct {
    int kind;
    const char *source;         // host path for binds, fs source otherwise; may be NULL
    const char *destination;    // absolute path inside the container
    const char *fstype;         // NULL or "bind" for bind mounts
    unsigned long flags;        // MS_* flags for the mount itself (MS_BIND, MS_REC, MS_RDONLY, ...)
    unsigned long propagation;  // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC), or 0
    const char *data;           // filesystem options ("size=64m,mode=755"), or NULL
    int is_bind;
} berth_mount;

typedef struct {
    const char *path;           // absolute path inside the container
    char type;                  // 'c', 'b', 'p'
    uint32_t major, minor;
    uint32_t mode;              // permission bits
    uint32_t uid, gid;
} berth_device;

typedef struct {
    const char *path;
    char *const *argv;          // NULL-terminated
    char *const *envp;          // NULL-terminated
    int timeout_sec;            // 0: no timeout
} berth_hook;

typedef struct {
    int type;                   // CLONE_NEW* constant
    int fd;                     // open namespace file to setns() into
} berth_join;

typedef struct {
    int resource;               // RLIMIT_*
    uint64_t soft, hard;
} berth_rlimit;

typedef struct {
    const char *key;            // "net.ipv4.ip_forward" form
    const char *value;
} berth_sysctl;

typedef struct {
    // --- namespaces ---
    int new_namespaces;         // CLONE_NEW* flags (not CLONE_NEWTIME) to create
    int new_time_namespace;
    const char *time_offsets;   // written to /proc/self/timens_offsets, or NULL
    const berth_join *joins; int n_joins;
    const char *uid_map, *gid_map;   // /proc/PID/{uid,gid}_map contents for a new user namespace

    // --- cgroup: the child joins its cgroup itself, before any other namespace exists ---
    // Writing "0" (itself) to a v1 `tasks` file skips the global lock that moving another
    // pid takes (about 10 ms of RCU grace period on every start); cgroup v2 is entered at
    // clone time with CLONE_INTO_CGROUP, or by writing cgroup2_procs where clone3 is missing.
    const char *const *cgroup_tasks; int n_cgroup_tasks;
    int cgroup2_fd;             // O_DIRECTORY fd of the cgroup v2 directory, or -1
    const char *cgroup2_procs;  // its cgroup.procs, for the fallback

    // --- filesystem (only when setup_rootfs) ---
    int setup_rootfs;           // 0 for exec into an existing container
    const char *rootfs;         // absolute host path
    int readonly_rootfs;
    unsigned long rootfs_propagation;  // applied to "/" before mounting; 0 means MS_SLAVE|MS_REC
    int no_pivot;
    const berth_mount *mounts; int n_mounts;
    const berth_device *devices; int n_devices;
    int bind_devices;           // bind-mount devices from the host instead of mknod (user namespaces)
    const char *const *masked_paths; int n_masked;
    const char *const *readonly_paths; int n_readonly;
    const berth_sysctl *sysctls; int n_sysctls;
    const char *hostname, *domainname;

    // --- process ---
    const char *path;           // executable to run, resolved by the child through PATH if relative
    char *const *argv;          // NULL-terminated
    char *const *envp;          // NULL-terminated
    const char *cwd;
    uid_t uid; gid_t gid;
    const gid_t *groups; int n_groups; int set_groups;
    int has_umask; mode_t umask;
    int terminal;
    int console_socket;         // fd of the connected console socket, or -1
    unsigned short rows, cols;
    int set_caps;
    uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
    int last_cap;               // highest capability number the kernel knows
    const berth_rlimit *rlimits; int n_rlimits;
    int no_new_privileges;
    int has_oom_score_adj; int oom_score_adj;
    const void *seccomp_filter; size_t seccomp_len;   // struct sock_filter array, or NULL
    unsigned int seccomp_flags;
    int preserve_fds;           // fds 3 .. 3+n-1 stay open across exec
    uint64_t preserve_placeholders;  // bit i: fd 3+i was not open in the caller (holds a placeholder)
    int setsid;

    // --- hooks run inside the container (runtime-spec createContainer / startContainer) ---
    const berth_hook *create_container_hooks; int n_create_container_hooks;
    const berth_hook *start_container_hooks; int n_start_container_hooks;

    // --- create/start handshake ---
    int exec_fifo_fd;           // O_PATH fd of exec.fifo: the child blocks opening it for write, then
                                // writes "0"; a later failure is written as "E<message>"; -1: exec at once
    int stdio_fds[3];           // dup2'ed onto 0,1,2 unless -1 (and unless a terminal is used)
} berth_plan;

typedef struct {
    pid_t pid;                  // the container process, in the caller's pid namespace
    int sync_fd;                // parent end of the socketpair
    pid_t helper;               // intermediate process that was reaped, or 0
} berth_child;

// Stage 1: clones the child, writes user namespace maps, and waits until its namespaces
// exist. On success fills *child and returns 0; on failure returns -1 with err filled.
int berth_spawn_begin(const berth_plan *plan, berth_child *child, char err[BERTH_ERR_MAX]);

// Stage 2: lets the child set up its filesystem and process. The state documents (which now
// know the pid) go to the createContainer and startContainer hooks on stdin. Returns 0 once
// the child is either blocked on the exec fifo or has execve()d; -1 with err filled if it failed.
int berth_spawn_finish(berth_child *child, const char *creating_json, const char *created_json,
                       char err[BERTH_ERR_MAX]);

// Kills and reaps a child whose setup was abandoned.
void berth_spawn_abort(berth_child *child);

// Sends fd over a connected unix socket with SCM_RIGHTS (the console socket protocol).
int berth_send_fd(int sock, int fd, const char *name);

// Receives one fd sent with SCM_RIGHTS; returns it or -1.
int berth_recv_fd(int sock);


#endif
