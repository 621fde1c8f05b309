// libgnaming for gRPC C++ through grpc++'s public API only: channels that follow a libgnaming
// target through gRPC's own xDS client, and servers that register themselves.
//
// Builds and runs against any grpc++ whose core has the xDS client (1.51 on): no grpc internal
// header, no resolver plugin. libgnaming's embedded xDS server (the process's default one, on
// loopback) answers the channel's xDS client with the live list of the target.
//
//   int main() {
//     gnaming::InstallBootstrap();   // first, before any grpc object (see "The bootstrap rule")
//     auto channel = gnaming::CreateChannel("etcd:///greeter", grpc::InsecureChannelCredentials());
//     auto stub = Greeter::NewStub(channel);   // a normal grpc::Channel, updated in place
//   }
//
//   gnaming::Registration reg("greeter", "127.0.0.1:50051");  // registers until destroyed
//   ...
//   reg.Close();        // deregister first: clients stop picking this server at once
//   server->Shutdown();
//
// What the channel does with the list: a change opens connections to new backends only (unchanged
// ones keep theirs); weights (etcd metadata {"weight": N}) split traffic in proportion; the
// balancing policy is the target's service config's round_robin or ring_hash (ring_hash only on
// grpc++ 1.52 and later: 1.51 crashes on it, the server never sends it there); an outage of the
// source keeps the last list; an empty list from a healthy source fails RPCs with UNAVAILABLE.
//
// The bootstrap rule. gRPC reads the xDS bootstrap once per process, from the environment, when it
// makes its first xds: channel. InstallBootstrap() starts the default xDS server and sets
// GRPC_XDS_BOOTSTRAP_CONFIG; changing the environment is safe only while no other thread reads it,
// so it must run before grpc starts its threads: before the process's first grpc object (channel,
// credentials, server, completion queue), at the top of main. One bootstrap per process: a
// process that has another (GRPC_XDS_BOOTSTRAP, or a GRPC_XDS_BOOTSTRAP_CONFIG it did not get from
// libgnaming, as a service mesh sets) cannot use these channels. Both are enforced: InstallBootstrap
// and CreateChannel throw gnaming::Error with GN_STATUS_BAD_STATE when grpc is already running
// without the bootstrap or another one is set. After fork(), use CreateChannel in the child only
// after exec (grpc's own rule for C++ channels).
#ifndef GNAMING_GRPCPP_H
#define GNAMING_GRPCPP_H

#include <gnaming.h>
#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#define GNAMING_GRPCPP_API __attribute__((visibility("default")))

namespace gnaming {

// A failed libgnaming call: its status and message.
class GNAMING_GRPCPP_API Error : public std::runtime_error {
 public:
  Error(gn_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  gn_status status() const { return status_; }

 private:
  gn_status status_;
};

// Starts the process's default xDS server and points gRPC's xDS client at it (see "The bootstrap
// rule" above). Idempotent. Throws gnaming::Error: GN_STATUS_BAD_STATE when grpc is already
// running in this process and the bootstrap was not installed before, or when another bootstrap is
// set; the server's own errors otherwise. Thread-safe.
GNAMING_GRPCPP_API void InstallBootstrap();

// The xds: target through which gRPC reaches `target` via the default xDS server:
// "etcd:///greeter" gives "xds:///greeter", other targets "xds:///" and the whole target,
// percent-encoded. Throws gnaming::Error (GN_STATUS_INVALID_TARGET...) for a bad target.
GNAMING_GRPCPP_API std::string XdsTarget(const std::string& target);

// A grpc++ channel on `target` ("etcd:///greeter", "etcd://prod/greeter", "dns:///host:port",
// "pass:///10.0.0.1:50051,10.0.0.2:50051"): grpc::CreateCustomChannel on XdsTarget(target), after
// InstallBootstrap(). `arguments` go to grpc as they are, except a service config
// (SetServiceConfigJSON), which gRPC ignores on xds: channels and is refused here
// (GN_STATUS_INVALID_ARGUMENT): the policy comes from the target's own service config.
// "#N" (N connections per address) cannot be written in xDS, which refuses an address listed
// twice: such a target throws GN_STATUS_INVALID_TARGET; the resolver plugin (gnaming/grpc.h) opens
// them. Throws gnaming::Error as InstallBootstrap and XdsTarget do. Write it qualified,
// gnaming::CreateChannel: unqualified, argument-dependent lookup also finds grpc::CreateChannel.
GNAMING_GRPCPP_API std::shared_ptr<grpc::Channel> CreateChannel(
    const std::string& target, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& arguments = grpc::ChannelArguments());

// Options of an etcd cluster named in targets as "etcd://NAME/service" and in
// Registration::Options::cluster; the name "" configures the default cluster ("etcd:///...").
struct ClusterOptions {
  std::string endpoints;  // "host:port,host:port"
  std::chrono::milliseconds dial_timeout{0};     // 0: libgnaming's default
  std::chrono::milliseconds request_timeout{0};  // 0: libgnaming's default
};

// Registers (or replaces) cluster `name`. Throws gnaming::Error. Thread-safe.
GNAMING_GRPCPP_API void RegisterCluster(const std::string& name, const ClusterOptions& options);

// Options of a ZooKeeper ensemble named in targets and registration services as "zk://NAME/path";
// the name "" configures the default ensemble ("zk:///path"), whose credentials and ACL also serve
// "zk://host:port/path".
struct ZkEnsembleOptions {
  std::string servers;          // a connect string: "host:port,host:port", optionally ending in a chroot
  std::string digest_user;      // "" for none; else every session authenticates with ZooKeeper's digest
  std::string digest_password;  // with digest_user
  std::string node_acl;         // of the nodes registrations create: "" or "open", "creator-all",
                                // "creator-all-anyone-read" (the creator ACLs need digest credentials)
};

// Registers (or replaces) ensemble `name` for resolvers and registrations started afterwards.
// Throws gnaming::Error (GN_STATUS_INVALID_ARGUMENT naming the bad part). Thread-safe.
GNAMING_GRPCPP_API void RegisterZkEnsemble(const std::string& name, const ZkEnsembleOptions& options);

// A server's entry in etcd under "<service>/<address>", kept alive by a lease for as long as the
// object lives. Construction returns at once; registration (and re-registration after etcd
// outages) goes on in the background. Destroying it deregisters (waiting at most one second):
// destroy or Close() it before shutting the server down, so clients stop picking this server
// before its connections close. Movable, not copyable; one object must not be used from two
// threads at once.
class GNAMING_GRPCPP_API Registration {
 public:
  // kWarmingUp: waiting out Options::warmup; nothing is in etcd yet.
  enum class State { kRegistering, kRegistered, kRetrying, kClosed, kWarmingUp };

  struct Options {
    std::string cluster;                   // "" (default cluster), a cluster name or "host:port"
    std::chrono::milliseconds ttl{10000};  // lease TTL; at least 1000 ms
    std::string metadata_json;             // stored with the address; "" for none
    std::chrono::milliseconds warmup{0};   // write nothing to etcd for this long, while the server warms up
  };

  // The document and key layout written in etcd (gn_registration_options_set_format in gnaming.h):
  // etcd's own, a Kratos ServiceInstance or a go-micro Service, which the framework's own discovery
  // reads. With kKratos and kGoMicro, `service` is the framework's service name (placed under its
  // default prefix) or, starting with '/', the prefix itself; the metadata is a JSON object of strings,
  // numbers or booleans. Resolve them with "etcd:///" and the prefix ("etcd:////microservices/echo").
  enum class Format { kEtcd, kKratos, kGoMicro };

  // Throws gnaming::Error when the arguments are invalid.
  Registration(const std::string& service, const std::string& address, const Options& options);
  // As above, in `format`'s layout. (Not an Options field, so that the layer's ABI stays as it was.)
  Registration(const std::string& service, const std::string& address, const Options& options, Format format);
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
  // Deletes the entry, then waits `drain` (from etcd's confirmation) for clients to see that and stop
  // picking this address while the server keeps answering, and returns: shut the server down then
  // (grpc::Server::Shutdown with a deadline lets RPCs in flight finish). While etcd is unreachable
  // the deletion is retried for up to `timeout`; if etcd has not confirmed by then it still waits
  // `drain` and throws gnaming::Error (GN_STATUS_TIMEOUT), the lease taking the entry within the
  // TTL. During the warm-up nothing is in etcd: it closes and returns at once. A later Drain or
  // Close returns at once. Must not be called from a resolver callback (GN_STATUS_BAD_STATE).
  void Drain(std::chrono::milliseconds drain, std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  gn_registration* handle_ = nullptr;
};

}  // namespace gnaming

#endif  // GNAMING_GRPCPP_H
