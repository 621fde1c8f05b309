# Fuzzing with cargo-fuzz on the nightly toolchain (fuzz/, its own workspace; see FUZZING.md): the
# target parser, the etcd value parser, the DNS TXT service config and a C API call sequence on static
# targets, built with AddressSanitizer and debug assertions. `make fuzz` runs each target FUZZ_SECONDS
# on a persistent corpus in build/fuzz/corpus (outside git), two at a time, from an optimised build;
# test-fuzz replays the committed crash inputs (fuzz/regressions) and runs each target for
# FUZZ_TEST_SECONDS from the committed seeds (fuzz/seeds), from a debug build, which compiles in a
# fraction of the time. A crash, a failed check or a hang (FUZZ_TIMEOUT s for one input) fails it.
TEST_TARGETS += test-fuzz

FUZZ_TARGETS := target_parser etcd_value dns_service_config c_api_sequence
FUZZ_SECONDS ?= 300
FUZZ_TEST_SECONDS ?= 20
FUZZ_TIMEOUT ?= 20
# Extra libFuzzer flags for `make fuzz`, e.g. FUZZ_FLAGS=-runs=10000000
FUZZ_FLAGS ?=
FUZZ_OUT := $(BUILD)/fuzz
FUZZ_TARGET_DIR := fuzz/target/x86_64-unknown-linux-gnu

FETCH_TARGETS += fuzz-deps

.PHONY: fuzz fuzz-build fuzz-build-dev test-fuzz fuzz-deps
# The fuzz workspace's crates (cargo-fuzz itself comes with `make deps`).
fuzz-deps:
	cd fuzz && $(CARGO) +nightly fetch -q --target $(RUST_HOST)

fuzz-build:
	cd fuzz && $(CARGO) +nightly fuzz build -O

fuzz-build-dev:
	cd fuzz && $(CARGO) +nightly fuzz build --dev

# The corpus grows across runs; the seeds are read, never written.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_OUT)
	FUZZ_BIN=$(FUZZ_TARGET_DIR)/release FUZZ_OUT=$(FUZZ_OUT) FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) FUZZ_FLAGS='$(FUZZ_FLAGS)' \
	  fuzz/run $(FUZZ_SECONDS) $(FUZZ_OUT)/corpus $(FUZZ_TARGETS)

# A throwaway corpus from the seeds, so that a test run leaves nothing behind in git.
test-fuzz: fuzz-build-dev
	@rm -rf $(FUZZ_OUT)/test && mkdir -p $(FUZZ_OUT)/test
	@FUZZ_BIN=$(FUZZ_TARGET_DIR)/debug FUZZ_OUT=$(FUZZ_OUT)/test FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) \
	  fuzz/run $(FUZZ_TEST_SECONDS) $(FUZZ_OUT)/test/corpus $(FUZZ_TARGETS)
