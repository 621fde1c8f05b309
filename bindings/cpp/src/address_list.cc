// Update → plain address list; see address_list.h.
#include "address_list.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string_view>

namespace gnaming::internal {
namespace {

// Splits "host:port" / "[v6]:port" at the last colon outside brackets.
bool SplitHostPort(std::string_view s, std::string* host, std::string* port) {
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    *host = std::string(s.substr(1, close - 1));
    *port = std::string(s.substr(close + 2));
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    *host = std::string(s.substr(0, colon));
    *port = std::string(s.substr(colon + 1));
  }
  return !host->empty() && !port->empty();
}

bool ParsePort(const std::string& text, uint16_t* port) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  unsigned long value = std::stoul(text);
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

bool ParseIp(std::string_view text, int family, sockaddr_storage* out, socklen_t* len) {
  std::string host, port_text;
  uint16_t port;
  if (!SplitHostPort(text, &host, &port_text) || !ParsePort(port_text, &port)) return false;
  std::memset(out, 0, sizeof(*out));
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) return false;
    *len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    // A zone ("fe80::1%eth0") names the interface the link-local address lives on.
    std::string zone;
    if (auto pct = host.find('%'); pct != std::string::npos) {
      zone = host.substr(pct + 1);
      host.resize(pct);
    }
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) return false;
    if (!zone.empty()) {
      unsigned index = if_nametoindex(zone.c_str());
      if (index == 0) return false;
      in6->sin6_scope_id = index;
    }
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

// All TCP addresses of "host:port"; an empty result with *error set when the lookup failed.
std::vector<std::pair<sockaddr_storage, socklen_t>> LookUp(std::string_view text, std::string* error) {
  std::vector<std::pair<sockaddr_storage, socklen_t>> out;
  std::string host, port;
  if (!SplitHostPort(text, &host, &port)) {
    *error = "not host:port";
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = gai_strerror(rc);
    return out;
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    out.emplace_back(ss, static_cast<socklen_t>(ai->ai_addrlen));
  }
  freeaddrinfo(res);
  return out;
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
    std::vector<std::pair<sockaddr_storage, socklen_t>> socks;
    sockaddr_storage ss;
    socklen_t len = 0;
    std::string why;
    switch (a->family) {
      case GN_ADDRESS_FAMILY_IPV4:
        if (ParseIp(a->addr, AF_INET, &ss, &len)) socks.emplace_back(ss, len);
        break;
      case GN_ADDRESS_FAMILY_IPV6:
        if (ParseIp(a->addr, AF_INET6, &ss, &len)) socks.emplace_back(ss, len);
        break;
      case GN_ADDRESS_FAMILY_UNIX:
        if (ParseUnix(a->addr, &ss, &len)) socks.emplace_back(ss, len);
        break;
      case GN_ADDRESS_FAMILY_NAME:
        socks = LookUp(a->addr, &why);
        break;
    }
    if (socks.empty()) {
      skipped += std::string(skipped.empty() ? "" : "; ") + a->addr + (why.empty() ? "" : " (" + why + ")");
      continue;
    }
    for (const auto& [sock, sock_len] : socks) {
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
  }
  if (!skipped.empty()) list.note = "libgnaming: unusable addresses skipped: " + skipped;
  if (balancers > 0) {
    list.note += std::string(list.note.empty() ? "" : "; ") + "libgnaming: " + std::to_string(balancers) +
                 " grpclb balancer address(es) ignored";
  }
  return list;
}

}  // namespace gnaming::internal
