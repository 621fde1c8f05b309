/* The resolver's C contract, tested from C: NULL arguments, errors, push and pull delivery, close
 * inside the callback, close racing deliveries, drop exactly once, no call after close, logging and
 * the runtime controls. Built with -Wall -Wextra -Werror and run under ASan+UBSan and valgrind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"
#include "gnaming.h"

/* A test closure's state: what the library did to it. */
typedef struct probe {
  atomic_int calls;
  atomic_int drops;
  atomic_int calls_after_close; /* calls that began after gn_resolver_close returned */
  atomic_int concurrent;        /* calls running right now */
  atomic_int overlaps;          /* times two calls ran at once */
  atomic_bool closed;
  atomic_ullong last_sequence;
  atomic_int out_of_order;
  _Atomic(gn_resolver *) resolver; /* for closing from inside the callback */
  int close_inside;      /* 1: close, 2: free, from inside the first call */
  long sleep_us;         /* how long each call takes */
  char first_addrs[256];
} probe;

static void probe_call(void *user_data, const gn_update *update) {
  probe *p = user_data;
  if (atomic_load(&p->closed)) atomic_fetch_add(&p->calls_after_close, 1);
  if (atomic_fetch_add(&p->concurrent, 1) > 0) atomic_fetch_add(&p->overlaps, 1);
  unsigned long long seq = gn_update_sequence(update);
  if (seq <= atomic_load(&p->last_sequence)) atomic_fetch_add(&p->out_of_order, 1);
  atomic_store(&p->last_sequence, seq);
  if (atomic_fetch_add(&p->calls, 1) == 0) {
    size_t n = gn_update_address_count(update);
    p->first_addrs[0] = 0;
    for (size_t i = 0; i < n; i++) {
      const gn_address *a = gn_update_address(update, i);
      char item[96];
      snprintf(item, sizeof item, "%s%s#%u", i ? "," : "", a->addr, a->copy_index);
      strncat(p->first_addrs, item, sizeof p->first_addrs - strlen(p->first_addrs) - 1);
    }
  }
  if (p->sleep_us) sleep_us(p->sleep_us);
  atomic_fetch_sub(&p->concurrent, 1);
  if (p->close_inside) {
    /* The first call can come before gn_resolver_start has returned the handle: wait for it. */
    for (int i = 0; i < 5000 && !atomic_load(&p->resolver); i++) sleep_us(1000);
    gn_resolver *r = atomic_exchange(&p->resolver, NULL);
    if (p->close_inside == 1) gn_resolver_close(r);
    if (p->close_inside == 2) gn_resolver_free(r);
  }
}

static void probe_drop(void *user_data) {
  probe *p = user_data;
  atomic_fetch_add(&p->drops, 1);
}

static gn_update_callback probe_callback(probe *p) {
  gn_update_callback cb = {p, probe_call, probe_drop};
  return cb;
}

static void version_matches_the_header(void) {
  CHECK(strcmp(gn_version(), GN_VERSION_STRING) == 0, "library %s, header %s", gn_version(), GN_VERSION_STRING);
  CHECK(gn_abi_version() == GN_ABI_VERSION, "library ABI %u, header %d", gn_abi_version(), GN_ABI_VERSION);
  CHECK(strcmp(gn_status_name(GN_STATUS_TIMEOUT), "GN_STATUS_TIMEOUT") == 0, "%s", gn_status_name(GN_STATUS_TIMEOUT));
}

static void null_arguments_are_errors_and_frees_of_null_are_no_ops(void) {
  probe p = {0};
  gn_resolver *r = NULL;
  gn_error *err = NULL;

  gn_status s = gn_resolver_start(NULL, NULL, probe_callback(&p), &r, &err);
  CHECK(s == GN_STATUS_INVALID_ARGUMENT, "start(NULL target) gave %s", gn_status_name(s));
  CHECK(err && strstr(gn_error_message(err), "target is NULL"), "message: %s", gn_error_message(err));
  CHECK(gn_error_status(err) == GN_STATUS_INVALID_ARGUMENT, "error status %d", gn_error_status(err));
  CHECK(r == NULL, "resolver_out written on error");
  CHECK(atomic_load(&p.drops) == 1, "drop ran %d times after a failed start", atomic_load(&p.drops));
  gn_error_free(err);

  s = gn_resolver_start("pass:///127.0.0.1:1", NULL, probe_callback(&p), NULL, NULL);
  CHECK(s == GN_STATUS_INVALID_ARGUMENT, "start(resolver_out NULL) gave %s", gn_status_name(s));
  CHECK(atomic_load(&p.drops) == 2, "drop ran %d times after two failed starts", atomic_load(&p.drops));

  err = NULL;
  gn_update *u = NULL;
  CHECK(gn_resolver_next(NULL, 0, &u, &err) == GN_STATUS_INVALID_ARGUMENT, "next(NULL)");
  CHECK(u == NULL, "update_out written on error");
  gn_error_free(err);
  CHECK(gn_resolver_resolve_now(NULL, NULL) == GN_STATUS_INVALID_ARGUMENT, "resolve_now(NULL)");
  CHECK(gn_resolver_options_set_client_language(NULL, "go", NULL) == GN_STATUS_INVALID_ARGUMENT, "set_language(NULL)");
  gn_resolver_options *o = gn_resolver_options_new();
  CHECK(o != NULL, "options_new");
  CHECK(gn_resolver_options_set_client_language(o, NULL, NULL) == GN_STATUS_INVALID_ARGUMENT, "language NULL");
  CHECK(gn_resolver_options_set_client_language(o, "", NULL) == GN_STATUS_INVALID_ARGUMENT, "language empty");
  CHECK(gn_resolver_options_set_client_language(o, "c", NULL) == GN_STATUS_OK, "language c");
  gn_resolver_options_free(o);

  gn_resolver_close(NULL);
  gn_resolver_free(NULL);
  gn_error_free(NULL);
  gn_update_free(NULL);
  gn_resolver_options_free(NULL);
  CHECK(gn_update_address_count(NULL) == 0, "count(NULL)");
  CHECK(gn_update_address(NULL, 0) == NULL, "address(NULL)");
  CHECK(gn_update_service_config(NULL) == NULL, "service_config(NULL)");
  CHECK(gn_update_error_message(NULL) == NULL, "error_message(NULL)");
  CHECK(gn_update_sequence(NULL) == 0, "sequence(NULL)");
  CHECK(gn_update_state(NULL) == GN_RESOLVER_STATE_TRANSIENT_ERROR, "state(NULL)");
  CHECK(strcmp(gn_error_message(NULL), "") == 0, "message(NULL)");
  CHECK(gn_error_status(NULL) == GN_STATUS_INVALID_ARGUMENT, "status(NULL)");
}

static void bad_targets_fail_with_a_message_naming_the_bad_part(void) {
  const struct {
    const char *target;
    gn_status status;
    const char *needle;
  } cases[] = {
      {"", GN_STATUS_INVALID_TARGET, "empty"},
      {"pass:///127.0.0.1:1#0", GN_STATUS_INVALID_TARGET, "#0"},
      {"ipv4:1.2.3.4", GN_STATUS_INVALID_TARGET, "needs a port"},
      {"bogus:thing", GN_STATUS_UNSUPPORTED_SCHEME, "unknown scheme 'bogus'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    probe p = {0};
    gn_resolver *r = NULL;
    gn_error *err = NULL;
    gn_status s = gn_resolver_start(cases[i].target, NULL, probe_callback(&p), &r, &err);
    CHECK(s == cases[i].status, "'%s' gave %s", cases[i].target, gn_status_name(s));
    CHECK(err && strstr(gn_error_message(err), cases[i].needle), "'%s': message %s", cases[i].target,
          err ? gn_error_message(err) : "(none)");
    CHECK(r == NULL && atomic_load(&p.drops) == 1, "'%s': resolver %p, drops %d", cases[i].target, (void *)r,
          atomic_load(&p.drops));
    gn_error_free(err);
  }
  const char bad_utf8[] = {'p', 'a', 's', 's', ':', (char)0xff, 0};
  gn_error *err = NULL;
  gn_resolver *r = NULL;
  gn_update_callback none = {NULL, NULL, NULL};
  CHECK(gn_resolver_start(bad_utf8, NULL, none, &r, &err) == GN_STATUS_INVALID_ARGUMENT, "non-UTF-8 target");
  CHECK(err && strstr(gn_error_message(err), "UTF-8"), "message: %s", err ? gn_error_message(err) : "(none)");
  gn_error_free(err);
}

static void a_pass_target_delivers_every_copy_to_the_callback(void) {
  probe p = {0};
  gn_resolver *r = NULL;
  gn_status s = gn_resolver_start("pass:///127.0.0.1:50051#2,[::1]:50052", NULL, probe_callback(&p), &r, NULL);
  CHECK(s == GN_STATUS_OK, "start gave %s", gn_status_name(s));
  CHECK(wait_for(&p.calls, 1, 5000), "no update within 5 s");
  const char *expected = "127.0.0.1:50051#0,127.0.0.1:50051#1,[::1]:50052#0";
  CHECK(strcmp(p.first_addrs, expected) == 0, "expected [%s], observed [%s]", expected, p.first_addrs);
  gn_resolver_free(r);
  CHECK(atomic_load(&p.drops) == 1, "drops %d", atomic_load(&p.drops));
  CHECK(atomic_load(&p.calls) == 1, "a static target delivered %d updates", atomic_load(&p.calls));
}

static void pull_resolvers_hand_out_updates_with_next_and_time_out_after(void) {
  gn_update_callback none = {NULL, NULL, NULL};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("ipv4:127.0.0.1:1,127.0.0.2:2", NULL, none, &r, NULL) == GN_STATUS_OK, "start");
  gn_update *u = NULL;
  gn_error *err = NULL;
  gn_status s = gn_resolver_next(r, 5000, &u, &err);
  CHECK(s == GN_STATUS_OK, "next gave %s: %s", gn_status_name(s), gn_error_message(err));
  CHECK(gn_update_state(u) == GN_RESOLVER_STATE_OK, "state");
  CHECK(gn_update_error_message(u) == NULL, "error message on an OK update");
  CHECK(gn_update_address_count(u) == 2, "count %zu", gn_update_address_count(u));
  const gn_address *a = gn_update_address(u, 1);
  CHECK(a && strcmp(a->addr, "127.0.0.2:2") == 0 && a->family == GN_ADDRESS_FAMILY_IPV4 && a->weight == 1 &&
            a->kind == GN_ADDRESS_KIND_BACKEND && a->metadata_json == NULL,
        "entry 1: %s", a ? a->addr : "(none)");
  CHECK(gn_update_address(u, 2) == NULL, "index past the end");
  CHECK(gn_update_sequence(u) == 1, "sequence %llu", (unsigned long long)gn_update_sequence(u));
  gn_update_free(u);

  u = NULL;
  err = NULL;
  double t0 = now_ms();
  s = gn_resolver_next(r, 50, &u, &err);
  double waited = now_ms() - t0;
  CHECK(s == GN_STATUS_TIMEOUT && u == NULL, "second next gave %s", gn_status_name(s));
  CHECK(waited >= 45, "next returned after %.1f ms, before its 50 ms timeout", waited);
  gn_error_free(err);
  CHECK(gn_resolver_resolve_now(r, NULL) == GN_STATUS_OK, "resolve_now");
  gn_resolver_close(r);
  CHECK(gn_resolver_next(r, 0, &u, NULL) == GN_STATUS_CLOSED, "next after close");
  gn_resolver_close(r);
  gn_resolver_free(r);
}

static void next_is_refused_on_a_callback_resolver(void) {
  probe p = {0};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, probe_callback(&p), &r, NULL) == GN_STATUS_OK, "start");
  gn_update *u = NULL;
  gn_error *err = NULL;
  CHECK(gn_resolver_next(r, 0, &u, &err) == GN_STATUS_BAD_STATE, "next on a callback resolver");
  CHECK(err && strstr(gn_error_message(err), "callback"), "message %s", gn_error_message(err));
  gn_error_free(err);
  gn_resolver_free(r);
  CHECK(atomic_load(&p.drops) == 1, "drops %d", atomic_load(&p.drops));
}

static void *close_after_a_moment(void *arg) {
  sleep_us(20000);
  gn_resolver_close(arg);
  return NULL;
}

static void close_from_another_thread_wakes_a_waiting_next(void) {
  probe p = {0};
  gn_update_callback pull = {&p, NULL, probe_drop};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, pull, &r, NULL) == GN_STATUS_OK, "start");
  gn_update *u = NULL;
  CHECK(gn_resolver_next(r, 5000, &u, NULL) == GN_STATUS_OK, "first next");
  gn_update_free(u);
  pthread_t closer;
  pthread_create(&closer, NULL, close_after_a_moment, r);
  double t0 = now_ms();
  gn_status s = gn_resolver_next(r, 10000, &u, NULL);
  CHECK(s == GN_STATUS_CLOSED, "a waiting next ended with %s", gn_status_name(s));
  CHECK(now_ms() - t0 < 5000, "next waited %.0f ms after close", now_ms() - t0);
  pthread_join(closer, NULL);
  CHECK(atomic_load(&p.drops) == 1, "a pull resolver's drop ran %d times at close", atomic_load(&p.drops));
  gn_resolver_free(r);
  CHECK(atomic_load(&p.drops) == 1, "drop ran again at free");
}

static void closing_or_freeing_inside_the_callback_does_not_deadlock(void) {
  for (int mode = 1; mode <= 2; mode++) {
    probe p = {0};
    p.close_inside = mode;
    gn_resolver *r = NULL;
    CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, probe_callback(&p), &r, NULL) == GN_STATUS_OK, "start");
    atomic_store(&p.resolver, r);
    CHECK(wait_for(&p.drops, 1, 5000), "mode %d: drop did not run after closing inside the callback", mode);
    CHECK(atomic_load(&p.calls) == 1 && atomic_load(&p.drops) == 1, "mode %d: calls %d drops %d", mode,
          atomic_load(&p.calls), atomic_load(&p.drops));
    if (mode == 1) gn_resolver_free(r);
    CHECK(atomic_load(&p.drops) == 1, "mode %d: drops %d after free", mode, atomic_load(&p.drops));
  }
}

typedef struct race {
  gn_resolver *resolver;
  probe *probe;
  long delay_us;
} race;

static void *close_racing(void *arg) {
  race *r = arg;
  if (r->delay_us) sleep_us(r->delay_us);
  gn_resolver_close(r->resolver);
  atomic_store(&r->probe->closed, true);
  return NULL;
}

static void close_racing_deliveries_from_another_thread_never_calls_after_close(void) {
  int violations = 0, double_drops = 0, overlaps = 0;
  unsigned seed = 12345;
  for (int i = 0; i < 1000; i++) {
    probe *p = calloc(1, sizeof *p);
    p->sleep_us = rand_r(&seed) % 200;
    gn_resolver *r = NULL;
    const char *target = (i % 2) ? "pass:///127.0.0.1:1#3,127.0.0.2:2" : "ipv6:[::1]:1";
    if (gn_resolver_start(target, NULL, probe_callback(p), &r, NULL) != GN_STATUS_OK) {
      CHECK(false, "iteration %d: start failed", i);
      free(p);
      break;
    }
    race ctx = {r, p, rand_r(&seed) % 300};
    pthread_t closer;
    pthread_create(&closer, NULL, close_racing, &ctx);
    pthread_join(closer, NULL);
    /* Any call that was going to happen would have started by now if close had not stopped it. */
    if (i % 100 == 0) sleep_us(5000);
    violations += atomic_load(&p->calls_after_close);
    overlaps += atomic_load(&p->overlaps);
    if (atomic_load(&p->drops) != 1) double_drops++;
    gn_resolver_free(r);
    if (atomic_load(&p->drops) != 1) double_drops++;
    free(p);
  }
  CHECK(violations == 0, "%d calls began after close returned", violations);
  CHECK(double_drops == 0, "%d resolvers did not drop exactly once by the time close returned", double_drops);
  CHECK(overlaps == 0, "%d calls overlapped", overlaps);
}

typedef struct log_probe {
  atomic_int lines;
  atomic_int drops;
  atomic_int started_lines;
} log_probe;

static void log_call(void *user_data, gn_log_level level, const char *target, const char *message) {
  log_probe *lp = user_data;
  (void)level;
  atomic_fetch_add(&lp->lines, 1);
  if (target && strncmp(target, "gnaming", 7) == 0 && message && strstr(message, "resolver started"))
    atomic_fetch_add(&lp->started_lines, 1);
}

static void log_drop(void *user_data) {
  log_probe *lp = user_data;
  atomic_fetch_add(&lp->drops, 1);
}

static void the_log_callback_receives_events_and_is_dropped_when_replaced(void) {
  log_probe first = {0}, second = {0};
  gn_log_callback cb = {&first, log_call, log_drop};
  CHECK(gn_log_set_callback(cb, GN_LOG_LEVEL_DEBUG, NULL) == GN_STATUS_OK, "set");
  gn_resolver *r = NULL;
  gn_update_callback none = {NULL, NULL, NULL};
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, none, &r, NULL) == GN_STATUS_OK, "start");
  gn_resolver_free(r);
  CHECK(atomic_load(&first.started_lines) >= 1, "no 'resolver started' line among %d", atomic_load(&first.lines));
  gn_log_callback cb2 = {&second, log_call, log_drop};
  CHECK(gn_log_set_callback(cb2, GN_LOG_LEVEL_ERROR, NULL) == GN_STATUS_OK, "replace");
  CHECK(atomic_load(&first.drops) == 1, "first sink dropped %d times", atomic_load(&first.drops));
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, none, &r, NULL) == GN_STATUS_OK, "start");
  gn_resolver_free(r);
  CHECK(atomic_load(&second.started_lines) == 0, "a debug line passed an error-level sink");
  gn_log_callback off = {NULL, NULL, NULL};
  CHECK(gn_log_set_callback(off, GN_LOG_LEVEL_OFF, NULL) == GN_STATUS_OK, "remove");
  CHECK(atomic_load(&second.drops) == 1, "second sink dropped %d times", atomic_load(&second.drops));
}

typedef struct shutdown_probe {
  atomic_int status;
  atomic_int done;
} shutdown_probe;

static void shutdown_inside(void *user_data, const gn_update *update) {
  shutdown_probe *sp = user_data;
  (void)update;
  if (atomic_load(&sp->done)) return;
  atomic_store(&sp->status, gn_runtime_shutdown(1000, NULL));
  atomic_store(&sp->done, 1);
}

static void runtime_controls_refuse_what_would_break(void) {
  gn_error *err = NULL;
  CHECK(gn_runtime_configure(0, &err) == GN_STATUS_INVALID_ARGUMENT, "configure(0)");
  gn_error_free(err);
  err = NULL;
  CHECK(gn_runtime_configure(3, &err) == GN_STATUS_BAD_STATE, "configure after start");
  CHECK(err && strstr(gn_error_message(err), "already running"), "message %s", gn_error_message(err));
  gn_error_free(err);

  shutdown_probe sp = {0};
  gn_update_callback cb = {&sp, shutdown_inside, NULL};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, cb, &r, NULL) == GN_STATUS_OK, "start");
  CHECK(wait_for(&sp.done, 1, 5000), "callback did not run");
  CHECK(atomic_load(&sp.status) == GN_STATUS_BAD_STATE, "shutdown inside a callback gave %s",
        gn_status_name(atomic_load(&sp.status)));
  gn_resolver_free(r);
}

static void shutdown_closes_live_resolvers_and_a_later_start_gets_a_new_runtime(void) {
  probe p = {0};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, probe_callback(&p), &r, NULL) == GN_STATUS_OK, "start");
  CHECK(wait_for(&p.calls, 1, 5000), "first update");
  CHECK(gn_runtime_shutdown(5000, NULL) == GN_STATUS_OK, "shutdown");
  CHECK(atomic_load(&p.drops) == 1, "shutdown left drop at %d", atomic_load(&p.drops));
  gn_resolver_free(r);
  CHECK(atomic_load(&p.drops) == 1, "free after shutdown dropped again");
  CHECK(gn_runtime_configure(1, NULL) == GN_STATUS_OK, "configure between runtimes");

  probe q = {0};
  CHECK(gn_resolver_start("pass:///127.0.0.1:2", NULL, probe_callback(&q), &r, NULL) == GN_STATUS_OK, "restart");
  CHECK(wait_for(&q.calls, 1, 5000), "no update from the new runtime");
  gn_resolver_free(r);
  CHECK(atomic_load(&q.drops) == 1, "drops %d", atomic_load(&q.drops));
}

/* A closure whose drop is slow and tries to shut the runtime down itself. */
typedef struct slow_drop {
  atomic_int drop_started;
  atomic_int drop_finished;
  atomic_int status_inside_drop;
} slow_drop;

static void ignore_update(void *user_data, const gn_update *update) {
  (void)user_data;
  (void)update;
}

static void slow_drop_that_shuts_down(void *user_data) {
  slow_drop *d = user_data;
  atomic_store(&d->drop_started, 1);
  atomic_store(&d->status_inside_drop, gn_runtime_shutdown(1000, NULL));
  sleep_us(300 * 1000);
  atomic_store(&d->drop_finished, 1);
}

typedef struct shutdown_call {
  gn_status status;
  int drop_finished_at_return;
  slow_drop *d;
} shutdown_call;

static void *call_shutdown(void *arg) {
  shutdown_call *c = arg;
  c->status = gn_runtime_shutdown(5000, NULL);
  c->drop_finished_at_return = atomic_load(&c->d->drop_finished);
  return NULL;
}

static void a_second_shutdown_waits_for_the_first_and_a_drop_cannot_shut_down(void) {
  slow_drop d = {0};
  gn_update_callback cb = {&d, ignore_update, slow_drop_that_shuts_down};
  gn_resolver *r = NULL;
  CHECK(gn_resolver_start("pass:///127.0.0.1:1", NULL, cb, &r, NULL) == GN_STATUS_OK, "start");
  shutdown_call first = {GN_STATUS_INTERNAL, 0, &d}, second = {GN_STATUS_INTERNAL, 0, &d};
  pthread_t t1, t2;
  pthread_create(&t1, NULL, call_shutdown, &first);
  /* The second shutdown starts while the first is inside the slow drop. */
  CHECK(wait_for(&d.drop_started, 1, 5000), "the shutdown did not start dropping the closure");
  pthread_create(&t2, NULL, call_shutdown, &second);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  CHECK(first.status == GN_STATUS_OK && second.status == GN_STATUS_OK, "shutdowns gave %s and %s",
        gn_status_name(first.status), gn_status_name(second.status));
  CHECK(first.drop_finished_at_return && second.drop_finished_at_return,
        "a shutdown returned before the drop it ran had finished (first %d, second %d)", first.drop_finished_at_return,
        second.drop_finished_at_return);
  CHECK(atomic_load(&d.status_inside_drop) == GN_STATUS_BAD_STATE, "shutdown inside a drop that a shutdown runs gave %s",
        gn_status_name(atomic_load(&d.status_inside_drop)));
  gn_resolver_free(r);
}

int main(void) {
  RUN(version_matches_the_header);
  RUN(null_arguments_are_errors_and_frees_of_null_are_no_ops);
  RUN(bad_targets_fail_with_a_message_naming_the_bad_part);
  RUN(a_pass_target_delivers_every_copy_to_the_callback);
  RUN(pull_resolvers_hand_out_updates_with_next_and_time_out_after);
  RUN(next_is_refused_on_a_callback_resolver);
  RUN(close_from_another_thread_wakes_a_waiting_next);
  RUN(closing_or_freeing_inside_the_callback_does_not_deadlock);
  RUN(close_racing_deliveries_from_another_thread_never_calls_after_close);
  RUN(the_log_callback_receives_events_and_is_dropped_when_replaced);
  RUN(runtime_controls_refuse_what_would_break);
  RUN(shutdown_closes_live_resolvers_and_a_later_start_gets_a_new_runtime);
  RUN(a_second_shutdown_waits_for_the_first_and_a_drop_cannot_shut_down);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
