# Benchmarks (bench/): propagation latency, failover, scale, footprint, xDS vs native, large lists and
# many prefixes, side by side with etcd's own Go naming resolver, against a real 3-member etcd cluster
# from tests/harness. `make bench` runs the full suite (minutes; not part of `make test`) and rewrites
# BENCHMARKS.md and bench/results.json; BENCH_ARGS='--only latency' reruns one section into them.
# test-bench-smoke runs it with tiny counts in `make test`, checking only that every figure is
# produced and sane, so the suite cannot rot.
# The Go programs (bench/go) use the Go binding through a replace directive and etcd's client from
# the Go module proxy. The xds section (xDS vs native) also runs `gnaming xds-agent`, grpc-go's xDS
# client (bench/go/grpcbench), grpcio from the Python venv (mk/python.mk), a C++ client compiled once
# and linked twice: on Debian's libgrpc++ alone and with the grpc-core plugin (mk/cpp.mk), the demo's
# Java and Node xDS clients (mk/xds-agent.mk), and the Python package's xDS and swapping channels side
# by side with 20 backends (bench/xds_python.py, same venv).
TEST_TARGETS += test-bench-smoke
APT_PACKAGES += etcd-server gcc binutils g++ libgrpc++-dev python3-venv maven nodejs openjdk-17-jdk-headless

BENCH_DIR := $(BUILD)/bench
GO_MODULES += bench/go
BENCH_ARGS ?=

.PHONY: bench bench-build test-bench-smoke
BENCH_CXX_FLAGS := -std=c++17 -O2 $(C_WARN)
BENCH_PY_ARGS = --grpc-python $(abspath $(PY))

bench-build: lib cli cpp python-install xds-clients
	@mkdir -p $(BENCH_DIR)
	$(CC) -std=c11 -O2 $(C_WARN) -Iinclude -pthread bench/gn_bench.c -o $(BENCH_DIR)/gn_bench $(C_LINK)
	cd bench/go && CGO_ENABLED=1 $(GO) build -buildvcs=false -o $(abspath $(BENCH_DIR))/gobench .
	cd bench/go && CGO_ENABLED=1 $(GO) build -buildvcs=false -o $(abspath $(BENCH_DIR))/grpcbench ./grpcbench
	$(CXX) $(BENCH_CXX_FLAGS) -c bench/cpp_grpc_client.cc -o $(BENCH_DIR)/cpp_grpc_client.o $$(pkg-config --cflags grpc++)
	$(CXX) $(BENCH_DIR)/cpp_grpc_client.o -o $(BENCH_DIR)/cpp_grpc_client_xds $$(pkg-config --libs grpc++)
	$(CXX) $(BENCH_DIR)/cpp_grpc_client.o -o $(BENCH_DIR)/cpp_grpc_client_native \
	  $$(pkg-config --libs grpc++) -L$(CPP_BUILD) -Wl,--no-as-needed -lgnaming_grpc -Wl,--as-needed \
	  -Wl,-rpath,$(abspath $(CPP_BUILD)) -Wl,-rpath,$(abspath $(RELEASE_DIR))

bench: bench-build
	$(PYTHON) bench/bench.py --md BENCHMARKS.md --json bench/results.json $(BENCH_PY_ARGS) $(BENCH_ARGS)

test-bench-smoke: bench-build
	timeout 300 $(PYTHON) bench/bench.py --smoke --md $(BENCH_DIR)/smoke.md --json $(BENCH_DIR)/smoke.json $(BENCH_PY_ARGS) >$(BENCH_DIR)/smoke.out 2>&1 \
	  || { cat $(BENCH_DIR)/smoke.out; echo "0 passed, 1 failed"; exit 1; }
	@tail -1 $(BENCH_DIR)/smoke.out; echo "1 passed, 0 failed"
