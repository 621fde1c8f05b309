/* Every exported function given NULLs, invalid UTF-8 and out-of-range values (enums passed as any
 * integer): each returns a status or its documented harmless result, never crashes, and leaves its
 * out-parameters untouched on error. The test fails when include/gnaming.h declares a function that
 * no check here covers, so a new export cannot skip this. Needs no server: targets are static. */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "gnaming.h"

/* --- coverage: which exported functions the checks below call --- */

static const char *covered[128];
static size_t covered_count;

/* Names a function as covered; taking its address makes the compiler check that it exists. */
#define COVER(fn)                        \
  do {                                   \
    void (*volatile addr)(void) = (void (*)(void))(fn); \
    (void)addr;                          \
    cover(#fn);                          \
  } while (0)

static void cover(const char *name) {
  for (size_t i = 0; i < covered_count; i++)
    if (strcmp(covered[i], name) == 0) return;
  if (covered_count < sizeof covered / sizeof covered[0]) covered[covered_count++] = name;
}

static bool is_covered(const char *name) {
  for (size_t i = 0; i < covered_count; i++)
    if (strcmp(covered[i], name) == 0) return true;
  return false;
}

/* --- helpers --- */

/* Out-parameters start as this, so a write on error shows. */
static char sentinel_byte;
#define SENTINEL ((void *)&sentinel_byte)

static const char bad_utf8[] = {'\xff', '\xfe', 0};

/* A failing call with an err_out: the status, an error object with that status and a message that
 * contains `needle` (when given). Frees the error. */
#define EXPECT_ERROR(call_with_err, expected, needle)                                                      \
  do {                                                                                                     \
    gn_error *err = SENTINEL;                                                                              \
    gn_error **err_out = &err;                                                                             \
    (void)err_out;                                                                                         \
    gn_status got_ = (call_with_err);                                                                      \
    CHECK(got_ == (expected), "%s gave %s, expected %s", #call_with_err, gn_status_name(got_),            \
          gn_status_name(expected));                                                                       \
    CHECK(err != SENTINEL && err != NULL, "%s wrote no error object", #call_with_err);                    \
    if (err != SENTINEL && err != NULL) {                                                                  \
      CHECK(gn_error_status(err) == (expected), "%s: error object has %s", #call_with_err,                \
            gn_status_name(gn_error_status(err)));                                                         \
      const char *n_ = (needle);                                                                           \
      CHECK(n_ == NULL || strstr(gn_error_message(err), n_), "%s: message '%s' lacks '%s'", #call_with_err, \
            gn_error_message(err), n_ ? n_ : "");                                                          \
      gn_error_free(err);                                                                                  \
    }                                                                                                      \
  } while (0)

/* A succeeding call with an err_out: GN_STATUS_OK and the error untouched. */
#define EXPECT_OK(call_with_err)                                                                    \
  do {                                                                                              \
    gn_error *err = SENTINEL;                                                                       \
    gn_error **err_out = &err;                                                                      \
    (void)err_out;                                                                                  \
    gn_status got_ = (call_with_err);                                                               \
    CHECK(got_ == GN_STATUS_OK, "%s gave %s", #call_with_err, gn_status_name(got_));                \
    CHECK(err == SENTINEL, "%s wrote err_out on success", #call_with_err);                         \
  } while (0)

static atomic_int drops;

static void count_drop(void *user_data) {
  (void)user_data;
  atomic_fetch_add(&drops, 1);
}

static void ignore_update(void *user_data, const gn_update *update) {
  (void)user_data;
  (void)update;
}

static void ignore_log(void *user_data, gn_log_level level, const char *target, const char *message) {
  (void)user_data;
  (void)level;
  (void)target;
  (void)message;
}

/* --- the checks --- */

static void version_functions_never_fail(void) {
  COVER(gn_version);
  COVER(gn_abi_version);
  CHECK(gn_version() != NULL && strcmp(gn_version(), GN_VERSION_STRING) == 0, "version %s", gn_version());
  CHECK(gn_abi_version() == GN_ABI_VERSION, "abi %u", gn_abi_version());
}

static void status_names_cover_every_status_and_unknown_values_get_a_static_name(void) {
  COVER(gn_status_name);
#define NAMED(s) {s, #s}
  const struct {
    int value;
    const char *name;
  } known[] = {
      NAMED(GN_STATUS_OK),          NAMED(GN_STATUS_INVALID_ARGUMENT), NAMED(GN_STATUS_INVALID_TARGET),
      NAMED(GN_STATUS_UNSUPPORTED_SCHEME), NAMED(GN_STATUS_TIMEOUT),   NAMED(GN_STATUS_CLOSED),
      NAMED(GN_STATUS_BAD_STATE),   NAMED(GN_STATUS_UNAVAILABLE),      NAMED(GN_STATUS_PERMISSION_DENIED),
      NAMED(GN_STATUS_NOT_FOUND),   NAMED(GN_STATUS_RUNTIME),          NAMED(GN_STATUS_INTERNAL),
  };
#undef NAMED
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    const char *name = gn_status_name(known[i].value);
    CHECK(name && strcmp(name, known[i].name) == 0, "status %d named '%s', header says %s", known[i].value,
          name ? name : "(null)", known[i].name);
  }
  const int unknown[] = {12, 13, 64, 999, 100000, -1, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *name = gn_status_name(unknown[i]);
    CHECK(name && strcmp(name, "GN_STATUS_UNKNOWN") == 0, "status %d named '%s'", unknown[i], name ? name : "(null)");
  }
}

static void error_functions_accept_null(void) {
  COVER(gn_error_status);
  COVER(gn_error_message);
  COVER(gn_error_free);
  CHECK(gn_error_status(NULL) == GN_STATUS_INVALID_ARGUMENT, "status(NULL)");
  CHECK(gn_error_message(NULL) && strcmp(gn_error_message(NULL), "") == 0, "message(NULL)");
  gn_error_free(NULL);
}

static void log_levels_out_of_range_are_invalid_arguments_and_the_closure_is_dropped_once(void) {
  COVER(gn_log_set_callback);
  const int levels[] = {6, 99, -3, -1, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
    int before = atomic_load(&drops);
    gn_log_callback cb = {NULL, ignore_log, count_drop};
    EXPECT_ERROR(gn_log_set_callback(cb, levels[i], err_out), GN_STATUS_INVALID_ARGUMENT, "max_level");
    CHECK(atomic_load(&drops) == before + 1, "level %d: drop ran %d times", levels[i], atomic_load(&drops) - before);
    before = atomic_load(&drops);
    CHECK(gn_log_set_callback(cb, levels[i], NULL) == GN_STATUS_INVALID_ARGUMENT, "level %d without err_out",
          levels[i]);
    CHECK(atomic_load(&drops) == before + 1, "level %d: drop ran %d times", levels[i], atomic_load(&drops) - before);
  }
  /* Valid removals: a NULL call, or level OFF with a call; each closure dropped once, at once. */
  int before = atomic_load(&drops);
  gn_log_callback no_call = {NULL, NULL, count_drop};
  EXPECT_OK(gn_log_set_callback(no_call, GN_LOG_LEVEL_TRACE, err_out));
  gn_log_callback off = {NULL, ignore_log, count_drop};
  EXPECT_OK(gn_log_set_callback(off, GN_LOG_LEVEL_OFF, err_out));
  CHECK(atomic_load(&drops) == before + 2, "removals dropped %d closures", atomic_load(&drops) - before);
  /* An installed sink is dropped when replaced, before the replacing call returns. */
  gn_log_callback sink = {NULL, ignore_log, count_drop};
  EXPECT_OK(gn_log_set_callback(sink, GN_LOG_LEVEL_ERROR, err_out));
  CHECK(atomic_load(&drops) == before + 2, "installed sink dropped early");
  EXPECT_ERROR(gn_log_set_callback(sink, 6, err_out), GN_STATUS_INVALID_ARGUMENT, "max_level");
  CHECK(atomic_load(&drops) == before + 3, "the refused closure was not dropped once");
  EXPECT_OK(gn_log_set_callback(no_call, GN_LOG_LEVEL_OFF, err_out));
  CHECK(atomic_load(&drops) == before + 5, "replacing a sink dropped %d closures, expected 2 (old and NULL-call)",
        atomic_load(&drops) - before - 3);
}

static void runtime_configure_refuses_out_of_range_sizes(void) {
  COVER(gn_runtime_configure);
  EXPECT_ERROR(gn_runtime_configure(0, err_out), GN_STATUS_INVALID_ARGUMENT, "worker threads");
  EXPECT_ERROR(gn_runtime_configure(SIZE_MAX, err_out), GN_STATUS_INVALID_ARGUMENT, "worker threads");
  EXPECT_ERROR(gn_runtime_configure(257, err_out), GN_STATUS_INVALID_ARGUMENT, "worker threads");
}

static void cluster_options_refuse_nulls_and_bad_values(void) {
  COVER(gn_cluster_options_new);
  COVER(gn_cluster_options_free);
  COVER(gn_cluster_options_set_endpoints);
  COVER(gn_cluster_options_set_dial_timeout_ms);
  COVER(gn_cluster_options_set_request_timeout_ms);
  COVER(gn_cluster_options_set_tls);
  COVER(gn_cluster_options_set_auth);
  COVER(gn_cluster_register);
  gn_cluster_options_free(NULL);
  EXPECT_ERROR(gn_cluster_options_set_endpoints(NULL, "127.0.0.1:2379", err_out), GN_STATUS_INVALID_ARGUMENT,
               "options is NULL");
  EXPECT_ERROR(gn_cluster_options_set_dial_timeout_ms(NULL, 10, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_cluster_options_set_request_timeout_ms(NULL, 10, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_cluster_options_set_tls(NULL, NULL, NULL, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_cluster_options_set_auth(NULL, "u", "p", err_out), GN_STATUS_INVALID_ARGUMENT, "options");

  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(o != NULL, "cluster options");
  EXPECT_ERROR(gn_cluster_options_set_endpoints(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "endpoints_csv");
  EXPECT_ERROR(gn_cluster_options_set_endpoints(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_cluster_options_set_endpoints(o, "", err_out), GN_STATUS_INVALID_ARGUMENT, NULL);
  EXPECT_ERROR(gn_cluster_options_set_dial_timeout_ms(o, 0, err_out), GN_STATUS_INVALID_ARGUMENT, "at least 1 ms");
  EXPECT_ERROR(gn_cluster_options_set_request_timeout_ms(o, 0, err_out), GN_STATUS_INVALID_ARGUMENT, "at least");
  EXPECT_OK(gn_cluster_options_set_dial_timeout_ms(o, UINT32_MAX, err_out));
  EXPECT_ERROR(gn_cluster_options_set_tls(o, NULL, NULL, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "ca_pem_path");
  EXPECT_ERROR(gn_cluster_options_set_tls(o, "/nonexistent/ca.pem", NULL, NULL, err_out), GN_STATUS_INVALID_ARGUMENT,
               "ca_pem_path");
  EXPECT_ERROR(gn_cluster_options_set_tls(o, bad_utf8, bad_utf8, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, NULL);
  EXPECT_ERROR(gn_cluster_options_set_auth(o, NULL, "p", err_out), GN_STATUS_INVALID_ARGUMENT, "user");
  EXPECT_ERROR(gn_cluster_options_set_auth(o, "u", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "password");
  EXPECT_ERROR(gn_cluster_options_set_auth(o, "", "p", err_out), GN_STATUS_INVALID_ARGUMENT, "empty");

  EXPECT_ERROR(gn_cluster_register(NULL, o, err_out), GN_STATUS_INVALID_ARGUMENT, "name");
  EXPECT_ERROR(gn_cluster_register("c", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_cluster_register(bad_utf8, o, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_cluster_register("a/b", o, err_out), GN_STATUS_INVALID_ARGUMENT, NULL);
  gn_cluster_options_free(o);
}

static void zk_options_refuse_nulls_and_bad_values(void) {
  COVER(gn_zk_options_new);
  COVER(gn_zk_options_free);
  COVER(gn_zk_options_set_servers);
  COVER(gn_zk_options_set_digest);
  COVER(gn_zk_options_set_node_acl);
  COVER(gn_zk_register);
  gn_zk_options_free(NULL);
  EXPECT_ERROR(gn_zk_options_set_servers(NULL, "127.0.0.1:2181", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_zk_options_set_digest(NULL, "u", "p", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_zk_options_set_node_acl(NULL, "open", err_out), GN_STATUS_INVALID_ARGUMENT, "options");

  gn_zk_options *o = gn_zk_options_new();
  CHECK(o != NULL, "zk options");
  EXPECT_ERROR(gn_zk_options_set_servers(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "connect_string");
  EXPECT_ERROR(gn_zk_options_set_servers(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_zk_options_set_servers(o, "", err_out), GN_STATUS_INVALID_ARGUMENT, "is not host:port");
  EXPECT_ERROR(gn_zk_options_set_servers(o, "a:1/", err_out), GN_STATUS_INVALID_ARGUMENT, "chroot");
  EXPECT_ERROR(gn_zk_options_set_digest(o, NULL, "p", err_out), GN_STATUS_INVALID_ARGUMENT, "user");
  EXPECT_ERROR(gn_zk_options_set_digest(o, "u", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "password");
  EXPECT_ERROR(gn_zk_options_set_digest(o, "", "p", err_out), GN_STATUS_INVALID_ARGUMENT, "user");
  EXPECT_ERROR(gn_zk_options_set_digest(o, bad_utf8, "p", err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_zk_options_set_node_acl(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "acl");
  EXPECT_ERROR(gn_zk_options_set_node_acl(o, "OPEN", err_out), GN_STATUS_INVALID_ARGUMENT, "is not one of");

  EXPECT_ERROR(gn_zk_register(NULL, o, err_out), GN_STATUS_INVALID_ARGUMENT, "name");
  EXPECT_ERROR(gn_zk_register("z", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_zk_register(bad_utf8, o, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_zk_register("a/b", o, err_out), GN_STATUS_INVALID_ARGUMENT, "may hold only");
  gn_zk_options_free(o);
}

static void dns_options_refuse_nulls_and_out_of_range_values(void) {
  COVER(gn_resolver_options_set_dns_nameserver);
  COVER(gn_resolver_options_set_dns_min_resolve_interval_ms);
  COVER(gn_resolver_options_set_dns_ttl_refresh);
  COVER(gn_resolver_options_set_dns_refresh_range_ms);
  COVER(gn_resolver_options_set_dns_backoff);
  COVER(gn_resolver_options_set_dns_query_timeout_ms);
  COVER(gn_resolver_options_set_dns_service_config);
  COVER(gn_resolver_options_set_dns_grpclb);
  COVER(gn_resolver_options_set_dns_srv_backends);
  COVER(gn_resolver_options_set_dns_client_hostname);
  EXPECT_ERROR(gn_resolver_options_set_dns_nameserver(NULL, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_min_resolve_interval_ms(NULL, 1, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_ttl_refresh(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_refresh_range_ms(NULL, 1, 2, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_backoff(NULL, 1, 1.6, 2, 0.2, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_query_timeout_ms(NULL, 1, 1, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_service_config(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_grpclb(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_srv_backends(NULL, true, NULL, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");
  EXPECT_ERROR(gn_resolver_options_set_dns_client_hostname(NULL, NULL, err_out), GN_STATUS_INVALID_ARGUMENT,
               "options");

  gn_resolver_options *o = gn_resolver_options_new();
  CHECK(o != NULL, "resolver options");
  EXPECT_ERROR(gn_resolver_options_set_dns_nameserver(o, "not an address", err_out), GN_STATUS_INVALID_ARGUMENT, NULL);
  EXPECT_ERROR(gn_resolver_options_set_dns_nameserver(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_dns_nameserver(o, NULL, err_out));
  EXPECT_ERROR(gn_resolver_options_set_dns_min_resolve_interval_ms(o, UINT64_MAX, err_out), GN_STATUS_INVALID_ARGUMENT,
               "more than a day");
  EXPECT_ERROR(gn_resolver_options_set_dns_refresh_range_ms(o, 0, 10, err_out), GN_STATUS_INVALID_ARGUMENT, "refresh");
  EXPECT_ERROR(gn_resolver_options_set_dns_refresh_range_ms(o, 10, 5, err_out), GN_STATUS_INVALID_ARGUMENT, "refresh");
  EXPECT_ERROR(gn_resolver_options_set_dns_refresh_range_ms(o, 1, UINT64_MAX, err_out), GN_STATUS_INVALID_ARGUMENT,
               "more than a day");
  EXPECT_ERROR(gn_resolver_options_set_dns_backoff(o, 0, 1.6, 10, 0.2, err_out), GN_STATUS_INVALID_ARGUMENT,
               "backoff_initial");
  EXPECT_ERROR(gn_resolver_options_set_dns_backoff(o, 1, NAN, 10, 0.2, err_out), GN_STATUS_INVALID_ARGUMENT,
               "backoff_multiplier");
  EXPECT_ERROR(gn_resolver_options_set_dns_backoff(o, 1, INFINITY, 10, 0.2, err_out), GN_STATUS_INVALID_ARGUMENT,
               "backoff_multiplier");
  EXPECT_ERROR(gn_resolver_options_set_dns_backoff(o, 1, 1.6, 10, NAN, err_out), GN_STATUS_INVALID_ARGUMENT,
               "backoff_jitter");
  EXPECT_ERROR(gn_resolver_options_set_dns_backoff(o, 1, 1.6, 10, -1.0, err_out), GN_STATUS_INVALID_ARGUMENT,
               "backoff_jitter");
  EXPECT_ERROR(gn_resolver_options_set_dns_query_timeout_ms(o, 0, 2, err_out), GN_STATUS_INVALID_ARGUMENT, "query");
  EXPECT_ERROR(gn_resolver_options_set_dns_query_timeout_ms(o, 100, 0, err_out), GN_STATUS_INVALID_ARGUMENT, "query");
  EXPECT_ERROR(gn_resolver_options_set_dns_query_timeout_ms(o, 100, UINT32_MAX, err_out), GN_STATUS_INVALID_ARGUMENT,
               "query");
  EXPECT_ERROR(gn_resolver_options_set_dns_srv_backends(o, true, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT,
               "UTF-8");
  EXPECT_ERROR(gn_resolver_options_set_dns_srv_backends(o, true, "", err_out), GN_STATUS_INVALID_ARGUMENT, NULL);
  EXPECT_ERROR(gn_resolver_options_set_dns_client_hostname(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_dns_ttl_refresh(o, false, err_out));
  EXPECT_OK(gn_resolver_options_set_dns_service_config(o, false, err_out));
  EXPECT_OK(gn_resolver_options_set_dns_grpclb(o, true, err_out));
  EXPECT_OK(gn_resolver_options_set_dns_srv_backends(o, true, NULL, err_out));
  EXPECT_OK(gn_resolver_options_set_dns_client_hostname(o, NULL, err_out));
  gn_resolver_options_free(o);
}

static void registration_calls_refuse_nulls_and_bad_values(void) {
  COVER(gn_registration_options_new);
  COVER(gn_registration_options_free);
  COVER(gn_registration_options_set_cluster);
  COVER(gn_registration_options_set_ttl_ms);
  COVER(gn_registration_options_set_metadata_json);
  COVER(gn_registration_options_set_raw_value);
  COVER(gn_registration_start);
  COVER(gn_registration_wait);
  COVER(gn_registration_get_state);
  COVER(gn_registration_close);
  COVER(gn_registration_free);
  gn_registration_options_free(NULL);
  EXPECT_ERROR(gn_registration_options_set_cluster(NULL, "", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_registration_options_set_ttl_ms(NULL, 5000, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_registration_options_set_metadata_json(NULL, "{}", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_registration_options_set_raw_value(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT, "options");

  gn_registration_options *o = gn_registration_options_new();
  CHECK(o != NULL, "registration options");
  EXPECT_ERROR(gn_registration_options_set_cluster(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "cluster");
  EXPECT_ERROR(gn_registration_options_set_cluster(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_registration_options_set_ttl_ms(o, 0, err_out), GN_STATUS_INVALID_ARGUMENT, "minimum");
  EXPECT_ERROR(gn_registration_options_set_ttl_ms(o, 999, err_out), GN_STATUS_INVALID_ARGUMENT, "minimum");
  EXPECT_ERROR(gn_registration_options_set_metadata_json(o, "{", err_out), GN_STATUS_INVALID_ARGUMENT, "JSON");
  EXPECT_ERROR(gn_registration_options_set_metadata_json(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_registration_options_set_metadata_json(o, NULL, err_out));
  EXPECT_OK(gn_registration_options_set_raw_value(o, false, err_out));
  COVER(gn_registration_options_set_format);
  EXPECT_ERROR(gn_registration_options_set_format(NULL, "kratos", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_registration_options_set_format(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "format");
  EXPECT_ERROR(gn_registration_options_set_format(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_registration_options_set_format(o, "Kratos", err_out), GN_STATUS_INVALID_ARGUMENT,
               "etcd, kratos, go-micro");
  EXPECT_OK(gn_registration_options_set_format(o, "go-micro", err_out));
  EXPECT_OK(gn_registration_options_set_format(o, "etcd", err_out));

  gn_registration *r = SENTINEL;
  EXPECT_ERROR(gn_registration_start(NULL, "127.0.0.1:9", o, &r, err_out), GN_STATUS_INVALID_ARGUMENT, "service");
  EXPECT_ERROR(gn_registration_start("svc", NULL, o, &r, err_out), GN_STATUS_INVALID_ARGUMENT, "address");
  EXPECT_ERROR(gn_registration_start("svc", "127.0.0.1:9", o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT,
               "registration_out");
  EXPECT_ERROR(gn_registration_start(bad_utf8, "127.0.0.1:9", o, &r, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_registration_start("svc", "no port", o, &r, err_out), GN_STATUS_INVALID_ARGUMENT, NULL);
  CHECK(r == SENTINEL, "registration_out written on error");
  gn_registration_options_free(o);

  EXPECT_ERROR(gn_registration_wait(NULL, 0, err_out), GN_STATUS_INVALID_ARGUMENT, "registration");
  EXPECT_ERROR(gn_registration_wait(NULL, INT64_MIN, err_out), GN_STATUS_INVALID_ARGUMENT, "registration");
  CHECK(gn_registration_get_state(NULL) == GN_REGISTRATION_STATE_CLOSED, "state(NULL)");
  EXPECT_OK(gn_registration_close(NULL, 0, err_out));
  EXPECT_OK(gn_registration_close(NULL, UINT32_MAX, err_out));
  gn_registration_free(NULL);
}

static void resolver_calls_refuse_nulls_and_bad_values_and_drop_the_closure_once(void) {
  COVER(gn_resolver_options_new);
  COVER(gn_resolver_options_free);
  COVER(gn_resolver_options_set_client_language);
  COVER(gn_resolver_start);
  COVER(gn_resolver_resolve_now);
  COVER(gn_resolver_next);
  COVER(gn_resolver_close);
  COVER(gn_resolver_free);
  gn_resolver_options_free(NULL);
  EXPECT_ERROR(gn_resolver_options_set_client_language(NULL, "go", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  gn_resolver_options *o = gn_resolver_options_new();
  EXPECT_ERROR(gn_resolver_options_set_client_language(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "language");
  EXPECT_ERROR(gn_resolver_options_set_client_language(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_resolver_options_set_client_language(o, "", err_out), GN_STATUS_INVALID_ARGUMENT, "empty");
  COVER(gn_resolver_options_set_resolve_host_names);
  EXPECT_ERROR(gn_resolver_options_set_resolve_host_names(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_OK(gn_resolver_options_set_resolve_host_names(o, true, err_out));
  EXPECT_OK(gn_resolver_options_set_resolve_host_names(o, false, err_out));
  COVER(gn_resolver_options_add_selector);
  EXPECT_ERROR(gn_resolver_options_add_selector(NULL, "version", "v2", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_add_selector(o, NULL, "v2", err_out), GN_STATUS_INVALID_ARGUMENT, "key");
  EXPECT_ERROR(gn_resolver_options_add_selector(o, "version", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "value");
  EXPECT_ERROR(gn_resolver_options_add_selector(o, bad_utf8, "v2", err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_ERROR(gn_resolver_options_add_selector(o, "", "v2", err_out), GN_STATUS_INVALID_ARGUMENT, "non-empty");
  EXPECT_ERROR(gn_resolver_options_add_selector(o, "version", "", err_out), GN_STATUS_INVALID_ARGUMENT, "non-empty");
  EXPECT_OK(gn_resolver_options_add_selector(o, "version", "v2", err_out));
  COVER(gn_resolver_options_set_empty_policy);
  EXPECT_ERROR(gn_resolver_options_set_empty_policy(NULL, "keep", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_empty_policy(o, "drop", err_out), GN_STATUS_INVALID_ARGUMENT, "'drop'");
  EXPECT_ERROR(gn_resolver_options_set_empty_policy(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_empty_policy(o, "keep", err_out));
  EXPECT_OK(gn_resolver_options_set_empty_policy(o, NULL, err_out));
  COVER(gn_resolver_options_set_zone);
  EXPECT_ERROR(gn_resolver_options_set_zone(NULL, "a", 1, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_zone(o, "", 1, err_out), GN_STATUS_INVALID_ARGUMENT, "zone is empty");
  EXPECT_ERROR(gn_resolver_options_set_zone(o, "a", 0, err_out), GN_STATUS_INVALID_ARGUMENT, "min_count 0");
  EXPECT_ERROR(gn_resolver_options_set_zone(o, "a", 10001, err_out), GN_STATUS_INVALID_ARGUMENT, "min_count 10001");
  EXPECT_ERROR(gn_resolver_options_set_zone(o, bad_utf8, 1, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_zone(o, "a", 2, err_out));
  EXPECT_OK(gn_resolver_options_set_zone(o, NULL, 0, err_out));
  COVER(gn_resolver_options_set_subset);
  EXPECT_ERROR(gn_resolver_options_set_subset(NULL, 3, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_subset(o, 10001, err_out), GN_STATUS_INVALID_ARGUMENT, "subset 10001");
  EXPECT_OK(gn_resolver_options_set_subset(o, 3, err_out));
  EXPECT_OK(gn_resolver_options_set_subset(o, 0, err_out));
  COVER(gn_resolver_options_set_client_id);
  EXPECT_ERROR(gn_resolver_options_set_client_id(NULL, "a", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_client_id(o, "", err_out), GN_STATUS_INVALID_ARGUMENT, "client id is empty");
  EXPECT_ERROR(gn_resolver_options_set_client_id(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_client_id(o, "web-7", err_out));
  EXPECT_OK(gn_resolver_options_set_client_id(o, NULL, err_out));
  COVER(gn_resolver_options_set_health_check);
  EXPECT_ERROR(gn_resolver_options_set_health_check(NULL, "", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_health_check(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_health_check(o, "", err_out));
  EXPECT_OK(gn_resolver_options_set_health_check(o, NULL, err_out));
  COVER(gn_resolver_options_set_cache_dir);
  EXPECT_ERROR(gn_resolver_options_set_cache_dir(NULL, "/tmp/c", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_cache_dir(o, "", err_out), GN_STATUS_INVALID_ARGUMENT, "cache dir is empty");
  EXPECT_ERROR(gn_resolver_options_set_cache_dir(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "UTF-8");
  EXPECT_OK(gn_resolver_options_set_cache_dir(o, "/tmp/c", err_out));
  EXPECT_OK(gn_resolver_options_set_cache_dir(o, NULL, err_out));
  COVER(gn_resolver_options_set_cache_max_age_ms);
  EXPECT_ERROR(gn_resolver_options_set_cache_max_age_ms(NULL, 1000, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_resolver_options_set_cache_max_age_ms(o, 0, err_out), GN_STATUS_INVALID_ARGUMENT, "at least 1");
  EXPECT_OK(gn_resolver_options_set_cache_max_age_ms(o, UINT64_MAX, err_out));

  const struct {
    const char *target;
    int with_out;
    gn_status status;
    const char *needle;
  } cases[] = {
      {NULL, 1, GN_STATUS_INVALID_ARGUMENT, "target is NULL"},
      {bad_utf8, 1, GN_STATUS_INVALID_ARGUMENT, "UTF-8"},
      {"pass:///127.0.0.1:1", 0, GN_STATUS_INVALID_ARGUMENT, "resolver_out"},
      {"", 1, GN_STATUS_INVALID_TARGET, NULL},
      {"nope:x", 1, GN_STATUS_UNSUPPORTED_SCHEME, NULL},
      {"pass:///127.0.0.1:1?version=v2", 1, GN_STATUS_INVALID_TARGET, "unknown key 'version'"},
      {"pass:///127.0.0.1:1?select.version=v1", 1, GN_STATUS_INVALID_TARGET, "query key 'select.version'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int push = 0; push < 2; push++) {
      int before = atomic_load(&drops);
      gn_update_callback cb = {NULL, push ? ignore_update : NULL, count_drop};
      gn_resolver *r = SENTINEL;
      EXPECT_ERROR(gn_resolver_start(cases[i].target, o, cb, cases[i].with_out ? &r : NULL, err_out), cases[i].status,
                   cases[i].needle);
      CHECK(r == SENTINEL, "case %zu: resolver_out written on error", i);
      CHECK(atomic_load(&drops) == before + 1, "case %zu: drop ran %d times", i, atomic_load(&drops) - before);
    }
  }
  gn_resolver_options_free(o);

  gn_update *u = SENTINEL;
  EXPECT_ERROR(gn_resolver_resolve_now(NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "resolver");
  EXPECT_ERROR(gn_resolver_next(NULL, 0, &u, err_out), GN_STATUS_INVALID_ARGUMENT, "resolver");
  EXPECT_ERROR(gn_resolver_next(NULL, INT64_MIN, &u, err_out), GN_STATUS_INVALID_ARGUMENT, "resolver");
  CHECK(u == SENTINEL, "update_out written on error");
  gn_resolver_close(NULL);
  gn_resolver_free(NULL);

  /* A live pull resolver: NULL out-parameter, closed, then every call again. */
  int before = atomic_load(&drops);
  gn_update_callback pull = {NULL, NULL, count_drop};
  gn_resolver *r = NULL;
  EXPECT_OK(gn_resolver_start("pass:///127.0.0.1:1", NULL, pull, &r, err_out));
  EXPECT_ERROR(gn_resolver_next(r, 0, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "update_out");
  EXPECT_OK(gn_resolver_resolve_now(r, err_out));
  gn_resolver_close(r);
  CHECK(atomic_load(&drops) == before + 1, "close dropped %d times", atomic_load(&drops) - before);
  u = SENTINEL;
  EXPECT_ERROR(gn_resolver_next(r, INT64_MIN, &u, err_out), GN_STATUS_CLOSED, NULL);
  EXPECT_ERROR(gn_resolver_next(r, INT64_MAX, &u, err_out), GN_STATUS_CLOSED, NULL);
  CHECK(u == SENTINEL, "update_out written on error");
  gn_resolver_close(r);
  gn_resolver_free(r);
  CHECK(atomic_load(&drops) == before + 1, "drop ran %d times after close, close, free", atomic_load(&drops) - before);

  /* A push resolver refuses next without touching update_out. */
  gn_update_callback push = {NULL, ignore_update, count_drop};
  EXPECT_OK(gn_resolver_start("pass:///127.0.0.1:1", NULL, push, &r, err_out));
  EXPECT_ERROR(gn_resolver_next(r, 0, &u, err_out), GN_STATUS_BAD_STATE, NULL);
  CHECK(u == SENTINEL, "update_out written on error");
  gn_resolver_free(r);
}

static void update_getters_accept_null_and_out_of_range_indexes(void) {
  COVER(gn_update_state);
  COVER(gn_update_error_message);
  COVER(gn_update_sequence);
  COVER(gn_update_address_count);
  COVER(gn_update_address);
  COVER(gn_update_service_config);
  COVER(gn_update_free);
  CHECK(gn_update_state(NULL) == GN_RESOLVER_STATE_TRANSIENT_ERROR, "state(NULL)");
  CHECK(gn_update_error_message(NULL) == NULL, "error_message(NULL)");
  CHECK(gn_update_sequence(NULL) == 0, "sequence(NULL)");
  CHECK(gn_update_address_count(NULL) == 0, "count(NULL)");
  CHECK(gn_update_address(NULL, 0) == NULL, "address(NULL, 0)");
  CHECK(gn_update_address(NULL, SIZE_MAX) == NULL, "address(NULL, SIZE_MAX)");
  CHECK(gn_update_service_config(NULL) == NULL, "service_config(NULL)");
  gn_update_free(NULL);

  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  gn_update *u = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1,127.0.0.1:2", NULL, pull, &r, NULL) == GN_STATUS_OK, "start");
  CHECK(gn_resolver_next(r, 5000, &u, NULL) == GN_STATUS_OK && u != NULL, "first update");
  CHECK(gn_update_address_count(u) == 2, "count %zu", gn_update_address_count(u));
  CHECK(gn_update_address(u, 2) == NULL, "address(u, 2)");
  CHECK(gn_update_address(u, SIZE_MAX) == NULL, "address(u, SIZE_MAX)");
  gn_update_free(u);
  gn_resolver_free(r);
}

static void stats_and_strings_refuse_null_outputs(void) {
  COVER(gn_stats_json);
  COVER(gn_stats_prometheus);
  COVER(gn_string_free);
  EXPECT_ERROR(gn_stats_json(NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "json_out");
  EXPECT_ERROR(gn_stats_prometheus(NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "text_out");
  CHECK(gn_stats_prometheus(NULL, NULL) == GN_STATUS_INVALID_ARGUMENT, "prometheus(NULL, NULL)");
  char *json = NULL;
  EXPECT_OK(gn_stats_json(&json, err_out));
  CHECK(json && json[0] == '{', "stats: %s", json ? json : "(null)");
  gn_string_free(json);
  char *text = NULL;
  EXPECT_OK(gn_stats_prometheus(&text, err_out));
  CHECK(text && strncmp(text, "# HELP gnaming_", 15) == 0, "prometheus: %s", text ? text : "(null)");
  gn_string_free(text);
  gn_string_free(NULL);
}

static void xds_calls_refuse_nulls_and_bad_values(void) {
  COVER(gn_xds_options_new);
  COVER(gn_xds_options_free);
  COVER(gn_xds_options_set_listen);
  COVER(gn_xds_options_set_allow_non_loopback);
  COVER(gn_xds_options_set_default_scheme);
  COVER(gn_xds_options_set_node_id_check);
  COVER(gn_xds_options_set_resolver_options);
  COVER(gn_xds_server_start);
  COVER(gn_xds_server_address);
  COVER(gn_xds_server_bootstrap_json);
  COVER(gn_xds_server_close);
  COVER(gn_xds_server_free);
  COVER(gn_xds_target);
  COVER(gn_xds_channels_json);
  COVER(gn_xds_default_configure);
  COVER(gn_xds_default_bootstrap_json);
  COVER(gn_xds_install_bootstrap);
  gn_xds_options_free(NULL);
  gn_xds_server_close(NULL);
  gn_xds_server_free(NULL);
  gn_xds_options *o = gn_xds_options_new();
  CHECK(o != NULL, "options");
  EXPECT_ERROR(gn_xds_options_set_listen(NULL, "127.0.0.1:0", err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_xds_options_set_listen(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "address");
  EXPECT_ERROR(gn_xds_options_set_listen(o, bad_utf8, err_out), GN_STATUS_INVALID_ARGUMENT, "address");
  EXPECT_ERROR(gn_xds_options_set_listen(o, "example.com:80", err_out), GN_STATUS_INVALID_ARGUMENT, "IP address");
  EXPECT_ERROR(gn_xds_options_set_listen(o, "0.0.0.0:0", err_out), GN_STATUS_INVALID_ARGUMENT, "non-loopback");
  EXPECT_ERROR(gn_xds_options_set_listen(o, "unix:relative", err_out), GN_STATUS_INVALID_ARGUMENT, "absolute");
  EXPECT_ERROR(gn_xds_options_set_allow_non_loopback(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_xds_options_set_default_scheme(o, "nosuch", err_out), GN_STATUS_INVALID_ARGUMENT, "nosuch");
  EXPECT_ERROR(gn_xds_options_set_default_scheme(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "scheme");
  EXPECT_ERROR(gn_xds_options_set_node_id_check(NULL, true, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  EXPECT_ERROR(gn_xds_options_set_resolver_options(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "resolver_options");
  EXPECT_ERROR(gn_xds_default_configure(NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  gn_xds_server *server = SENTINEL;
  EXPECT_ERROR(gn_xds_server_start(o, NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "server_out");
  CHECK(server == SENTINEL, "server_out written on error");
  char *text = SENTINEL;
  EXPECT_ERROR(gn_xds_server_address(NULL, &text, err_out), GN_STATUS_INVALID_ARGUMENT, "server");
  EXPECT_ERROR(gn_xds_server_bootstrap_json(NULL, &text, err_out), GN_STATUS_INVALID_ARGUMENT, "server");
  EXPECT_ERROR(gn_xds_target(NULL, NULL, &text, err_out), GN_STATUS_INVALID_ARGUMENT, "target");
  EXPECT_ERROR(gn_xds_target(NULL, "nosuch:///x", &text, err_out), GN_STATUS_UNSUPPORTED_SCHEME, "nosuch");
  EXPECT_ERROR(gn_xds_target(NULL, "etcd:///echo", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "xds_target_out");
  EXPECT_ERROR(gn_xds_channels_json(NULL, NULL, &text, err_out), GN_STATUS_INVALID_ARGUMENT, "target");
  EXPECT_ERROR(gn_xds_channels_json(NULL, "etcd:///echo#0", &text, err_out), GN_STATUS_INVALID_TARGET, "#0");
  EXPECT_ERROR(gn_xds_channels_json(NULL, "etcd:///echo", NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "json_out");
  EXPECT_ERROR(gn_xds_default_bootstrap_json(NULL, err_out), GN_STATUS_INVALID_ARGUMENT, "json_out");
  CHECK(text == SENTINEL, "an output was written on error");
  /* The one call that takes no arguments but err_out: NULL err_out is allowed. */
  (void)gn_xds_install_bootstrap;
  gn_xds_options_free(o);
}

static void runtime_shutdown_accepts_any_timeout(void) {
  COVER(gn_runtime_shutdown);
  EXPECT_OK(gn_runtime_shutdown(0, err_out));
  EXPECT_OK(gn_runtime_shutdown(UINT32_MAX, err_out));
}

/* Every function the header declares is covered above. */
static void warm_up_and_drain_refuse_nulls_and_take_any_duration(void) {
  COVER(gn_registration_options_set_warmup_ms);
  COVER(gn_registration_drain);
  EXPECT_ERROR(gn_registration_options_set_warmup_ms(NULL, 1000, err_out), GN_STATUS_INVALID_ARGUMENT, "options");
  gn_registration_options *o = gn_registration_options_new();
  EXPECT_OK(gn_registration_options_set_warmup_ms(o, 0, err_out));
  EXPECT_OK(gn_registration_options_set_warmup_ms(o, UINT32_MAX, err_out));
  gn_registration_options_free(o);
  EXPECT_OK(gn_registration_drain(NULL, 0, 0, err_out));
  EXPECT_OK(gn_registration_drain(NULL, UINT32_MAX, UINT32_MAX, err_out));
}

static void every_exported_function_is_covered(void) {
  const char *path = getenv("GNAMING_HEADER") ? getenv("GNAMING_HEADER") : "include/gnaming.h";
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot open %s (run from the repository root or set GNAMING_HEADER)", path);
  if (!f) return;
  char line[1024];
  int declared = 0;
  while (fgets(line, sizeof line, f)) {
    /* Declarations start at column 0 with a return type; the name is the gn_ word before '('. */
    if (line[0] == ' ' || line[0] == '*' || line[0] == '/' || line[0] == '#') continue;
    char *paren = strchr(line, '(');
    if (!paren) continue;
    char *start = paren;
    while (start > line && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
                            (start[-1] >= '0' && start[-1] <= '9')))
      start--;
    if (strncmp(start, "gn_", 3) != 0) continue;
    *paren = 0;
    declared++;
    CHECK(is_covered(start), "%s is exported but test_bad_arguments.c does not cover it", start);
  }
  fclose(f);
  CHECK(declared >= 50, "found only %d functions in %s", declared, path);
  printf("%d exported functions, %zu covered\n", declared, covered_count);
}

int main(void) {
  RUN(version_functions_never_fail);
  RUN(status_names_cover_every_status_and_unknown_values_get_a_static_name);
  RUN(error_functions_accept_null);
  RUN(runtime_configure_refuses_out_of_range_sizes);
  RUN(log_levels_out_of_range_are_invalid_arguments_and_the_closure_is_dropped_once);
  RUN(cluster_options_refuse_nulls_and_bad_values);
  RUN(zk_options_refuse_nulls_and_bad_values);
  RUN(dns_options_refuse_nulls_and_out_of_range_values);
  RUN(registration_calls_refuse_nulls_and_bad_values);
  RUN(resolver_calls_refuse_nulls_and_bad_values_and_drop_the_closure_once);
  RUN(update_getters_accept_null_and_out_of_range_indexes);
  RUN(stats_and_strings_refuse_null_outputs);
  RUN(xds_calls_refuse_nulls_and_bad_values);
  RUN(runtime_shutdown_accepts_any_timeout);
  RUN(warm_up_and_drain_refuse_nulls_and_take_any_duration);
  RUN(every_exported_function_is_covered);
  return check_summary();
}
