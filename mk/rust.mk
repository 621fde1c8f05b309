# Rust unit and integration tests (parser, delivery contract, backends against real servers, CLI),
# after checking that the sources are formatted (rustfmt.toml) and lint-free.
TEST_TARGETS += test-rust

FETCH_TARGETS += cargo-deps

.PHONY: test-rust cargo-deps
# The crates the builds need; cargo reaches crates.io only for those not downloaded yet.
cargo-deps:
	$(CARGO) fetch -q --target $(RUST_HOST)

test-rust:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -q -- -D warnings
	$(CARGO) test --all-targets -- --test-threads=4

# The delivery state machine (src/resolver/delivery.rs) model-checked by loom: every interleaving of
# publish, calls, close from inside and outside a call, drop and next. Only the gnaming crate is built
# with --cfg gnaming_loom (`cargo rustc`), so no dependency is rebuilt.
TEST_TARGETS += test-loom

.PHONY: test-loom
test-loom:
	@set -o pipefail; exe=$$($(CARGO) rustc --lib --profile test --message-format=json-render-diagnostics -q \
	  -- --cfg gnaming_loom | grep -o '"executable":"[^"]*gnaming-[^"]*"' | cut -d'"' -f4) && [ -n "$$exe" ] && \
	$$exe resolver::delivery::model
