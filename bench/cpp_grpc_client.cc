// C++ client of the "xDS vs native" bench section (bench/bench.py drives it), built twice by
// mk/bench.mk: plain against Debian's libgrpc++ (xds:/// targets; the bootstrap comes from
// GRPC_XDS_BOOTSTRAP) and linked with libgnaming_grpc (the grpc-core plugin: etcd:/// targets).
//
//     cpp_grpc_client TARGET PATH [WORKERS] [PACE_MS]
//
// WORKERS threads each call the bench method (request: PATH, reply: the backend's address) and pause
// PACE_MS after each reply. Prints "new ADDR T" the first time a backend answers (T in
// CLOCK_MONOTONIC nanoseconds); after stdin closes, "rpcs {json}" and "end".
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

long long MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::string JsonEscaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n') ? ' ' : c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TARGET PATH [WORKERS] [PACE_MS]\n", argv[0]);
    return 2;
  }
  const std::string target = argv[1], path = argv[2];
  const int workers = argc > 3 ? std::atoi(argv[3]) : 3;
  const double pace_ms = argc > 4 ? std::atof(argv[4]) : 2.0;
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");  // the native path; an xDS channel takes xDS's policy
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  grpc::GenericStub stub(channel);

  std::mutex mu;
  std::set<std::string> seen;
  long long ok = 0, failed = 0;
  std::string last_error;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      grpc::CompletionQueue cq;
      grpc::Slice slice(path);
      while (!stop.load()) {
        grpc::ByteBuffer request(&slice, 1), reply;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        context.set_wait_for_ready(true);
        grpc::Status status;
        auto call = stub.PrepareUnaryCall(&context, "/bench.Who/Who", request, &cq);
        call->StartCall();
        call->Finish(&reply, &status, reinterpret_cast<void*>(1));
        void* tag;
        bool event_ok;
        cq.Next(&tag, &event_ok);
        long long t = MonotonicNs();
        {
          std::lock_guard<std::mutex> lock(mu);
          if (status.ok()) {
            ++ok;
            std::string addr = ToString(reply);
            if (seen.insert(addr).second) {
              std::printf("new %s %lld\n", addr.c_str(), t);
              std::fflush(stdout);
            }
          } else {
            ++failed;
            last_error = std::to_string(status.error_code()) + ": " + status.error_message();
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(pace_ms * 1000)));
      }
      cq.Shutdown();
      void* tag;
      bool event_ok;
      while (cq.Next(&tag, &event_ok)) {
      }
    });
  }
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  stop = true;
  for (auto& t : threads) t.join();
  std::printf("rpcs {\"ok\": %lld, \"failed\": %lld, \"last_error\": \"%s\"}\nend\n", ok, failed,
              JsonEscaped(last_error).c_str());
  std::fflush(stdout);
  return 0;
}
