// The plugin and gnaming::Registration against a real 3-member etcd cluster on loopback, run by
// tests/harness/etcd_cluster.py (GNAMING_TEST_ETCD_ENDPOINTS, GNAMING_TEST_ETCD_DIR).
//
// The binary doubles as a server in a child process (etcd_support.h), for the SIGKILL test.
#include <gnaming/grpc.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "etcd_support.h"

namespace gnaming::test {
namespace {

using namespace std::chrono_literals;

std::string ServiceName() { return test::ServiceName("cpp-"); }

Registration::Options Ttl(std::chrono::milliseconds ttl) {
  Registration::Options o;
  o.ttl = ttl;
  return o;
}

std::unique_ptr<Registration> Register(const std::string& service, const GreeterServer& s,
                                       std::chrono::milliseconds ttl = 10s) {
  auto r = std::make_unique<Registration>(service, s.address(), Ttl(ttl));
  EXPECT_TRUE(r->Wait(10s)) << "registering " << s.address() << " under " << service;
  return r;
}

// The address list libgnaming itself reports for `target`, through the C API's pull mode.
class Watcher {
 public:
  explicit Watcher(const std::string& target) {
    gn_error* err = nullptr;
    gn_update_callback pull{nullptr, nullptr, nullptr};
    if (gn_resolver_start(target.c_str(), nullptr, pull, &resolver_, &err) != GN_STATUS_OK) {
      ADD_FAILURE() << "gn_resolver_start(" << target << "): " << gn_error_message(err);
      gn_error_free(err);
    }
  }
  ~Watcher() { gn_resolver_free(resolver_); }

  // Waits up to `timeout` until the list equals `want`; returns the last list seen.
  std::set<std::string> WaitFor(const std::set<std::string>& want, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (last_ != want) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      gn_update* u = nullptr;
      if (gn_resolver_next(resolver_, left.count(), &u, nullptr) != GN_STATUS_OK) continue;
      if (gn_update_state(u) == GN_RESOLVER_STATE_OK) {
        last_.clear();
        for (size_t i = 0; i < gn_update_address_count(u); i++) last_.insert(gn_update_address(u, i)->addr);
      }
      gn_update_free(u);
    }
    return last_;
  }

 private:
  gn_resolver* resolver_ = nullptr;
  std::set<std::string> last_;
};

TEST(Etcd, ThreeRegisteredServersAllGetRoundRobinTraffic) {
  const std::string service = ServiceName();
  GreeterServer a, b, c;
  auto ra = Register(service, a), rb = Register(service, b), rc = Register(service, c);
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
  std::set<std::string> want{a.address(), b.address(), c.address()};
  auto seen = ReachedServers(*stub, want, 10s);
  EXPECT_EQ(seen, want) << "expected " << Join(want) << ", observed " << Join(seen);
}

// Weight is the share of picks in every stack; the plugin gets it by giving an address one
// connection per unit of weight, which round_robin then picks in turn.
TEST(Etcd, Weights1To3To6ShareThePicks10To30To60Percent) {
  const std::string service = ServiceName();
  GreeterServer s1, s3, s6;
  GreeterServer* servers[] = {&s1, &s3, &s6};
  const int weights[] = {1, 3, 6};
  std::vector<std::unique_ptr<Registration>> registrations;
  for (int i = 0; i < 3; i++) {
    Registration::Options o;
    o.metadata_json = "{\"weight\":" + std::to_string(weights[i]) + "}";
    registrations.push_back(std::make_unique<Registration>(service, servers[i]->address(), o));
    ASSERT_TRUE(registrations.back()->Wait(10s));
  }
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
  auto end = std::chrono::steady_clock::now() + 10s;
  auto all_connected = [&] {
    for (int i = 0; i < 3; i++) {
      if (servers[i]->connections() < static_cast<size_t>(weights[i])) return false;
    }
    return true;
  };
  while (std::chrono::steady_clock::now() < end && !all_connected()) SayHello(*stub);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(servers[i]->connections(), static_cast<size_t>(weights[i])) << "weight " << weights[i];
    servers[i]->Reset();
  }
  constexpr int kRpcs = 1000;
  for (int i = 0; i < kRpcs; i++) SayHello(*stub);
  for (int i = 0; i < 3; i++) {
    // round_robin over 10 connections: exact but for a connection that changes state mid-run.
    EXPECT_NEAR(servers[i]->rpcs(), kRpcs * weights[i] / 10, 20)
        << "weights 1:3:6: " << s1.rpcs() << " / " << s3.rpcs() << " / " << s6.rpcs() << " of " << kRpcs;
  }
}

TEST(Etcd, CopiesPerAddressOpenThatManyConnectionsToEveryRegisteredServer) {
  const std::string service = ServiceName();
  GreeterServer a, b;
  auto ra = Register(service, a), rb = Register(service, b);
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service + "#3"));
  auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end && (a.connections() < 3 || b.connections() < 3)) SayHello(*stub);
  for (int i = 0; i < 60; i++) SayHello(*stub);
  EXPECT_EQ(a.connections(), 3u) << "#3 should give three connections to a";
  EXPECT_EQ(b.connections(), 3u) << "#3 should give three connections to b";
}

TEST(Etcd, GracefulRemovalLosesNoRpc) {
  const std::string service = ServiceName();
  GreeterServer a, b, c;
  auto ra = Register(service, a), rb = Register(service, b), rc = Register(service, c);
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
  std::set<std::string> all{a.address(), b.address(), c.address()};
  ASSERT_EQ(ReachedServers(*stub, all, 10s), all);

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::string first_error;
  std::thread load([&] {
    while (!stop) {
      grpc::Status st;
      SayHello(*stub, &st);
      sent++;
      if (!st.ok() && failed++ == 0) first_error = st.error_message();
    }
  });
  std::this_thread::sleep_for(200ms);
  // Deregister, give the channel time to apply the new list, then stop the server.
  rc->Close();
  Watcher w("etcd:///" + service);
  std::set<std::string> two{a.address(), b.address()};
  EXPECT_EQ(w.WaitFor(two, 5s), two);
  std::this_thread::sleep_for(300ms);
  c.Reset();
  c.Stop();
  std::this_thread::sleep_for(500ms);
  stop = true;
  load.join();
  EXPECT_EQ(failed.load(), 0) << "of " << sent.load() << " RPCs; first error: " << first_error;
  EXPECT_EQ(c.rpcs(), 0) << "RPCs reached the removed server after it left the list";
}

TEST(Etcd, AKilledServerProcessIsRemovedOnceItsLeaseExpires) {
  const std::string service = ServiceName();
  constexpr auto kTtl = 2000ms;
  auto [child, address] = ServeInChild(service, kTtl);
  ASSERT_GT(child, 0);
  ASSERT_FALSE(address.empty()) << "the child server printed no address";

  Watcher w("etcd:///" + service);
  ASSERT_EQ(w.WaitFor({address}, 10s), std::set<std::string>{address});
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
  EXPECT_EQ(SayHello(*stub), address);

  auto killed = std::chrono::steady_clock::now();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto left = w.WaitFor({}, kTtl + 5s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
  EXPECT_TRUE(left.empty()) << "still listed " << took.count() << " ms after SIGKILL: " << Join(left);
  EXPECT_LE(took, kTtl + 5s);
}

TEST(Etcd, AThousandRpcsFromEightThreadsSurviveTwoHundredMembershipChanges) {
  const std::string service = ServiceName();
  constexpr int kServers = 4, kThreads = 8, kRpcsPerThread = 125, kChanges = 200;
  std::vector<std::unique_ptr<GreeterServer>> servers;
  std::vector<std::unique_ptr<Registration>> regs;
  for (int i = 0; i < kServers; i++) {
    servers.push_back(std::make_unique<GreeterServer>());
    regs.push_back(Register(service, *servers.back()));
  }
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
  std::set<std::string> all;
  for (auto& s : servers) all.insert(s->address());
  ASSERT_EQ(ReachedServers(*stub, all, 10s), all);

  std::atomic<int> failed{0}, done{0}, during_churn{0};
  std::atomic<bool> churn_done{false};
  std::string first_error;
  std::mutex mu;
  std::thread churn([&] {
    // Server 0 stays; the others leave and come back, one change at a time.
    for (int i = 0; i < kChanges; i++) {
      int k = 1 + i % (kServers - 1);
      if (regs[k]) {
        regs[k]->Close();
        regs[k].reset();
      } else {
        regs[k] = std::make_unique<Registration>(service, servers[k]->address(), Ttl(10s));
      }
      std::this_thread::sleep_for(10ms);
    }
    churn_done = true;
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; t++) {
    clients.emplace_back([&] {
      for (int i = 0; i < kRpcsPerThread; i++) {
        grpc::Status st;
        SayHello(*stub, &st);
        done++;
        if (!churn_done) during_churn++;
        if (!st.ok() && failed++ == 0) {
          std::lock_guard<std::mutex> lock(mu);
          first_error = st.error_message();
        }
        // Spread the RPCs over the whole churn.
        if (!churn_done) std::this_thread::sleep_for(15ms);
      }
    });
  }
  for (auto& c : clients) c.join();
  churn.join();
  EXPECT_EQ(done.load(), kThreads * kRpcsPerThread);
  EXPECT_EQ(failed.load(), 0) << "first error: " << first_error;
  EXPECT_GT(during_churn.load(), kThreads * kRpcsPerThread / 2) << "too few RPCs overlapped the churn";
}

TEST(Etcd, RpcsKeepReachingTheLastKnownServersDuringAnEtcdOutage) {
  const std::string service = ServiceName();
  GreeterServer a, b;
  auto ra = Register(service, a), rb = Register(service, b);
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
  std::set<std::string> both{a.address(), b.address()};
  ASSERT_EQ(ReachedServers(*stub, both, 10s), both);

  Harness("stop-all");
  a.Reset();
  b.Reset();
  int failed = 0;
  std::string first_error;
  auto end = std::chrono::steady_clock::now() + 6s;  // long enough for libgnaming to notice
  int sent = 0;
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
  // The registrations come back after the outage.
  EXPECT_TRUE(ra->Wait(20s));
  EXPECT_TRUE(rb->Wait(20s));
}

// The cold-start cache: a channel made while every etcd member is down calls the servers of the
// cached list, then follows the live list once etcd is back.
TEST(Etcd, AColdStartWithEtcdDownCallsTheCachedServersThenTheLiveList) {
  const std::string service = ServiceName();
  char dir_template[] = "/tmp/gnaming-cpp-cache-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ASSERT_EQ(setenv("GNAMING_CACHE_DIR", dir.c_str(), 1), 0);
  GreeterServer a, b;
  auto ra = Register(service, a), rb = Register(service, b);
  std::set<std::string> both{a.address(), b.address()};
  {
    // A first channel sees the list, and so writes it to the cache.
    auto stub = Greeter::NewStub(RoundRobinChannel("etcd:///" + service));
    ASSERT_EQ(ReachedServers(*stub, both, 10s), both);
  }
  // The same members under another cluster name: no watch of this process holds the list there, as
  // in a process started now; the cache file is the same, named after the members.
  ClusterOptions cold;
  cold.endpoints = Env("GNAMING_TEST_ETCD_ENDPOINTS");
  cold.dial_timeout = 1s;
  cold.request_timeout = 1s;
  RegisterCluster("cold", cold);
  Harness("stop-all");
  auto stub = Greeter::NewStub(RoundRobinChannel("etcd://cold/" + service));
  std::set<std::string> reached = ReachedServers(*stub, both, 10s);
  Harness("start-all");
  unsetenv("GNAMING_CACHE_DIR");
  EXPECT_EQ(reached, both) << "with etcd down, the cold channel reached " << Join(reached);
  GreeterServer c;
  auto rc = Register(service, c);
  std::set<std::string> all{a.address(), b.address(), c.address()};
  std::set<std::string> live = ReachedServers(*stub, all, 15s);
  EXPECT_EQ(live, all) << "after etcd came back, the cold channel reached " << Join(live);
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(Etcd, AWarmUpDelaysTheEntryAndADrainRemovesItBeforeReturningAfterItsPeriod) {
  const std::string service = ServiceName();
  GreeterServer a;
  Watcher watcher("etcd:///" + service);
  Registration::Options o;
  o.warmup = 500ms;
  auto start = std::chrono::steady_clock::now();
  Registration r(service, a.address(), o);
  EXPECT_EQ(r.state(), Registration::State::kWarmingUp);
  EXPECT_FALSE(r.Wait(100ms)) << "registered during the warm-up";
  std::set<std::string> want{a.address()};
  auto seen = watcher.WaitFor(want, 10s);
  auto listed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(seen, want) << "expected " << Join(want) << ", observed " << Join(seen);
  EXPECT_GE(listed, 500ms) << "listed " << std::chrono::duration_cast<std::chrono::milliseconds>(listed).count()
                           << " ms after the start, within the 500 ms warm-up";
  ASSERT_TRUE(r.Wait(10s));

  start = std::chrono::steady_clock::now();
  r.Drain(400ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 400ms) << "Drain returned after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms, before its 400 ms period";
  EXPECT_EQ(r.state(), Registration::State::kClosed);
  // The deletion reached the watcher during the drain period: it is queued already.
  seen = watcher.WaitFor({}, 50ms);
  EXPECT_TRUE(seen.empty()) << "when Drain returned, expected [], observed " << Join(seen);
  start = std::chrono::steady_clock::now();
  r.Drain(1s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms) << "a second Drain waited";
}

// Registrations in the Kratos and go-micro layouts land under the framework's prefix, where the
// plugin's "etcd:///" target on that prefix reaches the servers with real RPCs.
TEST(Etcd, KratosAndGoMicroRegistrationsAreReachedThroughTheFrameworksPrefixes) {
  const std::string name = ServiceName();
  GreeterServer kratos, micro;
  Registration::Options o;
  o.metadata_json = "{\"version\":\"v1\",\"zone\":\"a\"}";
  Registration rk(name, kratos.address(), o, Registration::Format::kKratos);
  Registration rm(name, micro.address(), o, Registration::Format::kGoMicro);
  ASSERT_TRUE(rk.Wait(10s));
  ASSERT_TRUE(rm.Wait(10s));
  const std::pair<const GreeterServer*, std::string> cases[] = {{&kratos, "etcd:////microservices/" + name},
                                                                {&micro, "etcd:////micro/registry/" + name}};
  for (const auto& [server, target] : cases) {
    auto stub = Greeter::NewStub(RoundRobinChannel(target));
    std::set<std::string> want{server->address()};
    auto seen = ReachedServers(*stub, want, 10s);
    EXPECT_EQ(seen, want) << target << ": expected " << Join(want) << ", observed " << Join(seen);
  }
  // A format is etcd's only, and a value outside the enum is refused before anything is written.
  try {
    Registration bad("zk:///cpp/echo", kratos.address(), o, Registration::Format::kKratos);
    ADD_FAILURE() << "a Kratos registration on a zk: service was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), GN_STATUS_INVALID_ARGUMENT) << e.what();
  }
  EXPECT_THROW(Registration(name, kratos.address(), o, static_cast<Registration::Format>(7)), Error);
}

// ZooKeeper ensembles are checked by libgnaming, which names what it refuses.
TEST(Etcd, BadZooKeeperEnsemblesAreRefusedNamingThePart) {
  ZkEnsembleOptions o;
  o.servers = "127.0.0.1:2181";
  o.node_acl = "creator-all";
  try {
    RegisterZkEnsemble("cpp-no-credentials", o);
    ADD_FAILURE() << "a creator ACL without credentials was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), GN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("a creator ACL needs digest credentials"), std::string::npos) << e.what();
  }
  o.digest_user = "svc";
  o.digest_password = "right";
  EXPECT_NO_THROW(RegisterZkEnsemble("cpp-secured", o));
  o.servers = "zk1";
  EXPECT_THROW(RegisterZkEnsemble("cpp-bad-servers", o), Error);
}

}  // namespace
}  // namespace gnaming::test

int main(int argc, char** argv) { return gnaming::test::EtcdTestMain(argc, argv, nullptr); }
