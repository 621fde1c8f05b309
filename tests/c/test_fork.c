/* Fork after the runtime started (as Python's multiprocessing does): the child gets a fresh runtime
 * on first use, resolvers it inherited are inert there (closing them calls nothing of the parent's),
 * and the parent carries on unaffected. */
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gnaming.h"

static atomic_int drops;

static void count_drop(void *user_data) {
  (void)user_data;
  atomic_fetch_add(&drops, 1);
}

/* Starts a pull resolver on `target` and returns how many addresses its first update had (-1: none). */
static int first_count(const char *target, gn_resolver **keep) {
  gn_update_callback pull = {NULL, NULL, count_drop};
  gn_resolver *r = NULL;
  if (gn_resolver_start(target, NULL, pull, &r, NULL) != GN_STATUS_OK) return -1;
  gn_update *u = NULL;
  int n = -1;
  if (gn_resolver_next(r, 5000, &u, NULL) == GN_STATUS_OK) n = (int)gn_update_address_count(u);
  gn_update_free(u);
  if (keep) *keep = r;
  else gn_resolver_free(r);
  return n;
}

int main(void) {
  gn_resolver *inherited = NULL;
  CHECK(first_count("pass:///127.0.0.1:1,127.0.0.1:2", &inherited) == 2, "parent's first resolver");
  int drops_before = atomic_load(&drops);

  pid_t child = fork();
  if (child == 0) {
    int failures = 0;
    if (first_count("pass:///127.0.0.1:3#3", NULL) != 3) failures |= 1;
    /* The child's own resolver was dropped once; the inherited one must not be. */
    int after_own = atomic_load(&drops);
    gn_resolver_free(inherited);
    if (atomic_load(&drops) != after_own) failures |= 2;
    if (after_own != drops_before + 1) failures |= 4;
    _exit(failures);
  }
  CHECK(child > 0, "fork failed");
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "child failed: status %d (1: no update from its fresh runtime, 2: inherited drop ran in the child, 4: own drop count)",
        WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  CHECK(first_count("ipv4:127.0.0.1:9", NULL) == 1, "parent after fork");
  gn_resolver_free(inherited);
  CHECK(atomic_load(&drops) == drops_before + 2, "parent drops %d, expected %d", atomic_load(&drops), drops_before + 2);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
