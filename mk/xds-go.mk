# grpc-go's own xDS client (google.golang.org/grpc/xds, v1.85) on xds:///SERVICE through `gnaming
# xds-agent`, against greeter servers registered through the Go binding in a real 3-member etcd from
# tests/harness: following changes, connections kept across 50 changes, weights, an etcd outage, an
# empty service and Kratos and go-micro registrations under prefixes at etcd's root. tests/xds/go is a
# module of its own so that bindings/go does not pull grpc-go's xDS dependency tree; its modules come
# from the Go module proxy, etcdctl (etcd-client) checks lease expiry.
# `make bench-xds-go` measures registration put → first RPC answered by the new backend through xDS
# (p50/p90/p99 over 30 samples) and writes them to build/xds-go/bench.json as well.
TEST_TARGETS += test-xds-go
APT_PACKAGES += gcc etcd-server etcd-client

XDS_GO_DIR := tests/xds/go
GO_MODULES += $(XDS_GO_DIR)
# The agent under test; another build of `gnaming` can be given with GNAMING_AGENT=PATH.
GNAMING_AGENT ?= $(abspath $(RELEASE_DIR))/gnaming
XDS_GO_ENV = CGO_ENABLED=1 GNAMING_AGENT=$(GNAMING_AGENT)

.PHONY: test-xds-go bench-xds-go

test-xds-go: build
	$(XDS_GO_ENV) $(ETCD_RUN) bash -c 'cd $(XDS_GO_DIR) && $(GO) test -count=1 -timeout 4m -v .'

bench-xds-go: build
	@mkdir -p $(BUILD)/xds-go
	$(XDS_GO_ENV) XDS_GO_BENCH_JSON=$(abspath $(BUILD))/xds-go/bench.json $(ETCD_RUN) bash -c \
	  'cd $(XDS_GO_DIR) && $(GO) test -count=1 -run "^$$" -bench RegistrationToFirstRPC -benchtime 30x .'
	@cat $(BUILD)/xds-go/bench.json
