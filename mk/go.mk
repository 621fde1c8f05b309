# Go binding: the cgo package in bindings/go links target/release/libgnaming.so (found again at run
# time through its rpath). Its tests run with the race detector against real grpc-go servers, a real
# 3-member etcd cluster and a ZooKeeper server from tests/harness; the Build/Close cycle tests run a
# second time without the race detector, whose shadow memory hides leaks from the RSS bound; then the example in
# examples/go runs against the same cluster. Go 1.26 (grpc-go's minimum; an older go fetches it
# through GOTOOLCHAIN) and the modules in go.sum come from the Go module proxy; cgo needs gcc.
TEST_TARGETS += test-go
APT_PACKAGES += gcc etcd-server zookeeper

GO_DIR := bindings/go
GO_TEST_FLAGS ?= -race -count=1 -timeout 8m

GO_MODULES += bindings/go examples/go
FETCH_TARGETS += go-deps

.PHONY: test-go example-go go-deps

# What the Go suites build and test, from the module proxy only when the module cache lacks it (`go mod
# download` would fetch every module of the graph, also those no build needs).
go-deps:
	@for m in $(GO_MODULES); do (cd $$m && $(GO) list -deps -test ./... >/dev/null) || exit 1; done

test-go: lib
	CGO_ENABLED=1 GO="$(GO)" $(ETCD_RUN) $(ZK_RUN_1) bash -c '\
	  set -e; cd $(GO_DIR); \
	  $(GO) test $(GO_TEST_FLAGS) ./...; \
	  $(GO) test -count=1 -timeout 4m -run Cycles ./...; \
	  ../../examples/go/run.sh'

# Two servers register in etcd, a client spreads RPCs over them by weight (see examples/go).
example-go: lib
	CGO_ENABLED=1 GO="$(GO)" $(ETCD_RUN) examples/go/run.sh
