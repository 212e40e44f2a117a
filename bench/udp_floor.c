/* The floor under any UDP server on this machine: two C processes exchanging
 * request/answer datagrams over loopback, with nothing but the system calls.
 *
 *   udp_floor answer PORT ANSWER_BYTES      answer every datagram with ANSWER_BYTES bytes
 *   udp_floor ask PORT OUTSTANDING SECONDS   keep OUTSTANDING requests in flight; print
 *                                            answers per second
 *
 * bench/udp_floor.py builds and runs it (docs/performance.md explains what it shows).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: udp_floor answer PORT BYTES | ask PORT OUTSTANDING SECONDS\n");
        return 2;
    }
    int port = atoi(argv[2]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char buf[2048];
    if (strcmp(argv[1], "answer") == 0) {
        int size = atoi(argv[3]);
        char answer[2048];
        memset(answer, 'a', sizeof answer);
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
        for (;;) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            if (recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len) < 0) continue;
            sendto(fd, answer, size, 0, (struct sockaddr *)&peer, len);
        }
    }
    if (argc < 5) { fprintf(stderr, "ask needs OUTSTANDING SECONDS\n"); return 2; }
    int outstanding = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
    char request[64];
    memset(request, 'q', sizeof request);
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < outstanding; i++) send(fd, request, sizeof request, 0);
    long answers = 0;
    double start = now(), stop = start + seconds;
    while (now() < stop) {
        if (recv(fd, buf, sizeof buf, 0) < 0) {  /* a lost datagram: put one back */
            send(fd, request, sizeof request, 0);
            continue;
        }
        answers++;
        send(fd, request, sizeof request, 0);
    }
    printf("%.0f\n", answers / (now() - start));
    return 0;
}
