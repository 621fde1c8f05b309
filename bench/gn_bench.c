/* gn_bench: the C side of the benchmark suite (bench/bench.py drives it), straight on the C API.
 * The etcd cluster comes from GNAMING_ETCD_ENDPOINTS (the default cluster). Times are
 * CLOCK_MONOTONIC nanoseconds, comparable with the Go and Python observers'.
 *
 *   gn_bench observe SERVICE         latency observer: "ready" after the first list; after stdin
 *                                    closes, "put|del ADDR T" per change seen and "end"
 *   gn_bench watch SERVICE           as observe, but prints each change as it is seen
 *   gn_bench scale SERVICE INITIAL LO HI
 *                                    "first NS CPU_NS RSS_KIB" (start to a full list of [0, INITIAL),
 *                                    the process's CPU time and RSS then); after a stdin line,
 *                                    "armed"; then "converged T CPU_NS UPDATES" when the list is
 *                                    exactly [LO, HI), or "timeout ..." after 300 s
 *   gn_bench large SERVICE INITIAL   "first NS CPU_NS RSS_KIB RSS_BEFORE_KIB" once a list of INITIAL
 *                                    entries arrived (the prefix holds nothing else); then per stdin
 *                                    line "put ADDR" / "del ADDR": "armed", and "seen T" from the
 *                                    first call whose list has (put) or lacks (del) ADDR; per line
 *                                    "stats": "stats RSS_KIB HWM_KIB CPU_NS SEARCH_NS" (SEARCH_NS:
 *                                    time spent searching lists for ADDR so far); exits at EOF
 *   gn_bench many SERVICE N          one JSON line: RSS and threads before the first resolver, with
 *                                    one, with N, and the library's stats; holds them until EOF
 *   gn_bench prefixes BASE N         as many, but resolver k resolves its own service BASE/sKKKKK
 *   gn_bench register SERVICE ADDR TTL_MS
 *                                    "registered"; on a stdin line "close" closes it and prints
 *                                    "closed T_BEFORE T_AFTER"
 *   gn_bench registrations SERVICE N TTL_MS
 *                                    "registered NS STATS_JSON" once all N are in etcd (or "partial
 *                                    K NS STATS_JSON" when only K were after 300 s); "stats
 *                                    STATS_JSON" per stdin line; exits at EOF
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gnaming.h"

#define ADDR_MAX 48
#define WAIT_S 60
#define CONVERGE_S 300

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void die(const char *what, gn_error *err) {
  fprintf(stderr, "gn_bench: %s: %s\n", what, err ? gn_error_message(err) : "failed");
  gn_error_free(err);
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) {
    fprintf(stderr, "gn_bench: out of memory\n");
    exit(1);
  }
  return p;
}

/* Address of endpoint i, as the Go writer makes them; index_of inverts it (-1 otherwise). */
static void addr_of(int i, char *out, size_t n) {
  snprintf(out, n, "10.%d.%d.%d:8000", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static int index_of(const char *addr) {
  int a, b, c, port, used = 0;
  if (sscanf(addr, "10.%d.%d.%d:%d%n", &a, &b, &c, &port, &used) != 4 || addr[used] != '\0' || port != 8000 ||
      a < 0 || a > 255 || b < 0 || b > 255 || c < 0 || c > 255)
    return -1;
  return a << 16 | b << 8 | c;
}

static void target_of(const char *service, char *out, size_t n) { snprintf(out, n, "etcd:///%s", service); }

/* One "Field: N kB" figure of /proc/self/status; -1 when absent. */
static long proc_kib(const char *field) {
  long v = -1;
  size_t n = strlen(field);
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
  fclose(f);
  return v;
}

/* Reads /proc/self/status. */
static void proc_status(long *rss_kib, long *threads) {
  *rss_kib = -1;
  *threads = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    sscanf(line, "VmRSS: %ld", rss_kib);
    sscanf(line, "Threads: %ld", threads);
  }
  fclose(f);
}

static char *stats_json(void) {
  char *s = NULL;
  gn_error *err = NULL;
  if (gn_stats_json(&s, &err) != GN_STATUS_OK) die("gn_stats_json", err);
  return s;
}

static bool read_line(char *buf, size_t n) { return fgets(buf, (int)n, stdin) != NULL; }

static void drain_stdin(void) {
  char buf[256];
  while (read_line(buf, sizeof buf)) {
  }
}

/* ---- observe / watch: per-change events --------------------------------------------------- */

typedef struct {
  char op; /* 'p' put, 'd' del */
  char addr[ADDR_MAX];
  int64_t t;
} event;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool live, first;
  char (*prev)[ADDR_MAX];
  size_t nprev;
  event *ev;
  size_t nev, cap;
} obs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, NULL, 0, NULL, 0, 0};

static int cmp_addr(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static void record(char op, const char *addr, int64_t t) {
  if (obs.live) {
    printf("%s %s %" PRId64 "\n", op == 'p' ? "put" : "del", addr, t);
    fflush(stdout);
    return;
  }
  if (obs.nev == obs.cap) {
    obs.cap = obs.cap ? obs.cap * 2 : 4096;
    obs.ev = xrealloc(obs.ev, obs.cap * sizeof *obs.ev);
  }
  event *e = &obs.ev[obs.nev++];
  e->op = op;
  snprintf(e->addr, sizeof e->addr, "%s", addr);
  e->t = t;
}

/* Diffs the sorted new list against the previous one; every change is stamped with the call's time. */
static void on_observe(void *user_data, const gn_update *u) {
  (void)user_data;
  int64_t t = now_ns();
  size_t n = gn_update_address_count(u);
  char(*cur)[ADDR_MAX] = n ? xrealloc(NULL, n * ADDR_MAX) : NULL;
  for (size_t i = 0; i < n; i++) snprintf(cur[i], ADDR_MAX, "%s", gn_update_address(u, i)->addr);
  qsort(cur, n, ADDR_MAX, cmp_addr);
  pthread_mutex_lock(&obs.mu);
  size_t i = 0, j = 0;
  while (i < n || j < obs.nprev) {
    int c = i == n ? 1 : j == obs.nprev ? -1 : strcmp(cur[i], obs.prev[j]);
    if (c < 0) {
      record('p', cur[i++], t);
    } else if (c > 0) {
      record('d', obs.prev[j++], t);
    } else {
      i++;
      j++;
    }
  }
  free(obs.prev);
  obs.prev = cur;
  obs.nprev = n;
  obs.first = true;
  pthread_cond_broadcast(&obs.cv);
  pthread_mutex_unlock(&obs.mu);
}

static bool wait_flag(bool *flag, int seconds) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds;
  pthread_mutex_lock(&obs.mu);
  int rc = 0;
  while (!*flag && rc == 0) rc = pthread_cond_timedwait(&obs.cv, &obs.mu, &deadline);
  bool ok = *flag;
  pthread_mutex_unlock(&obs.mu);
  return ok;
}

static gn_resolver *start(const char *service, void (*call)(void *, const gn_update *), void *user_data) {
  char target[512];
  target_of(service, target, sizeof target);
  gn_update_callback cb = {.user_data = user_data, .call = call, .drop = NULL};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  if (gn_resolver_start(target, NULL, cb, &r, &err) != GN_STATUS_OK) die("gn_resolver_start", err);
  return r;
}

static int cmd_observe(const char *service, bool live) {
  obs.live = live;
  gn_resolver *r = start(service, on_observe, NULL);
  if (!wait_flag(&obs.first, WAIT_S)) {
    fprintf(stderr, "gn_bench: no first update in %d s\n", WAIT_S);
    return 1;
  }
  /* The first list is the baseline: its entries are not changes. */
  pthread_mutex_lock(&obs.mu);
  obs.nev = 0;
  printf("ready\n");
  fflush(stdout);
  pthread_mutex_unlock(&obs.mu);
  drain_stdin();
  gn_resolver_free(r);
  for (size_t i = 0; i < obs.nev; i++)
    printf("%s %s %" PRId64 "\n", obs.ev[i].op == 'p' ? "put" : "del", obs.ev[i].addr, obs.ev[i].t);
  printf("end\n");
  free(obs.ev);
  free(obs.prev);
  return 0;
}

/* ---- scale: first full list, then convergence after a burst ------------------------------- */

static struct {
  int initial, lo, hi;
  bool first, armed, converged;
  int64_t t_first, t_conv, cpu0, cpu_conv, updates;
  size_t last_count;
} sc;

static bool is_range(const gn_update *u, int lo, int hi, unsigned char *seen) {
  size_t n = gn_update_address_count(u);
  if (n != (size_t)(hi - lo)) return false;
  memset(seen, 0, (size_t)(hi - lo));
  for (size_t i = 0; i < n; i++) {
    int k = index_of(gn_update_address(u, i)->addr);
    if (k < lo || k >= hi || seen[k - lo]) return false;
    seen[k - lo] = 1;
  }
  return true;
}

static void on_scale(void *user_data, const gn_update *u) {
  unsigned char *seen = user_data;
  int64_t t = now_ns();
  pthread_mutex_lock(&obs.mu);
  bool armed = sc.armed;
  pthread_mutex_unlock(&obs.mu);
  if (!armed) {
    if (!sc.first && is_range(u, 0, sc.initial, seen)) {
      pthread_mutex_lock(&obs.mu);
      sc.first = true;
      sc.t_first = t;
      pthread_cond_broadcast(&obs.cv);
      pthread_mutex_unlock(&obs.mu);
    }
    return;
  }
  sc.updates++;
  sc.last_count = gn_update_address_count(u);
  if (!sc.converged && is_range(u, sc.lo, sc.hi, seen)) {
    int64_t cpu = cpu_ns();
    pthread_mutex_lock(&obs.mu);
    sc.converged = true;
    sc.t_conv = t;
    sc.cpu_conv = cpu - sc.cpu0;
    pthread_cond_broadcast(&obs.cv);
    pthread_mutex_unlock(&obs.mu);
  }
}

static int cmd_scale(const char *service, int initial, int lo, int hi) {
  sc.initial = initial;
  sc.lo = lo;
  sc.hi = hi;
  size_t span = (size_t)(initial > hi - lo ? initial : hi - lo) + 1;
  unsigned char *seen = xrealloc(NULL, span);
  int64_t t0 = now_ns();
  gn_resolver *r = start(service, on_scale, seen);
  if (!wait_flag(&sc.first, WAIT_S)) {
    fprintf(stderr, "gn_bench: no full list of %d in %d s\n", initial, WAIT_S);
    return 1;
  }
  long rss, threads;
  proc_status(&rss, &threads);
  printf("first %" PRId64 " %" PRId64 " %ld\n", sc.t_first - t0, cpu_ns(), rss);
  fflush(stdout);
  char line[256];
  if (read_line(line, sizeof line)) {
    pthread_mutex_lock(&obs.mu);
    sc.cpu0 = cpu_ns();
    sc.armed = true;
    pthread_mutex_unlock(&obs.mu);
    printf("armed\n");
    fflush(stdout);
    if (wait_flag(&sc.converged, CONVERGE_S))
      printf("converged %" PRId64 " %" PRId64 " %" PRId64 "\n", sc.t_conv, sc.cpu_conv, sc.updates);
    else
      printf("timeout %" PRId64 " updates, the last with %zu entries\n", sc.updates, sc.last_count);
    fflush(stdout);
    drain_stdin();
  }
  gn_resolver_free(r);
  free(seen);
  return 0;
}

/* ---- large: first list of a big prefix, then one change at a time ------------------------- */

static struct {
  size_t initial;
  bool first;
  int64_t t_first;
  /* The change awaited: put (the list must have addr) or del (must lack it); seen once it shows. */
  bool armed, put, seen;
  char addr[ADDR_MAX];
  int64_t t_seen, search_ns;
} lg;

static void on_large(void *user_data, const gn_update *u) {
  (void)user_data;
  int64_t t = now_ns();
  size_t n = gn_update_address_count(u);
  pthread_mutex_lock(&obs.mu);
  if (!lg.first && n == lg.initial) {
    lg.first = true;
    lg.t_first = t;
    pthread_cond_broadcast(&obs.cv);
  }
  /* The main thread changes addr and put only once this change was seen, which only this
   * (serialised) callback records, so they hold still while the list is searched. */
  bool armed = lg.armed && !lg.seen;
  pthread_mutex_unlock(&obs.mu);
  if (!armed) return;
  bool has = false;
  for (size_t i = 0; i < n && !has; i++) has = strcmp(gn_update_address(u, i)->addr, lg.addr) == 0;
  int64_t searched = now_ns() - t;
  pthread_mutex_lock(&obs.mu);
  lg.search_ns += searched;
  if (has == lg.put) {
    lg.seen = true;
    lg.t_seen = t;
    pthread_cond_broadcast(&obs.cv);
  }
  pthread_mutex_unlock(&obs.mu);
}

static int cmd_large(const char *service, int initial) {
  lg.initial = (size_t)initial;
  long rss0 = proc_kib("VmRSS");
  int64_t t0 = now_ns();
  gn_resolver *r = start(service, on_large, NULL);
  if (!wait_flag(&lg.first, WAIT_S)) {
    fprintf(stderr, "gn_bench: no list of %d in %d s\n", initial, WAIT_S);
    return 1;
  }
  printf("first %" PRId64 " %" PRId64 " %ld %ld\n", lg.t_first - t0, cpu_ns(), proc_kib("VmRSS"), rss0);
  fflush(stdout);
  char line[256], addr[ADDR_MAX];
  while (read_line(line, sizeof line)) {
    if (strncmp(line, "stats", 5) == 0) {
      pthread_mutex_lock(&obs.mu);
      int64_t searched = lg.search_ns;
      pthread_mutex_unlock(&obs.mu);
      printf("stats %ld %ld %" PRId64 " %" PRId64 "\n", proc_kib("VmRSS"), proc_kib("VmHWM"), cpu_ns(), searched);
      fflush(stdout);
      continue;
    }
    bool put = strncmp(line, "put ", 4) == 0;
    if (!(put || strncmp(line, "del ", 4) == 0) || sscanf(line + 4, "%47s", addr) != 1) {
      fprintf(stderr, "gn_bench: bad line %s", line);
      return 1;
    }
    pthread_mutex_lock(&obs.mu);
    snprintf(lg.addr, sizeof lg.addr, "%s", addr);
    lg.put = put;
    lg.seen = false;
    lg.armed = true;
    pthread_mutex_unlock(&obs.mu);
    printf("armed\n");
    fflush(stdout);
    if (!wait_flag(&lg.seen, WAIT_S)) {
      fprintf(stderr, "gn_bench: %s not seen in %d s\n", line, WAIT_S);
      return 1;
    }
    printf("seen %" PRId64 "\n", lg.t_seen);
    fflush(stdout);
  }
  gn_resolver_free(r);
  return 0;
}

/* ---- many, prefixes: footprint ------------------------------------------------------------ */

static struct {
  long delivered;
} many;

static void on_many(void *user_data, const gn_update *u) {
  (void)u;
  bool *seen = user_data;
  pthread_mutex_lock(&obs.mu);
  if (!*seen) {
    *seen = true;
    many.delivered++;
    pthread_cond_broadcast(&obs.cv);
  }
  pthread_mutex_unlock(&obs.mu);
}

static bool wait_delivered(long n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += WAIT_S;
  pthread_mutex_lock(&obs.mu);
  int rc = 0;
  while (many.delivered < n && rc == 0) rc = pthread_cond_timedwait(&obs.cv, &obs.mu, &deadline);
  bool ok = many.delivered >= n;
  pthread_mutex_unlock(&obs.mu);
  return ok;
}

/* The service resolver k resolves: `service` itself, or with `distinct` its own one under it. */
static const char *service_of(const char *service, bool distinct, int k, char *buf, size_t n) {
  if (!distinct) return service;
  snprintf(buf, n, "%s/s%05d", service, k);
  return buf;
}

static int cmd_many(const char *service, int n, bool distinct) {
  long rss0, th0, rss1, th1, rssn, thn;
  char name[512];
  proc_status(&rss0, &th0);
  bool *seen = calloc((size_t)n, sizeof *seen);
  gn_resolver **rs = calloc((size_t)n, sizeof *rs);
  if (!seen || !rs) return 1;
  rs[0] = start(service_of(service, distinct, 0, name, sizeof name), on_many, &seen[0]);
  if (!wait_delivered(1)) return 1;
  proc_status(&rss1, &th1);
  for (int i = 1; i < n; i++) rs[i] = start(service_of(service, distinct, i, name, sizeof name), on_many, &seen[i]);
  if (!wait_delivered(n)) {
    fprintf(stderr, "gn_bench: only %ld of %d resolvers had a first list\n", many.delivered, n);
    return 1;
  }
  proc_status(&rssn, &thn);
  char *stats = stats_json();
  printf("{\"rss_kib_before\": %ld, \"threads_before\": %ld, \"rss_kib_one\": %ld, \"threads_one\": %ld, "
         "\"rss_kib_all\": %ld, \"threads_all\": %ld, \"stats\": %s}\n",
         rss0, th0, rss1, th1, rssn, thn, stats);
  fflush(stdout);
  gn_string_free(stats);
  drain_stdin();
  for (int i = 0; i < n; i++) gn_resolver_free(rs[i]);
  free(rs);
  free(seen);
  return 0;
}

/* ---- registrations ------------------------------------------------------------------------ */

static gn_registration *reg_start(const char *service, const char *addr, uint32_t ttl_ms) {
  gn_registration_options *o = gn_registration_options_new();
  gn_error *err = NULL;
  if (gn_registration_options_set_ttl_ms(o, ttl_ms, &err) != GN_STATUS_OK) die("set_ttl_ms", err);
  gn_registration *reg = NULL;
  if (gn_registration_start(service, addr, o, &reg, &err) != GN_STATUS_OK) die("gn_registration_start", err);
  gn_registration_options_free(o);
  return reg;
}

static int cmd_register(const char *service, const char *addr, uint32_t ttl_ms) {
  gn_registration *reg = reg_start(service, addr, ttl_ms);
  gn_error *err = NULL;
  if (gn_registration_wait(reg, WAIT_S * 1000, &err) != GN_STATUS_OK) die("gn_registration_wait", err);
  printf("registered\n");
  fflush(stdout);
  char line[256];
  if (read_line(line, sizeof line) && strncmp(line, "close", 5) == 0) {
    int64_t t0 = now_ns();
    if (gn_registration_close(reg, 5000, &err) != GN_STATUS_OK) die("gn_registration_close", err);
    int64_t t1 = now_ns();
    printf("closed %" PRId64 " %" PRId64 "\n", t0, t1);
    fflush(stdout);
  }
  gn_registration_free(reg);
  return 0;
}

static int cmd_registrations(const char *service, int n, uint32_t ttl_ms) {
  gn_registration **regs = calloc((size_t)n, sizeof *regs);
  if (!regs) return 1;
  int64_t t0 = now_ns();
  char addr[ADDR_MAX];
  for (int i = 0; i < n; i++) {
    addr_of(i, addr, sizeof addr);
    regs[i] = reg_start(service, addr, ttl_ms);
  }
  /* One deadline for all: the last registration may wait behind the other 9,999. */
  int registered = 0;
  for (int i = 0; i < n; i++) {
    int64_t left_ms = CONVERGE_S * 1000 - (now_ns() - t0) / 1000000;
    gn_error *err = NULL;
    if (gn_registration_wait(regs[i], left_ms > 0 ? left_ms : 0, &err) == GN_STATUS_OK) registered++;
    gn_error_free(err);
  }
  int64_t t1 = now_ns();
  char *stats = stats_json();
  if (registered == n)
    printf("registered %" PRId64 " %s\n", t1 - t0, stats);
  else
    printf("partial %d %" PRId64 " %s\n", registered, t1 - t0, stats);
  fflush(stdout);
  gn_string_free(stats);
  char line[256];
  while (read_line(line, sizeof line)) {
    long rss, th;
    proc_status(&rss, &th);
    stats = stats_json();
    printf("stats %ld %ld %s\n", rss, th, stats);
    fflush(stdout);
    gn_string_free(stats);
  }
  /* The keys go with their lease (TTL); closing 10,000 one by one would only time etcd's deletes. */
  free(regs);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "observe") == 0) return cmd_observe(argv[2], false);
  if (argc >= 3 && strcmp(argv[1], "watch") == 0) return cmd_observe(argv[2], true);
  if (argc >= 6 && strcmp(argv[1], "scale") == 0)
    return cmd_scale(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
  if (argc >= 4 && strcmp(argv[1], "large") == 0) return cmd_large(argv[2], atoi(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "many") == 0) return cmd_many(argv[2], atoi(argv[3]), false);
  if (argc >= 4 && strcmp(argv[1], "prefixes") == 0) return cmd_many(argv[2], atoi(argv[3]), true);
  if (argc >= 5 && strcmp(argv[1], "register") == 0) return cmd_register(argv[2], argv[3], (uint32_t)atoi(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "registrations") == 0)
    return cmd_registrations(argv[2], atoi(argv[3]), (uint32_t)atoi(argv[4]));
  fprintf(stderr, "usage: gn_bench observe|watch|scale|large|many|prefixes|register|registrations ... (see the source)\n");
  return 2;
}
