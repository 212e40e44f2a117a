/* tcpblast: a closed-loop TCP load generator for the Handle binary protocol, in C, so the
 * generator is not what limits a benchmark of the node (bench/store_path.py builds it).
 *
 * usage: tcpblast HOST PORT REQFILE CONNECTIONS SECONDS
 * REQFILE is udpblast's: [u16 big-endian length][request] records, sent round-robin. Each
 * connection keeps one request in flight (as HSJ's resolver does on a connection), like
 * `wrk -c64` over HTTP. A response is an RFC 3651 envelope (message length at bytes 16..19)
 * and its message; response code 1 (success) sits at bytes 24..27.
 * Prints answers/s, how many succeeded, and the p50/p99 latency in microseconds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUCKET_US 10
#define BUCKETS 100000 /* up to one second */

struct conn { int fd; unsigned char buf[65536]; size_t have; double sent_at; };

static double now(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned char **req; static int *len; static int nreq, next_req;
static long histogram[BUCKETS + 1];

static void send_next(struct conn *c) {
  if (write(c->fd, req[next_req], len[next_req]) != len[next_req]) { perror("write"); exit(1); }
  next_req = (next_req + 1) % nreq;
  c->sent_at = now();
}

static double percentile(long total, double p) {
  long want = (long)(total * p), seen = 0;
  for (int i = 0; i <= BUCKETS; i++) { seen += histogram[i]; if (seen > want) return i * BUCKET_US; }
  return BUCKETS * BUCKET_US;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: tcpblast HOST PORT REQFILE CONNECTIONS SECONDS\n"); return 2; }
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[2])); inet_pton(AF_INET, argv[1], &a.sin_addr);
  FILE *f = fopen(argv[3], "rb"); if (!f) { perror("reqfile"); return 2; }
  fseek(f, 0, SEEK_END); long fl = ftell(f); fseek(f, 0, SEEK_SET);
  unsigned char *all = malloc(fl);
  if (fread(all, 1, fl, f) != (size_t)fl) { perror("read"); return 2; }
  fclose(f);
  int cap = 1024; req = malloc(cap * sizeof *req); len = malloc(cap * sizeof *len);
  for (long p = 0; p + 2 <= fl;) {
    int l = (all[p] << 8) | all[p + 1]; p += 2; if (p + l > fl) break;
    if (nreq == cap) { cap *= 2; req = realloc(req, cap * sizeof *req); len = realloc(len, cap * sizeof *len); }
    req[nreq] = all + p; len[nreq] = l; nreq++; p += l;
  }
  if (!nreq) { fprintf(stderr, "no requests\n"); return 2; }
  int nconn = atoi(argv[4]); double secs = atof(argv[5]);
  struct conn *conns = calloc(nconn, sizeof *conns);
  int ep = epoll_create1(0);
  for (int i = 0; i < nconn; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (void *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    conns[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  long got = 0, ok = 0;
  double t0 = now(), end = t0 + secs;
  for (int i = 0; i < nconn; i++) send_next(&conns[i]);
  struct epoll_event events[256];
  while (now() < end) {
    int n = epoll_wait(ep, events, 256, 200);
    for (int e = 0; e < n; e++) {
      struct conn *c = events[e].data.ptr;
      ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
      if (r <= 0) { fprintf(stderr, "connection closed by the server\n"); return 1; }
      c->have += r;
      while (c->have >= 20) {
        size_t size = 20 + ((size_t)c->buf[16] << 24 | c->buf[17] << 16 | c->buf[18] << 8 | c->buf[19]);
        if (size > sizeof c->buf) { fprintf(stderr, "answer too long\n"); return 1; }
        if (c->have < size) break;
        got++;
        if (size >= 28 && !c->buf[24] && !c->buf[25] && !c->buf[26] && c->buf[27] == 1) ok++;
        long us = (long)((now() - c->sent_at) * 1e6) / BUCKET_US;
        histogram[us < BUCKETS ? us : BUCKETS]++;
        memmove(c->buf, c->buf + size, c->have - size); c->have -= size;
        send_next(c);
      }
    }
  }
  double dt = now() - t0;
  printf("requests=%d connections=%d replies=%ld ok=%ld secs=%.2f rps=%.0f p50_us=%.0f p99_us=%.0f\n",
         nreq, nconn, got, ok, dt, got / dt, percentile(got, 0.5), percentile(got, 0.99));
  return 0;
}
