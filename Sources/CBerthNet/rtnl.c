// Links, addresses and routes through libnl-route-3. Every change is one synchronous request
// acknowledged by the kernel; lookups use single RTM_GETLINK requests, not full dumps.
#define _GNU_SOURCE
#include "CBerthNet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/if_link.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

const char *berth_nl_strerror(int err) {
    return err < 0 ? nl_geterror(err) : strerror(err);
}

int berth_error_kind(int err) {
    switch (err) {
    case ENOENT: case ENODEV: case ESRCH: case ENXIO:
    case -NLE_OBJ_NOTFOUND: case -NLE_NODEV:
        return 1;
    case EEXIST: case EADDRINUSE: case -NLE_EXIST:
        return 2;
    case EINVAL: case EADDRNOTAVAIL: case ERANGE:
    case -NLE_INVAL: case -NLE_RANGE: case -NLE_AF_NOSUPPORT: case -NLE_PARSE_ERR:
    case -NLE_AF_MISMATCH: case -NLE_MSGSIZE: case -NLE_NOADDR:
        return 3;
    default:
        return 0;
    }
}

// ---- Socket ----

struct open_job {
    struct nl_sock *sk;
    int err;
};

static void open_socket(void *arg) {
    struct open_job *job = arg;
    struct nl_sock *sk = nl_socket_alloc();
    if (sk == NULL) { job->err = -NLE_NOMEM; return; }
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) { nl_socket_free(sk); job->err = err; return; }
    // The daemon spawns processes; the socket must not leak into them.
    int fd = nl_socket_get_fd(sk);
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    job->sk = sk;
}

int berth_nl_open(const char *netns_path, struct nl_sock **out) {
    struct open_job job = { NULL, 0 };
    if (netns_path == NULL) {
        open_socket(&job);
    } else {
        int rc = berth_netns_run(netns_path, open_socket, &job);
        if (rc != 0) return rc;
    }
    if (job.err != 0) return job.err;
    *out = job.sk;
    return 0;
}

void berth_nl_close(struct nl_sock *sk) {
    nl_socket_free(sk);  // closes the fd too
}

// ---- Links ----

static void format_mac(struct nl_addr *addr, char *out, size_t len) {
    out[0] = 0;
    if (addr == NULL || nl_addr_get_len(addr) != 6) return;
    const unsigned char *b = nl_addr_get_binary_addr(addr);
    snprintf(out, len, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

static void fill_link(struct rtnl_link *link, berth_link *out) {
    memset(out, 0, sizeof *out);
    out->index = rtnl_link_get_ifindex(link);
    const char *name = rtnl_link_get_name(link);
    if (name) snprintf(out->name, sizeof out->name, "%s", name);
    const char *kind = rtnl_link_get_type(link);
    if (kind) snprintf(out->kind, sizeof out->kind, "%s", kind);
    out->mtu = rtnl_link_get_mtu(link);
    format_mac(rtnl_link_get_addr(link), out->mac, sizeof out->mac);
    out->up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
    out->master = rtnl_link_get_master(link);
}

int berth_link_get(struct nl_sock *sk, const char *name, berth_link *out) {
    struct rtnl_link *link = NULL;
    int err = rtnl_link_get_kernel(sk, 0, name, &link);
    if (err < 0) return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
    fill_link(link, out);
    rtnl_link_put(link);
    return 0;
}

int berth_link_list(struct nl_sock *sk, berth_link **out, size_t *count) {
    struct nl_cache *cache = NULL;
    int err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
    if (err < 0) return err;
    size_t n = (size_t)nl_cache_nitems(cache);
    berth_link *items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL) { nl_cache_free(cache); return -NLE_NOMEM; }
    size_t i = 0;
    for (struct nl_object *obj = nl_cache_get_first(cache); obj && i < n; obj = nl_cache_get_next(obj))
        fill_link((struct rtnl_link *)obj, &items[i++]);
    nl_cache_free(cache);
    *out = items;
    *count = i;
    return 0;
}

static int set_mac(struct rtnl_link *link, const char *mac) {
    if (mac == NULL) return 0;
    struct nl_addr *addr = NULL;
    int err = nl_addr_parse(mac, AF_LLC, &addr);
    if (err < 0) return err;
    if (nl_addr_get_len(addr) != 6) { nl_addr_put(addr); return -NLE_INVAL; }
    rtnl_link_set_addr(link, addr);
    nl_addr_put(addr);
    return 0;
}

int berth_link_add_bridge(struct nl_sock *sk, const char *name, const char *mac, uint32_t mtu) {
    struct rtnl_link *link = rtnl_link_bridge_alloc();
    if (link == NULL) return -NLE_NOMEM;
    rtnl_link_set_name(link, name);
    if (mtu) rtnl_link_set_mtu(link, mtu);
    int err = set_mac(link, mac);
    if (err == 0) err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(link);
    return err;
}

int berth_link_add_veth(struct nl_sock *sk, const char *name, const char *peer, int peer_netns_fd,
                        const char *peer_mac, uint32_t mtu) {
    struct rtnl_link *link = rtnl_link_veth_alloc();
    if (link == NULL) return -NLE_NOMEM;
    struct rtnl_link *other = rtnl_link_veth_get_peer(link);
    rtnl_link_set_name(link, name);
    rtnl_link_set_name(other, peer);
    if (mtu) {
        rtnl_link_set_mtu(link, mtu);
        rtnl_link_set_mtu(other, mtu);
    }
    if (peer_netns_fd >= 0) rtnl_link_set_ns_fd(other, peer_netns_fd);
    int err = set_mac(other, peer_mac);
    if (err == 0) err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(other);
    rtnl_link_veth_release(link);
    return err;
}

int berth_link_add_macvlan(struct nl_sock *sk, const char *name, const char *parent, int netns_fd,
                           const char *mac, uint32_t mtu) {
    struct rtnl_link *lower = NULL;
    int err = rtnl_link_get_kernel(sk, 0, parent, &lower);
    if (err < 0) return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
    int parent_index = rtnl_link_get_ifindex(lower);
    rtnl_link_put(lower);

    struct rtnl_link *link = rtnl_link_macvlan_alloc();
    if (link == NULL) return -NLE_NOMEM;
    rtnl_link_set_name(link, name);
    rtnl_link_set_link(link, parent_index);
    rtnl_link_macvlan_set_mode(link, MACVLAN_MODE_BRIDGE);
    if (mtu) rtnl_link_set_mtu(link, mtu);
    if (netns_fd >= 0) rtnl_link_set_ns_fd(link, netns_fd);
    err = set_mac(link, mac);
    if (err == 0) err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(link);
    return err;
}

int berth_link_delete(struct nl_sock *sk, const char *name) {
    struct rtnl_link *link = rtnl_link_alloc();
    if (link == NULL) return -NLE_NOMEM;
    rtnl_link_set_name(link, name);
    int err = rtnl_link_delete(sk, link);
    rtnl_link_put(link);
    return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
}

// Applies `changes` to the link called `name` (one lookup, one change request).
static int change_link(struct nl_sock *sk, const char *name, struct rtnl_link *changes) {
    struct rtnl_link *orig = NULL;
    int err = rtnl_link_get_kernel(sk, 0, name, &orig);
    if (err < 0) return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
    err = rtnl_link_change(sk, orig, changes, 0);
    rtnl_link_put(orig);
    return err;
}

int berth_link_set_master(struct nl_sock *sk, const char *name, const char *bridge) {
    struct rtnl_link *master = NULL;
    int err = rtnl_link_get_kernel(sk, 0, bridge, &master);
    if (err < 0) return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
    struct rtnl_link *changes = rtnl_link_alloc();
    rtnl_link_set_master(changes, rtnl_link_get_ifindex(master));
    rtnl_link_put(master);
    err = change_link(sk, name, changes);
    rtnl_link_put(changes);
    return err;
}

int berth_link_set_up(struct nl_sock *sk, const char *name) {
    struct rtnl_link *changes = rtnl_link_alloc();
    if (changes == NULL) return -NLE_NOMEM;
    rtnl_link_set_flags(changes, IFF_UP);
    int err = change_link(sk, name, changes);
    rtnl_link_put(changes);
    return err;
}

int berth_link_set_mtu(struct nl_sock *sk, const char *name, uint32_t mtu) {
    struct rtnl_link *changes = rtnl_link_alloc();
    if (changes == NULL) return -NLE_NOMEM;
    rtnl_link_set_mtu(changes, mtu);
    int err = change_link(sk, name, changes);
    rtnl_link_put(changes);
    return err;
}

// Hairpin mode on a bridge port: the bridge may send a frame back out of the port it came
// in on. Needed when br_netfilter DNATs a container's packet to a published port of itself.
// libnl has no setter for bridge port attributes, so the RTM_SETLINK is built by hand.
int berth_link_set_hairpin(struct nl_sock *sk, const char *name, int on) {
    struct rtnl_link *link = NULL;
    int err = rtnl_link_get_kernel(sk, 0, name, &link);
    if (err < 0) return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
    struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = rtnl_link_get_ifindex(link) };
    rtnl_link_put(link);
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    if (msg == NULL) return -NLE_NOMEM;
    struct nlattr *protinfo;
    if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0
        || (protinfo = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED)) == NULL
        || nla_put_u8(msg, IFLA_BRPORT_MODE, on ? 1 : 0) < 0) {
        nlmsg_free(msg);
        return -NLE_NOMEM;
    }
    nla_nest_end(msg, protinfo);
    err = nl_send_sync(sk, msg);  // frees msg
    return err;
}

// ---- Addresses ----

static int link_index(struct nl_sock *sk, const char *name, int *index) {
    struct rtnl_link *link = NULL;
    int err = rtnl_link_get_kernel(sk, 0, name, &link);
    if (err < 0) return err == -NLE_NODEV ? -NLE_OBJ_NOTFOUND : err;
    *index = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return 0;
}

// "a.b.c.d/len" or "x::y/len" with the prefix always written.
static void format_cidr(struct nl_addr *addr, char *out, size_t len) {
    out[0] = 0;
    if (addr == NULL) return;
    int family = nl_addr_get_family(addr);
    char text[INET6_ADDRSTRLEN] = "";
    unsigned char zero[16] = { 0 };
    const void *bytes = nl_addr_get_len(addr) ? nl_addr_get_binary_addr(addr) : zero;
    if (family != AF_INET && family != AF_INET6) return;
    inet_ntop(family, bytes, text, sizeof text);
    snprintf(out, len, "%s/%u", text, nl_addr_get_prefixlen(addr));
}

static void format_ip(struct nl_addr *addr, char *out, size_t len) {
    out[0] = 0;
    if (addr == NULL || nl_addr_get_len(addr) == 0) return;
    int family = nl_addr_get_family(addr);
    if (family != AF_INET && family != AF_INET6) return;
    inet_ntop(family, nl_addr_get_binary_addr(addr), out, (socklen_t)len);
}

int berth_addr_add(struct nl_sock *sk, const char *name, const char *cidr) {
    int index = 0;
    int err = link_index(sk, name, &index);
    if (err < 0) return err;
    struct nl_addr *local = NULL;
    err = nl_addr_parse(cidr, AF_UNSPEC, &local);
    if (err < 0) return err;
    struct rtnl_addr *addr = rtnl_addr_alloc();
    rtnl_addr_set_ifindex(addr, index);
    err = rtnl_addr_set_local(addr, local);
    // Like Docker (and `ip addr add ... brd +`): IPv4 gets its subnet's broadcast address.
    if (err == 0 && nl_addr_get_family(local) == AF_INET && nl_addr_get_prefixlen(local) < 31) {
        uint32_t ip;
        memcpy(&ip, nl_addr_get_binary_addr(local), 4);
        uint32_t host = 0xffffffffu >> nl_addr_get_prefixlen(local);
        uint32_t bcast = htonl(ntohl(ip) | host);
        struct nl_addr *brd = nl_addr_build(AF_INET, &bcast, 4);
        if (brd) {
            rtnl_addr_set_broadcast(addr, brd);
            nl_addr_put(brd);
        }
    }
    // IPv6: Berth's IPAM hands out each address once, so duplicate address detection would
    // only keep the address unusable ("tentative") for the first second of a container's life.
    if (err == 0 && nl_addr_get_family(local) == AF_INET6) rtnl_addr_set_flags(addr, IFA_F_NODAD);
    if (err == 0) err = rtnl_addr_add(sk, addr, NLM_F_EXCL);
    rtnl_addr_put(addr);
    nl_addr_put(local);
    return err;
}

int berth_addr_list(struct nl_sock *sk, const char *name, berth_addr **out, size_t *count) {
    int index = 0;
    int err = link_index(sk, name, &index);
    if (err < 0) return err;
    struct nl_cache *cache = NULL;
    err = rtnl_addr_alloc_cache(sk, &cache);
    if (err < 0) return err;
    size_t n = (size_t)nl_cache_nitems(cache);
    berth_addr *items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL) { nl_cache_free(cache); return -NLE_NOMEM; }
    size_t i = 0;
    for (struct nl_object *obj = nl_cache_get_first(cache); obj && i < n; obj = nl_cache_get_next(obj)) {
        struct rtnl_addr *addr = (struct rtnl_addr *)obj;
        if (rtnl_addr_get_ifindex(addr) != index) continue;
        format_cidr(rtnl_addr_get_local(addr), items[i].cidr, sizeof items[i].cidr);
        if (items[i].cidr[0]) i++;
    }
    nl_cache_free(cache);
    *out = items;
    *count = i;
    return 0;
}

// ---- Routes ----

int berth_route_add(struct nl_sock *sk, const char *destination, const char *gateway,
                    const char *device) {
    if (gateway == NULL && device == NULL) return -NLE_INVAL;
    int index = 0;
    int err = 0;
    if (device) {
        err = link_index(sk, device, &index);
        if (err < 0) return err;
    }
    struct nl_addr *dst = NULL, *gw = NULL;
    err = nl_addr_parse(destination, AF_UNSPEC, &dst);
    if (err < 0) return err;
    if (gateway) {
        err = nl_addr_parse(gateway, nl_addr_get_family(dst), &gw);
        if (err < 0) { nl_addr_put(dst); return err; }
    }
    struct rtnl_route *route = rtnl_route_alloc();
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    rtnl_route_set_family(route, (uint8_t)nl_addr_get_family(dst));
    err = rtnl_route_set_dst(route, dst);
    if (gw) rtnl_route_nh_set_gateway(nh, gw);
    if (index) rtnl_route_nh_set_ifindex(nh, index);
    rtnl_route_add_nexthop(route, nh);  // the route owns nh now
    if (err == 0) err = rtnl_route_add(sk, route, NLM_F_EXCL);
    rtnl_route_put(route);
    nl_addr_put(dst);
    if (gw) nl_addr_put(gw);
    return err;
}

int berth_route_list(struct nl_sock *sk, berth_route **out, size_t *count) {
    struct nl_cache *links = NULL, *routes = NULL;
    int err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
    if (err < 0) return err;
    err = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes);
    if (err < 0) { nl_cache_free(links); return err; }
    size_t n = (size_t)nl_cache_nitems(routes);
    berth_route *items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL) { nl_cache_free(links); nl_cache_free(routes); return -NLE_NOMEM; }
    size_t i = 0;
    for (struct nl_object *obj = nl_cache_get_first(routes); obj && i < n; obj = nl_cache_get_next(obj)) {
        struct rtnl_route *route = (struct rtnl_route *)obj;
        int family = rtnl_route_get_family(route);
        if (rtnl_route_get_table(route) != RT_TABLE_MAIN) continue;
        if (family != AF_INET && family != AF_INET6) continue;
        berth_route *r = &items[i];
        struct nl_addr *dst = rtnl_route_get_dst(route);
        if (dst == NULL || nl_addr_get_len(dst) == 0) {
            snprintf(r->destination, sizeof r->destination, "%s/%u",
                     family == AF_INET ? "0.0.0.0" : "::", dst ? nl_addr_get_prefixlen(dst) : 0);
        } else {
            format_cidr(dst, r->destination, sizeof r->destination);
        }
        if (rtnl_route_get_nnexthops(route) > 0) {
            struct rtnl_nexthop *nh = rtnl_route_nexthop_n(route, 0);
            format_ip(rtnl_route_nh_get_gateway(nh), r->gateway, sizeof r->gateway);
            int ifindex = rtnl_route_nh_get_ifindex(nh);
            if (ifindex > 0) rtnl_link_i2name(links, ifindex, r->device, sizeof r->device);
        }
        i++;
    }
    nl_cache_free(links);
    nl_cache_free(routes);
    *out = items;
    *count = i;
    return 0;
}
