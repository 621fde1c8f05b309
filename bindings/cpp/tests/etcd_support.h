// What the etcd suites share: the harness's cluster, per-test service names, and a greeter server
// in a child process (so a test can SIGKILL a whole server), on gnaming::Registration.
//
// A suite's binary doubles as that child: `BINARY --serve SERVICE TTL_MS` serves and registers one
// greeter and prints its address. EtcdTestMain runs either mode.
#ifndef GNAMING_TEST_ETCD_SUPPORT_H
#define GNAMING_TEST_ETCD_SUPPORT_H

#include <gnaming/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>

#include "greeter_server.h"

namespace gnaming::test {

inline std::string& SelfPath() {
  static std::string path;  // this binary, for the child mode
  return path;
}

inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Runs the harness CLI on this test's cluster: "stop-all", "start-all", ...
inline void Harness(const std::string& args) {
  std::string cmd = "python3 '" GNAMING_ETCD_HARNESS "' " + args + " --dir '" + Env("GNAMING_TEST_ETCD_DIR") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// A unique service name per test, so tests never see each other's servers.
inline std::string ServiceName(const std::string& prefix) {
  return prefix + ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

// Starts this binary's child mode; its pid and the address it registered ("" when it printed none).
inline std::pair<pid_t, std::string> ServeInChild(const std::string& service, std::chrono::milliseconds ttl) {
  int out[2];
  if (pipe(out) != 0) return {-1, ""};
  pid_t child = fork();
  if (child == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    execl(SelfPath().c_str(), SelfPath().c_str(), "--serve", service.c_str(), std::to_string(ttl.count()).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  char line[128] = {};
  FILE* f = fdopen(out[0], "r");
  std::string address = std::fgets(line, sizeof line, f) != nullptr ? line : "";
  std::fclose(f);
  address.erase(address.find_last_not_of("\r\n") + 1);
  return {child, address};
}

// The child mode.
inline int Serve(const std::string& service, int ttl_ms) {
  GreeterServer server;
  Registration::Options o;
  o.ttl = std::chrono::milliseconds(ttl_ms);
  Registration r(service, server.address(), o);
  if (!r.Wait(std::chrono::seconds(10))) return 1;
  std::cout << server.address() << std::endl;
  pause();
  return 0;
}

// main() of an etcd suite: the harness's cluster becomes the default one ("etcd:///"), then the
// child mode or `before_tests` and the tests.
inline int EtcdTestMain(int argc, char** argv, void (*before_tests)()) {
  SelfPath() = argv[0];
  const std::string endpoints = Env("GNAMING_TEST_ETCD_ENDPOINTS");
  if (endpoints.empty()) {
    std::cerr << "GNAMING_TEST_ETCD_ENDPOINTS is not set: run me under tests/harness/etcd_cluster.py run\n";
    return 2;
  }
  ClusterOptions cluster;
  cluster.endpoints = endpoints;
  RegisterCluster("", cluster);
  if (argc == 4 && std::string(argv[1]) == "--serve") return Serve(argv[2], std::atoi(argv[3]));
  if (before_tests != nullptr) before_tests();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

}  // namespace gnaming::test

#endif  // GNAMING_TEST_ETCD_SUPPORT_H
