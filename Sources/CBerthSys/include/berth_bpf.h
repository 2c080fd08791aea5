// bpf(2) for cgroup v2 device filters (BPF_PROG_TYPE_CGROUP_DEVICE), which Swift cannot reach
// through the variadic syscall(). Each function returns what the system call returns: -1 with
// errno set on failure.
#ifndef BERTH_BPF_H
#define BERTH_BPF_H

#include <stdint.h>

// BPF_PROG_LOAD of `count` 8-byte instructions. With a log buffer, the verifier writes its
// reasons there (log_level 1). Returns the program fd.
int berth_bpf_load_device_filter(const void *insns, uint32_t count, const char *license,
                                 char *log, uint32_t log_size);

// BPF_PROG_ATTACH to the cgroup directory fd as BPF_CGROUP_DEVICE with BPF_F_ALLOW_MULTI.
int berth_bpf_attach_device_filter(int cgroup_fd, int prog_fd);

// BPF_PROG_DETACH of one program from the cgroup.
int berth_bpf_detach_device_filter(int cgroup_fd, int prog_fd);

// BPF_PROG_QUERY: ids of the device programs attached directly to the cgroup. *count is the
// capacity of ids on entry and the number attached on return.
int berth_bpf_query_device_filters(int cgroup_fd, uint32_t *ids, uint32_t *count);

// BPF_PROG_GET_FD_BY_ID.
int berth_bpf_prog_fd_by_id(uint32_t id);

#endif
