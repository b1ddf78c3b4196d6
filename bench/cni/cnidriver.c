// cnidriver: calls a CNI plugin chain exactly as a container runtime does (libcni's
// conventions) and times each call as the runtime sees it: from spawning the plugin to
// reaping it with its stdout read, so the plugin's own start-up is counted and nothing of
// this driver's start-up is.
//
// A chain is a folder made by render-chain.py from a conflist: a file `chain` with one line
// per plugin ("TYPE<TAB>CONFIG_FILE"), each config already holding the list's name and
// cniVersion. ADD runs the plugins in order, each with the previous result as prevResult;
// DEL runs them in reverse with the ADD result as prevResult. Plugin binaries are found by
// type in CNI_PATH (taken from the environment), which is also passed to the plugins.
//
//   cnidriver add CHAIN CONTAINERID NETNS RESULT_FILE   ADD once, write the result
//   cnidriver del CHAIN CONTAINERID NETNS RESULT_FILE   DEL once with that result
//   cnidriver bench CHAIN NETNS_LIST OUT_TSV            ADD every netns (one path per line)
//                                                       in order, then DEL every one; per-call
//                                                       latencies to OUT_TSV, a JSON summary
//                                                       per command on stdout
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_PLUGINS 16

struct plugin {
    char type[128];
    char binary[4096];
    char *config; // JSON object text, no trailing whitespace
};

struct chain {
    int count;
    struct plugin plugins[MAX_PLUGINS];
};

struct call {
    int status;    // exit code, or 128+signal
    char *out;     // stdout, NUL-terminated
    char *err;     // stderr, NUL-terminated
    double micros; // spawn to reap
};

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "cnidriver: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read %s", path);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\r' || buf[len - 1] == '\t'))
        len--;
    buf[len] = 0;
    return buf;
}

static void find_binary(struct plugin *p)
{
    const char *path = getenv("CNI_PATH");
    if (!path || !*path)
        die("CNI_PATH is empty: set it to the folders holding the plugin binaries%s", "");
    char *copy = strdup(path), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (strlen(dir) + strlen(p->type) + 2 > sizeof(p->binary))
            continue;
        size_t d = strlen(dir);
        memcpy(p->binary, dir, d);
        p->binary[d] = '/';
        memcpy(p->binary + d + 1, p->type, strlen(p->type) + 1);
        if (access(p->binary, X_OK) == 0) {
            free(copy);
            return;
        }
    }
    free(copy);
    die("plugin \"%s\" is in no folder of CNI_PATH", p->type);
}

static void load_chain(const char *dir, struct chain *c)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/chain", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read %s (make it with render-chain.py)", path);
    char line[8192];
    c->count = 0;
    while (fgets(line, sizeof(line), f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        if (c->count == MAX_PLUGINS)
            die("more than 16 plugins in %s", path);
        *tab = 0;
        char *file = tab + 1;
        file[strcspn(file, "\n")] = 0;
        struct plugin *p = &c->plugins[c->count++];
        if (strlen(line) >= sizeof(p->type))
            die("plugin type too long in %s", path);
        memcpy(p->type, line, strlen(line) + 1);
        p->config = read_file(file);
        if (p->config[0] != '{' || p->config[strlen(p->config) - 1] != '}')
            die("%s is not a JSON object", file);
        find_binary(p);
    }
    fclose(f);
    if (c->count == 0)
        die("%s names no plugin", path);
}

// libcni's buildOneConfig: the plugin's config with prevResult added as its last member.
static char *with_prev_result(const char *config, const char *prev)
{
    if (!prev || !*prev)
        return strdup(config);
    size_t len = strlen(config);
    char *out = malloc(len + strlen(prev) + 32);
    memcpy(out, config, len - 1);
    sprintf(out + len - 1, "%s\"prevResult\":%s}", len > 2 ? "," : "", prev);
    return out;
}

// The runtime's environment for one call; entries from *owned on were allocated here.
static char **child_env(const char *command, const char *cid, const char *netns, const char *ifname, size_t *owned)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 8, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CNI_", 4) != 0 || strncmp(environ[i], "CNI_PATH=", 9) == 0)
            env[k++] = environ[i];
    *owned = k;
    asprintf(&env[k++], "CNI_COMMAND=%s", command);
    asprintf(&env[k++], "CNI_CONTAINERID=%s", cid);
    asprintf(&env[k++], "CNI_NETNS=%s", netns);
    asprintf(&env[k++], "CNI_IFNAME=%s", ifname);
    const char *args = getenv("CNI_ARGS");
    asprintf(&env[k++], "CNI_ARGS=%s", args ? args : "");
    env[k] = NULL;
    return env;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap *= 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = 0;
}

static struct call run_plugin(const struct plugin *p, const char *command, const char *cid, const char *netns,
                              const char *config)
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        die("pipe: %s", strerror(errno));
    size_t owned;
    char **env = child_env(command, cid, netns, "eth0", &owned);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    char *argv[] = {(char *)p->binary, NULL};
    struct call c = {0};
    double start = now_us();
    pid_t pid;
    int rc = posix_spawn(&pid, p->binary, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0)
        die("cannot spawn %s", p->binary);
    // The config is far smaller than a pipe's buffer: writing it all first cannot block.
    size_t left = strlen(config);
    const char *w = config;
    while (left > 0) {
        ssize_t n = write(in[1], w, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; // EPIPE: the plugin exited without reading; its status says why
        }
        w += n;
        left -= (size_t)n;
    }
    close(in[1]);
    size_t olen = 0, ocap = 4096, elen = 0, ecap = 1024;
    c.out = malloc(ocap);
    c.err = malloc(ecap);
    c.out[0] = c.err[0] = 0;
    struct pollfd fds[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                append(&c.out, &olen, &ocap, buf, (size_t)n);
            } else {
                append(&c.err, &elen, &ecap, buf, (size_t)n);
            }
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    c.micros = now_us() - start;
    c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    for (size_t i = owned; env[i]; i++)
        free(env[i]);
    free(env);
    while (olen > 0 && (c.out[olen - 1] == '\n' || c.out[olen - 1] == ' '))
        c.out[--olen] = 0;
    return c;
}

// One ADD or DEL through the whole chain; returns the total time and the final result.
static int run_chain(const struct chain *ch, const char *command, const char *cid, const char *netns,
                     const char *add_result, char **result, double *micros)
{
    int del = strcmp(command, "DEL") == 0;
    char *prev = add_result ? strdup(add_result) : NULL;
    *micros = 0;
    for (int i = 0; i < ch->count; i++) {
        const struct plugin *p = &ch->plugins[del ? ch->count - 1 - i : i];
        char *config = with_prev_result(p->config, prev);
        struct call c = run_plugin(p, command, cid, netns, config);
        free(config);
        *micros += c.micros;
        if (c.status != 0) {
            fprintf(stderr, "cnidriver: %s %s for %s exited %d: %s%s\n", p->type, command, netns, c.status, c.out, c.err);
            free(c.out);
            free(c.err);
            free(prev);
            return c.status;
        }
        if (!del) {
            free(prev);
            prev = c.out;
        } else {
            free(c.out);
        }
        free(c.err);
    }
    if (result)
        *result = prev;
    else
        free(prev);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Nearest-rank percentile of a sorted array.
static double percentile(const double *v, int n, double p)
{
    int rank = (int)((p / 100.0) * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static void summary(const char *command, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    printf("{\"bench\":\"cni\",\"command\":\"%s\",\"n\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"mean_ms\":%.3f,\"min_ms\":%.3f,\"max_ms\":%.3f}\n",
           command, n, percentile(v, n, 50) / 1e3, percentile(v, n, 90) / 1e3, percentile(v, n, 99) / 1e3,
           sum / n / 1e3, v[0] / 1e3, v[n - 1] / 1e3);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write %s", path);
}

static int bench(const struct chain *ch, const char *list, const char *tsv_path)
{
    FILE *f = fopen(list, "r");
    if (!f)
        die("cannot read %s", list);
    char **netns = NULL;
    int n = 0, cap = 0;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line)
            continue;
        if (n == cap)
            netns = realloc(netns, sizeof(char *) * (size_t)(cap = cap ? cap * 2 : 64));
        netns[n++] = strdup(line);
    }
    fclose(f);
    if (n == 0)
        die("%s lists no network namespace", list);
    FILE *tsv = fopen(tsv_path, "w");
    if (!tsv)
        die("cannot write %s", tsv_path);
    fprintf(tsv, "command\tindex\tnetns\tms\n");
    char **results = calloc((size_t)n, sizeof(char *));
    double *add = calloc((size_t)n, sizeof(double)), *del = calloc((size_t)n, sizeof(double));
    int failed = 0;
    for (int i = 0; i < n && !failed; i++) {
        char cid[64];
        snprintf(cid, sizeof(cid), "cnibench-%d-%d", (int)getpid(), i);
        failed = run_chain(ch, "ADD", cid, netns[i], NULL, &results[i], &add[i]);
        fprintf(tsv, "ADD\t%d\t%s\t%.3f\n", i, netns[i], add[i] / 1e3);
    }
    // DEL every attachment that was added, also after a failed ADD: nothing stays allocated.
    int dels = 0;
    for (int i = 0; i < n; i++) {
        if (!results[i])
            continue;
        char cid[64];
        snprintf(cid, sizeof(cid), "cnibench-%d-%d", (int)getpid(), i);
        if (run_chain(ch, "DEL", cid, netns[i], results[i], NULL, &del[dels]) != 0)
            failed = 1;
        fprintf(tsv, "DEL\t%d\t%s\t%.3f\n", i, netns[i], del[dels] / 1e3);
        dels++;
    }
    fclose(tsv);
    if (failed)
        return 1;
    summary("ADD", add, n);
    summary("DEL", del, dels);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "bench") == 0) {
        struct chain ch;
        load_chain(argv[2], &ch);
        return bench(&ch, argv[3], argv[4]);
    }
    if (argc == 6 && (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "del") == 0)) {
        struct chain ch;
        load_chain(argv[2], &ch);
        double micros;
        if (argv[1][0] == 'a') {
            char *result = NULL;
            int rc = run_chain(&ch, "ADD", argv[3], argv[4], NULL, &result, &micros);
            if (rc == 0)
                write_file(argv[5], result);
            return rc;
        }
        struct stat st;
        char *result = stat(argv[5], &st) == 0 ? read_file(argv[5]) : NULL;
        return run_chain(&ch, "DEL", argv[3], argv[4], result, NULL, &micros);
    }
    fprintf(stderr, "usage: cnidriver add|del CHAIN CONTAINERID NETNS RESULT_FILE\n"
                    "       cnidriver bench CHAIN NETNS_LIST OUT_TSV\n");
    return 2;
}
