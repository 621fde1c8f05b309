# The C API tested from C: every tests/c/test_*.c built with -Wall -Wextra -Werror, run under
# AddressSanitizer + UndefinedBehaviorSanitizer, then again under valgrind; the header compiled as C++;
# the installed library, its soname and its pkg-config and CMake packages; exports limited to gn_*.
TEST_TARGETS += test-c test-install test-exports
# test-install configures its consumer project with CMake.
APT_PACKAGES += cmake

# Every test_*.c, one after the other in one cluster; test_cache stops every member and
# starts them again (same ports and data) before it ends, so the tests after it find the cluster whole.
C_TESTS := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no --track-fds=no
# A forked child cannot free what its parent's runtime threads allocated (those threads do not exist
# in it), so the fork tests' valgrind runs (test_fork, test_xds) check memory errors but not leaks;
# their ASan runs check both.
VALGRIND_FLAGS_test_fork := --leak-check=no
VALGRIND_FLAGS_test_xds := --leak-check=no
# valgrind runs threads one at a time, ~40x slower: the close race runs fewer rounds there.
VALGRIND_ENV_test_close_race := GN_CLOSE_RACE_ITERATIONS=2000

.PHONY: test-c test-c-build test-install test-exports
test-c-build: lib
	@mkdir -p $(BUILD)/c
	@for t in $(C_TESTS); do \
	  $(CC) $(C_FLAGS) $(SAN_FLAGS) tests/c/$$t.c -o $(BUILD)/c/$$t.asan $(C_LINK) || exit 1; \
	  $(CC) $(C_FLAGS) tests/c/$$t.c -o $(BUILD)/c/$$t $(C_LINK) || exit 1; \
	done
	$(CXX) -std=c++17 $(C_WARN) -pedantic -Iinclude tests/c/header_cxx.cpp -o $(BUILD)/c/header_cxx $(C_LINK)

test-c: test-c-build
	@$(ETCD_RUN) bash -c 'set -u; failed=0; \
	  $(foreach t,$(C_TESTS),\
	    echo "--- $(t) (ASan+UBSan)"; \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 $(C_TIMEOUT) $(BUILD)/c/$(t).asan || failed=1; \
	    echo "--- $(t) (valgrind)"; \
	    env $(VALGRIND_ENV_$(t)) $(C_TIMEOUT) $(VALGRIND) $(VALGRIND_FLAGS_$(t)) $(BUILD)/c/$(t) || failed=1;) \
	  echo "--- header_cxx"; $(BUILD)/c/header_cxx || failed=1; \
	  exit $$failed'

# `make install-c` and `make install-cli` into a scratch prefix and through DESTDIR, then the soname,
# links, pkg-config, the CMake package, the out-of-tree consumer project (tests/consumer/c), the installed
# command line tool and its completions checked as users and packagers rely on them; the C++ layer's
# install is test-cpp's.
test-install: lib cli
	@MAKE='$(MAKE)' C_COMPILER='$(CC)' tests/consumer/c/check-install $(BUILD)/install-test

# The library exports only the C API.
test-exports: lib
	@others=$$(nm -D --defined-only $(LIB) | awk '{print $$3}' | grep -v '^gn_' || true); \
	if [ -n "$$others" ]; then echo "exports without the gn_ prefix:"; echo "$$others"; echo "0 passed, 1 failed"; exit 1; fi; \
	echo "exports: $$(nm -D --defined-only $(LIB) | wc -l) symbols, all gn_*"; echo "1 passed, 0 failed"
