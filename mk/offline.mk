# A second `make test` installs nothing and reaches no network. test-offline runs every step that may
# download (FETCH_TARGETS: Debian packages, cargo-fuzz, crates, Go modules, the venv's pip packages,
# the Java and Node clients' libraries, grpc's source) once as `make test` does, then again inside a
# network namespace with nothing to reach (tests/offline/check, under strace), and fails when a step
# fails there or any process opens or sends on an internet socket. Seconds: every step is then a check.
TEST_TARGETS += test-offline
APT_PACKAGES += strace util-linux

OFFLINE_DIR := $(BUILD)/offline

.PHONY: test-offline
test-offline:
	@$(MAKE) --no-print-directory $(FETCH_TARGETS) >/dev/null
	@tests/offline/check $(OFFLINE_DIR) $(MAKE) --no-print-directory $(FETCH_TARGETS)
