# Rust unit and integration tests (parser, delivery contract, backends against real servers).
TEST_TARGETS += test-rust

.PHONY: test-rust
test-rust:
	$(CARGO) test --all-targets -- --test-threads=4
