// A real greeter server on an ephemeral loopback port that counts, per client connection, the
// RPCs it answered; tests use it to see where a channel's traffic went.
#ifndef GNAMING_TEST_GREETER_SERVER_H
#define GNAMING_TEST_GREETER_SERVER_H

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "greeter.grpc.pb.h"

namespace gnaming::test {

class GreeterServer final : public gnaming::test::Greeter::Service {
 public:
  // listen: "127.0.0.1:0" (an ephemeral port), "[::1]:0" or "unix:/path".
  explicit GreeterServer(const std::string& listen = "127.0.0.1:0") {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (listen.rfind("unix:", 0) == 0) {
      address_ = listen;
    } else {
      address_ = listen.substr(0, listen.rfind(':') + 1) + std::to_string(port);
    }
    port_ = port;
  }
  ~GreeterServer() override { Stop(); }

  void Stop() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_.reset();
    }
  }

  grpc::Status SayHello(grpc::ServerContext* context, const HelloRequest*, HelloReply* reply) override {
    reply->set_server(address_);
    std::lock_guard<std::mutex> lock(mu_);
    rpcs_++;
    peers_[context->peer()]++;
    return grpc::Status::OK;
  }

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  int rpcs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rpcs_;
  }
  // Distinct client connections (peer address:port) that sent RPCs.
  size_t connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_.size();
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    rpcs_ = 0;
    peers_.clear();
  }

 private:
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  mutable std::mutex mu_;
  int rpcs_ = 0;
  std::map<std::string, int> peers_;
};

inline std::shared_ptr<grpc::Channel> RoundRobinChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// One RPC; returns the answering server's address, or "" with *status set on failure.
inline std::string SayHello(Greeter::Stub& stub, grpc::Status* status = nullptr,
                            std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  ctx.set_wait_for_ready(false);
  HelloRequest req;
  req.set_name("test");
  HelloReply reply;
  grpc::Status s = stub.SayHello(&ctx, req, &reply);
  if (status != nullptr) *status = s;
  return s.ok() ? reply.server() : "";
}

// Sends RPCs until every address in `want` answered or `deadline` passed; returns who answered.
inline std::set<std::string> ReachedServers(Greeter::Stub& stub, const std::set<std::string>& want,
                                            std::chrono::milliseconds deadline) {
  std::set<std::string> seen;
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    std::string who = SayHello(stub, nullptr, std::chrono::seconds(1));
    if (!who.empty()) seen.insert(who);
    bool all = true;
    for (const auto& w : want) all = all && seen.count(w) > 0;
    if (all) break;
    if (who.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return seen;
}

inline std::string Join(const std::set<std::string>& s) {
  std::ostringstream out;
  out << "{";
  for (auto it = s.begin(); it != s.end(); ++it) out << (it == s.begin() ? "" : ", ") << *it;
  out << "}";
  return out.str();
}

}  // namespace gnaming::test

#endif  // GNAMING_TEST_GREETER_SERVER_H
