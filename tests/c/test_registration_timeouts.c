/* Registrations after a close that etcd never confirmed: every member of the harness's cluster is
 * stopped (SIGSTOP) while a registration is closed with a 1 ms timeout, or while gn_runtime_shutdown
 * closes it, and resumed after; then new registrations on the same cluster and TTL must all reach
 * REGISTERED and stay in etcd past several TTLs (they must not join the old registration's lease group,
 * whose keep-alive died with the runtime). The old handle is freed only at the end, so the cluster
 * object stays the same one. And a drain while every member is down (killed): it returns
 * GN_STATUS_TIMEOUT after its timeout and period, and its retries delete the key soon after etcd is back,
 * long before the lease would expire. Runs under tests/harness/etcd_cluster.py run (GNAMING_TEST_ETCD_ENDPOINTS,
 * GNAMING_TEST_ETCD_DIR); built with -Wall -Wextra -Werror, run under ASan+UBSan and valgrind. */
#define _GNU_SOURCE
#include <stdbool.h>

#include "check.h"
#include "gnaming.h"

#define TTL_MS 2000
#define WAIT_MS 30000
#define MAX_REGS 100

static int members;

/* Sends `sig` (STOP, CONT) to every member through the harness; false if any signal failed. */
static bool signal_members(const char *sig) {
  const char *dir = getenv("GNAMING_TEST_ETCD_DIR");
  if (!dir) return false;
  bool ok = true;
  for (int i = 0; i < members; i++) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 tests/harness/etcd_cluster.py signal --dir '%s' --member %d --signal %s", dir, i,
             sig);
    if (system(cmd) != 0) ok = false;
  }
  return ok;
}

static void configure_cluster(void) {
  const char *endpoints = getenv("GNAMING_TEST_ETCD_ENDPOINTS");
  CHECK(endpoints && *endpoints && getenv("GNAMING_TEST_ETCD_DIR"),
        "GNAMING_TEST_ETCD_ENDPOINTS and GNAMING_TEST_ETCD_DIR are not set: "
        "run under tests/harness/etcd_cluster.py run");
  if (!endpoints) return;
  members = 1;
  for (const char *p = endpoints; *p; p++) members += *p == ',';
  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(gn_cluster_options_set_endpoints(o, endpoints, NULL) == GN_STATUS_OK, "endpoints %s", endpoints);
  CHECK(gn_cluster_options_set_dial_timeout_ms(o, 1000, NULL) == GN_STATUS_OK, "dial timeout");
  CHECK(gn_cluster_options_set_request_timeout_ms(o, 2000, NULL) == GN_STATUS_OK, "request timeout");
  CHECK(gn_cluster_register("c", o, NULL) == GN_STATUS_OK, "register c");
  gn_cluster_options_free(o);
}

static gn_registration *start(const char *service, int port) {
  char address[32];
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, TTL_MS, NULL);
  gn_registration *reg = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start(service, address, o, &reg, &err);
  CHECK(s == GN_STATUS_OK, "start %s %s: %s", service, address, gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  return reg;
}

/* "a,b,c": the addresses of an update in key order. */
static void describe(const gn_update *u, char *out, size_t size) {
  out[0] = 0;
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    if (i) strncat(out, ",", size - strlen(out) - 1);
    strncat(out, gn_update_address(u, i)->addr, size - strlen(out) - 1);
  }
}

/* The first OK list a fresh resolver of `service` delivers within WAIT_MS, into `observed`. */
static bool listed(const char *service, const char *expected, char *observed, size_t size) {
  char target[128];
  snprintf(target, sizeof target, "etcd://c/%s", service);
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  snprintf(observed, size, "(no update)");
  if (gn_resolver_start(target, NULL, pull, &r, NULL) != GN_STATUS_OK) return false;
  bool ok = false;
  double end = now_ms() + WAIT_MS;
  while (!ok && now_ms() < end) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, 200, &u, NULL) != GN_STATUS_OK) continue;
    describe(u, observed, size);
    ok = gn_update_state(u) == GN_RESOLVER_STATE_OK && strcmp(observed, expected) == 0;
    gn_update_free(u);
  }
  gn_resolver_free(r);
  return ok;
}

/* `n` new registrations on ports base..base+n-1 (the old one's among them) all reach REGISTERED, are
 * all listed, and are all still listed after 2.5 TTLs: their lease is kept alive. */
static void new_registrations_register_and_stay(const char *service, int base, int n) {
  gn_registration *regs[MAX_REGS] = {0};
  char expected[MAX_REGS * 24] = "";
  for (int i = 0; i < n; i++) {
    regs[i] = start(service, base + i);
    char address[32];
    snprintf(address, sizeof address, "%s127.0.0.1:%d", i ? "," : "", base + i);
    strncat(expected, address, sizeof expected - strlen(expected) - 1);
  }
  double end = now_ms() + WAIT_MS;
  int registered = 0;
  for (int i = 0; i < n; i++) {
    double left = end - now_ms();
    if (regs[i] && gn_registration_wait(regs[i], left > 0 ? (int64_t)left : 0, NULL) == GN_STATUS_OK) registered++;
  }
  CHECK(registered == n, "%d of %d new registrations reached REGISTERED within %d ms", registered, n, WAIT_MS);
  static char observed[MAX_REGS * 24];
  CHECK(listed(service, expected, observed, sizeof observed), "expected [127.0.0.1:%d..%d], observed [%s]", base,
        base + n - 1, observed);
  sleep_us(TTL_MS * 2500L);
  int still = 0;
  for (int i = 0; i < n; i++) still += gn_registration_get_state(regs[i]) == GN_REGISTRATION_STATE_REGISTERED;
  CHECK(still == n, "%d of %d still REGISTERED after %d ms", still, n, TTL_MS * 5 / 2);
  CHECK(listed(service, expected, observed, sizeof observed),
        "after %d ms (2.5 TTLs) expected [127.0.0.1:%d..%d], observed [%s]", TTL_MS * 5 / 2, base, base + n - 1,
        observed);
  for (int i = 0; i < n; i++) {
    if (!regs[i]) continue;
    gn_status s = gn_registration_close(regs[i], 5000, NULL);
    CHECK(s == GN_STATUS_OK, "close of new registration %d: %s", i, gn_status_name(s));
    gn_registration_free(regs[i]);
  }
}

static void registrations_after_a_timed_out_close_and_a_shutdown_all_register(void) {
  const char *service = "creg-timeout";
  gn_registration *old = start(service, 7201);
  if (!old) return;
  CHECK(gn_registration_wait(old, WAIT_MS, NULL) == GN_STATUS_OK, "the first registration registered");
  CHECK(signal_members("STOP"), "stopping the members");
  gn_error *err = NULL;
  gn_status s = gn_registration_close(old, 1, &err);
  CHECK(s == GN_STATUS_TIMEOUT, "close with 1 ms while etcd is stopped: %s %s", gn_status_name(s),
        gn_error_message(err));
  gn_error_free(err);
  s = gn_runtime_shutdown(5000, NULL);
  CHECK(s == GN_STATUS_OK, "shutdown: %s", gn_status_name(s));
  CHECK(signal_members("CONT"), "resuming the members");
  new_registrations_register_and_stay(service, 7201, 100);
  gn_registration_free(old);
}

static void registrations_after_a_shutdown_that_could_not_remove_one_all_register(void) {
  const char *service = "creg-shutdown";
  gn_registration *old = start(service, 7401);
  if (!old) return;
  CHECK(gn_registration_wait(old, WAIT_MS, NULL) == GN_STATUS_OK, "the first registration registered");
  CHECK(signal_members("STOP"), "stopping the members");
  double t0 = now_ms();
  gn_status s = gn_runtime_shutdown(5000, NULL);
  CHECK(s == GN_STATUS_OK, "shutdown: %s", gn_status_name(s));
  CHECK(now_ms() - t0 < 10000, "shutdown with etcd stopped took %.0f ms", now_ms() - t0);
  CHECK(gn_registration_get_state(old) == GN_REGISTRATION_STATE_CLOSED, "shutdown closed the registration");
  CHECK(signal_members("CONT"), "resuming the members");
  new_registrations_register_and_stay(service, 7401, 20);
  gn_registration_free(old);
}

/* Runs `command` (stop-all, start-all) of the harness on the cluster. */
static bool harness(const char *command) {
  const char *dir = getenv("GNAMING_TEST_ETCD_DIR");
  if (!dir) return false;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "python3 tests/harness/etcd_cluster.py %s --dir '%s'", command, dir);
  return system(cmd) == 0;
}

static void a_drain_while_etcd_is_down_times_out_and_removes_the_key_once_etcd_is_back(void) {
  const char *service = "creg-drain-down";
  /* A 10 s lease: after etcd's return the lease alone would keep the key for 10 s more. */
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, 10000, NULL);
  gn_registration *reg = NULL;
  CHECK(gn_registration_start(service, "127.0.0.1:7601", o, &reg, NULL) == GN_STATUS_OK, "start");
  gn_registration_options_free(o);
  if (!reg) return;
  CHECK(gn_registration_wait(reg, WAIT_MS, NULL) == GN_STATUS_OK, "registered");
  CHECK(harness("stop-all"), "stopping every member");
  double t0 = now_ms();
  gn_error *err = NULL;
  gn_status s = gn_registration_drain(reg, 100, 500, &err);
  double took = now_ms() - t0;
  CHECK(s == GN_STATUS_TIMEOUT, "drain with etcd down: expected GN_STATUS_TIMEOUT, observed %s (%s)",
        gn_status_name(s), gn_error_message(err));
  gn_error_free(err);
  CHECK(took >= 600 && took < 2500, "drain with a 500 ms timeout and a 100 ms period took %.0f ms", took);
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_CLOSED, "state %d", gn_registration_get_state(reg));
  CHECK(harness("start-all"), "starting every member again");
  double back = now_ms();
  char observed[64];
  CHECK(listed(service, "", observed, sizeof observed), "expected [] once etcd was back, observed [%s]", observed);
  double gone = now_ms() - back;
  CHECK(gone < 6000, "the key went %.0f ms after etcd was back, as if by its 10 s lease, not by the drain's retries",
        gone);
  gn_registration_free(reg);
}

int main(void) {
  configure_cluster();
  if (members > 0) {
    RUN(registrations_after_a_timed_out_close_and_a_shutdown_all_register);
    RUN(registrations_after_a_shutdown_that_could_not_remove_one_all_register);
    RUN(a_drain_while_etcd_is_down_times_out_and_removes_the_key_once_etcd_is_back);
  }
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
