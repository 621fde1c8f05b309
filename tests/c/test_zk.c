/* zk: targets through the C API against a real ZooKeeper server: a pull resolver sees children added
 * (a bare host:port and a Curator ServiceDiscovery instance) and removed, skips a child holding
 * garbage, a chroot in GNAMING_ZK_SERVERS roots the zk:/// targets, and bad zk: targets fail with
 * GN_STATUS_INVALID_TARGET naming the part. Registrations with a zk:// service are resolved and gone
 * once closed; bad ones fail with GN_STATUS_INVALID_ARGUMENT naming the part. A named ensemble
 * (gn_zk_register) with digest credentials and a creator-only ACL keeps its nodes from resolvers
 * without them; its options refuse bad values; ensembles are registered and used from four threads
 * at once. The test starts
 * its own single-server ensemble through tests/harness/zk_ensemble.py (run from the repository root,
 * as make does) and changes it with ZooKeeper's own zkCli.sh; GNAMING_TEST_ZKCLI names zkCli.sh when
 * it is not where Debian puts it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

static char zk_dir[128];
static char zk_servers[256];

static const char *zkcli(void) {
  const char *env = getenv("GNAMING_TEST_ZKCLI");
  return env && *env ? env : "/usr/share/zookeeper/bin/zkCli.sh";
}

/* Starts the ensemble; it is stopped at the end, or by the harness when this process dies. */
static bool start_ensemble(void) {
  snprintf(zk_dir, sizeof zk_dir, "/tmp/gnaming-zk-c-%d", (int)getpid());
  char cmd[512];
  snprintf(cmd, sizeof cmd, "python3 tests/harness/zk_ensemble.py start --dir %s --servers 1 --watch-pid %d", zk_dir,
           (int)getpid());
  FILE *out = popen(cmd, "r");
  if (!out) return false;
  bool read = fgets(zk_servers, sizeof zk_servers, out) != NULL;
  int status = pclose(out);
  zk_servers[strcspn(zk_servers, "\n")] = 0;
  return read && status == 0 && zk_servers[0];
}

static void stop_ensemble(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "python3 tests/harness/zk_ensemble.py stop --dir %s && rm -rf %s", zk_dir, zk_dir);
  CHECK(system(cmd) == 0, "stopping the ensemble failed");
}

/* Runs zkCli.sh commands, one a line, read from a file so that no shell quoting touches the data. */
static bool zk(const char *commands) {
  char script[160];
  snprintf(script, sizeof script, "%s/commands", zk_dir);
  FILE *f = fopen(script, "w");
  if (!f) return false;
  fputs(commands, f);
  fclose(f);
  char cmd[768];
  snprintf(cmd, sizeof cmd, "%s -server %s < %s > %s/zkcli.log 2>&1", zkcli(), zk_servers, script, zk_dir);
  return system(cmd) == 0;
}

/* The update's addresses joined by ',' in list order, or "error: MESSAGE" for a transient error. */
static void describe(const gn_update *u, char *out, size_t size) {
  out[0] = 0;
  if (gn_update_state(u) != GN_RESOLVER_STATE_OK) {
    snprintf(out, size, "error: %s", gn_update_error_message(u));
    return;
  }
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    const gn_address *a = gn_update_address(u, i);
    if (i) strncat(out, ",", size - strlen(out) - 1);
    strncat(out, a->addr, size - strlen(out) - 1);
  }
}

/* Takes updates until one reads `expected` (see describe), or contains it with `partly`, for at most
 * `timeout_ms`. */
static bool next_matching(gn_resolver *r, const char *expected, bool partly, double timeout_ms, char *last,
                          size_t size) {
  double end = now_ms() + timeout_ms;
  snprintf(last, size, "(no update)");
  while (now_ms() < end) {
    gn_update *u = NULL;
    gn_status s = gn_resolver_next(r, (int64_t)(end - now_ms()) + 1, &u, NULL);
    if (s == GN_STATUS_TIMEOUT) break;
    if (s != GN_STATUS_OK) {
      snprintf(last, size, "next gave %s", gn_status_name(s));
      return false;
    }
    describe(u, last, size);
    gn_update_free(u);
    if (partly ? strstr(last, expected) != NULL : strcmp(last, expected) == 0) return true;
  }
  return false;
}

static bool next_until(gn_resolver *r, const char *expected, double timeout_ms, char *last, size_t size) {
  return next_matching(r, expected, false, timeout_ms, last, size);
}

static void children_added_and_removed_reach_a_pull_resolver_and_garbage_is_skipped(void) {
  CHECK(zk("create /c\n"
           "create /c/echo\n"
           "create /c/echo/a 127.0.0.1:7101\n"
           "create /c/echo/garbage not-an-address\n"
           "create /c/echo/i-7c1a {\"name\":\"echo\",\"id\":\"i-7c1a\",\"address\":\"127.0.0.1\",\"port\":7102}\n"),
        "zkCli.sh failed; see %s/zkcli.log", zk_dir);
  char target[320];
  snprintf(target, sizeof target, "zk://%s/c/echo", zk_servers);
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_status s = gn_resolver_start(target, NULL, pull, &r, &err);
  CHECK(s == GN_STATUS_OK, "start(%s) gave %s: %s", target, gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
  if (s != GN_STATUS_OK) return;

  char last[512];
  CHECK(next_until(r, "127.0.0.1:7101,127.0.0.1:7102", 10000, last, sizeof last),
        "expected 127.0.0.1:7101,127.0.0.1:7102; last observed: %s", last);
  CHECK(zk("delete /c/echo/a\n"), "zkCli.sh failed; see %s/zkcli.log", zk_dir);
  CHECK(next_until(r, "127.0.0.1:7102", 10000, last, sizeof last), "expected 127.0.0.1:7102; last observed: %s",
        last);
  gn_resolver_free(r);
}

/* GNAMING_ZK_SERVERS is this ensemble with the chroot /apps/prod (set in main): zk:///echo is the node
 * /apps/prod/echo, whose changes arrive through the watch, and /echo at the root is another node. */
static void a_chroot_in_gnaming_zk_servers_roots_targets_without_servers(void) {
  CHECK(zk("create /echo\n"
           "create /echo/root 127.0.0.1:7201\n"
           "create /apps\n"
           "create /apps/prod\n"
           "create /apps/prod/echo\n"
           "create /apps/prod/echo/a 127.0.0.1:7202\n"),
        "zkCli.sh failed; see %s/zkcli.log", zk_dir);
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_status s = gn_resolver_start("zk:///echo", NULL, pull, &r, &err);
  CHECK(s == GN_STATUS_OK, "start(zk:///echo) gave %s: %s", gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
  if (s != GN_STATUS_OK) return;

  char last[512];
  CHECK(next_until(r, "127.0.0.1:7202", 10000, last, sizeof last), "expected 127.0.0.1:7202; last observed: %s",
        last);
  CHECK(zk("create /apps/prod/echo/b 127.0.0.1:7203\n"
           "delete /apps/prod/echo/a\n"
           "create /echo/root2 127.0.0.1:7204\n"),
        "zkCli.sh failed; see %s/zkcli.log", zk_dir);
  CHECK(next_until(r, "127.0.0.1:7203", 10000, last, sizeof last), "expected 127.0.0.1:7203; last observed: %s",
        last);
  gn_resolver_free(r);
}

static void bad_zk_targets_fail_naming_the_part(void) {
  const char *cases[][2] = {
      {"zk://prod,zk2:2181/echo", "server 'prod': needs a port"},
      {"zk://pr*d/echo", "ensemble name 'pr*d' may hold only"},
      {"zk:///a//b", "path '/a//b' has an empty segment"},
      {"zk://127.0.0.1:2181", "the node path is empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gn_resolver *r = NULL;
    gn_error *err = NULL;
    gn_update_callback pull = {NULL, NULL, NULL};
    gn_status s = gn_resolver_start(cases[i][0], NULL, pull, &r, &err);
    CHECK(s == GN_STATUS_INVALID_TARGET, "%s gave %s", cases[i][0], gn_status_name(s));
    CHECK(r == NULL, "%s: resolver_out written on failure", cases[i][0]);
    CHECK(err && strstr(gn_error_message(err), cases[i][1]), "%s: message %s", cases[i][0],
          err ? gn_error_message(err) : "(none)");
    gn_error_free(err);
  }
  /* A name without a configuration is known only when the resolver starts. */
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_status s = gn_resolver_start("zk://nowhere/echo", NULL, pull, &r, &err);
  CHECK(s == GN_STATUS_NOT_FOUND && r == NULL, "zk://nowhere/echo gave %s", gn_status_name(s));
  CHECK(err && strstr(gn_error_message(err), "no ZooKeeper ensemble named 'nowhere'"), "message %s",
        err ? gn_error_message(err) : "(none)");
  gn_error_free(err);
}

/* Starts a registration of `address` under `service`; NULL on failure (checked). */
static gn_registration *register_at(const char *service, const char *address) {
  gn_registration_options *o = gn_registration_options_new();
  CHECK(gn_registration_options_set_metadata_json(o, "{\"zone\":\"a\"}", NULL) == GN_STATUS_OK, "metadata");
  gn_registration *reg = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start(service, address, o, &reg, &err);
  gn_registration_options_free(o);
  CHECK(s == GN_STATUS_OK, "register(%s) gave %s: %s", service, gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
  if (s != GN_STATUS_OK) return NULL;
  err = NULL;
  s = gn_registration_wait(reg, 10000, &err);
  CHECK(s == GN_STATUS_OK, "wait(%s) gave %s: %s", service, gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
  CHECK(gn_registration_get_state(reg) == GN_REGISTRATION_STATE_REGISTERED, "%s: state %d", service,
        (int)gn_registration_get_state(reg));
  return reg;
}

static gn_resolver *pull_resolver(const char *target) {
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_status s = gn_resolver_start(target, NULL, pull, &r, &err);
  CHECK(s == GN_STATUS_OK, "start(%s) gave %s: %s", target, gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
  return s == GN_STATUS_OK ? r : NULL;
}

/* A zk:// service registers in ZooKeeper: with servers in the service at the ensemble's root, and with
 * zk:/// on GNAMING_ZK_SERVERS below its chroot /apps/prod. Each is what the zk: target of its node
 * resolves, metadata included, and gone from it once closed. */
static void zk_service_registrations_are_resolved_and_gone_after_close(void) {
  char service[320], target[320];
  snprintf(service, sizeof service, "zk://%s/reg/echo", zk_servers);
  gn_registration *root = register_at(service, "127.0.0.1:7301");
  gn_registration *chrooted = register_at("zk:///reg/echo", "127.0.0.1:7302");
  gn_resolver *r = pull_resolver(service);
  snprintf(target, sizeof target, "zk://%s/apps/prod/reg/echo", zk_servers);
  gn_resolver *below = pull_resolver(target);
  if (!root || !chrooted || !r || !below) goto out;

  /* The registration's metadata is the Curator payload, which the resolver hands on. */
  char last[512], meta[128] = "(no update with 127.0.0.1:7301)";
  bool seen = false;
  double end = now_ms() + 10000;
  while (!seen && now_ms() < end) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, (int64_t)(end - now_ms()) + 1, &u, NULL) != GN_STATUS_OK) break;
    describe(u, last, sizeof last);
    if (strcmp(last, "127.0.0.1:7301") == 0) {
      const char *m = gn_update_address(u, 0)->metadata_json;
      snprintf(meta, sizeof meta, "%s", m ? m : "(none)");
      seen = true;
    }
    gn_update_free(u);
  }
  CHECK(seen && strcmp(meta, "{\"zone\":\"a\"}") == 0, "expected 127.0.0.1:7301 with {\"zone\":\"a\"}; observed %s",
        meta);
  CHECK(next_until(below, "127.0.0.1:7302", 10000, last, sizeof last), "expected 127.0.0.1:7302; last observed: %s",
        last);

  gn_error *err = NULL;
  gn_status s = gn_registration_close(root, 5000, &err);
  CHECK(s == GN_STATUS_OK, "close gave %s: %s", gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);
  CHECK(gn_registration_get_state(root) == GN_REGISTRATION_STATE_CLOSED, "state after close");
  CHECK(gn_registration_close(root, 5000, NULL) == GN_STATUS_OK, "a second close");
  CHECK(gn_registration_wait(root, 0, NULL) == GN_STATUS_CLOSED, "wait after close");
  CHECK(next_until(r, "", 10000, last, sizeof last), "expected an empty list; last observed: %s", last);
  gn_registration_free(chrooted);
  chrooted = NULL;
  CHECK(next_until(below, "", 10000, last, sizeof last), "expected an empty list; last observed: %s", last);
out:
  gn_resolver_free(r);
  gn_resolver_free(below);
  gn_registration_free(root);
  gn_registration_free(chrooted);
}

static void bad_zk_registrations_fail_naming_the_part(void) {
  gn_registration_options *prod = gn_registration_options_new();
  CHECK(gn_registration_options_set_cluster(prod, "prod", NULL) == GN_STATUS_OK, "set_cluster");
  struct {
    const char *service;
    const gn_registration_options *options;
    const char *part;
  } cases[] = {
      {"zk:///reg/echo#2", NULL, "without '?' or '#'"},
      {"zk:///reg/echo?select.zone=a", NULL, "without '?' or '#'"},
      {"zk://prod,zk2:2181/reg/echo", NULL, "needs a port"},
      {"zk:///reg/echo", prod, "cluster 'prod' names an etcd cluster"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gn_registration *reg = NULL;
    gn_error *err = NULL;
    gn_status s = gn_registration_start(cases[i].service, "127.0.0.1:7399", cases[i].options, &reg, &err);
    CHECK(s == GN_STATUS_INVALID_ARGUMENT, "%s gave %s", cases[i].service, gn_status_name(s));
    CHECK(reg == NULL, "%s: registration_out written on failure", cases[i].service);
    CHECK(err && strstr(gn_error_message(err), cases[i].part), "%s: message %s", cases[i].service,
          err ? gn_error_message(err) : "(none)");
    gn_error_free(err);
  }
  gn_registration_options_free(prod);
  gn_registration *reg = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start("zk://nowhere/reg/echo", "127.0.0.1:7399", NULL, &reg, &err);
  CHECK(s == GN_STATUS_NOT_FOUND && reg == NULL, "zk://nowhere/reg/echo gave %s", gn_status_name(s));
  gn_error_free(err);
}

/* Each setter of the ensemble options refuses what it cannot take, naming it, and leaves the options
 * as they were; gn_zk_register refuses a creator ACL without credentials and a bad name. */
static void the_ensemble_options_refuse_bad_values(void) {
  gn_zk_options *o = gn_zk_options_new();
  CHECK(o != NULL, "gn_zk_options_new");
  struct {
    gn_status status;
    const char *part;
  } results[7];
  gn_error *errs[7] = {NULL};
  results[0].status = gn_zk_options_set_servers(o, "zk1", &errs[0]);
  results[0].part = "ZooKeeper server 'zk1' in 'zk1' is not host:port";
  results[1].status = gn_zk_options_set_servers(o, "a:1/apps/", &errs[1]);
  results[1].part = "ZooKeeper chroot '/apps/'";
  results[2].status = gn_zk_options_set_digest(o, "a:b", "pw", &errs[2]);
  results[2].part = "user must be non-empty and without ':'";
  results[3].status = gn_zk_options_set_digest(o, "svc", NULL, &errs[3]);
  results[3].part = "password";
  results[4].status = gn_zk_options_set_node_acl(o, "creator", &errs[4]);
  results[4].part = "node ACL 'creator' is not one of";
  CHECK(gn_zk_options_set_node_acl(o, "creator-all", NULL) == GN_STATUS_OK, "set_node_acl(creator-all)");
  results[5].status = gn_zk_register("acl-without-credentials", o, &errs[5]);
  results[5].part = "a creator ACL needs digest credentials";
  CHECK(gn_zk_options_set_node_acl(o, "open", NULL) == GN_STATUS_OK, "set_node_acl(open)");
  results[6].status = gn_zk_register("a/b", o, &errs[6]);
  results[6].part = "ZooKeeper ensemble name 'a/b' may hold only";
  for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
    CHECK(results[i].status == GN_STATUS_INVALID_ARGUMENT, "case %zu gave %s", i, gn_status_name(results[i].status));
    CHECK(errs[i] && strstr(gn_error_message(errs[i]), results[i].part), "case %zu: message %s", i,
          errs[i] ? gn_error_message(errs[i]) : "(none)");
    gn_error_free(errs[i]);
  }
  CHECK(gn_zk_register(NULL, o, NULL) == GN_STATUS_INVALID_ARGUMENT, "a NULL name");
  CHECK(gn_zk_register("x", NULL, NULL) == GN_STATUS_INVALID_ARGUMENT, "NULL options");
  gn_zk_options_free(o);
  gn_zk_options_free(NULL);
}

/* A named ensemble with digest credentials and the creator-only ACL: its registration is resolved
 * through the name, while a resolver without the credentials gets a "not authorized" error and no
 * address. */
static void a_named_ensemble_with_digest_credentials_keeps_its_nodes_to_itself(void) {
  gn_zk_options *o = gn_zk_options_new();
  CHECK(gn_zk_options_set_servers(o, zk_servers, NULL) == GN_STATUS_OK, "set_servers");
  CHECK(gn_zk_options_set_digest(o, "svc", "right", NULL) == GN_STATUS_OK, "set_digest");
  CHECK(gn_zk_options_set_node_acl(o, "creator-all", NULL) == GN_STATUS_OK, "set_node_acl");
  gn_error *err = NULL;
  gn_status s = gn_zk_register("secured", o, &err);
  gn_zk_options_free(o);
  CHECK(s == GN_STATUS_OK, "gn_zk_register gave %s: %s", gn_status_name(s), err ? gn_error_message(err) : "");
  gn_error_free(err);

  gn_registration *reg = register_at("zk://secured/auth/echo", "127.0.0.1:7311");
  gn_resolver *owner = pull_resolver("zk://secured/auth/echo");
  char target[320], last[512];
  snprintf(target, sizeof target, "zk://%s/auth/echo", zk_servers);
  gn_resolver *stranger = pull_resolver(target);
  if (!reg || !owner || !stranger) goto out;
  CHECK(next_until(owner, "127.0.0.1:7311", 10000, last, sizeof last), "expected 127.0.0.1:7311; last: %s", last);
  CHECK(next_matching(stranger, "not authorized", true, 10000, last, sizeof last),
        "expected a 'not authorized' error; last observed: %s", last);
  CHECK(gn_registration_close(reg, 5000, NULL) == GN_STATUS_OK, "close");
  CHECK(next_until(owner, "", 10000, last, sizeof last), "expected an empty list; last observed: %s", last);
out:
  gn_resolver_free(owner);
  gn_resolver_free(stranger);
  gn_registration_free(reg);
}

/* gn_zk_register is thread-safe: four threads at once each configure a name of their own and a
 * shared one, again and again, and start and free resolvers on both between the registrations; every
 * call succeeds. */
#define RACE_THREADS 4
#define RACE_ROUNDS 20
static atomic_int race_failures;

static void *register_and_resolve(void *arg) {
  int id = (int)(intptr_t)arg;
  char own[32], target[64];
  snprintf(own, sizeof own, "race-%d", id);
  for (int round = 0; round < RACE_ROUNDS; round++) {
    gn_zk_options *o = gn_zk_options_new();
    if (!o || gn_zk_options_set_servers(o, zk_servers, NULL) != GN_STATUS_OK ||
        gn_zk_options_set_digest(o, round % 2 ? "a" : "b", "pw", NULL) != GN_STATUS_OK ||
        gn_zk_register(own, o, NULL) != GN_STATUS_OK || gn_zk_register("race-shared", o, NULL) != GN_STATUS_OK)
      atomic_fetch_add(&race_failures, 1);
    gn_zk_options_free(o);
    const char *names[] = {own, "race-shared"};
    for (int i = 0; i < 2; i++) {
      snprintf(target, sizeof target, "zk://%s/race/echo", names[i]);
      gn_resolver *r = NULL;
      gn_update_callback pull = {NULL, NULL, NULL};
      if (gn_resolver_start(target, NULL, pull, &r, NULL) != GN_STATUS_OK) atomic_fetch_add(&race_failures, 1);
      gn_resolver_free(r);
    }
  }
  return NULL;
}

static void ensembles_are_registered_and_used_from_four_threads_at_once(void) {
  pthread_t threads[RACE_THREADS];
  for (int i = 0; i < RACE_THREADS; i++)
    CHECK(pthread_create(&threads[i], NULL, register_and_resolve, (void *)(intptr_t)i) == 0, "pthread_create");
  for (int i = 0; i < RACE_THREADS; i++) pthread_join(threads[i], NULL);
  CHECK(atomic_load(&race_failures) == 0, "%d calls failed while four threads registered and resolved at once",
        atomic_load(&race_failures));
}

int main(void) {
  bool started = start_ensemble();
  if (started) {
    /* Before the first library call: setenv must not race the threads that library calls start. */
    char servers[320];
    snprintf(servers, sizeof servers, "%s/apps/prod", zk_servers);
    setenv("GNAMING_ZK_SERVERS", servers, 1);
  }
  RUN(bad_zk_targets_fail_naming_the_part);
  RUN(bad_zk_registrations_fail_naming_the_part);
  RUN(the_ensemble_options_refuse_bad_values);
  if (!started) {
    CHECK(false, "the ZooKeeper ensemble did not start (tests/harness/zk_ensemble.py)");
    return check_summary();
  }
  RUN(children_added_and_removed_reach_a_pull_resolver_and_garbage_is_skipped);
  RUN(a_chroot_in_gnaming_zk_servers_roots_targets_without_servers);
  RUN(zk_service_registrations_are_resolved_and_gone_after_close);
  RUN(a_named_ensemble_with_digest_credentials_keeps_its_nodes_to_itself);
  RUN(ensembles_are_registered_and_used_from_four_threads_at_once);
  stop_ensemble();
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
