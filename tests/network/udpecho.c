// A UDP echo server for the networking tests (busybox has no UDP server): answers every
// datagram on the port given with "echo:" and the datagram. Built static, bind-mounted into
// a busybox container.
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 7) };
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;
    for (;;) {
        char buf[1500] = "echo:";
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&peer, &len);
        if (n >= 0) sendto(fd, buf, (size_t)n + 5, 0, (struct sockaddr *)&peer, len);
    }
}
