/* gn_runtime_shutdown racing starts: four threads start resolvers (static and etcd targets) and now
 * and then a registration while another thread shuts the runtime down, for a number of rounds. Every
 * start must either fail with GN_STATUS_CLOSED (a resolver's closure dropped before it returns) or give
 * an object that the shutdown closed or that lives on the fresh runtime: an etcd resolver must see an
 * address registered after the shutdown, a registration must reach REGISTERED. Every closure is dropped
 * exactly once by the end, and LeakSanitizer finds nothing. Runs under tests/harness/etcd_cluster.py
 * run (GNAMING_TEST_ETCD_ENDPOINTS); built with -Wall -Wextra -Werror, run under ASan+UBSan and
 * valgrind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"
#include "gnaming.h"

#define ROUNDS 20
#define STARTERS 4
/* Starts per thread and round at most; each thread stops a few starts after the shutdown returned. */
#define PER_THREAD 48
#define AFTER_SHUTDOWN 3
#define WAIT_MS 20000
#define SERVICE "cshut-race"
#define MARKER_BASE 7600
/* Every this many starts, a thread starts a registration instead of a resolver. */
#define REGISTRATION_EVERY 8
#define REGISTRATION_BASE 7700

static bool is_registration(int i) {
  return i % REGISTRATION_EVERY == REGISTRATION_EVERY - 1;
}

/* The marker address of the current round: registered after the shutdown, every surviving etcd
 * resolver must list it. */
static atomic_int marker_port;

typedef struct {
  atomic_int calls;
  atomic_int drops;
  atomic_int saw_marker;
  bool etcd;
  gn_status status;
  int drops_at_failure;
  gn_resolver *resolver;
  gn_registration *registration;
  char message[160];
} started;

typedef struct {
  int id;
  int count;
  started items[PER_THREAD];
} starter;

static atomic_int go, shutdown_returned, progress;
static gn_registration_options *registration_options;

static void on_update(void *user_data, const gn_update *u) {
  started *s = user_data;
  atomic_fetch_add(&s->calls, 1);
  if (!s->etcd) return;
  char marker[32];
  snprintf(marker, sizeof marker, "127.0.0.1:%d", atomic_load(&marker_port));
  for (size_t i = 0; i < gn_update_address_count(u); i++) {
    if (strcmp(gn_update_address(u, i)->addr, marker) == 0) atomic_store(&s->saw_marker, 1);
  }
}

static void on_drop(void *user_data) {
  started *s = user_data;
  atomic_fetch_add(&s->drops, 1);
}

static void *start_objects(void *arg) {
  starter *t = arg;
  double end = now_ms() + WAIT_MS;
  while (!atomic_load(&go) && now_ms() < end) sched_yield();
  int after = 0;
  for (int i = 0; i < PER_THREAD; i++) {
    if (atomic_load(&shutdown_returned) && ++after > AFTER_SHUTDOWN) break;
    started *s = &t->items[i];
    gn_error *err = NULL;
    if (is_registration(i)) {
      char address[32];
      snprintf(address, sizeof address, "127.0.0.1:%d", REGISTRATION_BASE + t->id * PER_THREAD + i);
      s->status = gn_registration_start(SERVICE "-reg", address, registration_options, &s->registration, &err);
      if (s->status != GN_STATUS_OK) snprintf(s->message, sizeof s->message, "%s", gn_error_message(err));
      gn_error_free(err);
      t->count = i + 1;
      atomic_fetch_add(&progress, 1);
      continue;
    }
    s->etcd = (i + t->id) % 2 == 1;
    gn_update_callback cb = {s, on_update, on_drop};
    s->status = gn_resolver_start(s->etcd ? "etcd://c/" SERVICE : "pass:///127.0.0.1:1", NULL, cb, &s->resolver, &err);
    if (s->status != GN_STATUS_OK) {
      s->drops_at_failure = atomic_load(&s->drops);
      snprintf(s->message, sizeof s->message, "%s", gn_error_message(err));
    }
    gn_error_free(err);
    t->count = i + 1;
    atomic_fetch_add(&progress, 1);
    /* Paced, so that starts keep coming while the shutdown closes what is live and stops the runtime. */
    sleep_us(100 * (i % 4));
  }
  return NULL;
}

static gn_status shutdown_status;

static void *shut_down(void *arg) {
  int round = *(int *)arg;
  /* Some resolvers are live before the shutdown begins; the rest start while it runs. */
  double end = now_ms() + WAIT_MS;
  while (atomic_load(&progress) < STARTERS * (1 + round % 4) && now_ms() < end) sched_yield();
  shutdown_status = gn_runtime_shutdown(5000, NULL);
  atomic_store(&shutdown_returned, 1);
  return NULL;
}

static void configure_cluster(void) {
  const char *endpoints = getenv("GNAMING_TEST_ETCD_ENDPOINTS");
  CHECK(endpoints != NULL && *endpoints,
        "GNAMING_TEST_ETCD_ENDPOINTS is not set: run under tests/harness/etcd_cluster.py run");
  if (!endpoints) return;
  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(gn_cluster_options_set_endpoints(o, endpoints, NULL) == GN_STATUS_OK, "endpoints %s", endpoints);
  CHECK(gn_cluster_register("c", o, NULL) == GN_STATUS_OK, "register c");
  gn_cluster_options_free(o);
  registration_options = gn_registration_options_new();
  gn_registration_options_set_cluster(registration_options, "c", NULL);
}

/* Waits at most WAIT_MS until every surviving resolver (started, not dropped) shows it is alive: a
 * static one was called, an etcd one listed the marker. */
static void survivors_resolve(starter *threads) {
  double end = now_ms() + WAIT_MS;
  for (;;) {
    bool all = true;
    for (int t = 0; t < STARTERS; t++) {
      for (int i = 0; i < threads[t].count; i++) {
        started *s = &threads[t].items[i];
        if (is_registration(i) || s->status != GN_STATUS_OK || atomic_load(&s->drops) > 0) continue;
        if (s->etcd ? !atomic_load(&s->saw_marker) : atomic_load(&s->calls) == 0) all = false;
      }
    }
    if (all || now_ms() > end) return;
    sleep_us(5000);
  }
}

/* A registration started during the round was refused with CLOSED, closed by the shutdown, or lives on
 * the fresh runtime and registers. Returns whether it started. */
static bool check_registration(int round, int t, int i, started *it) {
  if (it->status != GN_STATUS_OK) {
    CHECK(it->status == GN_STATUS_CLOSED, "round %d: registration %d.%d failed to start with %s (%s), not CLOSED",
          round, t, i, gn_status_name(it->status), it->message);
    return false;
  }
  if (gn_registration_get_state(it->registration) != GN_REGISTRATION_STATE_CLOSED) {
    gn_error *err = NULL;
    gn_status s = gn_registration_wait(it->registration, WAIT_MS, &err);
    CHECK(s == GN_STATUS_OK,
          "round %d: registration %d.%d started OK but the shutdown did not close it and it does not register: %s %s",
          round, t, i, gn_status_name(s), gn_error_message(err));
    gn_error_free(err);
  }
  gn_registration_free(it->registration);
  return true;
}

static void one_round(int round) {
  static starter threads[STARTERS];
  memset(threads, 0, sizeof threads);
  atomic_store(&go, 0);
  atomic_store(&shutdown_returned, 0);
  atomic_store(&progress, 0);
  pthread_t tids[STARTERS], shutter;
  for (int t = 0; t < STARTERS; t++) {
    threads[t].id = t;
    pthread_create(&tids[t], NULL, start_objects, &threads[t]);
  }
  pthread_create(&shutter, NULL, shut_down, &round);
  atomic_store(&go, 1);
  pthread_join(shutter, NULL);
  for (int t = 0; t < STARTERS; t++) pthread_join(tids[t], NULL);
  CHECK(shutdown_status == GN_STATUS_OK, "round %d: shutdown returned %s", round, gn_status_name(shutdown_status));

  /* A change made after the shutdown: resolvers that survived it must hear of it. */
  int port = MARKER_BASE + round;
  atomic_store(&marker_port, port);
  char address[32];
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration *marker = NULL;
  gn_error *err = NULL;
  gn_status s = gn_registration_start(SERVICE, address, o, &marker, &err);
  CHECK(s == GN_STATUS_OK, "round %d: marker registration: %s", round, gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  CHECK(gn_registration_wait(marker, WAIT_MS, NULL) == GN_STATUS_OK, "round %d: marker registered", round);
  survivors_resolve(threads);

  int ok = 0, failed = 0, closed_by_shutdown = 0, registrations = 0, registrations_refused = 0;
  for (int t = 0; t < STARTERS; t++) {
    for (int i = 0; i < threads[t].count; i++) {
      started *it = &threads[t].items[i];
      if (is_registration(i)) {
        if (check_registration(round, t, i, it)) {
          registrations++;
        } else {
          registrations_refused++;
        }
        continue;
      }
      const char *kind = it->etcd ? "etcd" : "static";
      if (it->status == GN_STATUS_OK) {
        ok++;
        if (atomic_load(&it->drops) > 0) {
          closed_by_shutdown++;
        } else if (it->etcd ? !atomic_load(&it->saw_marker) : atomic_load(&it->calls) == 0) {
          CHECK(false,
                "round %d: %s resolver %d.%d started OK but the shutdown did not close it and it does not resolve "
                "(calls %d, marker seen %d): an orphan of the stopped runtime",
                round, kind, t, i, atomic_load(&it->calls), atomic_load(&it->saw_marker));
        }
        gn_resolver_free(it->resolver);
      } else {
        failed++;
        CHECK(it->status == GN_STATUS_CLOSED, "round %d: %s resolver %d.%d failed to start with %s (%s), not CLOSED",
              round, kind, t, i, gn_status_name(it->status), it->message);
        CHECK(it->drops_at_failure == 1, "round %d: a failed start returned with its drop run %d times", round,
              it->drops_at_failure);
      }
      CHECK(atomic_load(&it->drops) == 1, "round %d: %s resolver %d.%d (%s): drop ran %d times", round, kind, t, i,
            gn_status_name(it->status), atomic_load(&it->drops));
    }
  }
  printf("round %d: %d resolvers started (%d closed by the shutdown), %d refused while it ran; %d registrations "
         "started, %d refused\n",
         round, ok, closed_by_shutdown, failed, registrations, registrations_refused);
  s = gn_registration_close(marker, 5000, NULL);
  CHECK(s == GN_STATUS_OK, "round %d: marker close: %s", round, gn_status_name(s));
  gn_registration_free(marker);
}

static void starts_while_the_runtime_shuts_down_are_closed_refused_or_alive(void) {
  for (int round = 0; round < ROUNDS; round++) one_round(round);
}

int main(void) {
  configure_cluster();
  RUN(starts_while_the_runtime_shuts_down_are_closed_refused_or_alive);
  gn_registration_options_free(registration_options);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
