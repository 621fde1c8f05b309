/* The parsed form of each entry in gn_address (ip, port, scope_id): what the library parsed, ready for
 * a sockaddr, so that no consumer parses address strings again; zeros for unix and name entries.
 * Static targets only: needs no server. */
#include <stdint.h>

#include "check.h"
#include "gnaming.h"

/* The first update of a pull resolver on `target`; NULL (with a failed check) if there is none. */
static gn_update *first_update(const char *target, gn_resolver **resolver_out) {
  gn_error *err = NULL;
  gn_status s = gn_resolver_start(target, NULL, (gn_update_callback){NULL, NULL, NULL}, resolver_out, &err);
  CHECK(s == GN_STATUS_OK, "start(%s): %s", target, err ? gn_error_message(err) : gn_status_name(s));
  gn_error_free(err);
  if (s != GN_STATUS_OK) return NULL;
  gn_update *u = NULL;
  err = NULL;
  s = gn_resolver_next(*resolver_out, 5000, &u, &err);
  CHECK(s == GN_STATUS_OK, "next(%s): %s", target, err ? gn_error_message(err) : gn_status_name(s));
  gn_error_free(err);
  return u;
}

static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *expected, size_t n) {
  char g[64] = "", e[64] = "";
  for (size_t i = 0; i < n; i++) {
    snprintf(g + strlen(g), sizeof g - strlen(g), "%02x", got[i]);
    snprintf(e + strlen(e), sizeof e - strlen(e), "%02x", expected[i]);
  }
  CHECK(memcmp(got, expected, n) == 0, "%s: ip bytes %s, expected %s", what, g, e);
}

static void a_link_local_address_with_a_numeric_zone_gives_its_bytes_port_and_scope(void) {
  gn_resolver *r = NULL;
  gn_update *u = first_update("ipv6:///[fe80::1%2]:80,[::1]:7", &r);
  if (u) {
    CHECK(gn_update_address_count(u) == 2, "%zu entries", gn_update_address_count(u));
    const gn_address *a = gn_update_address(u, 0);
    CHECK(strcmp(a->addr, "[fe80::1%2]:80") == 0, "addr %s", a->addr);
    CHECK(a->family == GN_ADDRESS_FAMILY_IPV6, "family %d", a->family);
    const uint8_t fe80_1[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_bytes(a->addr, a->ip, fe80_1, 16);
    CHECK(a->port == 80, "%s: port %u, expected 80", a->addr, a->port);
    CHECK(a->scope_id == 2, "%s: scope_id %u, expected 2", a->addr, a->scope_id);
    const gn_address *b = gn_update_address(u, 1);
    const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_bytes(b->addr, b->ip, loopback, 16);
    CHECK(b->port == 7 && b->scope_id == 0, "%s: port %u scope_id %u, expected 7 and 0", b->addr, b->port,
          b->scope_id);
  }
  gn_update_free(u);
  gn_resolver_free(r);
}

static void ipv4_entries_fill_four_bytes_and_every_copy_carries_them(void) {
  gn_resolver *r = NULL;
  gn_update *u = first_update("pass:///127.0.0.1:5#2,10.1.2.3:65535", &r);
  if (u) {
    CHECK(gn_update_address_count(u) == 3, "%zu entries", gn_update_address_count(u));
    const uint8_t expected[3][16] = {{127, 0, 0, 1}, {127, 0, 0, 1}, {10, 1, 2, 3}};
    const uint16_t ports[3] = {5, 5, 65535};
    for (size_t i = 0; i < 3 && i < gn_update_address_count(u); i++) {
      const gn_address *a = gn_update_address(u, i);
      CHECK(a->family == GN_ADDRESS_FAMILY_IPV4, "%s: family %d", a->addr, a->family);
      expect_bytes(a->addr, a->ip, expected[i], 16);
      CHECK(a->port == ports[i], "%s: port %u, expected %u", a->addr, a->port, ports[i]);
      CHECK(a->scope_id == 0, "%s: scope_id %u", a->addr, a->scope_id);
    }
  }
  gn_update_free(u);
  gn_resolver_free(r);
}

static void unix_and_name_entries_leave_the_parsed_fields_zero(void) {
  const char *targets[] = {"unix:///run/echo.sock", "pass:///echo.test:8080", "passthrough:///anything:1"};
  const uint8_t zero[16] = {0};
  for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
    gn_resolver *r = NULL;
    gn_update *u = first_update(targets[t], &r);
    if (u && gn_update_address_count(u) == 1) {
      const gn_address *a = gn_update_address(u, 0);
      CHECK(a->family == GN_ADDRESS_FAMILY_UNIX || a->family == GN_ADDRESS_FAMILY_NAME, "%s: family %d", a->addr,
            a->family);
      expect_bytes(a->addr, a->ip, zero, 16);
      CHECK(a->port == 0 && a->scope_id == 0, "%s: port %u scope_id %u, expected zeros", a->addr, a->port,
            a->scope_id);
    } else {
      CHECK(0, "%s gave no single entry", targets[t]);
    }
    gn_update_free(u);
    gn_resolver_free(r);
  }
}

int main(void) {
  RUN(a_link_local_address_with_a_numeric_zone_gives_its_bytes_port_and_scope);
  RUN(ipv4_entries_fill_four_bytes_and_every_copy_carries_them);
  RUN(unix_and_name_entries_leave_the_parsed_fields_zero);
  gn_runtime_shutdown(5000, NULL);
  return check_summary();
}
