// libgnaming's resolvers as a grpc-core plugin: the optional path, tied to the one grpc release it
// was compiled against (it uses grpc-core's internal resolver API). Prefer gnaming/grpcpp.h
// (gnaming::CreateChannel over gRPC's public xDS client), which works with any grpc++ from 1.51
// on; this plugin adds "#N" (N connections per address), which xDS cannot express, and needs no
// bootstrap. It includes gnaming/grpcpp.h, so gnaming::Registration and gnaming::Error are here too.
//
// Linking libgnaming_grpc is enough for channels on "etcd:///service" and "pass:///a:1,b:2" to
// resolve through libgnaming: the library registers its resolvers with grpc-core when it is
// loaded. SetResolverSchemes changes the scheme names, as long as no channel or server exists yet.
//
//   auto channel = grpc::CreateCustomChannel("etcd:///greeter", creds, args_with_round_robin);
//
//   gnaming::Registration reg("greeter", "127.0.0.1:50051");  // registers until destroyed
//   reg.Wait(std::chrono::seconds(5));
//   ...
//   reg.Close();        // deregister first: clients stop picking this server at once
//   server->Shutdown();
//
// Address lists reach grpc as follows (see README.md for details):
// - "#N" copies become N subchannels (channel arg "gnaming.copy_index" tells them apart);
// - weights become proportional copies of each address, at most kMaxWeightCopies per address
//   (channel arg "gnaming.weight_copy");
// - metadata is the channel arg "gnaming.metadata_json" of the address;
// - a transient source error keeps the last list (round_robin goes on using it);
// - pick a balancing policy that uses every address (round_robin) for copies and weights to count.
#ifndef GNAMING_GRPC_H
#define GNAMING_GRPC_H

#include <gnaming.h>
#include <gnaming/grpcpp.h>

#include <string>

#define GNAMING_GRPC_API __attribute__((visibility("default")))

namespace gnaming {

// The plugin's version, "MAJOR.MINOR.PATCH".
GNAMING_GRPC_API extern const char kPluginVersion[];

namespace internal {
// The plugin registers itself from a load-time constructor, which linkers cannot see: with
// -Wl,--as-needed a program that calls nothing in it would drop it. This reference, emitted in
// every object that includes this header, keeps it linked.
[[gnu::used]] static const char* const kKeepPluginLinked = kPluginVersion;
}  // namespace internal

// Copies of one address made for its weight are capped here, so a weight of 1000 next to 1 does
// not open 1000 connections; larger ratios are scaled down to fit (minimum one copy each).
inline constexpr unsigned kMaxWeightCopies = 16;

// grpc scheme names for libgnaming's resolvers; an empty name leaves that resolver unregistered.
// Names must differ from grpc's own schemes ("dns", "ipv4", "ipv6", "unix"...): grpc-core aborts
// on a scheme registered twice, so the DNS resolver has no grpc name by default.
struct ResolverSchemes {
  std::string etcd = "etcd";
  std::string pass = "pass";
  std::string dns;
};

// Chooses the scheme names registered with grpc-core. Must run before the process creates its
// first grpc channel or server (grpc-core then freezes its registry); throws gnaming::Error with
// GN_STATUS_BAD_STATE afterwards and GN_STATUS_INVALID_ARGUMENT for a bad or clashing name.
// Thread-safe.
GNAMING_GRPC_API void SetResolverSchemes(const ResolverSchemes& schemes);

// The scheme names in effect (the defaults unless SetResolverSchemes changed them).
GNAMING_GRPC_API ResolverSchemes GetResolverSchemes();

}  // namespace gnaming

#endif  // GNAMING_GRPC_H
