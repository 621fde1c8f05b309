# libgnaming: `make demo` shows it, `make test` installs what is missing, builds and runs every suite.
# Each test suite lives in mk/<suite>.mk and adds itself to TEST_TARGETS, its Debian packages to
# APT_PACKAGES and its downloading steps to FETCH_TARGETS, so suites stay independent; mk/common.mk,
# included first, holds what they share (the etcd harness command, Go, the Python venv and pip, C flags).
# What each suite builds on (make targets):
#   test-c, test-exports, test-go, test-go-outside: lib
#   test-install: lib, cli (it installs both)
#   test-rust, test-loom, test-fuzz: none, cargo builds what they run (test-fuzz: the fuzz workspace)
#   test-python: python-install (the venv, mk/python.mk), cli
#   test-python-package: lib, python-deps and python-wheelhouse (mk/python-package.mk)
#   test-cpp: cpp (mk/cpp.mk, grpc's source from grpc-src)
#   test-xds-go: lib and cli (build)
#   test-xds-agent: cli, python-install, xds-clients (the Java and Node clients, mk/xds-agent.mk)
#   test-demo: cli, cpp, python-install, xds-clients (demo-build, mk/demo.mk)
#   test-bench-smoke: cli, cpp, python-install, xds-clients (bench-build, mk/bench.mk)
#   test-offline: every FETCH_TARGETS step (mk/offline.mk)

SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
RELEASE_DIR := target/release
LIB := $(RELEASE_DIR)/libgnaming.so
HEADER := include/gnaming.h
BUILD := build

# The soname's number is GN_ABI_VERSION (src/ffi/mod.rs; build.rs sets it at link time): programs
# record libgnaming.so.$(ABI) and refuse a library with another ABI.
ABI := $(shell sed -n 's/^pub const GN_ABI_VERSION: u32 = \([0-9][0-9]*\);$$/\1/p' src/ffi/mod.rs)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
SONAME := libgnaming.so.$(ABI)
# The installed file is the soname followed by the release (libgnaming.so.1.0.1.0 for ABI 1, release
# 0.1.0), the libX.so.<soname number>.<rest> form ldconfig and packagers expect: the soname link and
# the file agree on the ABI, and each release of one ABI replaces the file of the previous one.
LIB_REAL := $(SONAME).$(VERSION)
# Fixed, not a knob: the CMake package finds the library and header at lib/ and include/ of its prefix.
override LIBDIR := $(PREFIX)/lib
CMAKE_PKG_DIR := $(LIBDIR)/cmake/gnaming

# Packages every suite needs; suites append theirs.
APT_PACKAGES := build-essential pkg-config protobuf-compiler python3 valgrind
TEST_TARGETS :=

.PHONY: all deps build lib cli completions header check-header example-c test install install-c install-cli uninstall clean
all: build

include mk/common.mk
include $(sort $(filter-out mk/common.mk,$(wildcard mk/*.mk)))

deps:
	@scripts/install-deps $(sort $(APT_PACKAGES))

build: lib cli

# Always ask cargo: it knows when the library is up to date. Programs linked with -lgnaming from the
# build tree look for the soname at run time, so it is linked next to the library here too.
lib:
	$(CARGO) build --release --lib
	@ln -sfn libgnaming.so $(RELEASE_DIR)/$(SONAME)

# The operator's command line tool, target/release/gnaming (the crate's default feature `cli`).
cli:
	$(CARGO) build --release --bin gnaming

# Its shell completion scripts, written by the tool itself (`gnaming completions SHELL`).
COMPLETIONS := $(BUILD)/completions
completions: cli
	@mkdir -p $(COMPLETIONS)
	$(RELEASE_DIR)/gnaming completions bash > $(COMPLETIONS)/gnaming.bash
	$(RELEASE_DIR)/gnaming completions zsh > $(COMPLETIONS)/_gnaming
	$(RELEASE_DIR)/gnaming completions fish > $(COMPLETIONS)/gnaming.fish

$(LIB): lib

header:
	GNAMING_UPDATE_HEADER=1 $(CARGO) build --lib

# The header must equal a fresh cbindgen run and be committed as such.
check-header: lib
	@$(CARGO) test --test header_is_current -q
	@git diff --quiet --exit-code -- $(HEADER) 2>/dev/null || { echo "$(HEADER) differs from the commit: run 'make header' and commit it"; exit 1; }

# A suite that cannot run here (no network namespace, say) says why in the file $GNAMING_SUITE_SKIPPED
# and exits 0: it is counted as skipped, never as passed. Each suite's wall time is printed after it.
SUITE_SKIPPED := $(abspath $(BUILD))/suite-skipped

test: deps
	$(MAKE) build
	$(MAKE) check-header
	@set -o pipefail; passed=(); skipped=(); failed=(); mkdir -p $(BUILD); \
	for t in $(TEST_TARGETS); do \
	  echo "=== $$t"; rm -f $(SUITE_SKIPPED); start=$$SECONDS; \
	  if ! GNAMING_SUITE_SKIPPED=$(SUITE_SKIPPED) $(MAKE) --no-print-directory $$t; then failed+=("$$t"); \
	  elif [ -s $(SUITE_SKIPPED) ]; then skipped+=("$$t"); echo "=== $$t skipped: $$(cat $(SUITE_SKIPPED))"; \
	  else passed+=("$$t"); fi; \
	  echo "=== $$t took $$((SECONDS - start)) s"; \
	done; rm -f $(SUITE_SKIPPED); \
	echo; echo "suites: $${#passed[@]} passed, $${#skipped[@]} skipped, $${#failed[@]} failed"; \
	if [ $${#skipped[@]} -gt 0 ]; then echo "skipped suites: $${skipped[*]}"; fi; \
	if [ $${#failed[@]} -gt 0 ]; then echo "failed suites: $${failed[*]}"; exit 1; fi

# The smallest C client (examples/c/resolve.c) on a static target.
example-c: lib
	@mkdir -p $(BUILD)/examples
	$(CC) -Wall -Wextra -Werror -Iinclude examples/c/resolve.c -L$(RELEASE_DIR) -lgnaming \
	  -Wl,-rpath,$(abspath $(RELEASE_DIR)) -o $(BUILD)/examples/resolve
	$(BUILD)/examples/resolve 'pass:///127.0.0.1:50051#2,127.0.0.1:50052'

# The C library, the command line tool, and the C++ layer when this machine can build it (install-cpp,
# mk/cpp.mk).
install: install-c install-cli
	@if command -v cmake >/dev/null && pkg-config --exists grpc++; then \
	  $(MAKE) --no-print-directory install-cpp PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)'; \
	else \
	  echo "install: C++ layer skipped: it needs cmake and grpc++ (pkg-config grpc++)"; \
	fi

# The C library in the usual layout (file, soname link, development link), its header, gnaming.pc and
# the CMake package (cmake/*.in, filled here so installing needs no CMake). DESTDIR prefixes every path
# for packagers; the files name only PREFIX, and the CMake package finds its prefix from where it lies.
install-c: lib
	install -D -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/$(LIB_REAL)
	ln -sfn $(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(LIB_REAL) $(DESTDIR)$(LIBDIR)/libgnaming.so
	install -D -m 0644 $(HEADER) $(DESTDIR)$(PREFIX)/include/gnaming.h
	@mkdir -p $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(CMAKE_PKG_DIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@SONAME@|$(SONAME)|' \
	  gnaming.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/gnaming.pc
	@pointer_bytes=$$($(CC) -dM -E - </dev/null | sed -n 's/^#define __SIZEOF_POINTER__ //p'); \
	for f in gnamingConfig gnamingConfigVersion; do \
	  sed -e 's|@ABI@|$(ABI)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' \
	    -e 's|@LIB_REAL@|$(LIB_REAL)|g' -e "s|@POINTER_BYTES@|$$pointer_bytes|g" \
	    cmake/$$f.cmake.in > $(DESTDIR)$(CMAKE_PKG_DIR)/$$f.cmake || exit 1; \
	done

# The command line tool in bin/ and its completions where bash-completion, zsh and fish look under
# $(PREFIX)/share (each finds /usr/local/share and /usr/share by default).
BASH_COMPLETION_FILE := $(PREFIX)/share/bash-completion/completions/gnaming
ZSH_COMPLETION_FILE := $(PREFIX)/share/zsh/site-functions/_gnaming
FISH_COMPLETION_FILE := $(PREFIX)/share/fish/vendor_completions.d/gnaming.fish
install-cli: completions
	install -D -m 0755 $(RELEASE_DIR)/gnaming $(DESTDIR)$(PREFIX)/bin/gnaming
	install -D -m 0644 $(COMPLETIONS)/gnaming.bash $(DESTDIR)$(BASH_COMPLETION_FILE)
	install -D -m 0644 $(COMPLETIONS)/_gnaming $(DESTDIR)$(ZSH_COMPLETION_FILE)
	install -D -m 0644 $(COMPLETIONS)/gnaming.fish $(DESTDIR)$(FISH_COMPLETION_FILE)

# What install put there: the C++ layer's files (uninstall-cpp, mk/cpp.mk), then install-c's, the
# links only while they still point at this release's file, so another ABI installed beside it keeps
# its own, and install-cli's.
uninstall: uninstall-cpp
	@for l in $(SONAME) libgnaming.so; do \
	  if [ "$$(readlink $(DESTDIR)$(LIBDIR)/$$l)" = $(LIB_REAL) ]; then rm -f $(DESTDIR)$(LIBDIR)/$$l; fi; \
	done
	rm -f $(DESTDIR)$(LIBDIR)/$(LIB_REAL) $(DESTDIR)$(PREFIX)/include/gnaming.h $(DESTDIR)$(LIBDIR)/pkgconfig/gnaming.pc \
	  $(DESTDIR)$(CMAKE_PKG_DIR)/gnamingConfig.cmake $(DESTDIR)$(CMAKE_PKG_DIR)/gnamingConfigVersion.cmake
	rm -f $(DESTDIR)$(PREFIX)/bin/gnaming $(DESTDIR)$(BASH_COMPLETION_FILE) $(DESTDIR)$(ZSH_COMPLETION_FILE) \
	  $(DESTDIR)$(FISH_COMPLETION_FILE)
	@rmdir $(DESTDIR)$(CMAKE_PKG_DIR) 2>/dev/null || true

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
