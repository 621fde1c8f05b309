/* The xDS server's C API: start and stop, the address and bootstrap it reports, loopback and private
 * unix sockets only unless allowed, target conversion, the default server and its configuration, the
 * bootstrap installed into the environment with its refusal rules, and a fresh server after fork.
 * The protocol itself is tested in tests/xds_protocol.rs and by real gRPC clients. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

static char *bootstrap_of(const gn_xds_server *server) {
  char *json = NULL;
  if (gn_xds_server_bootstrap_json(server, &json, NULL) != GN_STATUS_OK) return NULL;
  return json;
}

static char *address_of(const gn_xds_server *server) {
  char *address = NULL;
  if (gn_xds_server_address(server, &address, NULL) != GN_STATUS_OK) return NULL;
  return address;
}

static void a_default_server_listens_on_loopback_and_its_bootstrap_names_it(void) {
  gn_xds_server *server = NULL;
  gn_error *err = NULL;
  CHECK(gn_xds_server_start(NULL, &server, &err) == GN_STATUS_OK, "start: %s", err ? gn_error_message(err) : "");
  gn_error_free(err);
  char *address = address_of(server);
  char *bootstrap = bootstrap_of(server);
  CHECK(address && strncmp(address, "127.0.0.1:", 10) == 0 && atoi(address + 10) > 0, "address %s",
        address ? address : "(null)");
  char expected[128];
  snprintf(expected, sizeof expected, "\"server_uri\":\"%s\"", address ? address : "?");
  CHECK(bootstrap && strstr(bootstrap, expected), "bootstrap %s lacks %s", bootstrap ? bootstrap : "(null)", expected);
  CHECK(bootstrap && strstr(bootstrap, "\"locality\":{}"), "bootstrap %s lacks a node locality",
        bootstrap ? bootstrap : "(null)");
  char *stats = NULL;
  CHECK(gn_stats_json(&stats, NULL) == GN_STATUS_OK && strstr(stats, "\"xds_servers_active\":"), "stats %s",
        stats ? stats : "(null)");
  gn_string_free(stats);
  gn_xds_server_close(server);
  gn_xds_server_close(server);
  char *still = address_of(server);
  CHECK(still != NULL, "the handle stays valid after close");
  gn_string_free(still);
  gn_xds_server_free(server);
  gn_string_free(address);
  gn_string_free(bootstrap);
}

static void a_private_unix_socket_is_mode_0600_and_removed_at_close(void) {
  gn_xds_options *o = gn_xds_options_new();
  CHECK(gn_xds_options_set_listen(o, "unix:", NULL) == GN_STATUS_OK, "unix: accepted");
  gn_xds_server *server = NULL;
  CHECK(gn_xds_server_start(o, &server, NULL) == GN_STATUS_OK, "start on a unix socket");
  char *address = address_of(server);
  CHECK(address && strncmp(address, "unix:/", 6) == 0, "address %s", address ? address : "(null)");
  struct stat st;
  CHECK(address && stat(address + 5, &st) == 0 && (st.st_mode & 0777) == 0600, "socket mode %o",
        address ? (unsigned)(st.st_mode & 0777) : 0u);
  gn_xds_server_free(server);
  CHECK(address && stat(address + 5, &st) != 0, "the socket outlived its server");
  gn_string_free(address);
  gn_xds_options_free(o);
}

static void a_non_loopback_address_needs_an_explicit_allowance(void) {
  gn_xds_options *o = gn_xds_options_new();
  gn_error *err = NULL;
  CHECK(gn_xds_options_set_listen(o, "0.0.0.0:0", &err) == GN_STATUS_INVALID_ARGUMENT, "refused");
  CHECK(err && strstr(gn_error_message(err), "non-loopback"), "message: %s", err ? gn_error_message(err) : "");
  gn_error_free(err);
  CHECK(gn_xds_options_set_allow_non_loopback(o, true, NULL) == GN_STATUS_OK, "allow");
  CHECK(gn_xds_options_set_listen(o, "0.0.0.0:0", NULL) == GN_STATUS_OK, "allowed explicitly");
  /* Taking the allowance back makes the start refuse the address again. */
  CHECK(gn_xds_options_set_allow_non_loopback(o, false, NULL) == GN_STATUS_OK, "disallow");
  gn_xds_server *server = NULL;
  CHECK(gn_xds_server_start(o, &server, NULL) == GN_STATUS_INVALID_ARGUMENT && server == NULL, "start refused");
  gn_xds_options_free(o);
}

static void targets_convert_to_the_xds_form_of_their_server(void) {
  char *x = NULL;
  CHECK(gn_xds_target(NULL, "etcd:///echo", &x, NULL) == GN_STATUS_OK && strcmp(x, "xds:///echo") == 0, "got %s",
        x ? x : "(null)");
  gn_string_free(x);
  x = NULL;
  CHECK(gn_xds_target(NULL, "dns:///h.test:443", &x, NULL) == GN_STATUS_OK && strcmp(x, "xds:///dns:///h.test:443") == 0,
        "got %s", x ? x : "(null)");
  gn_string_free(x);
  gn_xds_options *o = gn_xds_options_new();
  CHECK(gn_xds_options_set_default_scheme(o, "dns", NULL) == GN_STATUS_OK, "scheme");
  gn_xds_server *server = NULL;
  CHECK(gn_xds_server_start(o, &server, NULL) == GN_STATUS_OK, "start");
  x = NULL;
  CHECK(gn_xds_target(server, "etcd:///echo", &x, NULL) == GN_STATUS_OK && strcmp(x, "xds:///etcd:///echo") == 0,
        "a dns-default server must name etcd targets in full, got %s", x ? x : "(null)");
  gn_string_free(x);
  x = NULL;
  CHECK(gn_xds_target(server, "dns:///echo", &x, NULL) == GN_STATUS_OK && strcmp(x, "xds:///echo") == 0, "got %s",
        x ? x : "(null)");
  gn_string_free(x);
  /* #N: copies become channels, since xDS cannot list an address twice (the JSON is compact). */
  x = NULL;
  CHECK(gn_xds_channels_json(server, "dns:///echo", &x, NULL) == GN_STATUS_OK &&
            strcmp(x, "[{\"share\":1,\"target\":\"xds:///echo\"}]") == 0,
        "got %s", x ? x : "(null)");
  gn_string_free(x);
  x = NULL;
  CHECK(gn_xds_channels_json(NULL, "etcd:///echo#2", &x, NULL) == GN_STATUS_OK &&
            strcmp(x, "[{\"share\":1,\"target\":\"xds:///echo\"},{\"share\":1,\"target\":\"xds:///echo\"}]") == 0,
        "got %s", x ? x : "(null)");
  gn_string_free(x);
  x = NULL;
  CHECK(gn_xds_channels_json(NULL, "pass:///127.0.0.1:1#2,127.0.0.1:2", &x, NULL) == GN_STATUS_OK &&
            strcmp(x, "[{\"share\":2,\"target\":\"xds:///pass:///127.0.0.1:1,127.0.0.1:2\"},"
                      "{\"share\":1,\"target\":\"xds:///pass:///127.0.0.1:1\"}]") == 0,
        "got %s", x ? x : "(null)");
  gn_string_free(x);
  gn_xds_server_free(server);
  gn_xds_options_free(o);
}

static void the_default_server_is_configured_before_first_use_only(void) {
  gn_xds_options *o = gn_xds_options_new();
  CHECK(gn_xds_options_set_node_id_check(o, true, NULL) == GN_STATUS_OK, "node id check");
  CHECK(gn_xds_options_set_default_scheme(o, "dns", NULL) == GN_STATUS_OK, "scheme");
  CHECK(gn_xds_default_configure(o, NULL) == GN_STATUS_OK, "configure before use");
  /* NULL names the default server: its configured scheme decides the short form, before it runs. */
  char *x = NULL;
  CHECK(gn_xds_target(NULL, "dns:///echo", &x, NULL) == GN_STATUS_OK && strcmp(x, "xds:///echo") == 0,
        "the default server's scheme must be used, got %s", x ? x : "(null)");
  gn_string_free(x);
  x = NULL;
  CHECK(gn_xds_channels_json(NULL, "etcd:///echo", &x, NULL) == GN_STATUS_OK && strstr(x, "xds:///etcd:///echo"),
        "the default server's scheme must be used, got %s", x ? x : "(null)");
  gn_string_free(x);
  char *json = NULL;
  CHECK(gn_xds_default_bootstrap_json(&json, NULL) == GN_STATUS_OK, "default bootstrap");
  char *again = NULL;
  CHECK(gn_xds_default_bootstrap_json(&again, NULL) == GN_STATUS_OK && json && again && strcmp(json, again) == 0,
        "one default server per process");
  gn_error *err = NULL;
  CHECK(gn_xds_default_configure(o, &err) == GN_STATUS_BAD_STATE, "configure after use is refused");
  CHECK(err && strstr(gn_error_message(err), "before first use"), "message: %s", err ? gn_error_message(err) : "");
  gn_error_free(err);
  gn_string_free(json);
  gn_string_free(again);
  gn_xds_options_free(o);
}

static void the_bootstrap_is_installed_unless_the_process_has_another(void) {
  char *ours = NULL;
  CHECK(gn_xds_default_bootstrap_json(&ours, NULL) == GN_STATUS_OK, "default bootstrap");
  setenv("GRPC_XDS_BOOTSTRAP_CONFIG", "{\"xds_servers\":[]}", 1);
  gn_error *err = NULL;
  CHECK(gn_xds_install_bootstrap(&err) == GN_STATUS_BAD_STATE, "another inline bootstrap must be refused");
  CHECK(err && strstr(gn_error_message(err), "GRPC_XDS_BOOTSTRAP_CONFIG"), "message: %s",
        err ? gn_error_message(err) : "");
  gn_error_free(err);
  CHECK(strcmp(getenv("GRPC_XDS_BOOTSTRAP_CONFIG"), "{\"xds_servers\":[]}") == 0, "a refusal changes nothing");
  unsetenv("GRPC_XDS_BOOTSTRAP_CONFIG");
  setenv("GRPC_XDS_BOOTSTRAP", "/nonexistent/bootstrap.json", 1);
  err = NULL;
  CHECK(gn_xds_install_bootstrap(&err) == GN_STATUS_BAD_STATE, "a bootstrap file must be refused");
  CHECK(err && strstr(gn_error_message(err), "GRPC_XDS_BOOTSTRAP"), "message: %s", err ? gn_error_message(err) : "");
  gn_error_free(err);
  unsetenv("GRPC_XDS_BOOTSTRAP");
  CHECK(gn_xds_install_bootstrap(NULL) == GN_STATUS_OK, "installed");
  const char *installed = getenv("GRPC_XDS_BOOTSTRAP_CONFIG");
  CHECK(installed && ours && strcmp(installed, ours) == 0, "the environment holds %s", installed ? installed : "(null)");
  CHECK(gn_xds_install_bootstrap(NULL) == GN_STATUS_OK, "installing again is harmless");
  gn_string_free(ours);
}

/* Runs after the bootstrap was installed: the child inherits the variable naming the parent's server. */
static void a_forked_child_gets_a_fresh_server_and_bootstrap(void) {
  char *parent = NULL;
  CHECK(gn_xds_default_bootstrap_json(&parent, NULL) == GN_STATUS_OK, "parent bootstrap");
  pid_t child = fork();
  if (child == 0) {
    int failures = 0;
    char *own = NULL;
    if (gn_xds_default_bootstrap_json(&own, NULL) != GN_STATUS_OK) failures |= 1;
    if (own && parent && strcmp(own, parent) == 0) failures |= 2;
    if (gn_xds_install_bootstrap(NULL) != GN_STATUS_OK) failures |= 4;
    const char *env = getenv("GRPC_XDS_BOOTSTRAP_CONFIG");
    if (!env || !own || strcmp(env, own) != 0) failures |= 8;
    gn_string_free(own);
    _exit(failures);
  }
  CHECK(child > 0, "fork failed");
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "child failures %d (1 no server, 2 parent's server, 4 install refused, 8 env not the child's)",
        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  char *after = NULL;
  CHECK(gn_xds_default_bootstrap_json(&after, NULL) == GN_STATUS_OK && after && parent && strcmp(after, parent) == 0,
        "the parent keeps its server");
  gn_string_free(after);
  gn_string_free(parent);
}

int main(void) {
  unsetenv("GRPC_XDS_BOOTSTRAP_CONFIG");
  unsetenv("GRPC_XDS_BOOTSTRAP");
  RUN(a_default_server_listens_on_loopback_and_its_bootstrap_names_it);
  RUN(a_private_unix_socket_is_mode_0600_and_removed_at_close);
  RUN(a_non_loopback_address_needs_an_explicit_allowance);
  RUN(targets_convert_to_the_xds_form_of_their_server);
  RUN(the_default_server_is_configured_before_first_use_only);
  RUN(the_bootstrap_is_installed_unless_the_process_has_another);
  RUN(a_forked_child_gets_a_fresh_server_and_bootstrap);
  CHECK(gn_runtime_shutdown(5000, NULL) == GN_STATUS_OK, "shutdown");
  return check_summary();
}
