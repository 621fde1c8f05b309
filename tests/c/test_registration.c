/* The registration C API against a real etcd cluster (GNAMING_TEST_ETCD_ENDPOINTS, set by
 * tests/harness/etcd_cluster.py run): NULL arguments and bad options, start → wait → resolved with
 * metadata and weight, close from any thread (another thread, 8 at once, inside a resolver callback),
 * close then free, free without close, state transitions, an unreachable cluster, the stats JSON, the
 * Kratos and go-micro formats resolved under their key prefixes, and
 * warm-up and drain (the key's appearance delayed, removed before a drain returns, nothing written by a
 * close during the warm-up, no drain inside a callback).
 * Built with -Wall -Wextra -Werror and run under ASan+UBSan and valgrind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"
#include "gnaming.h"

#define WAIT_MS 20000

/* The addresses of an update as "a,b" in key order, with " w=N" after weighted ones. */
static void describe(const gn_update *u, char *out, size_t size) {
  out[0] = 0;
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    const gn_address *a = gn_update_address(u, i);
    char item[160];
    if (a->weight != 1) {
      snprintf(item, sizeof item, "%s%s w=%u", i ? "," : "", a->addr, a->weight);
    } else {
      snprintf(item, sizeof item, "%s%s", i ? "," : "", a->addr);
    }
    strncat(out, item, size - strlen(out) - 1);
  }
}

/* Pulls updates until an OK one lists exactly `expected`; `observed` holds the last list seen. */
static bool wait_list(gn_resolver *r, const char *expected, char *observed, size_t size) {
  double end = now_ms() + WAIT_MS;
  snprintf(observed, size, "(no update)");
  while (now_ms() < end) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, 200, &u, NULL) != GN_STATUS_OK) continue;
    describe(u, observed, size);
    bool ok = gn_update_state(u) == GN_RESOLVER_STATE_OK;
    gn_update_free(u);
    if (ok && strcmp(observed, expected) == 0) return true;
  }
  return false;
}

static gn_resolver *pull_resolver(const char *target) {
  gn_update_callback cb = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_status s = gn_resolver_start(target, NULL, cb, &r, &err);
  CHECK(s == GN_STATUS_OK, "resolver %s: %s", target, gn_error_message(err));
  gn_error_free(err);
  return r;
}

/* Registers `address` with a 2 s TTL, `metadata` (or none) and a warm-up of `warmup_ms` (0: none). */
static gn_registration *start_warming(const char *service, const char *address, const char *metadata,
                                      uint32_t warmup_ms) {
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, 2000, NULL);
  if (metadata) gn_registration_options_set_metadata_json(o, metadata, NULL);
  CHECK(gn_registration_options_set_warmup_ms(o, warmup_ms, NULL) == GN_STATUS_OK, "warm-up %u ms", warmup_ms);
  gn_registration *reg = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start(service, address, o, &reg, &err);
  CHECK(s == GN_STATUS_OK, "start %s %s: %s", service, address, gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  return reg;
}

static gn_registration *start(const char *service, const char *address, const char *metadata) {
  return start_warming(service, address, metadata, 0);
}

static void wait_registered(gn_registration *reg) {
  gn_error *err = NULL;
  gn_status s = gn_registration_wait(reg, WAIT_MS, &err);
  CHECK(s == GN_STATUS_OK, "wait: %s %s", gn_status_name(s), gn_error_message(err));
  gn_error_free(err);
}

/* Calls `call` and checks its status and that the error names `needle`. */
#define CHECK_ERR(call, status, needle)                                                         \
  do {                                                                                          \
    gn_error *e_ = NULL;                                                                        \
    gn_status s_ = (call);                                                                      \
    CHECK(s_ == (status), "%s: expected %s, observed %s (%s)", #call, gn_status_name(status), \
          gn_status_name(s_), gn_error_message(e_));                                            \
    CHECK(e_ != NULL && strstr(gn_error_message(e_), (needle)) != NULL,                         \
          "%s: error should name '%s': %s", #call, (needle), e_ ? gn_error_message(e_) : "(none)"); \
    gn_error_free(e_);                                                                          \
  } while (0)

static void configure_clusters(void) {
  const char *endpoints = getenv("GNAMING_TEST_ETCD_ENDPOINTS");
  CHECK(endpoints != NULL && *endpoints, "GNAMING_TEST_ETCD_ENDPOINTS is not set: run under tests/harness/etcd_cluster.py run");
  if (!endpoints) return;
  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(gn_cluster_options_set_endpoints(o, endpoints, NULL) == GN_STATUS_OK, "endpoints %s", endpoints);
  CHECK(gn_cluster_options_set_dial_timeout_ms(o, 1000, NULL) == GN_STATUS_OK, "dial timeout");
  CHECK(gn_cluster_options_set_request_timeout_ms(o, 2000, NULL) == GN_STATUS_OK, "request timeout");
  CHECK(gn_cluster_register("c", o, NULL) == GN_STATUS_OK, "register c");
  CHECK(gn_cluster_options_set_endpoints(o, "127.0.0.1:1", NULL) == GN_STATUS_OK, "dead endpoint");
  gn_cluster_options_set_dial_timeout_ms(o, 100, NULL);
  gn_cluster_options_set_request_timeout_ms(o, 200, NULL);
  CHECK(gn_cluster_register("dead", o, NULL) == GN_STATUS_OK, "register dead");
  gn_cluster_options_free(o);
}

static void null_arguments_and_bad_options_fail_clearly_and_frees_of_null_are_no_ops(void) {
  gn_registration_free(NULL);
  gn_registration_options_free(NULL);
  gn_cluster_options_free(NULL);
  gn_string_free(NULL);
  CHECK(gn_registration_close(NULL, 0, NULL) == GN_STATUS_OK, "close(NULL) is a no-op");
  CHECK(gn_registration_get_state(NULL) == GN_REGISTRATION_STATE_CLOSED, "state of NULL");
  CHECK_ERR(gn_registration_wait(NULL, 0, &e_), GN_STATUS_INVALID_ARGUMENT, "registration is NULL");
  CHECK_ERR(gn_registration_options_set_cluster(NULL, "c", &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_registration_options_set_ttl_ms(NULL, 2000, &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_registration_options_set_metadata_json(NULL, "{}", &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_registration_options_set_raw_value(NULL, true, &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_cluster_options_set_endpoints(NULL, "a:1", &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_cluster_options_set_auth(NULL, "u", "p", &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_cluster_register("x", NULL, &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
  CHECK_ERR(gn_stats_json(NULL, &e_), GN_STATUS_INVALID_ARGUMENT, "json_out is NULL");

  gn_cluster_options *co = gn_cluster_options_new();
  CHECK_ERR(gn_cluster_options_set_endpoints(co, NULL, &e_), GN_STATUS_INVALID_ARGUMENT, "endpoints_csv is NULL");
  CHECK_ERR(gn_cluster_options_set_endpoints(co, "a:1,,b:2", &e_), GN_STATUS_INVALID_ARGUMENT, "not host:port");
  CHECK_ERR(gn_cluster_options_set_tls(co, NULL, NULL, NULL, &e_), GN_STATUS_INVALID_ARGUMENT, "ca_pem_path is NULL");
  CHECK_ERR(gn_cluster_options_set_tls(co, "/nonexistent/ca.pem", NULL, NULL, &e_), GN_STATUS_INVALID_ARGUMENT,
            "/nonexistent/ca.pem");
  CHECK_ERR(gn_cluster_options_set_auth(co, NULL, "p", &e_), GN_STATUS_INVALID_ARGUMENT, "user is NULL");
  CHECK_ERR(gn_cluster_options_set_auth(co, "u", NULL, &e_), GN_STATUS_INVALID_ARGUMENT, "password is NULL");
  CHECK_ERR(gn_cluster_options_set_dial_timeout_ms(co, 0, &e_), GN_STATUS_INVALID_ARGUMENT, "at least 1 ms");
  CHECK_ERR(gn_cluster_register(NULL, co, &e_), GN_STATUS_INVALID_ARGUMENT, "name is NULL");
  CHECK_ERR(gn_cluster_register("a/b", co, &e_), GN_STATUS_INVALID_ARGUMENT, "must not contain");
  gn_cluster_options_free(co);

  gn_registration_options *o = gn_registration_options_new();
  CHECK(o != NULL, "options_new");
  CHECK_ERR(gn_registration_options_set_metadata_json(o, "{not json", &e_), GN_STATUS_INVALID_ARGUMENT, "not valid JSON");
  CHECK_ERR(gn_registration_options_set_ttl_ms(o, 999, &e_), GN_STATUS_INVALID_ARGUMENT, "below the minimum");
  CHECK_ERR(gn_registration_options_set_cluster(o, NULL, &e_), GN_STATUS_INVALID_ARGUMENT, "cluster is NULL");
  CHECK(gn_registration_options_set_metadata_json(o, NULL, NULL) == GN_STATUS_OK, "NULL metadata removes it");

  gn_registration *sentinel = (gn_registration *)&sentinel;
  gn_registration *reg = sentinel;
  CHECK_ERR(gn_registration_start(NULL, "127.0.0.1:1", o, &reg, &e_), GN_STATUS_INVALID_ARGUMENT, "service is NULL");
  CHECK_ERR(gn_registration_start("svc", NULL, o, &reg, &e_), GN_STATUS_INVALID_ARGUMENT, "address is NULL");
  CHECK_ERR(gn_registration_start("svc", "127.0.0.1:1", o, NULL, &e_), GN_STATUS_INVALID_ARGUMENT,
            "registration_out is NULL");
  CHECK_ERR(gn_registration_start("", "127.0.0.1:1", o, &reg, &e_), GN_STATUS_INVALID_ARGUMENT, "service");
  CHECK_ERR(gn_registration_start("svc/", "127.0.0.1:1", o, &reg, &e_), GN_STATUS_INVALID_ARGUMENT, "service");
  CHECK_ERR(gn_registration_start("svc", "no port here", o, &reg, &e_), GN_STATUS_INVALID_ARGUMENT, "no port here");
  CHECK_ERR(gn_registration_start("svc", "", o, &reg, &e_), GN_STATUS_INVALID_ARGUMENT, "address");
  gn_registration_options_set_cluster(o, "never-configured", NULL);
  CHECK_ERR(gn_registration_start("svc", "127.0.0.1:1", o, &reg, &e_), GN_STATUS_NOT_FOUND, "never-configured");
  CHECK(reg == sentinel, "registration_out is untouched on error");
  gn_registration_options_free(o);
}

static void a_registration_is_resolved_with_metadata_and_weight_and_gone_after_close(void) {
  gn_registration *reg = start("creg-basic", "127.0.0.1:7101", "{\"weight\":5,\"zone\":\"z1\"}");
  if (!reg) return;
  gn_registration_state first = gn_registration_get_state(reg);
  CHECK(first == GN_REGISTRATION_STATE_REGISTERING || first == GN_REGISTRATION_STATE_REGISTERED, "state %d", first);
  wait_registered(reg);
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_REGISTERED, "state %d", gn_registration_get_state(reg));

  gn_resolver *r = pull_resolver("etcd://c/creg-basic");
  char observed[512];
  CHECK(wait_list(r, "127.0.0.1:7101 w=5", observed, sizeof observed), "expected [127.0.0.1:7101 w=5], observed [%s]",
        observed);
  /* A second resolver on the same target gets the list at once; its metadata arrives untouched. */
  gn_resolver_free(r);
  r = pull_resolver("etcd://c/creg-basic");
  gn_update *u = NULL;
  CHECK(gn_resolver_next(r, WAIT_MS, &u, NULL) == GN_STATUS_OK, "a new resolver gets the cached list");
  if (u && gn_update_address_count(u) == 1) {
    const char *meta = gn_update_address(u, 0)->metadata_json;
    CHECK(meta && strstr(meta, "\"zone\":\"z1\"") && strstr(meta, "\"weight\":5"), "metadata %s", meta ? meta : "NULL");
  } else {
    CHECK(false, "expected one address");
  }
  gn_update_free(u);

  gn_error *err = NULL;
  gn_status s = gn_registration_close(reg, 5000, &err);
  CHECK(s == GN_STATUS_OK, "close: %s %s", gn_status_name(s), gn_error_message(err));
  gn_error_free(err);
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_CLOSED, "state after close");
  CHECK(gn_registration_wait(reg, 0, NULL) == GN_STATUS_CLOSED, "wait after close");
  CHECK(gn_registration_close(reg, 5000, NULL) == GN_STATUS_OK, "a second close");
  CHECK(wait_list(r, "", observed, sizeof observed), "expected [] after close, observed [%s]", observed);
  gn_registration_free(reg);
  gn_resolver_free(r);
}

/* A registration in `format` ("kratos", "go-micro") resolved by `target`, the framework's key prefix. */
static void a_framework_format_registration_resolves_under_its_prefix(const char *format, const char *target) {
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, 2000, NULL);
  CHECK(gn_registration_options_set_metadata_json(o, "{\"version\":\"v2\",\"weight\":3}", NULL) == GN_STATUS_OK,
        "metadata");
  CHECK(gn_registration_options_set_format(o, format, NULL) == GN_STATUS_OK, "format %s", format);
  gn_registration *reg = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start("creg-fw", "127.0.0.1:7120", o, &reg, &err);
  CHECK(s == GN_STATUS_OK, "start in %s: %s", format, gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  if (!reg) return;
  wait_registered(reg);
  gn_resolver *r = pull_resolver(target);
  char observed[512];
  CHECK(wait_list(r, "127.0.0.1:7120 w=3", observed, sizeof observed), "%s: expected [127.0.0.1:7120 w=3], observed [%s]",
        target, observed);
  CHECK(gn_registration_close(reg, 5000, NULL) == GN_STATUS_OK, "close");
  CHECK(wait_list(r, "", observed, sizeof observed), "%s: expected [] after close, observed [%s]", target, observed);
  gn_registration_free(reg);
  gn_resolver_free(r);
}

static void kratos_and_go_micro_registrations_resolve_under_their_prefixes(void) {
  a_framework_format_registration_resolves_under_its_prefix("kratos", "etcd://c//microservices/creg-fw");
  a_framework_format_registration_resolves_under_its_prefix("go-micro", "etcd://c//micro/registry/creg-fw");
}

/* One closing thread's registration and what its close returned. */
typedef struct {
  gn_status status;
  gn_registration *reg;
} close_arg;

static void *close_arg_thread(void *arg) {
  close_arg *a = arg;
  a->status = gn_registration_close(a->reg, 5000, NULL);
  return NULL;
}

static void close_from_threads(const char *service, const char *address, int threads, bool main_too) {
  gn_registration *reg = start(service, address, NULL);
  if (!reg) return;
  wait_registered(reg);
  char target[128], observed[256];
  snprintf(target, sizeof target, "etcd://c/%s", service);
  gn_resolver *r = pull_resolver(target);
  CHECK(wait_list(r, address, observed, sizeof observed), "expected [%s], observed [%s]", address, observed);
  close_arg args[8];
  pthread_t tids[8];
  for (int i = 0; i < threads; i++) {
    args[i].status = GN_STATUS_INTERNAL;
    args[i].reg = reg;
    pthread_create(&tids[i], NULL, close_arg_thread, &args[i]);
  }
  gn_status main_status = main_too ? gn_registration_close(reg, 5000, NULL) : GN_STATUS_OK;
  for (int i = 0; i < threads; i++) {
    pthread_join(tids[i], NULL);
    CHECK(args[i].status == GN_STATUS_OK, "thread %d close: %s", i, gn_status_name(args[i].status));
  }
  CHECK(main_status == GN_STATUS_OK, "main close: %s", gn_status_name(main_status));
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_CLOSED, "state after close");
  CHECK(wait_list(r, "", observed, sizeof observed), "expected [] after close, observed [%s]", observed);
  gn_registration_free(reg);
  gn_resolver_free(r);
}

static void a_close_from_another_thread_racing_the_main_thread_closes_once(void) {
  close_from_threads("creg-double", "127.0.0.1:7102", 1, true);
}

static void eight_threads_closing_at_once_all_succeed(void) {
  close_from_threads("creg-eight", "127.0.0.1:7103", 8, false);
}

static void free_without_close_removes_the_address(void) {
  gn_registration *reg = start("creg-free", "127.0.0.1:7104", NULL);
  if (!reg) return;
  wait_registered(reg);
  gn_resolver *r = pull_resolver("etcd://c/creg-free");
  char observed[256];
  CHECK(wait_list(r, "127.0.0.1:7104", observed, sizeof observed), "expected [127.0.0.1:7104], observed [%s]", observed);
  gn_registration_free(reg);
  CHECK(wait_list(r, "", observed, sizeof observed), "expected [] after free, observed [%s]", observed);
  gn_resolver_free(r);
}

/* A resolver callback that closes the registration once it sees the address. */
typedef struct {
  _Atomic(gn_registration *) reg;
  atomic_int close_status;  /* -1 until the callback closed */
  atomic_int empty_after_close;
  atomic_int drops;
} inside;

static void inside_call(void *user_data, const gn_update *u) {
  inside *in = user_data;
  size_t n = gn_update_address_count(u);
  if (n == 1 && atomic_load(&in->close_status) == -1) {
    gn_registration *reg = atomic_load(&in->reg);
    if (reg) atomic_store(&in->close_status, (int)gn_registration_close(reg, 5000, NULL));
  } else if (n == 0 && atomic_load(&in->close_status) != -1 && gn_update_state(u) == GN_RESOLVER_STATE_OK) {
    atomic_fetch_add(&in->empty_after_close, 1);
  }
}

static void inside_drop(void *user_data) {
  inside *in = user_data;
  atomic_fetch_add(&in->drops, 1);
}

static void closing_inside_a_resolver_callback_returns_at_once_and_removes_the_address(void) {
  static inside in;
  atomic_store(&in.close_status, -1);
  gn_registration *reg = start("creg-inside", "127.0.0.1:7105", NULL);
  if (!reg) return;
  wait_registered(reg);
  atomic_store(&in.reg, reg);
  gn_update_callback cb = {&in, inside_call, inside_drop};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("etcd://c/creg-inside", NULL, cb, &r, NULL) == GN_STATUS_OK, "resolver");
  CHECK(wait_for(&in.close_status, 0, WAIT_MS), "the callback closed the registration");
  CHECK(atomic_load(&in.close_status) == GN_STATUS_OK, "close inside the callback: %d", atomic_load(&in.close_status));
  CHECK(wait_for(&in.empty_after_close, 1, WAIT_MS), "the resolver saw the address go");
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_CLOSED, "state");
  gn_resolver_free(r);
  CHECK(atomic_load(&in.drops) == 1, "drop ran %d times", atomic_load(&in.drops));
  gn_registration_free(reg);
}

static void an_unreachable_cluster_times_out_while_registering_or_retrying(void) {
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "dead", NULL);
  gn_registration *reg = NULL;
  CHECK(gn_registration_start("creg-dead", "127.0.0.1:7106", o, &reg, NULL) == GN_STATUS_OK,
        "start never fails because etcd is unreachable");
  gn_registration_options_free(o);
  if (!reg) return;
  double t0 = now_ms();
  gn_error *err = NULL;
  gn_status s = gn_registration_wait(reg, 300, &err);
  double took = now_ms() - t0;
  CHECK(s == GN_STATUS_TIMEOUT, "wait: %s %s", gn_status_name(s), gn_error_message(err));
  CHECK(took >= 290 && took < 5000, "wait took %.0f ms for a 300 ms timeout", took);
  gn_error_free(err);
  gn_registration_state st = gn_registration_get_state(reg);
  CHECK(st == GN_REGISTRATION_STATE_REGISTERING || st == GN_REGISTRATION_STATE_RETRYING, "state %d", st);
  s = gn_registration_close(reg, 300, NULL);
  CHECK(s == GN_STATUS_TIMEOUT || s == GN_STATUS_UNAVAILABLE, "close against a dead cluster: %s", gn_status_name(s));
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_CLOSED, "state after close");
  gn_registration_free(reg);
}

static void stats_json_is_an_object_with_the_counters(void) {
  char *json = NULL;
  gn_error *err = NULL;
  CHECK(gn_stats_json(&json, &err) == GN_STATUS_OK, "stats: %s", gn_error_message(err));
  gn_error_free(err);
  if (!json) return;
  size_t n = strlen(json);
  CHECK(n > 2 && json[0] == '{' && json[n - 1] == '}', "%s", json);
  const char *keys[] = {"\"updates_delivered\":", "\"lease_grants\":", "\"lease_renewals\":", "\"registrations_active\":",
                        "\"watches_active\":", "\"reregistrations\":"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) CHECK(strstr(json, keys[i]), "%s missing in %s", keys[i], json);
  CHECK(strstr(json, "\"updates_delivered\":0") == NULL, "updates were delivered: %s", json);
  gn_string_free(json);
}

/* Warm-up and drain. */

static void warm_up_and_drain_arguments_are_checked(void) {
  CHECK(gn_registration_drain(NULL, 100, 100, NULL) == GN_STATUS_OK, "drain(NULL) is a no-op");
  CHECK_ERR(gn_registration_options_set_warmup_ms(NULL, 100, &e_), GN_STATUS_INVALID_ARGUMENT, "options is NULL");
}

static void a_warm_up_keeps_the_address_out_of_etcd_until_it_ends(void) {
  double started = now_ms();
  gn_registration *reg = start_warming("creg-warm", "127.0.0.1:7111", NULL, 500);
  if (!reg) return;
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_WARMING_UP, "state %d",
        gn_registration_get_state(reg));
  CHECK(gn_registration_wait(reg, 100, NULL) == GN_STATUS_TIMEOUT, "wait during the warm-up times out");
  gn_resolver *r = pull_resolver("etcd://c/creg-warm");
  char observed[512];
  CHECK(wait_list(r, "127.0.0.1:7111", observed, sizeof observed), "expected [127.0.0.1:7111], observed [%s]",
        observed);
  double seen = now_ms() - started;
  CHECK(seen >= 500, "the resolver saw the address %.0f ms after the start, before the 500 ms warm-up ended", seen);
  wait_registered(reg);
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_REGISTERED, "state %d", gn_registration_get_state(reg));
  gn_registration_free(reg);
  gn_resolver_free(r);
}

/* The last list queued on `r` (without waiting), or "(none)". */
static void last_queued(gn_resolver *r, char *observed, size_t size) {
  snprintf(observed, size, "(none)");
  for (int i = 0; i < 100; i++) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, 0, &u, NULL) != GN_STATUS_OK) return;
    describe(u, observed, size);
    gn_update_free(u);
  }
}

static void a_drain_removes_the_address_before_it_returns_after_the_drain_period(void) {
  gn_registration *stays = start("creg-drain", "127.0.0.1:7112", NULL);
  gn_registration *reg = start("creg-drain", "127.0.0.1:7113", NULL);
  if (!reg || !stays) return;
  wait_registered(stays);
  wait_registered(reg);
  gn_resolver *r = pull_resolver("etcd://c/creg-drain");
  char observed[512];
  CHECK(wait_list(r, "127.0.0.1:7112,127.0.0.1:7113", observed, sizeof observed),
        "expected [127.0.0.1:7112,127.0.0.1:7113], observed [%s]", observed);
  double t0 = now_ms();
  gn_error *err = NULL;
  gn_status s = gn_registration_drain(reg, 400, 5000, &err);
  double took = now_ms() - t0;
  CHECK(s == GN_STATUS_OK, "drain: %s %s", gn_status_name(s), gn_error_message(err));
  gn_error_free(err);
  CHECK(took >= 400, "drain returned after %.0f ms, before its 400 ms period", took);
  CHECK(took < 3000, "drain took %.0f ms", took);
  last_queued(r, observed, sizeof observed);
  CHECK(strcmp(observed, "127.0.0.1:7112") == 0, "when drain returned the resolver had [127.0.0.1:7112], observed [%s]",
        observed);
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_CLOSED, "state %d", gn_registration_get_state(reg));
  t0 = now_ms();
  CHECK(gn_registration_drain(reg, 400, 5000, NULL) == GN_STATUS_OK, "a second drain");
  CHECK(gn_registration_close(reg, 5000, NULL) == GN_STATUS_OK, "a close after the drain");
  took = now_ms() - t0;
  CHECK(took < 300, "a second drain and a close after the first drain's period took %.0f ms", took);
  gn_registration_free(reg);
  gn_registration_free(stays);
  gn_resolver_free(r);
}

static void closing_or_draining_during_the_warm_up_writes_nothing_and_returns_at_once(void) {
  gn_registration *stays = start("creg-warm-stop", "127.0.0.1:7114", NULL);
  gn_registration *closed = start_warming("creg-warm-stop", "127.0.0.1:7115", NULL, 300);
  gn_registration *drained = start_warming("creg-warm-stop", "127.0.0.1:7116", NULL, 300);
  if (!stays || !closed || !drained) return;
  double t0 = now_ms();
  CHECK(gn_registration_close(closed, 5000, NULL) == GN_STATUS_OK, "close during the warm-up");
  CHECK(gn_registration_drain(drained, 2000, 5000, NULL) == GN_STATUS_OK, "drain during the warm-up");
  double took = now_ms() - t0;
  CHECK(took < 250, "a close and a drain during the warm-up took %.0f ms", took);
  CHECK(gn_registration_get_state(closed) == GN_REGISTRATION_STATE_CLOSED, "state %d", gn_registration_get_state(closed));
  CHECK(gn_registration_get_state(drained) == GN_REGISTRATION_STATE_CLOSED, "state %d",
        gn_registration_get_state(drained));
  wait_registered(stays);
  /* Watch well past the end of the warm-up: only the address that stays ever shows. */
  gn_resolver *r = pull_resolver("etcd://c/creg-warm-stop");
  char observed[512] = "(no update)";
  bool other = false;
  double end = now_ms() + 700;
  while (now_ms() < end) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, 100, &u, NULL) != GN_STATUS_OK) continue;
    describe(u, observed, sizeof observed);
    other = other || strcmp(observed, "127.0.0.1:7114") != 0;
    gn_update_free(u);
  }
  CHECK(!other && strcmp(observed, "127.0.0.1:7114") == 0, "expected only [127.0.0.1:7114], observed [%s]", observed);
  gn_resolver_free(r);
  gn_registration_free(closed);
  gn_registration_free(drained);
  gn_registration_free(stays);
}

static atomic_int drain_inside_status = -1;

static void drain_inside_call(void *user_data, const gn_update *u) {
  if (gn_update_address_count(u) == 1 && atomic_load(&drain_inside_status) == -1) {
    atomic_store(&drain_inside_status, (int)gn_registration_drain(user_data, 1000, 1000, NULL));
  }
}

static void a_drain_inside_a_resolver_callback_is_refused_and_changes_nothing(void) {
  gn_registration *reg = start("creg-drain-inside", "127.0.0.1:7117", NULL);
  if (!reg) return;
  wait_registered(reg);
  gn_update_callback cb = {reg, drain_inside_call, NULL};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("etcd://c/creg-drain-inside", NULL, cb, &r, NULL) == GN_STATUS_OK, "resolver");
  CHECK(wait_for(&drain_inside_status, 0, WAIT_MS), "the callback called drain");
  CHECK(atomic_load(&drain_inside_status) == GN_STATUS_BAD_STATE, "drain inside the callback: expected %d, observed %d",
        GN_STATUS_BAD_STATE, atomic_load(&drain_inside_status));
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_REGISTERED, "state %d", gn_registration_get_state(reg));
  gn_resolver_free(r);
  gn_registration_free(reg);
}

int main(void) {
  configure_clusters();
  RUN(null_arguments_and_bad_options_fail_clearly_and_frees_of_null_are_no_ops);
  RUN(a_registration_is_resolved_with_metadata_and_weight_and_gone_after_close);
  RUN(kratos_and_go_micro_registrations_resolve_under_their_prefixes);
  RUN(a_close_from_another_thread_racing_the_main_thread_closes_once);
  RUN(eight_threads_closing_at_once_all_succeed);
  RUN(free_without_close_removes_the_address);
  RUN(closing_inside_a_resolver_callback_returns_at_once_and_removes_the_address);
  RUN(an_unreachable_cluster_times_out_while_registering_or_retrying);
  RUN(stats_json_is_an_object_with_the_counters);
  RUN(warm_up_and_drain_arguments_are_checked);
  RUN(a_warm_up_keeps_the_address_out_of_etcd_until_it_ends);
  RUN(a_drain_removes_the_address_before_it_returns_after_the_drain_period);
  RUN(closing_or_draining_during_the_warm_up_writes_nothing_and_returns_at_once);
  RUN(a_drain_inside_a_resolver_callback_is_refused_and_changes_nothing);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
