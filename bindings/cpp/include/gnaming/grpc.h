// libgnaming for gRPC C++: name resolution for grpc::CreateChannel and registration for servers.
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

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

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

// A failed libgnaming call: its status and message.
class GNAMING_GRPC_API Error : public std::runtime_error {
 public:
  Error(gn_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  gn_status status() const { return status_; }

 private:
  gn_status status_;
};

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

// Options of an etcd cluster named in targets as "etcd://NAME/service" and in
// Registration::Options::cluster; the name "" configures the default cluster ("etcd:///...").
struct ClusterOptions {
  std::string endpoints;  // "host:port,host:port"
  std::chrono::milliseconds dial_timeout{0};     // 0: libgnaming's default
  std::chrono::milliseconds request_timeout{0};  // 0: libgnaming's default
};

// Registers (or replaces) cluster `name`. Throws gnaming::Error. Thread-safe.
GNAMING_GRPC_API void RegisterCluster(const std::string& name, const ClusterOptions& options);

// A server's entry in etcd under "<service>/<address>", kept alive by a lease for as long as the
// object lives. Construction returns at once; registration (and re-registration after etcd
// outages) goes on in the background. Destroying it deregisters (waiting at most one second):
// destroy or Close() it before shutting the server down, so clients stop picking this server
// before its connections close. Movable, not copyable; one object must not be used from two
// threads at once.
class GNAMING_GRPC_API Registration {
 public:
  enum class State { kRegistering, kRegistered, kRetrying, kClosed };

  struct Options {
    std::string cluster;                     // "" (default cluster), a cluster name or "host:port"
    std::chrono::milliseconds ttl{10000};    // lease TTL; at least 1000 ms
    std::string metadata_json;               // stored with the address; "" for none
  };

  // Throws gnaming::Error when the arguments are invalid.
  Registration(const std::string& service, const std::string& address, const Options& options);
  Registration(const std::string& service, const std::string& address);
  Registration(Registration&& other) noexcept;
  Registration& operator=(Registration&& other) noexcept;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration();

  // Waits until the entry is in etcd: true when it is, false when `timeout` passed first.
  bool Wait(std::chrono::milliseconds timeout);
  State state() const;
  // Deletes the entry (watchers see the removal at once) and stops keeping it alive; waits at
  // most `timeout` for etcd. Idempotent. Throws gnaming::Error (GN_STATUS_TIMEOUT or
  // GN_STATUS_UNAVAILABLE) when etcd did not confirm in time; removal then goes on in the
  // background and the lease expires on its own after the TTL anyway.
  void Close(std::chrono::milliseconds timeout = std::chrono::seconds(1));

 private:
  gn_registration* handle_ = nullptr;
};

}  // namespace gnaming

#endif  // GNAMING_GRPC_H
