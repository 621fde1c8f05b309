/* Calls made on the thread that received the change: an etcd resolver whose calls are quick gets its
 * later calls on the watch's own thread (the library hands that thread's async duties over first).
 * Closing or freeing the resolver from inside such a call, closing it from another thread while
 * changes flow, and shutting the runtime down while such a call blocks keep the closure contract: no
 * call after close returns, the drop exactly once. Runs
 * under tests/harness/etcd_cluster.py run (GNAMING_TEST_ETCD_ENDPOINTS); built with -Wall -Wextra
 * -Werror, run under ASan+UBSan and valgrind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"
#include "gnaming.h"

#define WAIT_MS 20000
#define ROUNDS 8
#define CHANGES 6
#define BLOCK_US 300000

typedef struct {
  atomic_int calls, drops, calls_after_close, in_call, overlaps;
  atomic_bool closed;
  int close_on_call; /* 0: never; else close (or free) from inside this call */
  int block_on_call; /* 0: never; else this call sleeps BLOCK_US */
  bool free_inside;
  long sleep_us;
  _Atomic(gn_resolver *) resolver;
} probe;

static void on_update(void *user_data, const gn_update *u) {
  (void)u;
  probe *p = user_data;
  if (atomic_fetch_add(&p->in_call, 1) != 0) atomic_fetch_add(&p->overlaps, 1);
  if (atomic_load(&p->closed)) atomic_fetch_add(&p->calls_after_close, 1);
  int n = atomic_fetch_add(&p->calls, 1) + 1;
  if (p->sleep_us) sleep_us(p->sleep_us);
  if (p->block_on_call && n == p->block_on_call) sleep_us(BLOCK_US);
  if (p->close_on_call && n == p->close_on_call) {
    gn_resolver *r = atomic_load(&p->resolver);
    if (p->free_inside) {
      gn_resolver_free(r);
    } else {
      gn_resolver_close(r);
    }
    atomic_store(&p->closed, true);
  }
  atomic_fetch_sub(&p->in_call, 1);
}

static void on_drop(void *user_data) {
  probe *p = user_data;
  atomic_fetch_add(&p->drops, 1);
}

static gn_resolver *start_resolver(const char *service, probe *p) {
  char target[128];
  snprintf(target, sizeof target, "etcd://c/%s", service);
  gn_update_callback cb = {.user_data = p, .call = on_update, .drop = on_drop};
  gn_resolver *r = NULL;
  gn_error *err = NULL;
  CHECK(gn_resolver_start(target, NULL, cb, &r, &err) == GN_STATUS_OK, "start %s: %s", target, gn_error_message(err));
  gn_error_free(err);
  atomic_store(&p->resolver, r);
  return r;
}

static gn_registration *register_address(const char *service, int port) {
  char address[64];
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  gn_registration_options *o = gn_registration_options_new();
  gn_registration_options_set_cluster(o, "c", NULL);
  gn_registration_options_set_ttl_ms(o, 5000, NULL);
  gn_registration *reg = NULL;
  gn_error *err = NULL;
  CHECK(gn_registration_start(service, address, o, &reg, &err) == GN_STATUS_OK, "register %s: %s", address,
        gn_error_message(err));
  gn_error_free(err);
  gn_registration_options_free(o);
  err = NULL;
  CHECK(gn_registration_wait(reg, WAIT_MS, &err) == GN_STATUS_OK, "registered %s: %s", address, gn_error_message(err));
  gn_error_free(err);
  return reg;
}

static void close_registrations(gn_registration **regs, int n) {
  for (int i = 0; i < n; i++) {
    if (regs[i]) gn_registration_free(regs[i]);
  }
}

/* The first call (the list) goes to the pool; once quick, the next ones run on the watch's thread:
 * the fourth closes (or frees) the resolver from inside. */
static void closing_or_freeing_inside_a_call_on_the_watch_thread(void) {
  for (int mode = 0; mode < 2; mode++) {
    char service[32];
    snprintf(service, sizeof service, "cinline-inside-%d", mode);
    probe p = {0};
    p.close_on_call = 4;
    p.free_inside = mode == 1;
    gn_resolver *r = start_resolver(service, &p);
    CHECK(wait_for(&p.calls, 1, WAIT_MS), "mode %d: no first list", mode);
    gn_registration *regs[CHANGES] = {0};
    for (int i = 0; i < CHANGES; i++) {
      int before = atomic_load(&p.calls);
      regs[i] = register_address(service, 7100 + i);
      if (i < 3) CHECK(wait_for(&p.calls, before + 1, WAIT_MS), "mode %d: change %d not delivered", mode, i);
    }
    CHECK(wait_for(&p.drops, 1, WAIT_MS), "mode %d: the drop did not run", mode);
    sleep_us(200000);
    CHECK(atomic_load(&p.calls) == 4, "mode %d: %d calls, expected the 4 up to the close", mode,
          atomic_load(&p.calls));
    CHECK(atomic_load(&p.calls_after_close) == 0, "mode %d: calls after close", mode);
    CHECK(atomic_load(&p.drops) == 1, "mode %d: drops %d", mode, atomic_load(&p.drops));
    if (mode == 0) gn_resolver_free(r);
    CHECK(atomic_load(&p.drops) == 1, "mode %d: drops %d after free", mode, atomic_load(&p.drops));
    close_registrations(regs, CHANGES);
  }
}

typedef struct {
  probe *p;
  long delay_us;
} closer_args;

static void *close_later(void *arg) {
  closer_args *a = arg;
  sleep_us(a->delay_us);
  gn_resolver_close(atomic_load(&a->p->resolver));
  atomic_store(&a->p->closed, true);
  return NULL;
}

/* Another thread closes while registrations keep changing the list: whatever thread a call runs on,
 * none starts after close returned, calls never overlap, and the drop runs once. */
static void a_close_from_another_thread_racing_calls_on_the_watch_thread(void) {
  unsigned seed = 4242;
  for (int round = 0; round < ROUNDS; round++) {
    char service[32];
    snprintf(service, sizeof service, "cinline-race-%d", round);
    probe p = {0};
    p.sleep_us = rand_r(&seed) % 300;
    gn_resolver *r = start_resolver(service, &p);
    CHECK(wait_for(&p.calls, 1, WAIT_MS), "round %d: no first list", round);
    closer_args args = {&p, 20000 + rand_r(&seed) % 60000};
    pthread_t closer;
    pthread_create(&closer, NULL, close_later, &args);
    gn_registration *regs[CHANGES] = {0};
    for (int i = 0; i < CHANGES; i++) regs[i] = register_address(service, 7200 + i);
    pthread_join(closer, NULL);
    sleep_us(100000);
    CHECK(atomic_load(&p.calls_after_close) == 0, "round %d: %d calls after close", round,
          atomic_load(&p.calls_after_close));
    CHECK(atomic_load(&p.overlaps) == 0, "round %d: calls overlapped", round);
    CHECK(atomic_load(&p.drops) == 1, "round %d: drops %d", round, atomic_load(&p.drops));
    gn_resolver_free(r);
    close_registrations(regs, CHANGES);
  }
}

/* gn_runtime_shutdown while a call blocks on the watch's thread: the shutdown closes the resolver,
 * which waits for that call; it returns OK with the drop run once and no call after it. */
static void a_shutdown_while_a_call_blocks_on_the_watch_thread(void) {
  const char *service = "cinline-shutdown";
  probe p = {0};
  p.block_on_call = 4;
  gn_resolver *r = start_resolver(service, &p);
  CHECK(wait_for(&p.calls, 1, WAIT_MS), "no first list");
  gn_registration *regs[3] = {0};
  for (int i = 0; i < 3; i++) {
    int before = atomic_load(&p.calls);
    regs[i] = register_address(service, 7300 + i);
    CHECK(wait_for(&p.calls, before + 1, WAIT_MS), "change %d not delivered", i);
  }
  CHECK(atomic_load(&p.in_call) == 1, "the fourth call is not running");
  double t0 = now_ms();
  gn_error *err = NULL;
  gn_status s = gn_runtime_shutdown(10000, &err);
  CHECK(s == GN_STATUS_OK, "shutdown: %s %s", gn_status_name(s), gn_error_message(err));
  gn_error_free(err);
  atomic_store(&p.closed, true);
  CHECK(atomic_load(&p.in_call) == 0, "the shutdown returned while a call ran");
  CHECK(now_ms() - t0 < 5000, "the shutdown took %.0f ms", now_ms() - t0);
  CHECK(atomic_load(&p.drops) == 1, "drops %d after the shutdown", atomic_load(&p.drops));
  sleep_us(100000);
  CHECK(atomic_load(&p.calls_after_close) == 0, "calls after the shutdown");
  gn_resolver_free(r);
  CHECK(atomic_load(&p.drops) == 1, "drops %d after free", atomic_load(&p.drops));
  close_registrations(regs, 3);
}

int main(void) {
  const char *endpoints = getenv("GNAMING_TEST_ETCD_ENDPOINTS");
  CHECK(endpoints != NULL && *endpoints, "GNAMING_TEST_ETCD_ENDPOINTS is not set: run under tests/harness/etcd_cluster.py run");
  if (!endpoints) return check_summary();
  gn_cluster_options *o = gn_cluster_options_new();
  CHECK(gn_cluster_options_set_endpoints(o, endpoints, NULL) == GN_STATUS_OK, "endpoints %s", endpoints);
  CHECK(gn_cluster_register("c", o, NULL) == GN_STATUS_OK, "register cluster c");
  gn_cluster_options_free(o);
  RUN(closing_or_freeing_inside_a_call_on_the_watch_thread);
  RUN(a_close_from_another_thread_racing_calls_on_the_watch_thread);
  RUN(a_shutdown_while_a_call_blocks_on_the_watch_thread);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
