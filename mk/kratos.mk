# Kratos interop (go-kratos v2.8.3, from the Go module proxy): a Kratos gRPC server's instance in etcd
# is called through a libgnaming client (the Go binding), and a libgnaming registration in the Kratos
# format is called through Kratos's own gRPC discovery resolver, on a real 1-member etcd from
# tests/harness. tests/kratos/go is a module of its own so that bindings/go does not pull Kratos's
# dependency tree; its comment says why the etcd registrar there is test glue. No race detector: the
# binding's races are test-go's, and without it the build reuses the packages test-go's second run and
# test-xds-go compiled (grpc-go, etcd's client), so only Kratos's own compile here.
TEST_TARGETS += test-kratos
APT_PACKAGES += gcc etcd-server

KRATOS_GO_DIR := tests/kratos/go
GO_MODULES += $(KRATOS_GO_DIR)

.PHONY: test-kratos

test-kratos: lib
	CGO_ENABLED=1 $(ETCD_RUN_1) bash -c 'cd $(KRATOS_GO_DIR) && $(GO) test -count=1 -timeout 2m -v .'
