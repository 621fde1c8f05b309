// C++ RAII layer over libgnaming's cluster and registration calls.
#include <gnaming.h>

#include <memory>
#include <utility>

#include "error.h"
#include "gnaming/grpcpp.h"

namespace gnaming {
namespace {

using internal::Check;

struct ClusterOptionsDeleter {
  void operator()(gn_cluster_options* o) const { gn_cluster_options_free(o); }
};
struct ZkOptionsDeleter {
  void operator()(gn_zk_options* o) const { gn_zk_options_free(o); }
};
struct RegistrationOptionsDeleter {
  void operator()(gn_registration_options* o) const { gn_registration_options_free(o); }
};

uint32_t Millis32(std::chrono::milliseconds ms) {
  if (ms.count() <= 0) return 0;
  return ms.count() > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(ms.count());
}

}  // namespace

void RegisterCluster(const std::string& name, const ClusterOptions& options) {
  std::unique_ptr<gn_cluster_options, ClusterOptionsDeleter> o(gn_cluster_options_new());
  if (!o) throw Error(GN_STATUS_INTERNAL, "gn_cluster_options_new: out of memory");
  gn_error* err = nullptr;
  Check(gn_cluster_options_set_endpoints(o.get(), options.endpoints.c_str(), &err), err, "cluster endpoints");
  if (options.dial_timeout.count() > 0) {
    Check(gn_cluster_options_set_dial_timeout_ms(o.get(), Millis32(options.dial_timeout), &err), err,
          "cluster dial timeout");
  }
  if (options.request_timeout.count() > 0) {
    Check(gn_cluster_options_set_request_timeout_ms(o.get(), Millis32(options.request_timeout), &err), err,
          "cluster request timeout");
  }
  Check(gn_cluster_register(name.c_str(), o.get(), &err), err, "gn_cluster_register");
}

void RegisterZkEnsemble(const std::string& name, const ZkEnsembleOptions& options) {
  std::unique_ptr<gn_zk_options, ZkOptionsDeleter> o(gn_zk_options_new());
  if (!o) throw Error(GN_STATUS_INTERNAL, "gn_zk_options_new: out of memory");
  gn_error* err = nullptr;
  Check(gn_zk_options_set_servers(o.get(), options.servers.c_str(), &err), err, "ZooKeeper servers");
  if (!options.digest_user.empty()) {
    Check(gn_zk_options_set_digest(o.get(), options.digest_user.c_str(), options.digest_password.c_str(), &err), err,
          "ZooKeeper digest credentials");
  }
  if (!options.node_acl.empty()) {
    Check(gn_zk_options_set_node_acl(o.get(), options.node_acl.c_str(), &err), err, "ZooKeeper node ACL");
  }
  Check(gn_zk_register(name.c_str(), o.get(), &err), err, "gn_zk_register");
}

Registration::Registration(const std::string& service, const std::string& address)
    : Registration(service, address, Options{}) {}

Registration::Registration(const std::string& service, const std::string& address, const Options& options)
    : Registration(service, address, options, Format::kEtcd) {}

Registration::Registration(const std::string& service, const std::string& address, const Options& options,
                           Format format) {
  const char* format_name = nullptr;
  switch (format) {
    case Format::kEtcd:
      break;
    case Format::kKratos:
      format_name = "kratos";
      break;
    case Format::kGoMicro:
      format_name = "go-micro";
      break;
    default:
      throw Error(GN_STATUS_INVALID_ARGUMENT, "registration format: not a Registration::Format value");
  }
  std::unique_ptr<gn_registration_options, RegistrationOptionsDeleter> o(gn_registration_options_new());
  if (!o) throw Error(GN_STATUS_INTERNAL, "gn_registration_options_new: out of memory");
  gn_error* err = nullptr;
  Check(gn_registration_options_set_cluster(o.get(), options.cluster.c_str(), &err), err, "registration cluster");
  Check(gn_registration_options_set_ttl_ms(o.get(), Millis32(options.ttl), &err), err, "registration ttl");
  if (!options.metadata_json.empty()) {
    Check(gn_registration_options_set_metadata_json(o.get(), options.metadata_json.c_str(), &err), err,
          "registration metadata");
  }
  if (options.warmup.count() > 0) {
    Check(gn_registration_options_set_warmup_ms(o.get(), Millis32(options.warmup), &err), err,
          "registration warm-up");
  }
  if (format_name != nullptr) {
    Check(gn_registration_options_set_format(o.get(), format_name, &err), err, "registration format");
  }
  Check(gn_registration_start(service.c_str(), address.c_str(), o.get(), &handle_, &err), err,
        "gn_registration_start");
}

Registration::Registration(Registration&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

Registration& Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    // Closes (waiting up to a second) unless Close() already did.
    gn_registration_free(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Registration::~Registration() { gn_registration_free(handle_); }

bool Registration::Wait(std::chrono::milliseconds timeout) {
  if (handle_ == nullptr) throw Error(GN_STATUS_CLOSED, "registration was moved from");
  gn_error* err = nullptr;
  gn_status status = gn_registration_wait(handle_, timeout.count(), &err);
  if (status == GN_STATUS_TIMEOUT) {
    gn_error_free(err);
    return false;
  }
  Check(status, err, "gn_registration_wait");
  return true;
}

Registration::State Registration::state() const {
  if (handle_ == nullptr) return State::kClosed;
  switch (gn_registration_get_state(handle_)) {
    case GN_REGISTRATION_STATE_REGISTERING:
      return State::kRegistering;
    case GN_REGISTRATION_STATE_REGISTERED:
      return State::kRegistered;
    case GN_REGISTRATION_STATE_RETRYING:
      return State::kRetrying;
    case GN_REGISTRATION_STATE_WARMING_UP:
      return State::kWarmingUp;
    case GN_REGISTRATION_STATE_CLOSED:
      break;
  }
  return State::kClosed;
}

void Registration::Close(std::chrono::milliseconds timeout) {
  if (handle_ == nullptr) return;
  gn_error* err = nullptr;
  gn_status status = gn_registration_close(handle_, Millis32(timeout), &err);
  Check(status, err, "gn_registration_close");
}

void Registration::Drain(std::chrono::milliseconds drain, std::chrono::milliseconds timeout) {
  if (handle_ == nullptr) return;
  gn_error* err = nullptr;
  gn_status status = gn_registration_drain(handle_, Millis32(drain), Millis32(timeout), &err);
  Check(status, err, "gn_registration_drain");
}

}  // namespace gnaming
