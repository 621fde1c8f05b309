# Chaos: the faults production sees, against real 3-member etcd clusters (CHAOS.md): a member cut off
# from its peers and the client from a member (network namespaces, tests/chaos/partition.py), a
# cluster restored from an older snapshot (tests/etcd_lifecycle.rs), the leader SIGKILLed under churn
# with Go, C++ and Python subscribers (tests/chaos/churn.py), and a soak (tests/chaos_soak.rs).
# `make chaos` runs them in full (a 30-minute soak; SOAK_SECONDS changes it) and writes CHAOS.md and
# its soak plot; test-chaos, in `make test`, runs the partition and churn short forms (the restore and
# soak short forms run inside test-rust). Network namespaces need root: without them the partition
# says why and the suite counts as skipped.
TEST_TARGETS += test-chaos
APT_PACKAGES += etcd-server etcd-client iproute2 g++

CHAOS_OUT := $(BUILD)/chaos
CHAOS_GO := $(CHAOS_OUT)/subscriber-go
CHAOS_CPP := $(CHAOS_OUT)/subscriber-cpp
SOAK_SECONDS ?= 1800
GO_MODULES += tests/chaos/go

.PHONY: chaos chaos-build chaos-deps test-chaos

chaos-build: lib python-install
	@mkdir -p $(CHAOS_OUT)
	cd tests/chaos/go && CGO_ENABLED=1 $(GO) build -o $(abspath $(CHAOS_GO)) .
	$(CXX) -std=c++17 -g -O1 $(C_WARN) -Iinclude tests/chaos/cpp/subscriber.cc -o $(CHAOS_CPP) $(C_LINK) -pthread

# matplotlib draws the soak plot; only `make chaos` needs it.
chaos-deps: python-deps
	@$(call pip_ensure,matplotlib)

chaos: chaos-build chaos-deps
	$(PY) tests/chaos/run.py --out $(CHAOS_OUT) --go $(CHAOS_GO) --cpp $(CHAOS_CPP) \
	  --soak-seconds $(SOAK_SECONDS) --report CHAOS.md --plot chaos-soak.png

test-chaos: chaos-build
	$(PY) tests/chaos/partition.py --changes 10
	$(PY) tests/chaos/churn.py --go $(CHAOS_GO) --cpp $(CHAOS_CPP) --changes 200
