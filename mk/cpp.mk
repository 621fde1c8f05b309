# C++ binding: the grpc-core resolver plugin (bindings/cpp, CMake) with its GoogleTest suite, run
# against a real 3-member etcd cluster from tests/harness. The plugin needs grpc's internal
# headers: bindings/cpp/scripts/fetch-grpc-headers puts the matching Debian source into .cache/.
TEST_TARGETS += test-cpp
APT_PACKAGES += cmake dpkg-dev etcd-server libgrpc++-dev libgrpc-dev libgtest-dev libprotobuf-dev \
	protobuf-compiler protobuf-compiler-grpc

CPP_BUILD := $(BUILD)/cpp
CPP_ASAN_BUILD := $(BUILD)/cpp-asan
GRPC_SRC_CACHE := .cache/grpc-src
CPP_CMAKE_ARGS = -DGNAMING_LIB_DIR=$(abspath $(RELEASE_DIR)) -DGNAMING_INCLUDE_DIR=$(abspath include) \
	-DGRPC_SOURCE_DIR=$$(bindings/cpp/scripts/fetch-grpc-headers $(GRPC_SRC_CACHE))

.PHONY: cpp test-cpp install-cpp
cpp: lib
	cmake -S bindings/cpp -B $(CPP_BUILD) $(CPP_CMAKE_ARGS) >/dev/null
	cmake --build $(CPP_BUILD) -j2

# The channel churn test runs a second time under AddressSanitizer, whose LeakSanitizer fails
# the run on any leak at exit. The greeter example (examples/cpp) then runs against the etcd cluster.
test-cpp: cpp
	cmake -S bindings/cpp -B $(CPP_ASAN_BUILD) $(CPP_CMAKE_ARGS) -DGNAMING_SANITIZE=address \
	  -DGNAMING_BUILD_EXAMPLES=OFF >/dev/null
	cmake --build $(CPP_ASAN_BUILD) -j2 --target channel_churn_test
	cd $(CPP_BUILD) && ctest --output-on-failure
	$(CPP_ASAN_BUILD)/tests/channel_churn_test
	python3 tests/harness/etcd_cluster.py run --members 3 -- bash -c '$(CPP_BUILD)/tests/etcd_test && \
	  GNAMING_ETCD_ENDPOINTS=$$GNAMING_TEST_ETCD_ENDPOINTS examples/cpp/run-example $(CPP_BUILD)/examples'

install-cpp: cpp
	cmake -S bindings/cpp -B $(CPP_BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	DESTDIR=$(DESTDIR) cmake --install $(CPP_BUILD)

# The greeter example end to end, against a throwaway etcd cluster.
.PHONY: example-cpp
example-cpp: cpp
	python3 tests/harness/etcd_cluster.py run --members 1 -- \
	  bash -c 'GNAMING_ETCD_ENDPOINTS=$$GNAMING_TEST_ETCD_ENDPOINTS examples/cpp/run-example $(CPP_BUILD)/examples'
