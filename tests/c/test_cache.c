/* The cold-start cache against a real etcd cluster (GNAMING_TEST_ETCD_ENDPOINTS and GNAMING_TEST_ETCD_DIR,
 * set by tests/harness/etcd_cluster.py run): a resolver with a cache directory writes its list (file
 * 0600 in a directory made 0700, also through GNAMING_CACHE_DIR); with every member stopped, a NEW
 * resolver delivers that list in a TRANSIENT_ERROR update that gives its age, while a corrupt copy of
 * the file is ignored with a logged warning; the members restart and the live list follows, with a
 * change made after the restart. Built with -Wall -Wextra -Werror and run under ASan+UBSan and
 * valgrind. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

#define WAIT_MS 15000

static char service[64];
static char cache_dir[256];

/* The warnings the library logged (the sink may run on any library thread). */
static char warnings[8192];
static pthread_mutex_t warnings_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_log(void *user_data, gn_log_level level, const char *target, const char *message) {
  (void)user_data;
  (void)target;
  if (level != GN_LOG_LEVEL_WARN) return;
  pthread_mutex_lock(&warnings_lock);
  strncat(warnings, message, sizeof warnings - strlen(warnings) - 1);
  strncat(warnings, "\n", sizeof warnings - strlen(warnings) - 1);
  pthread_mutex_unlock(&warnings_lock);
}

static bool warned(const char *needle) {
  pthread_mutex_lock(&warnings_lock);
  bool found = strstr(warnings, needle) != NULL;
  pthread_mutex_unlock(&warnings_lock);
  return found;
}

/* Runs the harness's `stop-all` or `start-all` on the suite's cluster. */
static bool cluster(const char *command) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "python3 tests/harness/etcd_cluster.py %s --dir '%s'", command,
           getenv("GNAMING_TEST_ETCD_DIR"));
  return system(cmd) == 0;
}

/* "a,b": the addresses of an update in key order. */
static void describe(const gn_update *u, char *out, size_t size) {
  out[0] = 0;
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    if (i) strncat(out, ",", size - strlen(out) - 1);
    strncat(out, gn_update_address(u, i)->addr, size - strlen(out) - 1);
  }
}

/* Pulls updates until one in `state` lists exactly `expected` and its message holds every needle (NULL
 * ends them); prints the expected and the last observed update otherwise. */
static bool expect_update(gn_resolver *r, gn_resolver_state state, const char *expected, const char *needle1,
                          const char *needle2, const char *what) {
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
    gn_update_free(u);
    if (seen == state && strcmp(observed, expected) == 0 && (!needle1 || strstr(message, needle1)) &&
        (!needle2 || strstr(message, needle2))) {
      check_passed++;
      return true;
    }
  }
  CHECK(false, "%s: expected %s [%s] '%s' '%s', observed %s [%s] '%s'", what,
        state == GN_RESOLVER_STATE_OK ? "OK" : "TRANSIENT_ERROR", expected, needle1 ? needle1 : "",
        needle2 ? needle2 : "", seen == GN_RESOLVER_STATE_OK ? "OK" : "TRANSIENT_ERROR", observed, message);
  return false;
}

/* A pull resolver of the test's service on the cluster named `name` with `dir` as its cache directory
 * (NULL: GNAMING_CACHE_DIR). */
static gn_resolver *resolver(const char *name, const char *dir) {
  char target[128];
  snprintf(target, sizeof target, "etcd://%s/%s", name, service);
  gn_resolver_options *o = gn_resolver_options_new();
  if (dir) CHECK(gn_resolver_options_set_cache_dir(o, dir, NULL) == GN_STATUS_OK, "cache dir %s", dir);
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  gn_status s = gn_resolver_start(target, o, pull, &r, &err);
  CHECK(s == GN_STATUS_OK, "resolver %s: %s", target, gn_error_message(err));
  gn_error_free(err);
  gn_resolver_options_free(o);
  return r;
}

static gn_registration *reg(const char *address, bool wait) {
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, 5000, NULL);
  gn_registration_options_set_metadata_json(o, "{\"weight\":3,\"zone\":\"a\"}", NULL);
  gn_registration *r = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start(service, address, o, &r, &err);
  if (s == GN_STATUS_OK && wait) s = gn_registration_wait(r, WAIT_MS, &err);
  CHECK(s == GN_STATUS_OK, "register %s %s: %s", service, address, gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  return r;
}

/* With etcd down, a resolver whose target asks for health checks gets the cached list with a service
 * config that asks for them too: the cached list is handed on like a live one. */
static void expect_cached_list_with_health_check(const char *dir) {
  char target[160];
  snprintf(target, sizeof target, "etcd://fresh/%s?health=*", service);
  gn_resolver_options *o = gn_resolver_options_new();
  CHECK(gn_resolver_options_set_cache_dir(o, dir, NULL) == GN_STATUS_OK, "cache dir %s", dir);
  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  CHECK(gn_resolver_start(target, o, pull, &r, &err) == GN_STATUS_OK, "resolver %s: %s", target,
        gn_error_message(err));
  gn_error_free(err);
  gn_resolver_options_free(o);
  if (!r) return;
  char config[512] = "(no update with the cached list)";
  double end = now_ms() + WAIT_MS;
  bool found = false;
  while (!found && now_ms() < end) {
    gn_update *u = NULL;
    if (gn_resolver_next(r, 200, &u, NULL) != GN_STATUS_OK) continue;
    if (gn_update_state(u) == GN_RESOLVER_STATE_TRANSIENT_ERROR && gn_update_address_count(u) == 2) {
      const char *c = gn_update_service_config(u);
      snprintf(config, sizeof config, "%s", c ? c : "(none)");
      found = true;
    }
    gn_update_free(u);
  }
  CHECK(found && strstr(config, "\"healthCheckConfig\":{\"serviceName\":\"\"}"),
        "the cached list under ?health=* has service config %s", config);
  gn_resolver_free(r);
}

/* The one cache file in `dir`, into `path`; false if there is not exactly one. */
static bool cache_file(const char *dir, char *path, size_t size) {
  DIR *d = opendir(dir);
  if (!d) return false;
  int found = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, size, "%s/%s", dir, e->d_name);
    found++;
  }
  closedir(d);
  return found == 1;
}

static void configure(void) {
  const char *endpoints = getenv("GNAMING_TEST_ETCD_ENDPOINTS");
  CHECK(endpoints && *endpoints && getenv("GNAMING_TEST_ETCD_DIR"),
        "GNAMING_TEST_ETCD_ENDPOINTS and GNAMING_TEST_ETCD_DIR are not set: run under tests/harness/etcd_cluster.py run");
  if (!endpoints || !getenv("GNAMING_TEST_ETCD_DIR")) exit(check_summary());
  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(gn_cluster_options_set_endpoints(o, endpoints, NULL) == GN_STATUS_OK, "endpoints %s", endpoints);
  CHECK(gn_cluster_options_set_dial_timeout_ms(o, 1000, NULL) == GN_STATUS_OK, "dial timeout");
  CHECK(gn_cluster_options_set_request_timeout_ms(o, 2000, NULL) == GN_STATUS_OK, "request timeout");
  CHECK(gn_cluster_register("c", o, NULL) == GN_STATUS_OK, "register c");
  /* The same members under another name get connections and watches of their own: resolvers on it
   * start as in a new process, without the list the process's watch on "c" still holds. The cache file
   * is the same, since it is named after the members. */
  CHECK(gn_cluster_register("fresh", o, NULL) == GN_STATUS_OK, "register fresh");
  gn_cluster_options_free(o);
  /* The ASan and the valgrind run share one cluster: each uses a service of its own. */
  snprintf(service, sizeof service, "cache-%ld", (long)getpid());
  snprintf(cache_dir, sizeof cache_dir, "/tmp/gnaming-test-cache-%ld", (long)getpid());
  gn_log_callback log = {NULL, on_log, NULL};
  CHECK(gn_log_set_callback(log, GN_LOG_LEVEL_WARN, NULL) == GN_STATUS_OK, "log sink");
}

static void the_setters_refuse_bad_values(void) {
  gn_resolver_options *o = gn_resolver_options_new();
  gn_error *err = NULL;
  CHECK(gn_resolver_options_set_cache_dir(o, "", &err) == GN_STATUS_INVALID_ARGUMENT, "an empty dir");
  CHECK(err && strstr(gn_error_message(err), "cache dir is empty"), "message: %s", gn_error_message(err));
  gn_error_free(err);
  err = NULL;
  CHECK(gn_resolver_options_set_cache_max_age_ms(o, 0, &err) == GN_STATUS_INVALID_ARGUMENT, "max age 0");
  CHECK(err && strstr(gn_error_message(err), "at least 1"), "message: %s", gn_error_message(err));
  gn_error_free(err);
  CHECK(gn_resolver_options_set_cache_max_age_ms(o, 60000, NULL) == GN_STATUS_OK, "max age 60 s");
  CHECK(gn_resolver_options_set_cache_dir(o, cache_dir, NULL) == GN_STATUS_OK, "a dir");
  CHECK(gn_resolver_options_set_cache_dir(o, NULL, NULL) == GN_STATUS_OK, "NULL restores the default");
  gn_resolver_options_free(o);
}

static void a_cold_start_serves_the_cached_list_with_its_age_then_the_live_list(void) {
  gn_registration *one = reg("127.0.0.1:7501", true);
  gn_registration *two = reg("127.0.0.1:7502", true);
  const char *both = "127.0.0.1:7501,127.0.0.1:7502";

  /* A first resolver writes the list; freeing it waits for the write. */
  gn_resolver *first = resolver("c", cache_dir);
  expect_update(first, GN_RESOLVER_STATE_OK, both, NULL, NULL, "the live list");
  gn_resolver_free(first);
  char path[512] = "";
  CHECK(cache_file(cache_dir, path, sizeof path), "one cache file in %s", cache_dir);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "%s has mode %o, not 600", path, st.st_mode & 0777);
  CHECK(stat(cache_dir, &st) == 0 && (st.st_mode & 0777) == 0700, "%s has mode %o, not 700", cache_dir,
        st.st_mode & 0777);

  /* GNAMING_CACHE_DIR gives the directory when the options do not. */
  char env_dir[300];
  snprintf(env_dir, sizeof env_dir, "%s-env", cache_dir);
  setenv("GNAMING_CACHE_DIR", env_dir, 1);
  gn_resolver *by_env = resolver("c", NULL);
  unsetenv("GNAMING_CACHE_DIR");
  expect_update(by_env, GN_RESOLVER_STATE_OK, both, NULL, NULL, "the live list, cache dir from the environment");
  gn_resolver_free(by_env);
  char env_path[600] = "";
  CHECK(cache_file(env_dir, env_path, sizeof env_path), "one cache file in %s", env_dir);

  /* A corrupt copy of the cache in a directory of its own. */
  char bad_dir[300], bad_path[700];
  snprintf(bad_dir, sizeof bad_dir, "%s-corrupt", cache_dir);
  mkdir(bad_dir, 0700);
  snprintf(bad_path, sizeof bad_path, "%s/%s", bad_dir, strrchr(path, '/') + 1);
  FILE *f = fopen(bad_path, "w");
  CHECK(f != NULL, "cannot write %s", bad_path);
  if (f) {
    fputs("{\"format\":1,\"target\":\"etcd:///", f);
    fclose(f);
  }

  CHECK(cluster("stop-all"), "stop-all");
  gn_resolver *cold = resolver("fresh", cache_dir);
  expect_update(cold, GN_RESOLVER_STATE_TRANSIENT_ERROR, both, "serving the cached list written ", " s ago: ",
                "a new resolver with etcd down serves the cached list");
  gn_resolver *corrupt = resolver("fresh", bad_dir);
  expect_update(corrupt, GN_RESOLVER_STATE_TRANSIENT_ERROR, "", NULL, NULL, "a corrupt cache serves nothing");
  CHECK(warned("ignored: it is corrupt"), "no warning about the corrupt file; warnings:\n%s", warnings);
  gn_resolver_free(corrupt);
  expect_cached_list_with_health_check(cache_dir);

  CHECK(cluster("start-all"), "start-all");
  expect_update(cold, GN_RESOLVER_STATE_OK, both, NULL, NULL, "the live list after the restart");
  gn_registration *three = reg("127.0.0.1:7503", true);
  expect_update(cold, GN_RESOLVER_STATE_OK, "127.0.0.1:7501,127.0.0.1:7502,127.0.0.1:7503", NULL, NULL,
                "a change after the restart");
  gn_resolver_free(cold);

  gn_registration *regs[] = {one, two, three};
  for (size_t i = 0; i < 3; i++) {
    CHECK(gn_registration_close(regs[i], WAIT_MS, NULL) == GN_STATUS_OK, "deregister %zu", i);
    gn_registration_free(regs[i]);
  }
  char *dirs[] = {cache_dir, env_dir, bad_dir};
  for (size_t i = 0; i < 3; i++) {
    char file[700];
    if (cache_file(dirs[i], file, sizeof file)) unlink(file);
    CHECK(rmdir(dirs[i]) == 0, "%s holds more than its one cache file", dirs[i]);
  }
}

int main(void) {
  configure();
  RUN(the_setters_refuse_bad_values);
  RUN(a_cold_start_serves_the_cached_list_with_its_age_then_the_live_list);
  gn_runtime_shutdown(5000, NULL);
  gn_log_callback none = {NULL, NULL, NULL};
  gn_log_set_callback(none, GN_LOG_LEVEL_OFF, NULL);
  return check_summary();
}
