// tcpbench: pod-to-pod TCP request/response, netperf's TCP_CRR and TCP_RR shapes, with a
// bounded run time so nothing outlives the benchmark.
//
//   tcpbench server PORT MAX_SECONDS
//       accepts one connection at a time; answers each 1-byte request with 1 byte; after a
//       'C' request it closes first (TIME_WAIT stays on the server, as with an HTTP/1.0
//       server, so the client never runs out of ports). Exits after MAX_SECONDS.
//   tcpbench crr ADDRESS PORT SECONDS [START_UNIX_MS]
//       new connection per transaction: connect, send 'C', recv 1 byte, recv EOF, close.
//   tcpbench rr ADDRESS PORT SECONDS [START_UNIX_MS]
//       one connection, send 'R' / recv 1 byte in a loop.
// Clients wait (bounded, 10 s) for the server to accept, then for START_UNIX_MS when given,
// so that many clients in many pods measure the same window; they print one JSON line:
// transactions, errors, rate per second and the per-transaction latency p50/p99.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void fail(const char *what)
{
    fprintf(stderr, "tcpbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static _Noreturn void server(int port, int max_seconds)
{
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)max_seconds); // bounded: the default SIGALRM action ends the process
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (s < 0)
        fail("socket");
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = INADDR_ANY};
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 1024))
        fail("bind/listen");
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fail("accept");
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char b;
        while (recv(c, &b, 1, 0) == 1) {
            if (send(c, &b, 1, 0) != 1 || b == 'C')
                break;
        }
        close(c);
    }
}

static int connect_to(const struct sockaddr_in *a)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (s < 0)
        return -1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s, (const struct sockaddr *)a, sizeof(*a)) != 0) {
        close(s);
        return -1;
    }
    return s;
}

// One CRR transaction; 0 on success.
static int crr_once(const struct sockaddr_in *a)
{
    int s = connect_to(a);
    if (s < 0)
        return -1;
    char b = 'C';
    int ok = send(s, &b, 1, 0) == 1 && recv(s, &b, 1, 0) == 1 && recv(s, &b, 1, 0) == 0;
    close(s);
    return ok ? 0 : -1;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double percentile(const double *v, long n, double p)
{
    long rank = (long)((p / 100.0) * (double)n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return n ? v[rank - 1] : 0;
}

static int client(int rr, const char *address, int port, int seconds, long long start_ms)
{
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, address, &a.sin_addr) != 1) {
        fprintf(stderr, "tcpbench: \"%s\" is not an IPv4 address\n", address);
        return 2;
    }
    // The server may still be starting: probe, bounded.
    double probe_end = now_us() + 10e6;
    while (crr_once(&a) != 0) {
        if (now_us() > probe_end) {
            fprintf(stderr, "tcpbench: %s:%d did not answer within 10 s\n", address, port);
            return 1;
        }
        usleep(20000);
    }
    if (start_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long wait_ms = start_ms - (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000);
        if (wait_ms > 0)
            usleep((useconds_t)(wait_ms * 1000));
    }
    long cap = 1 << 20, n = 0, errors = 0;
    double *lat = malloc(sizeof(double) * (size_t)cap);
    int s = -1;
    if (rr && (s = connect_to(&a)) < 0)
        fail("connect");
    double begin = now_us(), end = begin + seconds * 1e6, t = begin;
    while (t < end) {
        double t0 = t;
        int rc;
        if (rr) {
            char b = 'R';
            rc = send(s, &b, 1, 0) == 1 && recv(s, &b, 1, 0) == 1 ? 0 : -1;
        } else {
            rc = crr_once(&a);
        }
        t = now_us();
        if (rc != 0) {
            errors++;
            if (rr)
                break;
            continue;
        }
        if (n == cap)
            lat = realloc(lat, sizeof(double) * (size_t)(cap *= 2));
        lat[n++] = t - t0;
    }
    double elapsed = (t - begin) / 1e6;
    if (s >= 0)
        close(s);
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("{\"bench\":\"%s\",\"address\":\"%s\",\"seconds\":%.3f,\"transactions\":%ld,\"errors\":%ld,"
           "\"per_second\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
           rr ? "tcp_rr" : "tcp_crr", address, elapsed, n, errors, n / elapsed, percentile(lat, n, 50),
           percentile(lat, n, 99));
    return errors && rr ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "server") == 0)
        server(atoi(argv[2]), atoi(argv[3]));
    if ((argc == 5 || argc == 6) && (strcmp(argv[1], "crr") == 0 || strcmp(argv[1], "rr") == 0)) {
        int seconds = atoi(argv[4]);
        if (seconds < 1 || seconds > 600) {
            fprintf(stderr, "tcpbench: SECONDS must be 1..600, not %s\n", argv[4]);
            return 2;
        }
        return client(argv[1][0] == 'r', argv[2], atoi(argv[3]), seconds, argc == 6 ? atoll(argv[5]) : 0);
    }
    fprintf(stderr, "usage: tcpbench server PORT MAX_SECONDS | crr|rr ADDRESS PORT SECONDS [START_UNIX_MS]\n");
    return 2;
}
