// The demo's greeter in C++: answers SayHello with its name, registers in etcd as "echo" through
// gnaming::Registration, and on SIGTERM deregisters before shutting down. Prints JSON lines for
// the demo driver.
//   demo_server NAME [TTL_MS]
#include <gnaming/grpcpp.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "helloworld.grpc.pb.h"

namespace {

class Greeter final : public helloworld::Greeter::Service {
 public:
  explicit Greeter(std::string name) : name_(std::move(name)) {}
  grpc::Status SayHello(grpc::ServerContext*, const helloworld::HelloRequest*, helloworld::HelloReply* reply) override {
    reply->set_message(name_);
    return grpc::Status::OK;
  }

 private:
  std::string name_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: demo_server NAME [TTL_MS]\n";
    return 2;
  }
  const std::string name = argv[1];
  const long ttl_ms = argc > 2 ? std::atol(argv[2]) : 2000;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  // Blocked before grpc starts its threads, so only sigwait below receives them.
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  int port = 0;
  Greeter service(name);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "cannot listen on 127.0.0.1\n";
    return 1;
  }
  const std::string address = "127.0.0.1:" + std::to_string(port);
  try {
    gnaming::Registration::Options options;
    options.ttl = std::chrono::milliseconds(ttl_ms);
    gnaming::Registration registration("echo", address, options);
    registration.Wait(std::chrono::seconds(10));
    std::cout << R"({"event":"ready","name":")" << name << R"(","addr":")" << address << R"(","lang":"c++"})"
              << std::endl;
    int sig = 0;
    sigwait(&stop, &sig);
    registration.Close();
  } catch (const gnaming::Error& e) {
    std::cerr << "registration: " << e.what() << "\n";
    server->Shutdown();
    return 1;
  }
  // Clients drop the address as soon as the key is gone; give them a moment before closing.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::cout << R"({"event":"stopped","name":")" << name << R"("})" << std::endl;
  return 0;
}
