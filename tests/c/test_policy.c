/* The discovery policies against a real etcd cluster (GNAMING_TEST_ETCD_ENDPOINTS, set by
 * tests/harness/etcd_cluster.py run): a selector switching a canary in and out by its registration
 * metadata, the local zone used alone until it drops below min-zone, an emptied registry under
 * empty=keep and empty=pass, a client's subset kept when another backend leaves, each set by the
 * target's query and by the resolver options; and the health checking a service config asks for.
 * Built with -Wall -Wextra -Werror and run under ASan+UBSan and valgrind. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

#define WAIT_MS 10000

static char service_prefix[64];

static const char *state_name(gn_resolver_state s) {
  return s == GN_RESOLVER_STATE_OK ? "OK" : "TRANSIENT_ERROR";
}

/* The addresses of an update as "a,b" in key order. */
static void describe(const gn_update *u, char *out, size_t size) {
  out[0] = 0;
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    const gn_address *a = gn_update_address(u, i);
    strncat(out, i ? "," : "", size - strlen(out) - 1);
    strncat(out, a->addr, size - strlen(out) - 1);
  }
}

/* Set by expect_kept_update: an empty list delivered as OK fails at once, even if a later update is
 * the expected one (the pull queue keeps only the latest, so this sees most but not every update). */
static bool empty_ok_fails;

/* Pulls updates until one in `state` lists exactly `expected` (and, if `needle`, whose error message
 * holds it); prints the expected and the last observed update otherwise. */
static bool expect_update(gn_resolver *r, gn_resolver_state state, const char *expected, const char *needle,
                          const char *what) {
  char observed[512] = "(no update)", message[512] = "";
  gn_resolver_state seen = GN_RESOLVER_STATE_OK;
  double end = now_ms() + WAIT_MS;
  while (now_ms() < end) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, 200, &u, NULL) != GN_STATUS_OK) continue;
    describe(u, observed, sizeof observed);
    seen = gn_update_state(u);
    const char *m = gn_update_error_message(u);
    snprintf(message, sizeof message, "%s", m ? m : "");
    bool empty_ok = seen == GN_RESOLVER_STATE_OK && gn_update_address_count(u) == 0;
    gn_update_free(u);
    if (empty_ok && empty_ok_fails) {
      CHECK(false, "%s: an empty list was delivered as OK under empty=keep", what);
      return false;
    }
    if (seen == state && strcmp(observed, expected) == 0 && (!needle || strstr(message, needle))) {
      check_passed++;
      return true;
    }
  }
  CHECK(false, "%s: expected %s [%s] %s, observed %s [%s] %s", what, state_name(state), expected,
        needle ? needle : "", state_name(seen), observed, message);
  return false;
}

/* expect_update for a resolver under empty=keep, which must never deliver an empty list. */
static bool expect_kept_update(gn_resolver *r, gn_resolver_state state, const char *expected, const char *needle,
                               const char *what) {
  empty_ok_fails = true;
  bool ok = expect_update(r, state, expected, needle, what);
  empty_ok_fails = false;
  return ok;
}

static gn_resolver *start_pull(const char *target, gn_resolver_options *o) {
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_status s = gn_resolver_start(target, o, pull, &r, &err);
  CHECK(s == GN_STATUS_OK, "resolver %s: %s", target, gn_error_message(err));
  gn_error_free(err);
  return r;
}

static gn_resolver *resolver(const char *query_or_empty, const char *service, gn_resolver_options *o) {
  char target[256];
  snprintf(target, sizeof target, "etcd://c/%s-%s%s", service_prefix, service, query_or_empty);
  return start_pull(target, o);
}

/* A start that the target and the options make fail with GN_STATUS_INVALID_TARGET naming `key`. */
static void expect_conflict(const char *target, gn_resolver_options *o, const char *key) {
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_status s = gn_resolver_start(target, o, pull, &r, &err);
  char needle[64];
  snprintf(needle, sizeof needle, "query key '%s'", key);
  CHECK(s == GN_STATUS_INVALID_TARGET && err && strstr(gn_error_message(err), needle) && !r,
        "%s against the options: %s %s", target, gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
}

static gn_registration *reg(const char *service, const char *address, const char *metadata) {
  char name[128];
  snprintf(name, sizeof name, "%s-%s", service_prefix, service);
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, 5000, NULL);
  gn_registration_options_set_metadata_json(o, metadata, NULL);
  gn_registration *r = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start(name, address, o, &r, &err);
  if (s == GN_STATUS_OK) s = gn_registration_wait(r, WAIT_MS, &err);
  CHECK(s == GN_STATUS_OK, "register %s %s: %s", name, address, gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  return r;
}

static void unreg(gn_registration *r) {
  gn_error *err = NULL;
  gn_status s = gn_registration_close(r, WAIT_MS, &err);
  CHECK(s == GN_STATUS_OK, "deregister: %s", gn_error_message(err));
  gn_error_free(err);
  gn_registration_free(r);
}

static void configure_cluster(void) {
  const char *endpoints = getenv("GNAMING_TEST_ETCD_ENDPOINTS");
  CHECK(endpoints != NULL && *endpoints, "GNAMING_TEST_ETCD_ENDPOINTS is not set: run under tests/harness/etcd_cluster.py run");
  if (!endpoints) exit(check_summary());
  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(gn_cluster_options_set_endpoints(o, endpoints, NULL) == GN_STATUS_OK, "endpoints %s", endpoints);
  CHECK(gn_cluster_register("c", o, NULL) == GN_STATUS_OK, "register c");
  gn_cluster_options_free(o);
  /* The ASan and the valgrind run share one cluster: each uses services of its own. */
  snprintf(service_prefix, sizeof service_prefix, "policy-%ld", (long)getpid());
}

static void a_selector_switches_a_canary_in_and_out_by_its_metadata(void) {
  gn_registration *stable = reg("sel", "127.0.0.1:7201", "{\"track\":\"stable\",\"version\":\"v1\"}");
  gn_registration *canary = reg("sel", "127.0.0.1:7202", "{\"track\":\"canary\",\"version\":\"v2\"}");
  gn_resolver *by_query = resolver("?select.track=stable", "sel", NULL);
  gn_resolver_options *o = gn_resolver_options_new();
  gn_resolver_options_add_selector(o, "track", "canary", NULL);
  gn_resolver *by_option = resolver("", "sel", o);
  gn_resolver_options_free(o);
  gn_resolver *both = resolver("?select.version=v2&select.track=stable", "sel", NULL);
  expect_update(by_query, GN_RESOLVER_STATE_OK, "127.0.0.1:7201", NULL, "stable only");
  expect_update(by_option, GN_RESOLVER_STATE_OK, "127.0.0.1:7202", NULL, "canary only, by option");
  expect_update(both, GN_RESOLVER_STATE_OK, "", NULL, "no entry has both keys");

  /* The canary is promoted: registered again with the stable track and the new version. */
  unreg(canary);
  canary = reg("sel", "127.0.0.1:7202", "{\"track\":\"stable\",\"version\":\"v2\"}");
  expect_update(by_query, GN_RESOLVER_STATE_OK, "127.0.0.1:7201,127.0.0.1:7202", NULL, "canary switched on");
  expect_update(by_option, GN_RESOLVER_STATE_OK, "", NULL, "no canary left");
  expect_update(both, GN_RESOLVER_STATE_OK, "127.0.0.1:7202", NULL, "v2 and stable");

  /* And switched off again. */
  unreg(canary);
  canary = reg("sel", "127.0.0.1:7202", "{\"track\":\"canary\",\"version\":\"v2\"}");
  expect_update(by_query, GN_RESOLVER_STATE_OK, "127.0.0.1:7201", NULL, "canary switched off");
  expect_update(by_option, GN_RESOLVER_STATE_OK, "127.0.0.1:7202", NULL, "canary back");
  gn_resolver_free(by_query);
  gn_resolver_free(by_option);
  gn_resolver_free(both);
  unreg(canary);
  unreg(stable);
}

static void the_local_zone_is_used_alone_until_it_drops_below_min_zone(void) {
  gn_registration *a1 = reg("zone", "127.0.0.1:7301", "{\"zone\":\"a\"}");
  gn_registration *a2 = reg("zone", "127.0.0.1:7302", "{\"zone\":\"a\"}");
  gn_registration *b1 = reg("zone", "127.0.0.1:7303", "{\"zone\":\"b\"}");
  gn_resolver *by_query = resolver("?prefer-zone=a&min-zone=2", "zone", NULL);
  gn_resolver_options *o = gn_resolver_options_new();
  gn_resolver_options_set_zone(o, "a", 2, NULL);
  gn_resolver *by_option = resolver("", "zone", o);
  gn_resolver_options_free(o);
  /* The environment gives the zone when neither the target nor the options do. */
  setenv("GNAMING_ZONE", "b", 1);
  gn_resolver *by_env = resolver("", "zone", NULL);
  unsetenv("GNAMING_ZONE");
  expect_update(by_query, GN_RESOLVER_STATE_OK, "127.0.0.1:7301,127.0.0.1:7302", NULL, "zone a alone");
  expect_update(by_option, GN_RESOLVER_STATE_OK, "127.0.0.1:7301,127.0.0.1:7302", NULL, "zone a alone, by option");
  expect_update(by_env, GN_RESOLVER_STATE_OK, "127.0.0.1:7303", NULL, "zone b from GNAMING_ZONE");

  unreg(a2);
  const char *all = "127.0.0.1:7301,127.0.0.1:7303";
  expect_update(by_query, GN_RESOLVER_STATE_OK, all, NULL, "one left in zone a, below min-zone=2");
  expect_update(by_option, GN_RESOLVER_STATE_OK, all, NULL, "below min_count, by option");

  a2 = reg("zone", "127.0.0.1:7302", "{\"zone\":\"a\"}");
  expect_update(by_query, GN_RESOLVER_STATE_OK, "127.0.0.1:7301,127.0.0.1:7302", NULL, "zone a back to two");
  unreg(b1);
  expect_update(by_env, GN_RESOLVER_STATE_OK, "127.0.0.1:7301,127.0.0.1:7302", NULL, "zone b gone: all");
  gn_resolver_free(by_query);
  gn_resolver_free(by_option);
  gn_resolver_free(by_env);
  unreg(a1);
  unreg(a2);
}

static void an_emptied_registry_is_kept_with_empty_keep_and_passed_on_with_empty_pass(void) {
  gn_registration *only = reg("empty", "127.0.0.1:7401", "{\"version\":\"v1\"}");
  gn_resolver *keep = resolver("?empty=keep", "empty", NULL);
  gn_resolver *pass = resolver("?empty=pass", "empty", NULL);
  gn_resolver *by_default = resolver("", "empty", NULL);
  gn_resolver_options *o = gn_resolver_options_new();
  gn_resolver_options_set_empty_policy(o, "keep", NULL);
  gn_resolver *keep_by_option = resolver("", "empty", o);
  gn_resolver_options_add_selector(o, "version", "v1", NULL);
  gn_resolver *keep_selected = resolver("", "empty", o);
  gn_resolver_options_free(o);
  expect_update(keep, GN_RESOLVER_STATE_OK, "127.0.0.1:7401", NULL, "keep: the list");
  expect_update(pass, GN_RESOLVER_STATE_OK, "127.0.0.1:7401", NULL, "pass: the list");
  expect_update(by_default, GN_RESOLVER_STATE_OK, "127.0.0.1:7401", NULL, "default: the list");
  expect_update(keep_by_option, GN_RESOLVER_STATE_OK, "127.0.0.1:7401", NULL, "keep by option: the list");
  expect_update(keep_selected, GN_RESOLVER_STATE_OK, "127.0.0.1:7401", NULL, "keep v1: the list");

  /* The same address comes back as v2: the selector leaves nothing, which keep also keeps. */
  unreg(only);
  only = reg("empty", "127.0.0.1:7401", "{\"version\":\"v2\"}");
  expect_kept_update(keep_selected, GN_RESOLVER_STATE_TRANSIENT_ERROR, "127.0.0.1:7401",
                "none of the 1 entries the registry reported matches the selectors", "keep: nothing selected");

  unreg(only);
  const char *kept = "registry reported an empty list; keeping the last list (empty=keep)";
  expect_kept_update(keep, GN_RESOLVER_STATE_TRANSIENT_ERROR, "127.0.0.1:7401", kept, "keep: registry emptied");
  expect_kept_update(keep_by_option, GN_RESOLVER_STATE_TRANSIENT_ERROR, "127.0.0.1:7401", kept, "keep by option");
  expect_update(pass, GN_RESOLVER_STATE_OK, "", NULL, "pass: registry emptied");
  expect_update(by_default, GN_RESOLVER_STATE_OK, "", NULL, "default (pass): registry emptied");

  only = reg("empty", "127.0.0.1:7402", "{\"version\":\"v1\"}");
  expect_kept_update(keep, GN_RESOLVER_STATE_OK, "127.0.0.1:7402", NULL, "keep: a new list replaces the kept one");
  expect_kept_update(keep_selected, GN_RESOLVER_STATE_OK, "127.0.0.1:7402", NULL, "keep v1: a new v1 entry");
  gn_resolver_free(keep);
  gn_resolver_free(pass);
  gn_resolver_free(by_default);
  gn_resolver_free(keep_by_option);
  gn_resolver_free(keep_selected);
  unreg(only);
}

/* --- subsets --- */

/* The subset score the README documents: fmix64(fnv1a64(client ‖ 0xFF ‖ address)), written out here
 * again so that a change of the library's hash fails this test. */
static uint64_t subset_score(const char *client, const char *address) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char *p = (const unsigned char *)client; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
  h = (h ^ 0xFF) * 0x100000001b3ULL;
  for (const unsigned char *p = (const unsigned char *)address; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

/* Whether `addresses[i]` is among the `n` that `client` ranks highest (ties to the smaller address). */
static bool in_subset(const char *client, const char *const *addresses, size_t count, size_t i, size_t n) {
  uint64_t mine = subset_score(client, addresses[i]);
  size_t above = 0;
  for (size_t j = 0; j < count; j++) {
    uint64_t theirs = subset_score(client, addresses[j]);
    if (theirs > mine || (theirs == mine && strcmp(addresses[j], addresses[i]) < 0)) above++;
  }
  return above < n;
}

/* The subset of the (sorted) `addresses` as "a,b", in their order. */
static void expected_subset(const char *client, const char *const *addresses, size_t count, size_t n, char *out,
                            size_t size) {
  out[0] = 0;
  for (size_t i = 0; i < count; i++) {
    if (!in_subset(client, addresses, count, i, n)) continue;
    strncat(out, out[0] ? "," : "", size - strlen(out) - 1);
    strncat(out, addresses[i], size - strlen(out) - 1);
  }
}

static void a_subset_holds_n_of_the_entries_and_keeps_them_when_another_backend_leaves(void) {
  enum { M = 6, N = 3 };
  const char *client = "web-7";
  const char *addresses[M] = {"127.0.0.1:7501", "127.0.0.1:7502", "127.0.0.1:7503",
                              "127.0.0.1:7504", "127.0.0.1:7505", "127.0.0.1:7506"};
  gn_registration *regs[M];
  for (size_t i = 0; i < M; i++) regs[i] = reg("subset", addresses[i], "{}");
  gn_resolver *all = resolver("", "subset", NULL);
  gn_resolver *by_query = resolver("?subset=3&client-id=web-7", "subset", NULL);
  gn_resolver_options *o = gn_resolver_options_new();
  gn_resolver_options_set_subset(o, N, NULL);
  gn_resolver_options_set_client_id(o, client, NULL);
  gn_resolver *by_option = resolver("", "subset", o);
  /* The environment gives the client id when neither the target nor the options do. */
  setenv("GNAMING_CLIENT_ID", client, 1);
  gn_resolver *by_env = resolver("?subset=3", "subset", NULL);
  unsetenv("GNAMING_CLIENT_ID");

  char expected[256];
  expected_subset(client, addresses, M, N, expected, sizeof expected);
  expect_update(all, GN_RESOLVER_STATE_OK,
                "127.0.0.1:7501,127.0.0.1:7502,127.0.0.1:7503,127.0.0.1:7504,127.0.0.1:7505,127.0.0.1:7506", NULL,
                "every entry without a subset");
  expect_update(by_query, GN_RESOLVER_STATE_OK, expected, NULL, "subset=3 of 6 by the query");
  expect_update(by_option, GN_RESOLVER_STATE_OK, expected, NULL, "subset 3 of 6 by the options");
  expect_update(by_env, GN_RESOLVER_STATE_OK, expected, NULL, "subset=3 with GNAMING_CLIENT_ID");

  /* A backend outside the subset leaves: the others see it, the subset stays as it was, so its
   * resolvers publish nothing. */
  size_t outside = 0, inside = 0;
  while (in_subset(client, addresses, M, outside, N)) outside++;
  while (!in_subset(client, addresses, M, inside, N)) inside++;
  unreg(regs[outside]);
  regs[outside] = NULL;
  const char *four[M - 2];
  char rest[256] = "";
  for (size_t i = 0, k = 0; i < M; i++) {
    if (i == outside) continue;
    if (i != inside) four[k++] = addresses[i];
    strncat(rest, rest[0] ? "," : "", sizeof rest - strlen(rest) - 1);
    strncat(rest, addresses[i], sizeof rest - strlen(rest) - 1);
  }
  expect_update(all, GN_RESOLVER_STATE_OK, rest, NULL, "an unrelated backend left");
  gn_update *u = NULL;
  gn_status s = gn_resolver_next(by_query, 500, &u, NULL);
  char observed[512] = "";
  if (u) describe(u, observed, sizeof observed);
  CHECK(s == GN_STATUS_TIMEOUT, "the subset changed when a backend outside it left: %s [%s], kept %s",
        gn_status_name(s), observed, expected);
  gn_update_free(u);

  /* A backend inside it leaves: the one left outside takes its place. */
  char after[256];
  expected_subset(client, four, M - 2, N, after, sizeof after);
  unreg(regs[inside]);
  regs[inside] = NULL;
  expect_update(by_query, GN_RESOLVER_STATE_OK, after, NULL, "a backend of the subset left");
  expect_update(by_option, GN_RESOLVER_STATE_OK, after, NULL, "a backend of the subset left, by options");

  /* The target and the options disagree: the start fails naming the key. */
  char target[256];
  snprintf(target, sizeof target, "etcd://c/%s-subset?subset=2", service_prefix);
  expect_conflict(target, o, "subset");
  snprintf(target, sizeof target, "etcd://c/%s-subset?client-id=web-8", service_prefix);
  expect_conflict(target, o, "client-id");
  gn_resolver_options_free(o);
  gn_resolver_free(all);
  gn_resolver_free(by_query);
  gn_resolver_free(by_option);
  gn_resolver_free(by_env);
  for (size_t i = 0; i < M; i++)
    if (regs[i]) unreg(regs[i]);
}

/* --- health checking --- */

/* The service config of the first update of a pull resolver on `target` with `o`, copied to `out`. */
static void first_service_config(const char *target, gn_resolver_options *o, char *out, size_t size) {
  gn_resolver *r = start_pull(target, o);
  gn_update *u = NULL;
  out[0] = 0;
  if (r && gn_resolver_next(r, WAIT_MS, &u, NULL) == GN_STATUS_OK) {
    const char *sc = gn_update_service_config(u);
    snprintf(out, size, "%s", sc ? sc : "(none)");
  }
  gn_update_free(u);
  gn_resolver_free(r);
}

static void health_checking_goes_into_the_service_config_by_query_and_by_option(void) {
  char sc[512];
  first_service_config("pass:///127.0.0.1:1?health=*", NULL, sc, sizeof sc);
  CHECK(strstr(sc, "\"healthCheckConfig\":{\"serviceName\":\"\"}") && strstr(sc, "{\"round_robin\":{}}"),
        "health=*: %s", sc);
  gn_resolver_options *o = gn_resolver_options_new();
  gn_resolver_options_set_health_check(o, "echo.Echo", NULL);
  first_service_config("pass:///127.0.0.1:1", o, sc, sizeof sc);
  CHECK(strstr(sc, "\"healthCheckConfig\":{\"serviceName\":\"echo.Echo\"}"), "by option: %s", sc);
  expect_conflict("pass:///127.0.0.1:1?health=*", o, "health");
  gn_resolver_options_free(o);
  first_service_config("pass:///127.0.0.1:1", NULL, sc, sizeof sc);
  CHECK(strcmp(sc, "(none)") == 0, "no health setting, no service config: %s", sc);
}

int main(void) {
  configure_cluster();
  RUN(a_selector_switches_a_canary_in_and_out_by_its_metadata);
  RUN(the_local_zone_is_used_alone_until_it_drops_below_min_zone);
  RUN(an_emptied_registry_is_kept_with_empty_keep_and_passed_on_with_empty_pass);
  RUN(a_subset_holds_n_of_the_entries_and_keeps_them_when_another_backend_leaves);
  RUN(health_checking_goes_into_the_service_config_by_query_and_by_option);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
