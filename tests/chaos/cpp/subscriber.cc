// A C++ subscriber for the chaos scenarios: follows a target through gnaming.h's pull API (the one
// the grpc++ layer is built on) and prints every update as one JSON line ({"ok":true,"addrs":[...]},
// {"ok":false,"error":"..."} for an error) until stdin closes. GNAMING_ETCD_ENDPOINTS names the cluster.
#include <gnaming.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string Quoted(const char* text) {
  std::string out = "\"";
  for (const char* p = text; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\') out += '\\';
    if (static_cast<unsigned char>(*p) >= 0x20) out += *p;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: subscriber TARGET\n";
    return 2;
  }
  gn_resolver* resolver = nullptr;
  gn_error* err = nullptr;
  gn_update_callback pull{nullptr, nullptr, nullptr};
  if (gn_resolver_start(argv[1], nullptr, pull, &resolver, &err) != GN_STATUS_OK) {
    std::cerr << "gn_resolver_start: " << gn_error_message(err) << "\n";
    gn_error_free(err);
    return 1;
  }
  std::atomic<bool> done{false};
  std::thread stdin_reader([&done] {
    std::string ignored;
    while (std::getline(std::cin, ignored)) {
    }
    done = true;
  });
  while (!done) {
    gn_update* u = nullptr;
    if (gn_resolver_next(resolver, 200, &u, nullptr) != GN_STATUS_OK) continue;
    std::string line;
    if (gn_update_state(u) == GN_RESOLVER_STATE_OK) {
      std::vector<std::string> addrs;
      for (size_t i = 0; i < gn_update_address_count(u); i++) addrs.push_back(gn_update_address(u, i)->addr);
      std::sort(addrs.begin(), addrs.end());
      line = "{\"ok\":true,\"addrs\":[";
      for (size_t i = 0; i < addrs.size(); i++) line += (i ? "," : "") + Quoted(addrs[i].c_str());
      line += "]}";
    } else {
      line = "{\"ok\":false,\"error\":" + Quoted(gn_update_error_message(u)) + "}";
    }
    gn_update_free(u);
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  }
  stdin_reader.join();
  gn_resolver_free(resolver);
  gn_runtime_shutdown(2000, nullptr);
  return 0;
}
