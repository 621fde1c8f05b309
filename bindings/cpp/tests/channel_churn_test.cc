// Creating and destroying many channels must neither crash nor leak: every channel starts and
// closes a libgnaming resolver, some while updates are in flight. Built with AddressSanitizer
// (LeakSanitizer reports leaks at exit) by the make target.
#include <gnaming/grpc.h>
#include <gtest/gtest.h>

#include "greeter_server.h"

namespace gnaming::test {
namespace {

using namespace std::chrono_literals;

TEST(ChannelChurn, AThousandChannelsComeAndGoWithoutCrashOrLeak) {
  GreeterServer a, b;
  const std::string target = "pass:///" + a.address() + "," + b.address() + "#2";
  int rpcs_ok = 0;
  for (int i = 0; i < 1000; i++) {
    auto channel = RoundRobinChannel(target);
    if (i % 10 == 0) {
      auto stub = Greeter::NewStub(channel);
      grpc::Status st;
      SayHello(*stub, &st);
      EXPECT_TRUE(st.ok()) << "channel " << i << ": " << st.error_message();
      if (st.ok()) rpcs_ok++;
    } else {
      // Starts resolution, so the resolver is torn down with an update possibly in flight.
      channel->GetState(true);
    }
  }
  EXPECT_EQ(rpcs_ok, 100);
}

}  // namespace
}  // namespace gnaming::test
