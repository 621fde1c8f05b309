/* The smallest libgnaming client: resolve a target once and print its address list.
 *   resolve 'pass:///127.0.0.1:50051#2,127.0.0.1:50052'
 */
#include <stdio.h>

#include <gnaming.h>

static const char *family_name(gn_address_family f) {
  switch (f) {
    case GN_ADDRESS_FAMILY_IPV4: return "ipv4";
    case GN_ADDRESS_FAMILY_IPV6: return "ipv6";
    case GN_ADDRESS_FAMILY_UNIX: return "unix";
    default: return "name";
  }
}

int main(int argc, char **argv) {
  const char *target = argc > 1 ? argv[1] : "pass:///127.0.0.1:50051#2,127.0.0.1:50052";
  gn_update_callback pull = {NULL, NULL, NULL}; /* no callback: pull with gn_resolver_next */
  gn_resolver *resolver = NULL;
  gn_error *err = NULL;
  if (gn_resolver_start(target, NULL, pull, &resolver, &err) != GN_STATUS_OK) {
    fprintf(stderr, "resolve: %s\n", gn_error_message(err));
    gn_error_free(err);
    return 2;
  }
  gn_update *update = NULL;
  if (gn_resolver_next(resolver, 10000, &update, &err) != GN_STATUS_OK) {
    fprintf(stderr, "resolve: %s\n", gn_error_message(err));
    gn_error_free(err);
    gn_resolver_free(resolver);
    return 1;
  }
  if (gn_update_state(update) != GN_RESOLVER_STATE_OK)
    fprintf(stderr, "resolve: transient error: %s\n", gn_update_error_message(update));
  printf("%s: %zu addresses\n", target, gn_update_address_count(update));
  for (size_t i = 0; i < gn_update_address_count(update); i++) {
    const gn_address *a = gn_update_address(update, i);
    printf("  %-24s %-5s weight=%u copy=%u%s%s\n", a->addr, family_name(a->family), a->weight, a->copy_index,
           a->metadata_json ? " metadata=" : "", a->metadata_json ? a->metadata_json : "");
  }
  gn_update_free(update);
  gn_resolver_free(resolver);
  return 0;
}
