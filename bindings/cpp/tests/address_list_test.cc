// What the plugin makes of libgnaming's lists: socket addresses built from the entries the core
// parsed (real updates from pull resolvers on static targets), and the weight → copies arithmetic.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "address_list.h"

namespace gnaming::internal {
namespace {

// The first update a pull resolver on `target` hands out, converted as the plugin converts it.
AddressList ConvertFirstUpdate(const std::string& target) {
  gn_resolver* resolver = nullptr;
  gn_error* err = nullptr;
  gn_update_callback pull{nullptr, nullptr, nullptr};
  gn_status status = gn_resolver_start(target.c_str(), nullptr, pull, &resolver, &err);
  EXPECT_EQ(status, GN_STATUS_OK) << target << ": " << (err != nullptr ? gn_error_message(err) : "");
  gn_error_free(err);
  AddressList list{};
  if (status != GN_STATUS_OK) return list;
  gn_update* update = nullptr;
  err = nullptr;
  status = gn_resolver_next(resolver, 5000, &update, &err);
  EXPECT_EQ(status, GN_STATUS_OK) << target << ": " << (err != nullptr ? gn_error_message(err) : "");
  gn_error_free(err);
  if (status == GN_STATUS_OK) list = ConvertUpdate(update, 16);
  gn_update_free(update);
  gn_resolver_free(resolver);
  return list;
}

TEST(ConvertUpdate, ALinkLocalAddressKeepsItsNumericZoneAsTheScopeId) {
  AddressList list = ConvertFirstUpdate("ipv6:///[fe80::1%1]:5");
  ASSERT_EQ(list.endpoints.size(), 1u) << "note: " << list.note;
  const Endpoint& e = list.endpoints[0];
  ASSERT_EQ(e.addr.ss_family, AF_INET6);
  EXPECT_EQ(e.addr_len, sizeof(sockaddr_in6));
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&e.addr);
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  EXPECT_STREQ(text, "fe80::1");
  EXPECT_EQ(ntohs(in6->sin6_port), 5);
  EXPECT_EQ(in6->sin6_scope_id, 1u);
  EXPECT_TRUE(list.note.empty()) << list.note;
}

TEST(ConvertUpdate, Ipv4EntriesBecomeSockaddrInWithEveryCopy) {
  AddressList list = ConvertFirstUpdate("pass:///127.0.0.1:50051#2,10.1.2.3:7");
  ASSERT_EQ(list.endpoints.size(), 3u) << "note: " << list.note;
  const char* expected[] = {"127.0.0.1", "127.0.0.1", "10.1.2.3"};
  const uint16_t ports[] = {50051, 50051, 7};
  const uint32_t copy_index[] = {0, 1, 0};
  for (size_t i = 0; i < 3; i++) {
    const Endpoint& e = list.endpoints[i];
    ASSERT_EQ(e.addr.ss_family, AF_INET) << i;
    EXPECT_EQ(e.addr_len, sizeof(sockaddr_in)) << i;
    const auto* in = reinterpret_cast<const sockaddr_in*>(&e.addr);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    EXPECT_STREQ(text, expected[i]) << i;
    EXPECT_EQ(ntohs(in->sin_port), ports[i]) << i;
    EXPECT_EQ(e.copy_index, copy_index[i]) << i;
  }
}

TEST(ConvertUpdate, UnixEntriesBecomeSockaddrUn) {
  AddressList list = ConvertFirstUpdate("unix:///run/echo.sock");
  ASSERT_EQ(list.endpoints.size(), 1u) << "note: " << list.note;
  const Endpoint& e = list.endpoints[0];
  ASSERT_EQ(e.addr.ss_family, AF_UNIX);
  EXPECT_STREQ(reinterpret_cast<const sockaddr_un*>(&e.addr)->sun_path, "/run/echo.sock");
}

TEST(ConvertUpdate, NamesThatReachThePluginAreSkippedWithANote) {
  AddressList list = ConvertFirstUpdate("passthrough:///echo.gn.invalid:80");
  EXPECT_TRUE(list.endpoints.empty());
  EXPECT_NE(list.note.find("echo.gn.invalid:80"), std::string::npos) << list.note;
}

// The resolver has libgnaming look names up; one that still arrives (here from a resolver without
// that option) is not looked up on the delivery thread, even when the system could resolve it.
TEST(ConvertUpdate, HostNamesAreNeverLookedUpByThePlugin) {
  AddressList list = ConvertFirstUpdate("pass:///localhost:5,127.0.0.1:6");
  ASSERT_EQ(list.endpoints.size(), 1u) << "note: " << list.note;
  EXPECT_EQ(list.endpoints[0].addr.ss_family, AF_INET);
  EXPECT_NE(list.note.find("localhost:5"), std::string::npos) << list.note;
}

TEST(WeightCopies, EqualWeightsGiveOneCopyEach) {
  EXPECT_EQ(WeightCopies({5, 5, 5}, 16), (std::vector<uint32_t>{1, 1, 1}));
}

TEST(WeightCopies, WeightsAreReducedByTheirCommonDivisor) {
  EXPECT_EQ(WeightCopies({200, 100, 300}, 16), (std::vector<uint32_t>{2, 1, 3}));
}

TEST(WeightCopies, LargeRatiosAreScaledDownToTheCap) {
  EXPECT_EQ(WeightCopies({1, 1000}, 16), (std::vector<uint32_t>{1, 16}));
  EXPECT_EQ(WeightCopies({32, 64, 3}, 16), (std::vector<uint32_t>{8, 16, 1}));
}

TEST(WeightCopies, ZeroCountsAsOne) {
  EXPECT_EQ(WeightCopies({0, 2}, 16), (std::vector<uint32_t>{1, 2}));
}

}  // namespace
}  // namespace gnaming::internal
