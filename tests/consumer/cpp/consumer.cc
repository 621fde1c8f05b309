// Reaches a local grpc server through gnaming::CreateChannel on a static target: the installed
// libraries, headers and CMake package are all it uses. Exit 0 only when the channel connected.
#include <gnaming/grpcpp.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <string>

int main() {
  try {
    gnaming::InstallBootstrap();
    // A server with one service (every method answered UNIMPLEMENTED): a connection is the proof.
    grpc::CallbackGenericService service;
    int port = 0;
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&service);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    auto server = builder.BuildAndStart();
    if (!server || port == 0) {
      std::cerr << "consumer: cannot start a server on 127.0.0.1\n";
      return 1;
    }
    const std::string target = "pass:///127.0.0.1:" + std::to_string(port);
    auto channel = gnaming::CreateChannel(target, grpc::InsecureChannelCredentials());
    const bool connected =
        channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::cout << "libgnaming " << gn_version() << ": " << target << " via " << gnaming::XdsTarget(target) << ": "
              << (connected ? "connected" : "NOT connected") << std::endl;
    server->Shutdown();
    return connected ? 0 : 1;
  } catch (const gnaming::Error& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
}
