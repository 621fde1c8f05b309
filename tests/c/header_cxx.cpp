// The public header compiles as C++ (with -Wall -Wextra -Werror -pedantic) and links.
#include "gnaming.h"

#include <cstdio>
#include <cstring>

int main() {
  gn_update_callback none = {nullptr, nullptr, nullptr};
  gn_resolver *resolver = nullptr;
  gn_error *err = nullptr;
  if (gn_resolver_start("pass:///127.0.0.1:1", nullptr, none, &resolver, &err) != GN_STATUS_OK) {
    std::printf("start failed: %s\n0 passed, 1 failed\n", gn_error_message(err));
    gn_error_free(err);
    return 1;
  }
  gn_update *update = nullptr;
  bool ok = gn_resolver_next(resolver, 5000, &update, nullptr) == GN_STATUS_OK &&
            gn_update_address_count(update) == 1 &&
            std::strcmp(gn_update_address(update, 0)->addr, "127.0.0.1:1") == 0;
  gn_update_free(update);
  gn_resolver_free(resolver);
  std::printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
  return ok ? 0 : 1;
}
