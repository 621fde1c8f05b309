# Rust unit and integration tests (parser, delivery contract, backends against real servers, CLI),
# after checking that the sources are formatted (rustfmt.toml) and lint-free.
TEST_TARGETS += test-rust

.PHONY: test-rust
test-rust:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -q -- -D warnings
	$(CARGO) test --all-targets -- --test-threads=4
