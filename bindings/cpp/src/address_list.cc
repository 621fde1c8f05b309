// Update → plain address list; see address_list.h.
#include "address_list.h"

#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string_view>

namespace gnaming::internal {
namespace {

// The socket address of an IP entry, from the fields the core filled in when it parsed `addr`.
bool FromParsed(const gn_address& a, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof(*out));
  if (a.port == 0) return false;
  if (a.family == GN_ADDRESS_FAMILY_IPV4) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(a.port);
    std::memcpy(&in->sin_addr, a.ip, sizeof(in->sin_addr));
    *len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    std::memcpy(&in6->sin6_addr, a.ip, sizeof(in6->sin6_addr));
    in6->sin6_scope_id = a.scope_id;
    *len = sizeof(sockaddr_in6);
  }
  return true;
}

bool ParseUnix(std::string_view text, sockaddr_storage* out, socklen_t* len) {
  std::string_view path = text;
  if (path.substr(0, 5) == "unix:") path.remove_prefix(5);
  sockaddr_un un{};
  if (path.empty() || path.size() >= sizeof(un.sun_path)) return false;
  std::memset(out, 0, sizeof(*out));
  auto* dst = reinterpret_cast<sockaddr_un*>(out);
  dst->sun_family = AF_UNIX;
  std::memcpy(dst->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(sizeof(sockaddr_un));
  return true;
}

}  // namespace

std::vector<uint32_t> WeightCopies(const std::vector<uint32_t>& weights, unsigned max_copies) {
  std::vector<uint32_t> copies(weights.size(), 1);
  uint32_t divisor = 0;
  uint32_t largest = 0;
  for (uint32_t w : weights) {
    divisor = std::gcd(divisor, std::max<uint32_t>(w, 1));
    largest = std::max<uint32_t>(largest, std::max<uint32_t>(w, 1));
  }
  if (weights.empty()) return copies;
  const double top = static_cast<double>(largest / divisor);
  const double scale = top > max_copies ? max_copies / top : 1.0;
  for (size_t i = 0; i < weights.size(); i++) {
    double reduced = std::max<uint32_t>(weights[i], 1) / divisor;
    copies[i] = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(reduced * scale)));
  }
  return copies;
}

AddressList ConvertUpdate(const gn_update* update, unsigned max_weight_copies) {
  AddressList list;
  list.ok = gn_update_state(update) == GN_RESOLVER_STATE_OK;
  if (!list.ok) {
    const char* message = gn_update_error_message(update);
    list.error_message = message != nullptr ? message : "name resolution failed";
  }
  if (const char* sc = gn_update_service_config(update); sc != nullptr) list.service_config_json = sc;

  const size_t n = gn_update_address_count(update);
  std::vector<const gn_address*> backends;
  std::vector<uint32_t> weights;
  size_t balancers = 0;
  for (size_t i = 0; i < n; i++) {
    const gn_address* a = gn_update_address(update, i);
    if (a == nullptr) continue;
    // grpclb balancer entries travel through grpclb-private channel args this plugin does not set.
    if (a->kind != GN_ADDRESS_KIND_BACKEND) {
      balancers++;
      continue;
    }
    backends.push_back(a);
    weights.push_back(a->weight);
  }
  const std::vector<uint32_t> copies = WeightCopies(weights, max_weight_copies);

  std::string skipped;
  for (size_t i = 0; i < backends.size(); i++) {
    const gn_address* a = backends[i];
    sockaddr_storage sock;
    socklen_t sock_len = 0;
    bool usable = false;
    const char* why = "";
    switch (a->family) {
      case GN_ADDRESS_FAMILY_IPV4:
      case GN_ADDRESS_FAMILY_IPV6:
        usable = FromParsed(*a, &sock, &sock_len);
        break;
      case GN_ADDRESS_FAMILY_UNIX:
        usable = ParseUnix(a->addr, &sock, &sock_len);
        break;
      case GN_ADDRESS_FAMILY_NAME:
        // The resolver asks libgnaming to look host names up, so what is left is an opaque string.
        why = " (not an address)";
        break;
    }
    if (!usable) {
      skipped += std::string(skipped.empty() ? "" : "; ") + a->addr + why;
      continue;
    }
    for (uint32_t w = 0; w < copies[i]; w++) {
      Endpoint e;
      e.addr = sock;
      e.addr_len = sock_len;
      e.copy_index = a->copy_index;
      e.weight_copy = w;
      if (a->metadata_json != nullptr) e.metadata_json = a->metadata_json;
      list.endpoints.push_back(std::move(e));
    }
  }
  if (!skipped.empty()) list.note = "libgnaming: unusable addresses skipped: " + skipped;
  if (balancers > 0) {
    list.note += std::string(list.note.empty() ? "" : "; ") + "libgnaming: " + std::to_string(balancers) +
                 " grpclb balancer address(es) ignored";
  }
  return list;
}

}  // namespace gnaming::internal
