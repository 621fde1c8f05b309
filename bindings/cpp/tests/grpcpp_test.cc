// gnaming::CreateChannel without a registry: static pass: targets through gRPC's public xDS client
// and libgnaming's default xDS server, the target rewriting, and the enforced bootstrap rule.
//
// `grpcpp_test --rule NAME` is a child mode: a fresh process breaking one bootstrap rule, which
// exits 0 only when the library refused it with GN_STATUS_BAD_STATE.
#include <gnaming/grpcpp.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <vector>

#include "greeter_server.h"

namespace gnaming::test {
namespace {

using namespace std::chrono_literals;

std::string g_self;  // path of this binary, for the child mode

// The status a call threw, or GN_STATUS_OK when it did not throw.
template <typename F>
gn_status StatusOf(F&& call, std::string* message = nullptr) {
  try {
    call();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.status();
  }
  return GN_STATUS_OK;
}

// Runs this binary in child mode `rule` with `env` added; its exit code.
int RunRule(const std::string& rule, const char* env = nullptr) {
  pid_t child = fork();
  if (child == 0) {
    if (env != nullptr) putenv(const_cast<char*>(env));
    execl(g_self.c_str(), g_self.c_str(), "--rule", rule.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(XdsTarget, ARegistryTargetBecomesItsShortXdsName) {
  EXPECT_EQ(XdsTarget("etcd:///greeter"), "xds:///greeter");
  EXPECT_EQ(XdsTarget("pass:///127.0.0.1:1"), "xds:///pass:///127.0.0.1:1");
}

TEST(XdsTarget, ABadTargetThrowsInvalidTarget) {
  std::string message;
  EXPECT_EQ(StatusOf([] { XdsTarget("etcd:///"); }, &message), GN_STATUS_INVALID_TARGET) << message;
}

TEST(CreateChannel, AStaticListIsReachedThroughTheXdsClient) {
  GreeterServer a, b;
  auto channel = gnaming::CreateChannel("pass:///" + a.address() + "," + b.address(), grpc::InsecureChannelCredentials());
  auto stub = Greeter::NewStub(channel);
  std::set<std::string> want{a.address(), b.address()};
  auto seen = ReachedServers(*stub, want, 10s);
  EXPECT_EQ(seen, want) << "expected " << Join(want) << ", observed " << Join(seen);
}

TEST(CreateChannel, AServiceConfigArgumentIsRefusedNotSilentlyDropped) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  std::string message;
  EXPECT_EQ(StatusOf([&] { gnaming::CreateChannel("pass:///127.0.0.1:1", grpc::InsecureChannelCredentials(), args); },
                     &message),
            GN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("service config"), std::string::npos) << message;
}

TEST(CreateChannel, OtherArgumentsPassThrough) {
  GreeterServer a;
  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("gnaming-test");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = Greeter::NewStub(gnaming::CreateChannel("pass:///" + a.address(), grpc::InsecureChannelCredentials(), args));
  EXPECT_EQ(SayHello(*stub), a.address());
}

TEST(CreateChannel, CopiesPerAddressAreRefusedWithThePluginNamed) {
  for (const char* target : {"etcd:///greeter#2", "pass:///127.0.0.1:1#3,127.0.0.1:2"}) {
    std::string message;
    EXPECT_EQ(StatusOf([&] { gnaming::CreateChannel(target, grpc::InsecureChannelCredentials()); }, &message),
              GN_STATUS_INVALID_TARGET)
        << target;
    EXPECT_NE(message.find("plugin"), std::string::npos) << message;
  }
  EXPECT_EQ(StatusOf([] { gnaming::CreateChannel("pass:///127.0.0.1:1#1", grpc::InsecureChannelCredentials()); }),
            GN_STATUS_OK)
      << "#1 is one connection per address";
}

TEST(Registration, BadArgumentsThrowWithTheLibrarysMessage) {
  std::string message;
  EXPECT_EQ(StatusOf([] { Registration r("greeter", "no port here"); }, &message), GN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("no port here"), std::string::npos) << "the message lost the library's detail: " << message;
}

TEST(BootstrapRule, InstallingAfterGrpcStartedIsRefused) {
  EXPECT_EQ(RunRule("late"), 0);
}

TEST(BootstrapRule, AChannelMadeAfterGrpcStartedWithoutBootstrapIsRefused) {
  EXPECT_EQ(RunRule("late-channel"), 0);
}

TEST(BootstrapRule, AnotherBootstrapInTheEnvironmentIsRefused) {
  EXPECT_EQ(RunRule("foreign", "GRPC_XDS_BOOTSTRAP=/nonexistent/bootstrap.json"), 0);
}

TEST(BootstrapRule, AForkedChildGetsNoChannelOnItsParentsBootstrap) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    gn_status status = StatusOf([] { gnaming::CreateChannel("pass:///127.0.0.1:1", grpc::InsecureChannelCredentials()); });
    _exit(status == GN_STATUS_BAD_STATE ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

TEST(BootstrapRule, EightThreadsInstallingAtOnceAllSucceed) {
  EXPECT_EQ(RunRule("concurrent"), 0);
}

TEST(BootstrapRule, InstallingTwiceIsHarmless) {
  EXPECT_EQ(StatusOf([] { InstallBootstrap(); }), GN_STATUS_OK);
}

// Child mode: breaks rule `rule` in a fresh process; 0 when it was refused with BAD_STATE.
int BreakRule(const std::string& rule) {
  std::string message;
  gn_status status = GN_STATUS_OK;
  if (rule == "late") {
    auto credentials = grpc::InsecureChannelCredentials();  // grpc starts here
    status = StatusOf([] { InstallBootstrap(); }, &message);
  } else if (rule == "late-channel") {
    status = StatusOf([] { gnaming::CreateChannel("pass:///127.0.0.1:1", grpc::InsecureChannelCredentials()); }, &message);
  } else if (rule == "concurrent") {
    // Not a broken rule: the install is thread-safe, so all eight succeed and a channel works after.
    std::vector<std::thread> threads;
    std::atomic<int> refused{0};
    for (int i = 0; i < 8; i++) {
      threads.emplace_back([&] {
        if (StatusOf([] { InstallBootstrap(); }) != GN_STATUS_OK) refused++;
      });
    }
    for (auto& t : threads) t.join();
    GreeterServer a;
    auto stub = Greeter::NewStub(gnaming::CreateChannel("pass:///" + a.address(), grpc::InsecureChannelCredentials()));
    const bool reached = SayHello(*stub) == a.address();
    std::cerr << rule << ": " << refused.load() << " of 8 installs refused; channel " << (reached ? "ok" : "failed")
              << "\n";
    return refused == 0 && reached ? 0 : 1;
  } else if (rule == "foreign") {
    status = StatusOf([] { InstallBootstrap(); }, &message);
  } else {
    std::cerr << "unknown rule " << rule << "\n";
    return 2;
  }
  std::cerr << rule << ": " << gn_status_name(status) << ": " << message << "\n";
  // The message must say what is wrong: the rule broken, or the other bootstrap found.
  const char* says = rule == "foreign" ? "GRPC_XDS_BOOTSTRAP" : "top of main";
  return status == GN_STATUS_BAD_STATE && message.find(says) != std::string::npos ? 0 : 1;
}

}  // namespace
}  // namespace gnaming::test

int main(int argc, char** argv) {
  gnaming::test::g_self = argv[0];
  if (argc == 3 && std::string(argv[1]) == "--rule") return gnaming::test::BreakRule(argv[2]);
  // The rule under test: first, before any grpc object of the process.
  gnaming::InstallBootstrap();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
