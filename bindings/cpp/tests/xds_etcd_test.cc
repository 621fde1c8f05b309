// gnaming::CreateChannel against a real 3-member etcd cluster on loopback (run by
// tests/harness/etcd_cluster.py: GNAMING_TEST_ETCD_ENDPOINTS, GNAMING_TEST_ETCD_DIR), with real
// greeter servers registered by gnaming::Registration: one grpc++ channel, updated in place by
// gRPC's xDS client from libgnaming's default xDS server.
//
// The binary doubles as a server in a child process (etcd_support.h), for the SIGKILL test.
#include <gnaming/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "etcd_support.h"

namespace gnaming::test {
namespace {

using namespace std::chrono_literals;

std::string ServiceName() { return test::ServiceName("cppxds-"); }

std::unique_ptr<Registration> Register(const std::string& service, const GreeterServer& s,
                                       const std::string& metadata_json = "",
                                       std::chrono::milliseconds ttl = 10s) {
  Registration::Options o;
  o.ttl = ttl;
  o.metadata_json = metadata_json;
  auto r = std::make_unique<Registration>(service, s.address(), o);
  EXPECT_TRUE(r->Wait(10s)) << "registering " << s.address() << " under " << service;
  return r;
}

std::unique_ptr<Greeter::Stub> Stub(const std::string& service) {
  return Greeter::NewStub(gnaming::CreateChannel("etcd:///" + service, grpc::InsecureChannelCredentials()));
}

// Sends rounds of RPCs until kStableRounds rounds in a row reach exactly `want` (every member,
// nobody else) or `deadline` passes; returns the last round's servers. One round alone can miss a
// member whose connection is being re-established.
std::set<std::string> AwaitExactly(Greeter::Stub& stub, const std::set<std::string>& want,
                                   std::chrono::milliseconds deadline) {
  constexpr int kStableRounds = 3;
  std::set<std::string> round;
  int in_a_row = 0;
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    round.clear();
    // Enough RPCs that round robin visits each member more than once.
    for (size_t i = 0; i < 3 * want.size() + 3; i++) {
      std::string who = SayHello(stub, nullptr, 1s);
      if (!who.empty()) round.insert(who);
    }
    in_a_row = round == want ? in_a_row + 1 : 0;
    if (in_a_row == kStableRounds) break;
    if (in_a_row == 0) std::this_thread::sleep_for(20ms);
  }
  return round;
}

TEST(XdsEtcd, TheChannelFollowsRegistrationsDeregistrationsAKilledServerAndNewServers) {
  const std::string service = ServiceName();
  constexpr auto kTtl = 5000ms;
  GreeterServer a, b;
  auto ra = Register(service, a), rb = Register(service, b);
  auto [child, killed_address] = ServeInChild(service, kTtl);
  ASSERT_GT(child, 0);
  ASSERT_FALSE(killed_address.empty()) << "the child server printed no address";
  auto stub = Stub(service);
  std::set<std::string> three{a.address(), b.address(), killed_address};
  auto seen = AwaitExactly(*stub, three, 10s);
  ASSERT_EQ(seen, three) << "expected " << Join(three) << ", observed " << Join(seen);

  // A deregistered server gets no more RPCs once the channel applied the removal.
  ra->Close();
  std::set<std::string> without_a{b.address(), killed_address};
  seen = AwaitExactly(*stub, without_a, 5s);
  ASSERT_EQ(seen, without_a) << "after deregistering a: observed " << Join(seen);
  a.Reset();
  for (int i = 0; i < 60; i++) SayHello(*stub);
  EXPECT_EQ(a.rpcs(), 0) << "a deregistered server kept receiving RPCs";

  // A SIGKILLed server leaves the list when its lease expires. Round robin skips a dead address
  // whether or not it is listed, so a stand-in (unregistered) takes over its port: while the
  // lease lives the channel reconnects to it, and once the entry is gone it gets no RPC.
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto killed_at = std::chrono::steady_clock::now();
  GreeterServer stand_in(killed_address);
  ASSERT_EQ(stand_in.address(), killed_address) << "the stand-in could not take the killed server's port";
  std::set<std::string> still_listed{b.address(), killed_address};
  seen = AwaitExactly(*stub, still_listed, kTtl - 1s);
  ASSERT_EQ(seen, still_listed) << "the killed server's address should stay listed until its lease expires";
  std::set<std::string> only_b{b.address()};
  seen = AwaitExactly(*stub, only_b, kTtl + 8s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  EXPECT_EQ(seen, only_b) << "after SIGKILL of " << killed_address << ": observed " << Join(seen);
  EXPECT_GE(took, kTtl / 3) << "the entry left long before its lease could have expired";

  // New servers, and a returning one, are picked up without a new channel.
  GreeterServer c;
  auto rc = Register(service, c);
  ra = Register(service, a);
  std::set<std::string> back{a.address(), b.address(), c.address()};
  seen = AwaitExactly(*stub, back, 10s);
  EXPECT_EQ(seen, back) << "after new registrations: observed " << Join(seen);
}

TEST(XdsEtcd, FiftyChangesKeepOneConnectionPerUnchangedBackend) {
  const std::string service = ServiceName();
  constexpr int kChanges = 50;
  GreeterServer steady1, steady2, coming, going;
  auto r1 = Register(service, steady1), r2 = Register(service, steady2);
  auto stub = Stub(service);
  std::set<std::string> steady{steady1.address(), steady2.address()};
  ASSERT_EQ(AwaitExactly(*stub, steady, 10s), steady);

  std::unique_ptr<Registration> changing;
  for (int i = 0; i < kChanges; i++) {
    std::set<std::string> want = steady;
    // Odd changes add a server, even ones take it away again.
    if (i % 2 == 0) {
      changing = Register(service, i % 4 == 0 ? coming : going);
      want.insert((i % 4 == 0 ? coming : going).address());
    } else {
      changing->Close();
      changing.reset();
    }
    auto seen = AwaitExactly(*stub, want, 10s);
    ASSERT_EQ(seen, want) << "change " << i << ": expected " << Join(want) << ", observed " << Join(seen);
  }
  EXPECT_EQ(steady1.connections(), 1u) << "an unchanged backend was reconnected during " << kChanges << " changes";
  EXPECT_EQ(steady2.connections(), 1u) << "an unchanged backend was reconnected during " << kChanges << " changes";
}

TEST(XdsEtcd, WeightsOneThreeSixSplitTrafficInProportion) {
  const std::string service = ServiceName();
  GreeterServer w1, w3, w6;
  auto r1 = Register(service, w1, R"({"weight":1})");
  auto r3 = Register(service, w3, R"({"weight":3})");
  auto r6 = Register(service, w6, R"({"weight":6})");
  auto stub = Stub(service);
  std::set<std::string> all{w1.address(), w3.address(), w6.address()};
  ASSERT_EQ(ReachedServers(*stub, all, 10s), all);
  w1.Reset();
  w3.Reset();
  w6.Reset();
  constexpr int kRpcs = 2000;
  int failed = 0;
  for (int i = 0; i < kRpcs; i++) {
    if (SayHello(*stub).empty()) failed++;
  }
  ASSERT_EQ(failed, 0);
  // Shares of all RPCs, within 5 percentage points of 10 % / 30 % / 60 %.
  const double s1 = w1.rpcs() / double(kRpcs), s3 = w3.rpcs() / double(kRpcs), s6 = w6.rpcs() / double(kRpcs);
  const std::string observed =
      "observed " + std::to_string(w1.rpcs()) + "/" + std::to_string(w3.rpcs()) + "/" + std::to_string(w6.rpcs());
  EXPECT_NEAR(s1, 0.1, 0.05) << observed;
  EXPECT_NEAR(s3, 0.3, 0.05) << observed;
  EXPECT_NEAR(s6, 0.6, 0.05) << observed;
}

TEST(XdsEtcd, RpcsKeepReachingTheLastKnownServersDuringAnEtcdOutage) {
  const std::string service = ServiceName();
  GreeterServer a, b;
  auto ra = Register(service, a), rb = Register(service, b);
  auto stub = Stub(service);
  std::set<std::string> both{a.address(), b.address()};
  ASSERT_EQ(AwaitExactly(*stub, both, 10s), both);

  Harness("stop-all");
  a.Reset();
  b.Reset();
  int failed = 0, sent = 0;
  std::string first_error;
  auto end = std::chrono::steady_clock::now() + 6s;  // long enough for libgnaming to notice
  while (std::chrono::steady_clock::now() < end) {
    grpc::Status st;
    SayHello(*stub, &st);
    sent++;
    if (!st.ok() && failed++ == 0) first_error = st.error_message();
    std::this_thread::sleep_for(10ms);
  }
  Harness("start-all");
  EXPECT_EQ(failed, 0) << "of " << sent << " RPCs during the outage; first error: " << first_error;
  EXPECT_GT(a.rpcs(), 0) << "a got no RPCs during the outage";
  EXPECT_GT(b.rpcs(), 0) << "b got no RPCs during the outage";
  EXPECT_TRUE(ra->Wait(20s));
  EXPECT_TRUE(rb->Wait(20s));
  // The channel still follows the cluster afterwards.
  GreeterServer c;
  auto rc = Register(service, c);
  std::set<std::string> three{a.address(), b.address(), c.address()};
  EXPECT_EQ(AwaitExactly(*stub, three, 15s), three);
}

}  // namespace
}  // namespace gnaming::test

int main(int argc, char** argv) {
  // Before any grpc object of the process (the child mode makes no channel and needs none).
  return gnaming::test::EtcdTestMain(argc, argv, [] { gnaming::InstallBootstrap(); });
}
