#pragma once
// C side of BerthNetlink: network-namespace entry on short-lived threads (setns changes only
// the calling thread) and the libnl-route calls, so that libnl's macros and object lifetimes
// stay in C. Convention for every int result: 0 = success, > 0 = an errno from a system call,
// < 0 = a libnl error code (see berth_nl_strerror).
#include <stddef.h>
#include <stdint.h>

struct nl_sock;

// ---- Namespaces (netns.c) ----

/// Runs fn(ctx) on a new thread that first entered the network namespace pinned at `path`
/// (or a brand-new one when path is NULL) and joins it. Returns 0 or the errno of
/// open/setns/unshare/pthread_create; fn's own outcome travels through ctx.
int berth_netns_run(const char *path, void (*fn)(void *ctx), void *ctx);

/// Creates a network namespace with loopback up, pinned by a bind mount on `path`.
/// EEXIST if `path` already is a pinned namespace.
int berth_netns_create(const char *path);

/// Unmounts (MNT_DETACH) and unlinks `path`; absent paths are not an error.
void berth_netns_remove(const char *path);

/// 1 if `path` is an nsfs file (a pinned namespace), else 0.
int berth_netns_is_pinned(const char *path);

/// socket(domain of address, type|SOCK_CLOEXEC) in the namespace at `path` (NULL: here),
/// SO_REUSEADDR, bound to address:port, listen(128) for SOCK_STREAM. *fd_out gets the fd.
int berth_netns_bind_socket(const char *path, int type, const char *address, uint16_t port,
                            int *fd_out);

// ---- rtnetlink through libnl (rtnl.c) ----

typedef struct berth_link {
    int index;
    char name[16];
    char kind[32];   // "" when the kernel reports no kind (physical, loopback)
    uint32_t mtu;
    char mac[24];    // lower-case "aa:bb:cc:dd:ee:ff", "" when the link has none
    int up;
    int master;      // 0 when none
} berth_link;

typedef struct berth_addr {
    char cidr[64];
} berth_addr;

typedef struct berth_route {
    char destination[64];
    char gateway[48];  // "" when none
    char device[16];   // "" when none
} berth_route;

const char *berth_nl_strerror(int err);
/// What an error result means to a caller: 1 not found, 2 exists, 3 invalid argument, 0 other.
int berth_error_kind(int err);

/// A NETLINK_ROUTE socket created in the namespace at `netns_path` (NULL: the caller's).
int berth_nl_open(const char *netns_path, struct nl_sock **out);
void berth_nl_close(struct nl_sock *sk);

/// -NLE_OBJ_NOTFOUND when there is no such link.
int berth_link_get(struct nl_sock *sk, const char *name, berth_link *out);
/// *out is malloc'd (free with free()).
int berth_link_list(struct nl_sock *sk, berth_link **out, size_t *count);

/// mtu 0 = kernel default; mac NULL = kernel's choice; netns_fd -1 = this namespace.
int berth_link_add_bridge(struct nl_sock *sk, const char *name, const char *mac, uint32_t mtu);
int berth_link_add_veth(struct nl_sock *sk, const char *name, const char *peer, int peer_netns_fd,
                        const char *peer_mac, uint32_t mtu);
int berth_link_add_macvlan(struct nl_sock *sk, const char *name, const char *parent, int netns_fd,
                           const char *mac, uint32_t mtu);
int berth_link_delete(struct nl_sock *sk, const char *name);
int berth_link_set_master(struct nl_sock *sk, const char *name, const char *bridge);
int berth_link_set_up(struct nl_sock *sk, const char *name);
int berth_link_set_hairpin(struct nl_sock *sk, const char *name, int on);
int berth_link_set_mtu(struct nl_sock *sk, const char *name, uint32_t mtu);

int berth_addr_add(struct nl_sock *sk, const char *name, const char *cidr);
int berth_addr_list(struct nl_sock *sk, const char *name, berth_addr **out, size_t *count);

/// destination "0.0.0.0/0" or "::/0" for default; gateway and device may be NULL (not both).
int berth_route_add(struct nl_sock *sk, const char *destination, const char *gateway,
                    const char *device);
/// Main-table IPv4 and IPv6 routes.
int berth_route_list(struct nl_sock *sk, berth_route **out, size_t *count);
