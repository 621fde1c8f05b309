// Greeter server that registers itself in etcd while it runs.
//   GNAMING_ETCD_ENDPOINTS=127.0.0.1:2379 greeter_server [PORT]
// Ctrl-C deregisters first (clients stop picking this server at once), then shuts down.
#include <gnaming/grpcpp.h>
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "helloworld.grpc.pb.h"

namespace {

class Greeter final : public helloworld::Greeter::Service {
 public:
  // Set once the port is bound, before the address is registered: no client knows it earlier.
  void set_address(std::string address) { address_ = std::move(address); }
  grpc::Status SayHello(grpc::ServerContext*, const helloworld::HelloRequest* req,
                        helloworld::HelloReply* reply) override {
    reply->set_message("hello " + req->name() + " from " + address_);
    return grpc::Status::OK;
  }

 private:
  std::string address_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string port = argc > 1 ? argv[1] : "0";
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  // Blocked before grpc starts its threads, so only sigwait below receives them.
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  int bound = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port, grpc::InsecureServerCredentials(), &bound);
  Greeter service;
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
  const std::string address = "127.0.0.1:" + std::to_string(bound);
  service.set_address(address);

  try {
    gnaming::Registration registration("helloworld", address);
    if (!registration.Wait(std::chrono::seconds(10))) {
      std::cerr << "not registered yet (etcd unreachable?); retrying in the background\n";
    }
    std::cout << "serving helloworld on " << address << std::endl;
    int sig = 0;
    sigwait(&stop, &sig);
    registration.Close();
  } catch (const gnaming::Error& e) {
    std::cerr << "registration: " << e.what() << "\n";
    server->Shutdown();
    return 1;
  }
  server->Shutdown();
  return 0;
}
