// The public-API channel: the process's xDS bootstrap and targets rewritten to their xds: form.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "error.h"
#include "gnaming/grpcpp.h"

namespace gnaming {
namespace {

// Which process installed the bootstrap: a forked child has a copy of the parent's flag but not of
// its xDS server, and grpc in it already runs.
struct BootstrapState {
  std::mutex mu;
  pid_t installed_in = 0;
};

BootstrapState& Bootstrap() {
  static auto* state = new BootstrapState();  // never destroyed: channels may be made during exit
  return *state;
}

// Frees a string the C library returned.
struct StringDeleter {
  void operator()(char* s) const { gn_string_free(s); }
};
using CString = std::unique_ptr<char, StringDeleter>;

// How many channels `target` needs (more than one for "#N"), from the core's own answer.
size_t ChannelCount(const std::string& target) {
  char* json = nullptr;
  gn_error* err = nullptr;
  internal::Check(gn_xds_channels_json(nullptr, target.c_str(), &json, &err), err, "gn_xds_channels_json");
  CString owned(json);
  google::protobuf::ListValue channels;
  if (!google::protobuf::util::JsonStringToMessage(json, &channels).ok()) {
    throw Error(GN_STATUS_INTERNAL, std::string("gn_xds_channels_json gave no JSON list: ") + json);
  }
  return static_cast<size_t>(channels.values_size());
}

// Whether `arguments` carry a key; ChannelArguments has no getter, so read its C form.
bool HasArgument(const grpc::ChannelArguments& arguments, const char* key) {
  grpc_channel_args args{};
  arguments.SetChannelArgs(&args);
  for (size_t i = 0; i < args.num_args; i++) {
    if (std::strcmp(args.args[i].key, key) == 0) return true;
  }
  return false;
}

}  // namespace

void InstallBootstrap() {
  BootstrapState& state = Bootstrap();
  std::lock_guard<std::mutex> lock(state.mu);
  const pid_t pid = getpid();
  if (state.installed_in == pid) return;
  if (state.installed_in != 0) {
    throw Error(GN_STATUS_BAD_STATE,
                "gnaming::InstallBootstrap: this is a forked child of the process that installed the xDS "
                "bootstrap; grpc channels work in a child only after exec");
  }
  if (grpc_is_initialized() != 0) {
    throw Error(GN_STATUS_BAD_STATE,
                "gnaming::InstallBootstrap: grpc is already running in this process; call it at the top of "
                "main, before the first grpc object (channel, credentials, server, completion queue), because "
                "it changes the environment that grpc's threads read");
  }
  gn_error* err = nullptr;
  internal::Check(gn_xds_install_bootstrap(&err), err, "gn_xds_install_bootstrap");
  state.installed_in = pid;
}

std::string XdsTarget(const std::string& target) {
  char* xds = nullptr;
  gn_error* err = nullptr;
  internal::Check(gn_xds_target(nullptr, target.c_str(), &xds, &err), err, "gn_xds_target");
  CString owned(xds);
  return xds;
}

std::shared_ptr<grpc::Channel> CreateChannel(const std::string& target,
                                             const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                             const grpc::ChannelArguments& arguments) {
  if (HasArgument(arguments, GRPC_ARG_SERVICE_CONFIG)) {
    throw Error(GN_STATUS_INVALID_ARGUMENT,
                "gnaming::CreateChannel: gRPC ignores a service config argument on xds: channels; the "
                "balancing policy comes from the target's own service config");
  }
  std::string xds = XdsTarget(target);
  if (ChannelCount(target) > 1) {
    throw Error(GN_STATUS_INVALID_TARGET,
                "gnaming::CreateChannel: '" + target +
                    "' asks for '#N' connections per address, which one xDS channel cannot hold; the resolver "
                    "plugin (gnaming/grpc.h) opens them");
  }
  InstallBootstrap();
  return grpc::CreateCustomChannel(xds, credentials, arguments);
}

}  // namespace gnaming
