/* The closure contract of src/ffi/closure.rs, tested from C: whoever releases a closure returns only
 * after its `drop` has run, also when several threads release it at once, so a host may free its
 * user_data as soon as its own call returns. Covers pull resolvers closed from many threads, a log
 * sink replaced while one of its calls runs, gn_runtime_shutdown and pull closures, and a `drop` that
 * closes its own resolver. Every wait is bounded: a hang fails the test instead of stalling the suite.
 * Needs no server (a registration against a closed port makes the library log). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

/* Runs fn(arg) on a thread and waits at most timeout_ms for it; a hang ends the test, since the
 * stuck thread holds state the rest would touch. */
static void run_bounded(void *(*fn)(void *), void *arg, int timeout_ms, const char *what) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0) {
    CHECK(false, "%s: pthread_create failed", what);
    return;
  }
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  if (pthread_timedjoin_np(t, NULL, &deadline) != 0) {
    fprintf(stderr, "FAIL %s: still running after %d ms (hang)\n", what, timeout_ms);
    check_failed++;
    check_summary();
    _exit(1);
  }
}

/* --- many threads close one idle pull resolver whose drop is slow --- */

typedef struct slow_closure {
  atomic_int drops_started;
  atomic_int drops_done;
  gn_resolver *resolver;
  atomic_int go;                     /* closers start together */
  atomic_int closes_before_drop_end; /* closes that returned while drop had not finished */
} slow_closure;

static void slow_drop(void *user_data) {
  slow_closure *c = user_data;
  atomic_fetch_add(&c->drops_started, 1);
  sleep_us(20000);
  atomic_fetch_add(&c->drops_done, 1);
}

static void *close_when_told(void *arg) {
  slow_closure *c = arg;
  while (!atomic_load(&c->go)) sleep_us(50);
  gn_resolver_close(c->resolver);
  if (atomic_load(&c->drops_done) != 1) atomic_fetch_add(&c->closes_before_drop_end, 1);
  return NULL;
}

typedef struct race {
  int threads;
  int iterations;
  int late_closes;
  int wrong_drops;
} race;

static void *close_race(void *arg) {
  race *r = arg;
  for (int i = 0; i < r->iterations; i++) {
    slow_closure c = {0};
    gn_update_callback pull = {&c, NULL, slow_drop};
    if (gn_resolver_start("pass:///127.0.0.1:1", NULL, pull, &c.resolver, NULL) != GN_STATUS_OK) {
      r->wrong_drops++;
      continue;
    }
    pthread_t closers[8];
    for (int t = 0; t < r->threads; t++) pthread_create(&closers[t], NULL, close_when_told, &c);
    atomic_store(&c.go, 1);
    for (int t = 0; t < r->threads; t++) pthread_join(closers[t], NULL);
    r->late_closes += atomic_load(&c.closes_before_drop_end);
    if (atomic_load(&c.drops_done) != 1 || atomic_load(&c.drops_started) != 1) r->wrong_drops++;
    gn_resolver_free(c.resolver);
    if (atomic_load(&c.drops_done) != 1) r->wrong_drops++;
  }
  return NULL;
}

static void concurrent_closes_of_a_pull_resolver_all_return_after_its_drop(void) {
  for (int threads = 2; threads <= 8; threads *= 2) {
    race r = {threads, 20, 0, 0};
    run_bounded(close_race, &r, 60000, "concurrent pull closes");
    CHECK(r.late_closes == 0, "%d threads: %d closes returned before drop had finished", threads, r.late_closes);
    CHECK(r.wrong_drops == 0, "%d threads: %d iterations did not drop exactly once", threads, r.wrong_drops);
  }
}

/* --- a drop that closes its own resolver --- */

typedef struct reentrant {
  gn_resolver *resolver;
  atomic_int drops;
} reentrant;

static void drop_closing_itself(void *user_data) {
  reentrant *r = user_data;
  gn_resolver_close(r->resolver);
  atomic_fetch_add(&r->drops, 1);
}

static void *start_and_close_reentrant(void *arg) {
  reentrant *r = arg;
  gn_update_callback pull = {r, NULL, drop_closing_itself};
  if (gn_resolver_start("pass:///127.0.0.1:1", NULL, pull, &r->resolver, NULL) != GN_STATUS_OK) return NULL;
  gn_resolver_close(r->resolver);
  gn_resolver_free(r->resolver);
  return NULL;
}

static void a_drop_that_closes_its_own_resolver_does_not_deadlock(void) {
  reentrant r = {0};
  run_bounded(start_and_close_reentrant, &r, 10000, "close from inside drop");
  CHECK(atomic_load(&r.drops) == 1, "drop ran %d times", atomic_load(&r.drops));
}

/* --- the log sink --- */

typedef struct sink {
  atomic_int calls_started;
  atomic_int calls_running;
  atomic_int drops;
  atomic_int drop_while_calling;
  atomic_int nested_status; /* what gn_log_set_callback returned inside a call; -1 until tried */
  atomic_int nested_drops;
  bool try_nested;
} sink;

static void count_nested_drop(void *user_data) {
  sink *s = user_data;
  atomic_fetch_add(&s->nested_drops, 1);
}

static void slow_log(void *user_data, gn_log_level level, const char *target, const char *message) {
  (void)level;
  (void)target;
  (void)message;
  sink *s = user_data;
  atomic_fetch_add(&s->calls_running, 1);
  if (atomic_fetch_add(&s->calls_started, 1) == 0 && s->try_nested) {
    gn_log_callback nested = {s, NULL, count_nested_drop};
    atomic_store(&s->nested_status, gn_log_set_callback(nested, GN_LOG_LEVEL_OFF, NULL));
  }
  sleep_us(100000);
  atomic_fetch_sub(&s->calls_running, 1);
}

static void sink_drop(void *user_data) {
  sink *s = user_data;
  if (atomic_load(&s->calls_running) > 0) atomic_fetch_add(&s->drop_while_calling, 1);
  atomic_fetch_add(&s->drops, 1);
}

/* A registration against a port nothing listens on: the library logs a warning per attempt. */
static gn_registration *start_failing_registration(void) {
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "127.0.0.1:1", NULL);
  gn_registration *reg = NULL;
  gn_registration_start("closure-test", "127.0.0.1:9", o, &reg, NULL);
  gn_registration_options_free(o);
  return reg;
}

typedef struct replace {
  sink *s;
  int drops_at_return;
  bool saw_call;
} replace;

static void *replace_sink_during_a_call(void *arg) {
  replace *r = arg;
  gn_log_callback cb = {r->s, slow_log, sink_drop};
  if (gn_log_set_callback(cb, GN_LOG_LEVEL_WARN, NULL) != GN_STATUS_OK) return NULL;
  gn_registration *reg = start_failing_registration();
  r->saw_call = wait_for(&r->s->calls_running, 1, 20000);
  gn_log_callback none = {NULL, NULL, NULL};
  gn_log_set_callback(none, GN_LOG_LEVEL_OFF, NULL);
  r->drops_at_return = atomic_load(&r->s->drops);
  gn_registration_free(reg);
  /* Without the wait in gn_log_set_callback, drop comes later: let it, before `s` goes. */
  wait_for(&r->s->drops, 1, 5000);
  return NULL;
}

static void replacing_the_log_sink_returns_after_its_running_calls_and_its_drop(void) {
  sink s = {.nested_status = -1};
  replace r = {&s, -1, false};
  run_bounded(replace_sink_during_a_call, &r, 60000, "log sink replacement");
  CHECK(r.saw_call, "no log call came from a registration against a closed port");
  CHECK(r.drops_at_return == 1, "gn_log_set_callback returned with %d drops run, expected 1", r.drops_at_return);
  CHECK(atomic_load(&s.drop_while_calling) == 0, "drop ran while a call was running");
  CHECK(atomic_load(&s.drops) == 1, "drop ran %d times", atomic_load(&s.drops));
}

static void *set_sink_from_inside_a_call(void *arg) {
  sink *s = arg;
  gn_log_callback cb = {s, slow_log, sink_drop};
  if (gn_log_set_callback(cb, GN_LOG_LEVEL_WARN, NULL) != GN_STATUS_OK) return NULL;
  gn_registration *reg = start_failing_registration();
  wait_for(&s->calls_started, 1, 20000);
  gn_log_callback none = {NULL, NULL, NULL};
  gn_log_set_callback(none, GN_LOG_LEVEL_OFF, NULL);
  gn_registration_free(reg);
  return NULL;
}

static void setting_the_log_sink_from_a_log_call_is_refused_and_drops_that_closure(void) {
  sink s = {.nested_status = -1, .try_nested = true};
  run_bounded(set_sink_from_inside_a_call, &s, 60000, "gn_log_set_callback inside a log call");
  CHECK(atomic_load(&s.nested_status) == GN_STATUS_BAD_STATE, "nested gn_log_set_callback gave %s",
        gn_status_name(atomic_load(&s.nested_status)));
  CHECK(atomic_load(&s.nested_drops) == 1, "the refused closure dropped %d times", atomic_load(&s.nested_drops));
  CHECK(atomic_load(&s.drops) == 1, "the sink dropped %d times", atomic_load(&s.drops));
}

/* --- gn_runtime_shutdown --- */

static atomic_int shutdown_drops;

static void count_shutdown_drop(void *user_data) {
  (void)user_data;
  atomic_fetch_add(&shutdown_drops, 1);
}

static void *shutdown_with_a_live_pull_resolver(void *arg) {
  int *drops_after_shutdown = arg;
  gn_update_callback pull = {NULL, NULL, count_shutdown_drop};
  gn_resolver *r = NULL;
  if (gn_resolver_start("pass:///127.0.0.1:1", NULL, pull, &r, NULL) != GN_STATUS_OK) return NULL;
  gn_runtime_shutdown(5000, NULL);
  *drops_after_shutdown = atomic_load(&shutdown_drops);
  gn_update *u = NULL;
  gn_status s = gn_resolver_next(r, 0, &u, NULL);
  if (s == GN_STATUS_OK) gn_update_free(u);
  gn_resolver_free(r);
  return NULL;
}

static void runtime_shutdown_runs_the_drop_of_a_pull_resolver_s_closure(void) {
  int drops_after_shutdown = -1;
  run_bounded(shutdown_with_a_live_pull_resolver, &drops_after_shutdown, 30000, "shutdown");
  CHECK(drops_after_shutdown == 1, "after gn_runtime_shutdown the pull closure dropped %d times", drops_after_shutdown);
  CHECK(atomic_load(&shutdown_drops) == 1, "after free it dropped %d times", atomic_load(&shutdown_drops));
}

int main(void) {
  RUN(concurrent_closes_of_a_pull_resolver_all_return_after_its_drop);
  RUN(a_drop_that_closes_its_own_resolver_does_not_deadlock);
  RUN(replacing_the_log_sink_returns_after_its_running_calls_and_its_drop);
  RUN(setting_the_log_sink_from_a_log_call_is_refused_and_drops_that_closure);
  RUN(runtime_shutdown_runs_the_drop_of_a_pull_resolver_s_closure);
  return check_summary();
}
