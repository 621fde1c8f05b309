// Greeter client through gRPC's own xDS client: public grpc++ API only, no plugin, no internal
// headers, so it builds against any grpc++ with xDS (1.51 on). libgnaming's embedded xDS server
// answers; the bootstrap pointing at it must be installed before the first xds: channel.
//   xds_greeter_client helloworld [RPCS]            (xds:///helloworld = etcd:///helloworld)
//   xds_greeter_client 'dns:///host.test:50051' [RPCS]
#include <gnaming.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "helloworld.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " NAME_OR_TARGET [RPCS]\n";
    return 2;
  }
  const int rpcs = argc > 2 ? std::atoi(argv[2]) : 10;
  // Before any gRPC thread reads the environment: sets GRPC_XDS_BOOTSTRAP_CONFIG to the process's
  // default xDS server, which starts here.
  gn_error* err = nullptr;
  if (gn_xds_install_bootstrap(&err) != GN_STATUS_OK) {
    std::cerr << "xds bootstrap: " << gn_error_message(err) << "\n";
    gn_error_free(err);
    return 1;
  }
  std::string target = argv[1];
  if (target.find(':') != std::string::npos) {
    char* xds = nullptr;
    if (gn_xds_target(nullptr, argv[1], &xds, &err) != GN_STATUS_OK) {
      std::cerr << "target: " << gn_error_message(err) << "\n";
      gn_error_free(err);
      return 2;
    }
    target = xds;
    gn_string_free(xds);
  } else {
    target = "xds:///" + target;
  }
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = helloworld::Greeter::NewStub(channel);

  std::map<std::string, int> answers;
  int failed = 0;
  for (int i = 0; i < rpcs; i++) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_wait_for_ready(true);  // the first RPC waits for the first assignment
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
  std::cout << "via " << target << "\n";
  for (const auto& [message, n] : answers) std::cout << n << " x " << message << "\n";
  return failed == 0 ? 0 : 1;
}
