/* The dns: resolver through the C API against dnsmasq, a DNS server libgnaming did not write: A and
 * AAAA, SRV backends with weights, grpclb balancers, TXT service config split over two strings,
 * NXDOMAIN, a server named in the target, push and pull delivery, and the DNS option setters' errors.
 * The test starts its own dnsmasq on a free loopback port (nothing forwarded) and stops it at the end.
 * GNAMING_DNSMASQ names the dnsmasq binary when it is not /usr/sbin/dnsmasq or on PATH. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

extern char **environ;

/* Records served, in dnsmasq's configuration syntax. The TXT record is two strings that only make
 * valid JSON when joined, as gRPC joins them. */
static const char *const ZONE =
    "local=/gn.test/\n"
    "host-record=svc.gn.test,127.0.0.2,fd00::1\n"
    "host-record=svc.gn.test,127.0.0.1\n"
    "host-record=b1.gn.test,127.0.1.1\n"
    "host-record=b2.gn.test,127.0.1.2\n"
    "host-record=lb.gn.test,127.0.9.9\n"
    "srv-host=_grpc._tcp.svc.gn.test,b1.gn.test,7001,10,5\n"
    "srv-host=_grpc._tcp.svc.gn.test,b2.gn.test,7002,10,20\n"
    "srv-host=_grpclb._tcp.svc.gn.test,lb.gn.test,1234,0,0\n"
    "txt-record=_grpc_config.svc.gn.test,"
    "\"grpc_config=[{\\\"clientLanguage\\\":[\\\"go\\\"],\\\"serviceConfig\\\":{}},\","
    "\"{\\\"clientLanguage\\\":[\\\"c\\\"],\\\"serviceConfig\\\":{\\\"loadBalancingConfig\\\":[{\\\"round_robin\\\":{}}]}}]\"\n";

static const char *const RR_CONFIG = "{\"loadBalancingConfig\":[{\"round_robin\":{}}]}";

static pid_t dnsmasq_pid = -1;
static int dns_port;
static char nameserver[32];
static char conf_dir[256];
static char conf_path[300];

static const char *dnsmasq_binary(void) {
  const char *env = getenv("GNAMING_DNSMASQ");
  if (env && *env) return env;
  return access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
}

/* A loopback UDP port that was free a moment ago; dnsmasq reports a clash by exiting. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static bool tcp_accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

static bool write_conf(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(conf_dir, sizeof conf_dir, "%s/gn-dnsmasq-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(conf_dir)) return false;
  snprintf(conf_path, sizeof conf_path, "%s/zone.conf", conf_dir);
  FILE *f = fopen(conf_path, "w");
  if (!f) return false;
  bool ok = fputs(ZONE, f) >= 0;
  return fclose(f) == 0 && ok;
}

static void stop_dnsmasq(void) {
  if (dnsmasq_pid > 0) {
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
    dnsmasq_pid = -1;
  }
}

/* Starts dnsmasq in the foreground on a free port; a few ports are tried in case one is taken
 * between the probe and dnsmasq's bind. Returns whether it answers on TCP within 5 s. */
static bool start_dnsmasq(void) {
  if (!write_conf()) {
    fprintf(stderr, "cannot write the dnsmasq configuration under %s: %s\n", conf_dir, strerror(errno));
    return false;
  }
  struct passwd *me = getpwuid(getuid());
  char conf_arg[320], port_arg[32], user_arg[64];
  snprintf(conf_arg, sizeof conf_arg, "--conf-file=%s", conf_path);
  snprintf(user_arg, sizeof user_arg, "--user=%s", me ? me->pw_name : "nobody");
  const char *binary = dnsmasq_binary();
  for (int attempt = 0; attempt < 5; attempt++) {
    dns_port = free_port();
    snprintf(port_arg, sizeof port_arg, "--port=%d", dns_port);
    char *argv[] = {(char *)binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
                    "--listen-address=127.0.0.1", "--pid-file=", "--log-facility=/dev/null", conf_arg, port_arg,
                    user_arg, NULL};
    int rc = posix_spawnp(&dnsmasq_pid, binary, NULL, NULL, argv, environ);
    if (rc != 0) {
      fprintf(stderr, "cannot start %s: %s (install the dnsmasq-base package)\n", binary, strerror(rc));
      dnsmasq_pid = -1;
      return false;
    }
    double deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
      if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
        dnsmasq_pid = -1;
        break;
      }
      if (tcp_accepts(dns_port)) {
        snprintf(nameserver, sizeof nameserver, "127.0.0.1:%d", dns_port);
        return true;
      }
      sleep_us(20000);
    }
    stop_dnsmasq();
  }
  fprintf(stderr, "dnsmasq did not come up on a loopback port after 5 tries\n");
  return false;
}

/* Options every test starts from: the test's dnsmasq, language "c", short intervals. */
static gn_resolver_options *dns_options(bool with_nameserver) {
  gn_resolver_options *o = gn_resolver_options_new();
  CHECK(gn_resolver_options_set_client_language(o, "c", NULL) == GN_STATUS_OK, "language");
  if (with_nameserver) CHECK(gn_resolver_options_set_dns_nameserver(o, nameserver, NULL) == GN_STATUS_OK, "nameserver");
  CHECK(gn_resolver_options_set_dns_query_timeout_ms(o, 1000, 2, NULL) == GN_STATUS_OK, "query timeout");
  CHECK(gn_resolver_options_set_dns_backoff(o, 100, 1.6, 1000, 0.2, NULL) == GN_STATUS_OK, "backoff");
  return o;
}

/* "addr/weight/kind" items joined by spaces, for comparing whole lists in one message. */
static void describe(const gn_update *u, char *out, size_t size) {
  out[0] = 0;
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    const gn_address *a = gn_update_address(u, i);
    char item[96];
    snprintf(item, sizeof item, "%s%s/%u%s", i ? " " : "", a->addr, a->weight,
             a->kind == GN_ADDRESS_KIND_BALANCER ? "/lb" : "");
    strncat(out, item, size - strlen(out) - 1);
  }
}

/* Starts a pull resolver and returns its first update (NULL on failure, reported). */
static gn_update *first_update(const char *target, gn_resolver_options *o, gn_resolver **resolver) {
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_error *err = NULL;
  *resolver = NULL;
  if (gn_resolver_start(target, o, pull, resolver, &err) != GN_STATUS_OK) {
    CHECK(false, "start %s: %s", target, gn_error_message(err));
    gn_error_free(err);
    return NULL;
  }
  gn_update *u = NULL;
  gn_status s = gn_resolver_next(*resolver, 5000, &u, &err);
  CHECK(s == GN_STATUS_OK, "next for %s: %s", target, gn_error_message(err));
  gn_error_free(err);
  return s == GN_STATUS_OK ? u : NULL;
}

static void expect_list(const char *target, gn_resolver_options *o, const char *expected, const char *config) {
  gn_resolver *r;
  gn_update *u = first_update(target, o, &r);
  if (u) {
    char got[512];
    describe(u, got, sizeof got);
    CHECK(gn_update_state(u) == GN_RESOLVER_STATE_OK, "%s: state %d (%s)", target, gn_update_state(u),
          gn_update_error_message(u) ? gn_update_error_message(u) : "");
    CHECK(strcmp(got, expected) == 0, "%s:\n  expected [%s]\n  observed [%s]", target, expected, got);
    const char *sc = gn_update_service_config(u);
    if (config)
      CHECK(sc && strcmp(sc, config) == 0, "%s: expected config %s, observed %s", target, config, sc ? sc : "NULL");
    else
      CHECK(sc == NULL, "%s: expected no config, observed %s", target, sc);
  }
  gn_update_free(u);
  gn_resolver_free(r);
}

static void a_and_aaaa_records_come_ordered_with_the_service_config_for_c(void) {
  gn_resolver_options *o = dns_options(true);
  expect_list("dns:///svc.gn.test:50051", o, "[fd00::1]:50051/1 127.0.0.1:50051/1 127.0.0.2:50051/1", RR_CONFIG);
  CHECK(gn_resolver_options_set_dns_service_config(o, false, NULL) == GN_STATUS_OK, "service config off");
  expect_list("dns:///svc.gn.test", o, "[fd00::1]:443/1 127.0.0.1:443/1 127.0.0.2:443/1", NULL);
  gn_resolver_options_free(o);
}

static void srv_backend_mode_gives_ports_and_weights(void) {
  gn_resolver_options *o = dns_options(true);
  CHECK(gn_resolver_options_set_dns_srv_backends(o, true, NULL, NULL) == GN_STATUS_OK, "srv backends");
  gn_resolver *r;
  gn_update *u = first_update("dns:///svc.gn.test", o, &r);
  if (u) {
    char got[512];
    describe(u, got, sizeof got);
    const char *expected = "127.0.1.2:7002/20 127.0.1.1:7001/5";
    CHECK(strcmp(got, expected) == 0, "expected [%s]\n  observed [%s]", expected, got);
    const gn_address *a = gn_update_address(u, 0);
    const char *meta = "{\"priority\":10,\"target\":\"b2.gn.test.\"}";
    CHECK(a && a->metadata_json && strcmp(a->metadata_json, meta) == 0, "metadata %s",
          a && a->metadata_json ? a->metadata_json : "NULL");
  }
  gn_update_free(u);
  gn_resolver_free(r);
  gn_resolver_options_free(o);
}

static void grpclb_mode_adds_the_balancer_after_the_backends(void) {
  gn_resolver_options *o = dns_options(true);
  CHECK(gn_resolver_options_set_dns_grpclb(o, true, NULL) == GN_STATUS_OK, "grpclb");
  expect_list("dns:///svc.gn.test:1", o, "[fd00::1]:1/1 127.0.0.1:1/1 127.0.0.2:1/1 127.0.9.9:1234/1/lb", RR_CONFIG);
  gn_resolver_options_free(o);
}

static void an_unknown_name_reports_nxdomain_with_no_addresses(void) {
  gn_resolver_options *o = dns_options(true);
  gn_resolver *r;
  gn_update *u = first_update("dns:///missing.gn.test:1", o, &r);
  if (u) {
    const char *m = gn_update_error_message(u);
    CHECK(gn_update_state(u) == GN_RESOLVER_STATE_TRANSIENT_ERROR, "state %d", gn_update_state(u));
    CHECK(gn_update_address_count(u) == 0, "%zu addresses", gn_update_address_count(u));
    CHECK(m && strstr(m, "NXDOMAIN") && strstr(m, "missing.gn.test"), "message: %s", m ? m : "NULL");
  }
  gn_update_free(u);
  gn_resolver_free(r);
  gn_resolver_options_free(o);
}

/* With resolve_host_names the library looks the names in a list up through the configured server:
 * each copy of a name becomes its addresses, with parsed fields; a missing name is an error naming it. */
static void names_in_a_pass_list_are_resolved_by_the_library_when_asked(void) {
  gn_resolver_options *o = dns_options(true);
  CHECK(gn_resolver_options_set_resolve_host_names(o, true, NULL) == GN_STATUS_OK, "resolve host names");
  const char *target = "pass:///svc.gn.test:7#2,127.0.0.9:8";
  gn_resolver *r;
  gn_update *u = first_update(target, o, &r);
  if (u) {
    char got[512];
    describe(u, got, sizeof got);
    const char *expected = "[fd00::1]:7/1 127.0.0.1:7/1 127.0.0.2:7/1 [fd00::1]:7/1 127.0.0.1:7/1 127.0.0.2:7/1 "
                           "127.0.0.9:8/1";
    CHECK(gn_update_state(u) == GN_RESOLVER_STATE_OK, "%s: state %d (%s)", target, gn_update_state(u),
          gn_update_error_message(u) ? gn_update_error_message(u) : "");
    CHECK(strcmp(got, expected) == 0, "%s:\n  expected [%s]\n  observed [%s]", target, expected, got);
    for (size_t i = 0; i < gn_update_address_count(u); i++) {
      const gn_address *a = gn_update_address(u, i);
      CHECK(a->family != GN_ADDRESS_FAMILY_NAME, "%s is still a name", a->addr);
      CHECK(a->copy_index == (i >= 3 && i < 6 ? 1u : 0u), "%s (entry %zu): copy %u", a->addr, i, a->copy_index);
    }
    const gn_address *v6 = gn_update_address(u, 0);
    CHECK(v6 && v6->family == GN_ADDRESS_FAMILY_IPV6 && v6->ip[0] == 0xfd && v6->ip[15] == 1 && v6->port == 7,
          "first entry's parsed fields");
  }
  gn_update_free(u);
  gn_resolver_free(r);

  u = first_update("pass:///missing.gn.test:1,127.0.0.9:8", o, &r);
  if (u) {
    const char *m = gn_update_error_message(u);
    CHECK(gn_update_state(u) == GN_RESOLVER_STATE_TRANSIENT_ERROR, "state %d", gn_update_state(u));
    CHECK(gn_update_address_count(u) == 0, "%zu addresses", gn_update_address_count(u));
    CHECK(m && strstr(m, "missing.gn.test"), "message: %s", m ? m : "NULL");
  }
  gn_update_free(u);
  gn_resolver_free(r);
  gn_resolver_options_free(o);
}

/* Push delivery: the first update reaches the callback, and drop runs once at free. */
typedef struct seen {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  char addrs[512];
  int calls;
  atomic_int drops;
} seen;

static void seen_call(void *user_data, const gn_update *u) {
  seen *s = user_data;
  pthread_mutex_lock(&s->lock);
  if (s->calls++ == 0) describe(u, s->addrs, sizeof s->addrs);
  pthread_cond_broadcast(&s->changed);
  pthread_mutex_unlock(&s->lock);
}

static void seen_drop(void *user_data) { atomic_fetch_add(&((seen *)user_data)->drops, 1); }

static void the_server_in_the_target_is_asked_and_updates_reach_the_callback(void) {
  seen s = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
  gn_resolver_options *o = dns_options(false);
  char target[96];
  snprintf(target, sizeof target, "dns://%s/svc.gn.test:9", nameserver);
  gn_update_callback cb = {&s, seen_call, seen_drop};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_status st = gn_resolver_start(target, o, cb, &r, &err);
  CHECK(st == GN_STATUS_OK, "start %s: %s", target, gn_error_message(err));
  gn_error_free(err);
  pthread_mutex_lock(&s.lock);
  double deadline = now_ms() + 5000;
  while (s.calls == 0 && now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&s.changed, &s.lock, &ts);
  }
  pthread_mutex_unlock(&s.lock);
  const char *expected = "[fd00::1]:9/1 127.0.0.1:9/1 127.0.0.2:9/1";
  CHECK(strcmp(s.addrs, expected) == 0, "expected [%s]\n  observed [%s]", expected, s.addrs);
  gn_resolver_free(r);
  CHECK(atomic_load(&s.drops) == 1, "drop ran %d times", atomic_load(&s.drops));
  gn_resolver_options_free(o);
}

static void expect_invalid(gn_status s, gn_error *err, const char *needle, const char *what) {
  CHECK(s == GN_STATUS_INVALID_ARGUMENT, "%s: status %s", what, gn_status_name(s));
  const char *m = gn_error_message(err);
  CHECK(err && strstr(m, needle), "%s: expected \"%s\" in \"%s\"", what, needle, m);
  gn_error_free(err);
}

static void bad_dns_options_are_refused_with_a_message(void) {
  gn_resolver_options *o = gn_resolver_options_new();
  gn_error *err = NULL;
  gn_status s = gn_resolver_options_set_dns_nameserver(o, "ns.example.com", &err);
  expect_invalid(s, err, "not an IP address", "name");
  err = NULL;
  s = gn_resolver_options_set_dns_refresh_range_ms(o, 5000, 1000, &err);
  expect_invalid(s, err, "refresh range", "range");
  err = NULL;
  s = gn_resolver_options_set_dns_backoff(o, 1000, 0.5, 2000, 0.2, &err);
  expect_invalid(s, err, "backoff_multiplier", "multiplier");
  err = NULL;
  s = gn_resolver_options_set_dns_srv_backends(o, true, "_grpc tcp", &err);
  expect_invalid(s, err, "SRV label", "label");
  err = NULL;
  s = gn_resolver_options_set_dns_query_timeout_ms(o, 1000, 0, &err);
  expect_invalid(s, err, "query_attempts", "attempts");
  err = NULL;
  s = gn_resolver_options_set_dns_grpclb(NULL, true, &err);
  expect_invalid(s, err, "options is NULL", "NULL options");
  CHECK(gn_resolver_options_set_dns_nameserver(o, NULL, NULL) == GN_STATUS_OK, "NULL resets the nameserver");
  CHECK(gn_resolver_options_set_dns_srv_backends(o, false, NULL, NULL) == GN_STATUS_OK, "srv off");
  CHECK(gn_resolver_options_set_dns_client_hostname(o, NULL, NULL) == GN_STATUS_OK, "hostname reset");
  CHECK(gn_resolver_options_set_dns_min_resolve_interval_ms(o, 500, NULL) == GN_STATUS_OK, "interval");
  CHECK(gn_resolver_options_set_dns_ttl_refresh(o, false, NULL) == GN_STATUS_OK, "ttl refresh");
  gn_resolver_options_free(o);
}

int main(void) {
  RUN(bad_dns_options_are_refused_with_a_message);
  bool up = start_dnsmasq();
  CHECK(up, "dnsmasq must run for the end-to-end checks");
  if (up) {
    RUN(a_and_aaaa_records_come_ordered_with_the_service_config_for_c);
    RUN(srv_backend_mode_gives_ports_and_weights);
    RUN(grpclb_mode_adds_the_balancer_after_the_backends);
    RUN(an_unknown_name_reports_nxdomain_with_no_addresses);
    RUN(names_in_a_pass_list_are_resolved_by_the_library_when_asked);
    RUN(the_server_in_the_target_is_asked_and_updates_reach_the_callback);
  }
  stop_dnsmasq();
  if (conf_path[0]) unlink(conf_path);
  if (conf_dir[0]) rmdir(conf_dir);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
