# The Go binding from outside the repository: `make install-c` into a scratch prefix, then a Go module
# in a temporary directory outside the checkout builds examples/go's client and server with
# `-tags gnaming_pkgconfig` against that prefix and runs them on a 1-member etcd from tests/harness
# (tests/consumer/go/check-install). Its modules are the binding's own, from the module cache.
TEST_TARGETS += test-go-outside
APT_PACKAGES += gcc etcd-server pkg-config

.PHONY: test-go-outside

test-go-outside: lib
	@MAKE='$(MAKE)' GO='$(GO)' $(ETCD_RUN_1) tests/consumer/go/check-install
