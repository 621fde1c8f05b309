/* The out-of-tree consumer: checks that the library it runs with is the one the installed header
 * describes, and that a static target resolves to its addresses. Prints the ABI version it ran with
 * ("abi N") for the caller to compare with the soname; exits non-zero on any mismatch. */
#include <stdio.h>
#include <string.h>

#include <gnaming.h>

static int failures = 0;

static void expect(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "consumer: FAILED: %s\n", what);
    failures++;
  }
}

int main(void) {
  printf("abi %u\n", gn_abi_version());
  printf("version %s\n", gn_version());
  expect(gn_abi_version() == GN_ABI_VERSION, "gn_abi_version() equals the header's GN_ABI_VERSION");
  expect(strcmp(gn_version(), GN_VERSION_STRING) == 0, "gn_version() equals the header's GN_VERSION_STRING");

  gn_update_callback pull = {NULL, NULL, NULL};
  gn_resolver *resolver = NULL;
  gn_error *err = NULL;
  if (gn_resolver_start("pass:///127.0.0.1:50051#2,[::1]:50052", NULL, pull, &resolver, &err) != GN_STATUS_OK) {
    fprintf(stderr, "consumer: start: %s\n", gn_error_message(err));
    gn_error_free(err);
    return 1;
  }
  gn_update *update = NULL;
  if (gn_resolver_next(resolver, 10000, &update, &err) != GN_STATUS_OK) {
    fprintf(stderr, "consumer: next: %s\n", gn_error_message(err));
    gn_error_free(err);
    gn_resolver_free(resolver);
    return 1;
  }
  expect(gn_update_state(update) == GN_RESOLVER_STATE_OK, "the update's state is OK");
  size_t n = gn_update_address_count(update);
  printf("addresses %zu:", n);
  for (size_t i = 0; i < n; i++) printf(" %s/%u", gn_update_address(update, i)->addr, gn_update_address(update, i)->copy_index);
  printf("\n");
  expect(n == 3, "3 addresses (127.0.0.1:50051 twice, [::1]:50052 once)");
  if (n == 3) {
    const gn_address *a = gn_update_address(update, 0), *b = gn_update_address(update, 1),
                     *c = gn_update_address(update, 2);
    expect(strcmp(a->addr, "127.0.0.1:50051") == 0 && a->copy_index == 0 && a->family == GN_ADDRESS_FAMILY_IPV4,
           "first: 127.0.0.1:50051 copy 0, ipv4");
    expect(strcmp(b->addr, "127.0.0.1:50051") == 0 && b->copy_index == 1, "second: 127.0.0.1:50051 copy 1");
    expect(strcmp(c->addr, "[::1]:50052") == 0 && c->family == GN_ADDRESS_FAMILY_IPV6, "third: [::1]:50052, ipv6");
  }
  gn_update_free(update);
  gn_resolver_free(resolver);
  printf("consumer: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
