/* Minimal test support for the C suites: named checks that count, print what failed, and a summary
 * line "N passed, M failed" that the test runner reads. */
#ifndef GNAMING_TEST_CHECK_H
#define GNAMING_TEST_CHECK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                        \
  do {                                                                          \
    if (cond) {                                                                 \
      check_passed++;                                                           \
    } else {                                                                    \
      check_failed++;                                                           \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
      fprintf(stderr, __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                      \
    }                                                                           \
  } while (0)

/* Runs one test function and names it in the output. */
#define RUN(test)                                  \
  do {                                             \
    int before = check_failed;                     \
    test();                                        \
    printf("%s %s\n", check_failed == before ? "ok  " : "FAIL", #test); \
    fflush(stdout);                                \
  } while (0)

static inline int check_summary(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed == 0 ? 0 : 1;
}

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

/* Waits until `*value` is at least `at_least`, polling every millisecond; false after `timeout_ms`. */
static inline bool wait_for(atomic_int *value, int at_least, double timeout_ms) {
  double end = now_ms() + timeout_ms;
  while (atomic_load(value) < at_least) {
    if (now_ms() > end) return false;
    sleep_us(1000);
  }
  return true;
}

#endif
