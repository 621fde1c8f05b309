// The demo's greeter client in C++: calls SayHello on etcd:///echo through gnaming::CreateChannel
// (grpc++'s public xDS client, answered by libgnaming's in-process xDS server), counts answers by server, and prints a JSON status line every quarter second
// with the address list libgnaming gives for the target.
//   demo_client NAME [TARGET]
#include <gnaming.h>
#include <gnaming/grpcpp.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helloworld.grpc.pb.h"

namespace {

// The address list as the resolver last delivered it (a second resolver sharing the same watch).
struct AddressView {
  std::mutex mu;
  std::vector<std::string> addrs;

  static void OnUpdate(void* self, const gn_update* update) {
    auto* view = static_cast<AddressView*>(self);
    std::vector<std::string> addrs;
    for (size_t i = 0; i < gn_update_address_count(update); i++) addrs.push_back(gn_update_address(update, i)->addr);
    std::sort(addrs.begin(), addrs.end());
    std::lock_guard<std::mutex> lock(view->mu);
    view->addrs = std::move(addrs);
  }
};

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: demo_client NAME [TARGET]\n";
    return 2;
  }
  const std::string name = argv[1];
  const std::string target = argc > 2 ? argv[2] : "etcd:///echo";
  try {
    // First, before any grpc object of the process.
    gnaming::InstallBootstrap();
  } catch (const gnaming::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::atomic<bool> stop{false};
  std::thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stop = true;
  }).detach();

  AddressView view;
  gn_update_callback callback = {&view, &AddressView::OnUpdate, nullptr};
  gn_resolver* resolver = nullptr;
  gn_error* err = nullptr;
  if (gn_resolver_start(target.c_str(), nullptr, callback, &resolver, &err) != GN_STATUS_OK) {
    std::cerr << "resolver: " << gn_error_message(err) << "\n";
    gn_error_free(err);
    return 1;
  }

  std::shared_ptr<grpc::Channel> channel;
  try {
    channel = gnaming::CreateChannel(target, grpc::InsecureChannelCredentials());
  } catch (const gnaming::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  auto stub = helloworld::Greeter::NewStub(channel);

  std::map<std::string, long> counts;
  long ok = 0, failed = 0;
  std::vector<long long> failures;
  std::string last_error;
  auto report = [&] {
    std::ostringstream line;
    line << R"({"event":"status","client":)" << Quote(name) << R"(,"lang":"c++","addresses":[)";
    {
      std::lock_guard<std::mutex> lock(view.mu);
      for (size_t i = 0; i < view.addrs.size(); i++) line << (i ? "," : "") << Quote(view.addrs[i]);
    }
    line << R"(],"counts":{)";
    bool first = true;
    for (const auto& [server, n] : counts) {
      line << (first ? "" : ",") << Quote(server) << ":" << n;
      first = false;
    }
    line << R"(},"ok":)" << ok << R"(,"failed":)" << failed << R"(,"failures":[)";
    for (size_t i = 0; i < failures.size(); i++) line << (i ? "," : "") << failures[i];
    line << R"(],"last_error":)" << Quote(last_error) << "}";
    std::cout << line.str() << std::endl;
    failures.clear();
  };

  auto next_report = std::chrono::steady_clock::now();
  bool waiting_for_first = true;
  while (!stop) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    ctx.set_wait_for_ready(waiting_for_first);  // only the first call waits for addresses
    helloworld::HelloRequest req;
    req.set_name(name);
    helloworld::HelloReply reply;
    grpc::Status status = stub->SayHello(&ctx, req, &reply);
    if (status.ok()) {
      counts[reply.message()]++;
      ok++;
      waiting_for_first = false;
    } else {
      failed++;
      failures.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
      last_error = std::to_string(status.error_code()) + ": " + status.error_message();
    }
    if (std::chrono::steady_clock::now() >= next_report) {
      report();
      next_report += std::chrono::milliseconds(250);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  report();
  gn_resolver_free(resolver);
  return 0;
}
