// Greeter client on the optional grpc-core plugin (built with -DGNAMING_GRPC_PLUGIN=ON, tied to one
// grpc release): the target goes to grpc::CreateCustomChannel as it is, and "#N" opens N
// connections per server, which the xDS path (greeter_client) cannot.
//   plugin_greeter_client 'etcd:///helloworld#2' [RPCS]
//   plugin_greeter_client 'pass:///127.0.0.1:50051,127.0.0.1:50052' [RPCS]
#include <gnaming/grpc.h>  // linking libgnaming_grpc registers the etcd:/// and pass:/// schemes
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
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  auto channel = grpc::CreateCustomChannel(argv[1], grpc::InsecureChannelCredentials(), args);
  auto stub = helloworld::Greeter::NewStub(channel);

  std::map<std::string, int> answers;
  int failed = 0;
  for (int i = 0; i < rpcs; i++) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.set_wait_for_ready(true);  // the first RPC waits for the first address list
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
