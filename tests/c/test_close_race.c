/* Closing one resolver from several places at once: its own callback closes it while 1 to 8 other
 * threads close it too. Every close must return, and only after the closure's (slow) drop has run;
 * drop runs exactly once; nothing is called after close. A hang fails the test within a bound instead
 * of stalling the suite. GN_CLOSE_RACE_ITERATIONS overrides the iteration count (valgrind runs fewer). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"
#include "gnaming.h"

#define MAX_CLOSERS 8
#define DEFAULT_ITERATIONS 10000
/* Long enough that a close returning early would see the drop unfinished. */
#define DROP_SLEEP_US 200
#define ITERATION_BOUND_MS 10000.0

/* One round: a resolver, the closure's record of what happened, and the closers' results. */
typedef struct round_state {
  _Atomic(gn_resolver *) resolver;
  atomic_int calls;
  atomic_int drops_started;
  atomic_int drops_finished;
  atomic_int call_closed;        /* the callback's own close returned */
  atomic_int early_returns;      /* a close (outside the callback) returned before drop finished */
  atomic_int closers_done;
  atomic_bool go;                /* the callback is running: outside closers start now */
} round_state;

static round_state round_now;
static atomic_int closers_this_round;
static atomic_int round_number;  /* bumped to start a round; workers wait for a new value */
static atomic_bool stopping;

static void on_update(void *user_data, const gn_update *update) {
  round_state *r = user_data;
  (void)update;
  atomic_fetch_add(&r->calls, 1);
  /* The first call can come before gn_resolver_start has handed out the handle. */
  gn_resolver *resolver = NULL;
  for (int i = 0; i < 5000 && !(resolver = atomic_load(&r->resolver)); i++) sleep_us(200);
  atomic_store(&r->go, true);
  gn_resolver_close(resolver);
  atomic_store(&r->call_closed, 1);
}

static void on_drop(void *user_data) {
  round_state *r = user_data;
  atomic_fetch_add(&r->drops_started, 1);
  sleep_us(DROP_SLEEP_US);
  atomic_fetch_add(&r->drops_finished, 1);
}

static void *closer(void *arg) {
  int index = (int)(long)arg;
  int seen = 0;
  while (!atomic_load(&stopping)) {
    int now = atomic_load(&round_number);
    if (now == seen) {
      sleep_us(50);
      continue;
    }
    seen = now;
    if (index >= closers_this_round) continue;
    /* Start closing while the callback runs, or just before its close, or just after it. */
    double end = now_ms() + ITERATION_BOUND_MS;
    while (!atomic_load(&round_now.go) && now_ms() < end) sched_yield();
    gn_resolver_close(atomic_load(&round_now.resolver));
    if (atomic_load(&round_now.drops_finished) != 1) atomic_fetch_add(&round_now.early_returns, 1);
    atomic_fetch_add(&round_now.closers_done, 1);
  }
  return NULL;
}

static int iterations(void) {
  const char *text = getenv("GN_CLOSE_RACE_ITERATIONS");
  int n = text ? atoi(text) : DEFAULT_ITERATIONS;
  return n > 0 ? n : DEFAULT_ITERATIONS;
}

static void close_inside_the_callback_races_closes_from_other_threads(void) {
  pthread_t threads[MAX_CLOSERS];
  for (long i = 0; i < MAX_CLOSERS; i++) pthread_create(&threads[i], NULL, closer, (void *)i);

  int total = iterations(), hung = 0, early = 0, bad_drops = 0, bad_calls = 0;
  for (int i = 0; i < total && !hung; i++) {
    memset(&round_now, 0, sizeof round_now);
    atomic_store(&closers_this_round, 1 + i % MAX_CLOSERS);
    gn_update_callback cb = {&round_now, on_update, on_drop};
    gn_resolver *resolver = NULL;
    gn_status status = gn_resolver_start("pass:///127.0.0.1:1", NULL, cb, &resolver, NULL);
    if (status != GN_STATUS_OK) {
      CHECK(status == GN_STATUS_OK, "iteration %d: start failed: %s", i, gn_status_name(status));
      break;
    }
    atomic_store(&round_now.resolver, resolver);
    atomic_fetch_add(&round_number, 1);

    double end = now_ms() + ITERATION_BOUND_MS;
    while ((atomic_load(&round_now.closers_done) < closers_this_round || !atomic_load(&round_now.call_closed) ||
            atomic_load(&round_now.drops_finished) < 1) &&
           now_ms() < end)
      sleep_us(20);
    if (atomic_load(&round_now.closers_done) < closers_this_round || !atomic_load(&round_now.call_closed)) {
      fprintf(stderr, "iteration %d with %d other closers: %d of them returned, callback's close %s, drops %d/%d\n", i,
              closers_this_round, atomic_load(&round_now.closers_done),
              atomic_load(&round_now.call_closed) ? "returned" : "did not return", atomic_load(&round_now.drops_started),
              atomic_load(&round_now.drops_finished));
      hung = 1;
      break;
    }
    early += atomic_load(&round_now.early_returns);
    if (atomic_load(&round_now.drops_started) != 1 || atomic_load(&round_now.drops_finished) != 1) bad_drops++;
    if (atomic_load(&round_now.calls) != 1) bad_calls++;
    gn_resolver_free(resolver);
  }
  CHECK(!hung, "a close never returned (bound %.0f ms)", ITERATION_BOUND_MS);
  CHECK(early == 0, "%d closes returned before drop had run", early);
  CHECK(bad_drops == 0, "%d rounds did not drop exactly once", bad_drops);
  CHECK(bad_calls == 0, "%d rounds had calls other than the one that closed", bad_calls);
  if (hung) {
    /* The stuck closers cannot be joined; report and leave without waiting on them. */
    printf("FAIL close_inside_the_callback_races_closes_from_other_threads\n");
    check_summary();
    fflush(stdout);
    _exit(1);
  }
  atomic_store(&stopping, true);
  for (int i = 0; i < MAX_CLOSERS; i++) pthread_join(threads[i], NULL);
  printf("%d rounds, 1 to %d other closers each\n", total, MAX_CLOSERS);
}

int main(void) {
  RUN(close_inside_the_callback_races_closes_from_other_threads);
  return check_summary();
}
