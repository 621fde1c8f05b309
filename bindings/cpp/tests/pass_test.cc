// The plugin with static pass:/// targets: no etcd needed, real servers and channels on loopback.
#include <gnaming/grpc.h>
#include <gtest/gtest.h>

#include "greeter_server.h"

namespace gnaming::test {
namespace {

using namespace std::chrono_literals;

TEST(PassTarget, RoundRobinReachesEveryListedServer) {
  GreeterServer a, b, c;
  auto channel = RoundRobinChannel("pass:///" + a.address() + "," + b.address() + "," + c.address());
  auto stub = Greeter::NewStub(channel);
  std::set<std::string> want{a.address(), b.address(), c.address()};
  auto seen = ReachedServers(*stub, want, 10s);
  EXPECT_EQ(seen, want) << "expected " << Join(want) << ", observed " << Join(seen);
}

// Copies must become distinct subchannels: a#2,b#1 opens 2 + 1 connections and round_robin then
// splits the traffic 2:1. grpc's URI parser accepts one raw '#', so the rest are written %23.
void ExpectTwoToOne(const std::string& target, GreeterServer& a, GreeterServer& b) {
  auto channel = RoundRobinChannel(target);
  auto stub = Greeter::NewStub(channel);
  // Wait until all three subchannels carry traffic, then count a clean window.
  auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end && (a.connections() < 2 || b.connections() < 1)) {
    SayHello(*stub);
  }
  ASSERT_EQ(a.connections(), 2u) << "connections at a (#2)";
  ASSERT_EQ(b.connections(), 1u) << "connections at b (#1)";
  a.Reset();
  b.Reset();
  constexpr int kRpcs = 300;
  int failed = 0;
  for (int i = 0; i < kRpcs; i++) {
    grpc::Status st;
    SayHello(*stub, &st);
    if (!st.ok()) failed++;
  }
  EXPECT_EQ(failed, 0);
  const double share = static_cast<double>(a.rpcs()) / kRpcs;
  EXPECT_NEAR(share, 2.0 / 3.0, 0.1 * 2.0 / 3.0) << "a got " << a.rpcs() << ", b got " << b.rpcs() << " of " << kRpcs;
  EXPECT_EQ(a.connections(), 2u);
  EXPECT_EQ(b.connections(), 1u);
}

TEST(PassTarget, CopiesOpenDistinctConnectionsAndSplitTrafficTwoToOne) {
  GreeterServer a, b;
  ExpectTwoToOne("pass:///" + a.address() + "%232," + b.address() + "%231", a, b);
}

TEST(PassTarget, OneRawHashInTheTargetWorksToo) {
  GreeterServer a, b;
  ExpectTwoToOne("pass:///" + b.address() + "," + a.address() + "#2", a, b);
}

TEST(PassTarget, IPv6LoopbackAddressesAreDialled) {
  GreeterServer v6("[::1]:0");
  if (v6.port() == 0) GTEST_SKIP() << "no IPv6 loopback on this host";
  auto stub = Greeter::NewStub(RoundRobinChannel("pass:///" + v6.address()));
  grpc::Status st;
  EXPECT_EQ(SayHello(*stub, &st), v6.address()) << st.error_message();
}

TEST(PassTarget, AnInvalidTargetFailsRpcsWithLibgnamingsReason) {
  auto stub = Greeter::NewStub(RoundRobinChannel("pass:///127.0.0.1:99999"));
  grpc::Status st;
  SayHello(*stub, &st, 2s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("libgnaming"), std::string::npos) << "observed: " << st.error_message();
}

TEST(Schemes, CannotChangeAfterGrpcBuiltItsRegistry) {
  // The tests above created channels, so grpc-core has frozen its resolver registry.
  auto stub = Greeter::NewStub(RoundRobinChannel("pass:///127.0.0.1:1"));
  try {
    SetResolverSchemes(ResolverSchemes{"myetcd", "mypass", ""});
    FAIL() << "SetResolverSchemes succeeded after the first channel";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), GN_STATUS_BAD_STATE) << e.what();
  }
  EXPECT_EQ(GetResolverSchemes().etcd, "etcd");
}

TEST(Schemes, GrpcsOwnSchemeNamesAreRefused) {
  try {
    SetResolverSchemes(ResolverSchemes{"etcd", "pass", "dns"});
    FAIL() << "taking grpc's dns scheme was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), GN_STATUS_INVALID_ARGUMENT) << e.what();
  }
}

}  // namespace
}  // namespace gnaming::test
