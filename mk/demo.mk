# The demo (demo/run.py): C++, Go and Python greeter servers and clients finding each other through
# libgnaming in a local 3-member etcd, with Java and Node clients (built by mk/xds-agent.mk) on
# xds:///echo through `gnaming xds-agent`, while a script stops, kills and starts servers and an etcd
# member. `make demo` shows it live; test-demo runs the short form and checks its summary.
TEST_TARGETS += test-demo

DEMO_BUILD := $(BUILD)/demo
GO_MODULES += demo/go

.PHONY: demo demo-build test-demo
demo-build: lib cli cpp python-install xds-clients
	@mkdir -p $(DEMO_BUILD)/cpp $(DEMO_BUILD)/go $(DEMO_BUILD)/py
	cmake -S demo/cpp -B $(DEMO_BUILD)/cpp-build -DGNAMING_LIB_DIR=$(abspath $(RELEASE_DIR)) \
	  -DGNAMING_INCLUDE_DIR=$(abspath include) -DGNAMING_GRPCPP_LIB=$(abspath $(CPP_BUILD))/libgnaming_grpcpp.so >/dev/null
	cmake --build $(DEMO_BUILD)/cpp-build -j2
	cp $(DEMO_BUILD)/cpp-build/demo_server $(DEMO_BUILD)/cpp-build/demo_client $(DEMO_BUILD)/cpp/
	cd demo/go && CGO_ENABLED=1 $(GO) build -o $(abspath $(DEMO_BUILD))/go/ ./server ./client
	$(PY) -m grpc_tools.protoc -I examples/cpp --python_out=$(DEMO_BUILD)/py \
	  --grpc_python_out=$(DEMO_BUILD)/py examples/cpp/helloworld.proto

demo: deps
	@$(MAKE) --no-print-directory demo-build >/dev/null
	python3 demo/run.py $(if $(DEMO_SHORT),--short)

test-demo: demo-build
	python3 demo/run.py --short
