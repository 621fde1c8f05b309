// Greeter client through gRPC's own xDS client: public grpc++ API only, no plugin, no internal
// headers, so it builds against any grpc++ with xDS (1.51 on). gnaming::CreateChannel returns a
// normal grpc::Channel that libgnaming's embedded xDS server keeps up to date.
//   greeter_client 'etcd:///helloworld' [RPCS]
//   greeter_client 'pass:///127.0.0.1:50051,127.0.0.1:50052' [RPCS]
#include <gnaming/grpcpp.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "helloworld.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " TARGET [RPCS]\n";
    return 2;
  }
  const int rpcs = argc > 2 ? std::atoi(argv[2]) : 10;
  std::shared_ptr<grpc::Channel> channel;
  try {
    // First, before any grpc object: points grpc's xDS client at libgnaming's server.
    gnaming::InstallBootstrap();
    channel = gnaming::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  } catch (const gnaming::Error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  auto stub = helloworld::Greeter::NewStub(channel);

  std::map<std::string, int> answers;
  int failed = 0;
  for (int i = 0; i < rpcs; i++) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_wait_for_ready(true);  // the first RPC waits for the first list
    helloworld::HelloRequest req;
    req.set_name("world");
    helloworld::HelloReply reply;
    grpc::Status st = stub->SayHello(&ctx, req, &reply);
    if (st.ok()) {
      answers[reply.message()]++;
    } else {
      failed++;
      std::cerr << "rpc " << i << ": " << st.error_message() << "\n";
    }
  }
  for (const auto& [message, n] : answers) std::cout << n << " x " << message << "\n";
  return failed == 0 ? 0 : 1;
}
