// The grpc-core resolver plugin: one grpc Resolver per channel, backed by one libgnaming resolver.
// This is the only file that uses grpc-core's internal API (1.51 layout: ServerAddress,
// CoreConfiguration::RegisterBuilder, ResolverFactory); porting to another grpc release means
// changing this file. It must be compiled without NDEBUG, like Debian's libgrpc, because internal
// struct layouts depend on it.
#include <gnaming.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "address_list.h"
#include "gnaming/grpc.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/config/core_configuration.h"
#include "src/core/lib/gprpp/debug_location.h"
#include "src/core/lib/gprpp/orphanable.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/server_address.h"
#include "src/core/lib/service_config/service_config_impl.h"
#include "src/core/lib/uri/uri_parser.h"

#ifdef NDEBUG
#error "compile the gnaming grpc plugin without NDEBUG: Debian's libgrpc is built without it"
#endif

namespace gnaming {
namespace {

using grpc_core::ChannelArgs;
using grpc_core::Resolver;
using grpc_core::ServerAddress;
using grpc_core::ServerAddressList;

// The scheme names, read once by grpc-core when it builds its configuration.
struct SchemeState {
  std::mutex mu;
  ResolverSchemes schemes;
  bool frozen = false;
};

SchemeState& Schemes() {
  static auto* state = new SchemeState();  // never destroyed: grpc may build late in exit paths
  return *state;
}

// Rebuilds the target in libgnaming's syntax from grpc's parsed URI: the scheme becomes
// libgnaming's name for the backend, and the decoded path carries "#N" that grpc's parser split
// off as a fragment (a raw '#' may appear once in a grpc target; write %23 for more).
std::string LibgnamingTarget(const std::string& backend, const grpc_core::URI& uri) {
  std::string target = absl::StrCat(backend, "://", uri.authority(), uri.path());
  const auto& query = uri.query_parameter_pairs();
  for (size_t i = 0; i < query.size(); i++) {
    absl::StrAppend(&target, i == 0 ? "?" : "&", query[i].key,
                    query[i].value.empty() ? "" : "=", query[i].value);
  }
  if (!uri.fragment().empty()) absl::StrAppend(&target, "#", uri.fragment());
  return target;
}

class GnamingResolver final : public Resolver {
 public:
  GnamingResolver(grpc_core::ResolverArgs args, std::string target)
      : target_(std::move(target)),
        channel_args_(std::move(args.args)),
        work_serializer_(std::move(args.work_serializer)),
        result_handler_(std::move(args.result_handler)) {}

  void StartLocked() override {
    gn_resolver_options* options = gn_resolver_options_new();
    if (options != nullptr) {
      gn_resolver_options_set_client_language(options, "c++", nullptr);
      // Host names are looked up by libgnaming's asynchronous DNS client, so the delivery thread
      // never blocks in a lookup and ConvertUpdate gets IP addresses only.
      gn_resolver_options_set_resolve_host_names(options, true, nullptr);
    }
    // libgnaming holds this ref until it calls OnDrop, so no update reaches a freed resolver.
    gn_update_callback callback{Ref().release(), &GnamingResolver::OnUpdate, &GnamingResolver::OnDrop};
    gn_error* err = nullptr;
    gn_status status = gn_resolver_start(target_.c_str(), options, callback, &handle_, &err);
    gn_resolver_options_free(options);
    if (status != GN_STATUS_OK) {
      std::string message = absl::StrCat("libgnaming: ", target_, ": ", gn_status_name(status), ": ",
                                         gn_error_message(err));
      gn_error_free(err);
      Result result;
      result.addresses = absl::UnavailableError(message);
      result.service_config = result.addresses.status();
      result.args = channel_args_;
      result_handler_->ReportResult(std::move(result));
    }
  }

  void RequestReresolutionLocked() override {
    if (handle_ != nullptr) gn_resolver_resolve_now(handle_, nullptr);
  }

 private:
  void ShutdownLocked() override {
    shutdown_ = true;
    // Waits for an update in flight on a libgnaming thread; that update only queues work on the
    // serializer we hold, so it cannot block on us.
    gn_resolver_free(handle_);
    handle_ = nullptr;
  }

  static void OnUpdate(void* user_data, const gn_update* update) {
    auto* self = static_cast<GnamingResolver*>(user_data);
    auto list = std::make_shared<const internal::AddressList>(internal::ConvertUpdate(update, kMaxWeightCopies));
    grpc_core::ExecCtx exec_ctx;
    // The ref keeps the resolver alive until the queued report ran.
    self->work_serializer_->Run([self, ref = self->Ref(), list]() { self->ReportLocked(*list); }, DEBUG_LOCATION);
  }

  static void OnDrop(void* user_data) {
    grpc_core::ExecCtx exec_ctx;
    static_cast<GnamingResolver*>(user_data)->Unref();
  }

  void ReportLocked(const internal::AddressList& list) {
    if (shutdown_) return;
    Result result;
    result.args = channel_args_;
    result.resolution_note = list.note;
    // Before any list, an error carrying one is the cold-start cache's: hand it on, so calls go to
    // those servers while the source is unreachable (its note says why the list may be stale).
    if (!list.ok && (handed_list_ || list.endpoints.empty())) {
      // An error keeps round_robin on the addresses it has; an empty OK list would drop them.
      result.addresses = absl::UnavailableError(absl::StrCat("libgnaming: ", target_, ": ", list.error_message));
      result.service_config = nullptr;
      result_handler_->ReportResult(std::move(result));
      return;
    }
    ServerAddressList addresses;
    addresses.reserve(list.endpoints.size());
    for (const auto& e : list.endpoints) {
      ChannelArgs args;
      // Subchannels are keyed by address and args: distinct values open distinct connections.
      if (e.copy_index > 0) args = args.Set("gnaming.copy_index", static_cast<int>(e.copy_index));
      if (e.weight_copy > 0) args = args.Set("gnaming.weight_copy", static_cast<int>(e.weight_copy));
      if (e.metadata_json.has_value()) args = args.Set("gnaming.metadata_json", *e.metadata_json);
      addresses.emplace_back(&e.addr, e.addr_len, args);
    }
    result.addresses = std::move(addresses);
    handed_list_ = true;
    if (list.service_config_json.has_value()) {
      result.service_config = grpc_core::ServiceConfigImpl::Create(channel_args_, *list.service_config_json);
    }
    result_handler_->ReportResult(std::move(result));
  }

  const std::string target_;
  const ChannelArgs channel_args_;
  std::shared_ptr<grpc_core::WorkSerializer> work_serializer_;
  std::unique_ptr<ResultHandler> result_handler_;
  gn_resolver* handle_ = nullptr;  // touched only inside the work serializer
  bool shutdown_ = false;          // likewise
  bool handed_list_ = false;       // grpc-core got a list from this resolver; likewise
};

class GnamingResolverFactory final : public grpc_core::ResolverFactory {
 public:
  GnamingResolverFactory(std::string scheme, std::string backend)
      : scheme_(std::move(scheme)), backend_(std::move(backend)) {}

  absl::string_view scheme() const override { return scheme_; }

  bool IsValidUri(const grpc_core::URI&) const override { return true; }

  grpc_core::OrphanablePtr<Resolver> CreateResolver(grpc_core::ResolverArgs args) const override {
    std::string target = LibgnamingTarget(backend_, args.uri);
    return grpc_core::MakeOrphanable<GnamingResolver>(std::move(args), std::move(target));
  }

 private:
  const std::string scheme_;
  const std::string backend_;
};

void RegisterFactories(grpc_core::CoreConfiguration::Builder* builder) {
  SchemeState& state = Schemes();
  std::lock_guard<std::mutex> lock(state.mu);
  state.frozen = true;
  const std::pair<const std::string*, const char*> pairs[] = {
      {&state.schemes.etcd, "etcd"}, {&state.schemes.pass, "pass"}, {&state.schemes.dns, "dns"}};
  for (const auto& [name, backend] : pairs) {
    if (name->empty()) continue;
    builder->resolver_registry()->RegisterResolverFactory(std::make_unique<GnamingResolverFactory>(*name, backend));
  }
}

// grpc-core reads its registry once, when the first channel or server appears; registering at
// load time is the only way to be in it without the application calling anything.
__attribute__((constructor)) void RegisterAtLoad() { grpc_core::CoreConfiguration::RegisterBuilder(&RegisterFactories); }

bool ValidSchemeName(const std::string& name) {
  if (name.empty()) return true;
  if (!std::isalpha(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace

const char kPluginVersion[] = GNAMING_GRPC_VERSION;

void SetResolverSchemes(const ResolverSchemes& schemes) {
  static const char* const kGrpcSchemes[] = {"dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock",
                                             "xds", "google-c2p", "google-c2p-experimental", "fake",
                                             "sockaddr", "binder"};
  for (const std::string* name : {&schemes.etcd, &schemes.pass, &schemes.dns}) {
    if (!ValidSchemeName(*name)) throw Error(GN_STATUS_INVALID_ARGUMENT, "not a URI scheme name: '" + *name + "'");
    for (const char* taken : kGrpcSchemes) {
      if (*name == taken) throw Error(GN_STATUS_INVALID_ARGUMENT, "scheme '" + *name + "' belongs to grpc itself");
    }
  }
  if ((!schemes.etcd.empty() && (schemes.etcd == schemes.pass || schemes.etcd == schemes.dns)) ||
      (!schemes.pass.empty() && schemes.pass == schemes.dns)) {
    throw Error(GN_STATUS_INVALID_ARGUMENT, "two resolvers share one scheme name");
  }
  SchemeState& state = Schemes();
  std::lock_guard<std::mutex> lock(state.mu);
  if (state.frozen) {
    throw Error(GN_STATUS_BAD_STATE, "grpc already built its resolver registry (a channel or server exists)");
  }
  state.schemes = schemes;
}

ResolverSchemes GetResolverSchemes() {
  SchemeState& state = Schemes();
  std::lock_guard<std::mutex> lock(state.mu);
  return state.schemes;
}

}  // namespace gnaming
