# C++ binding (bindings/cpp, CMake): libgnaming_grpcpp, the public path (gnaming::CreateChannel over
# grpc++'s xDS client), and libgnaming_grpc, the optional grpc-core plugin, which needs grpc's
# internal headers: bindings/cpp/scripts/fetch-grpc-headers puts the matching Debian source into
# .cache/. Every GoogleTest binary runs under AddressSanitizer (LeakSanitizer fails a run on a leak
# at exit), against real greeter servers and a real 3-member etcd cluster from tests/harness.
TEST_TARGETS += test-cpp
APT_PACKAGES += binutils cmake dpkg-dev etcd-server libgrpc++-dev libgrpc-dev libgtest-dev libprotobuf-dev \
	protobuf-compiler protobuf-compiler-grpc

CPP_BUILD := $(BUILD)/cpp
CPP_ASAN_BUILD := $(BUILD)/cpp-asan
GRPC_SRC_CACHE := .cache/grpc-src
CPP_CMAKE_ARGS = -DGNAMING_LIB_DIR=$(abspath $(RELEASE_DIR)) -DGNAMING_INCLUDE_DIR=$(abspath include)
# The plugin's suites need it built: fetch the grpc source it compiles against.
CPP_PLUGIN_ARGS = -DGNAMING_GRPC_PLUGIN=ON -DGRPC_SOURCE_DIR=$$(bindings/cpp/scripts/fetch-grpc-headers $(GRPC_SRC_CACHE))

.PHONY: cpp test-cpp test-cpp-public-api test-cpp-install install-cpp uninstall-cpp grpc-src
FETCH_TARGETS += grpc-src

# The script reuses a tree of the right version: it downloads only the first time.
grpc-src:
	@bindings/cpp/scripts/fetch-grpc-headers $(GRPC_SRC_CACHE) >/dev/null

# The libraries and examples/cpp (the demo and the example run use them).
cpp: lib
	cmake -S bindings/cpp -B $(CPP_BUILD) $(CPP_CMAKE_ARGS) $(CPP_PLUGIN_ARGS) -DGNAMING_BUILD_TESTS=OFF >/dev/null
	cmake --build $(CPP_BUILD) -j2

test-cpp: cpp
	cmake -S bindings/cpp -B $(CPP_ASAN_BUILD) $(CPP_CMAKE_ARGS) $(CPP_PLUGIN_ARGS) -DGNAMING_SANITIZE=address \
	  -DGNAMING_BUILD_EXAMPLES=OFF >/dev/null
	cmake --build $(CPP_ASAN_BUILD) -j2
	$(MAKE) --no-print-directory test-cpp-public-api
	$(MAKE) --no-print-directory test-cpp-install
	cd $(CPP_ASAN_BUILD) && ctest --output-on-failure
	$(ETCD_RUN) bash -c '$(CPP_ASAN_BUILD)/tests/xds_etcd_test && $(CPP_ASAN_BUILD)/tests/etcd_test && \
	  GNAMING_ETCD_ENDPOINTS=$$GNAMING_TEST_ETCD_ENDPOINTS examples/cpp/run-example $(CPP_BUILD)/examples'

# The public path must not touch grpc-core's internals (they change between releases): no
# grpc_core:: symbol among the library's imports. The plugin, which does use them, shows that
# the check sees such imports.
test-cpp-public-api:
	@internal() { nm -D --undefined-only "$$1" | c++filt | grep -c 'grpc_core::' || true; }; \
	public=$$(internal $(CPP_ASAN_BUILD)/libgnaming_grpcpp.so); plugin=$$(internal $(CPP_ASAN_BUILD)/libgnaming_grpc.so); \
	echo "grpc_core:: imports: libgnaming_grpcpp $$public, libgnaming_grpc (plugin) $$plugin"; \
	if [ "$$public" != 0 ]; then nm -D --undefined-only $(CPP_ASAN_BUILD)/libgnaming_grpcpp.so | c++filt | grep 'grpc_core::'; \
	  echo "0 passed, 1 failed"; exit 1; fi; \
	if [ "$$plugin" = 0 ]; then echo "the check found no grpc_core:: import even in the plugin: it cannot see them"; \
	  echo "0 passed, 1 failed"; exit 1; fi; \
	echo "1 passed, 0 failed"

# Installs the C++ libraries, headers, pkg-config files and gnamingCppTargets.cmake next to the C
# library's CMake package (top-level `make install` calls it when grpc++ is there); lib/, as the C
# library's, never GNUInstallDirs' multiarch directory.
install-cpp: cpp
	cmake -S bindings/cpp -B $(CPP_BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
	DESTDIR=$(DESTDIR) cmake --install $(CPP_BUILD)

# What install-cpp put there (top-level `make uninstall` runs it first).
uninstall-cpp:
	rm -f $(DESTDIR)$(LIBDIR)/libgnaming_grpcpp.so* $(DESTDIR)$(LIBDIR)/libgnaming_grpc.so* \
	  $(DESTDIR)$(PREFIX)/include/gnaming/grpcpp.h $(DESTDIR)$(PREFIX)/include/gnaming/grpc.h \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/gnaming_grpcpp.pc $(DESTDIR)$(LIBDIR)/pkgconfig/gnaming_grpc.pc \
	  $(DESTDIR)$(CMAKE_PKG_DIR)/gnamingCppTargets.cmake $(DESTDIR)$(CMAKE_PKG_DIR)/gnamingCppTargets-*.cmake
	@rmdir $(DESTDIR)$(PREFIX)/include/gnaming 2>/dev/null || true

# `make install` (C library and C++ layer) into a scratch prefix, then tests/consumer/cpp, a project
# outside the tree, built with nothing but CMAKE_PREFIX_PATH and run; then `make uninstall`.
test-cpp-install: cpp
	@MAKE='$(MAKE)' tests/consumer/cpp/check-install $(BUILD)/install-test-cpp

# The greeter example end to end, against a throwaway etcd cluster.
.PHONY: example-cpp
example-cpp: cpp
	$(ETCD_RUN_1) \
	  bash -c 'GNAMING_ETCD_ENDPOINTS=$$GNAMING_TEST_ETCD_ENDPOINTS examples/cpp/run-example $(CPP_BUILD)/examples'
