// Turns one libgnaming update into the plain address list the grpc plugin pushes: socket
// addresses plus the per-address values that become channel args. Independent of grpc-core's
// internal headers, so the version-locked part of the plugin stays small.
#ifndef GNAMING_GRPC_ADDRESS_LIST_H
#define GNAMING_GRPC_ADDRESS_LIST_H

#include <gnaming.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gnaming::internal {

struct Endpoint {
  sockaddr_storage addr;
  socklen_t addr_len;
  // "#N" copy of the entry (0..N-1): distinct values must give distinct subchannels.
  uint32_t copy_index;
  // Which of the weight-proportional copies this is (0..copies-1).
  uint32_t weight_copy;
  std::optional<std::string> metadata_json;
};

struct AddressList {
  bool ok;                    // false: the source failed; keep the previous list
  std::string error_message;  // why, when !ok
  std::vector<Endpoint> endpoints;
  std::optional<std::string> service_config_json;
  std::string note;  // entries that could not be used, for RPC error messages
};

// Copies everything out of `update` (borrowed for the callback only). Parses no address text: IP
// socket addresses come from the fields libgnaming filled in when it parsed the entry (ip, port,
// and the IPv6 zone as scope_id), unix paths are copied. Host names are libgnaming's to look up
// (the resolver sets resolve_host_names); an entry that still is a name is skipped with a note.
AddressList ConvertUpdate(const gn_update* update, unsigned max_weight_copies);

// Copies per entry for the given weights: divided by their greatest common divisor, then scaled
// so that no entry exceeds max_copies (each keeps at least one).
std::vector<uint32_t> WeightCopies(const std::vector<uint32_t>& weights, unsigned max_copies);

}  // namespace gnaming::internal

#endif  // GNAMING_GRPC_ADDRESS_LIST_H
