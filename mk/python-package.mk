# The Python package as users install it: pip compiles the Rust core itself (setuptools-rust,
# bindings/python/setup.py). A clean venv installs the sdist `python -m build` makes, another the wheel
# built once from it with no Rust toolchain on PATH, and each runs one RPC through gnaming on a real
# 3-member etcd (tests/consumer/python/check-install). The builds use the checkout's target/, where
# `lib` left the same release build, so cargo relinks nothing; pip takes the build backend and grpcio
# from build/wheelhouse alone, which python-wheelhouse fills.
TEST_TARGETS += test-python-package
APT_PACKAGES += python3-venv etcd-server

PY_WHEELHOUSE := $(BUILD)/wheelhouse
PY_WHEELHOUSE_REQUIREMENTS := "setuptools>=70.1" "setuptools-rust>=1.9" "grpcio>=1.50"
PIP_DOWNLOAD := $(PY) -m pip download -q --disable-pip-version-check -d $(PY_WHEELHOUSE)
FETCH_TARGETS += python-wheelhouse

.PHONY: test-python-package python-wheelhouse

# The first, --no-index attempt is enough once the wheelhouse has them. setuptools-rust asks
# `cargo metadata`, which reads the manifests of every platform's crates, not only this host's.
python-wheelhouse: python-deps
	@$(PIP_DOWNLOAD) --no-index --find-links $(PY_WHEELHOUSE) $(PY_WHEELHOUSE_REQUIREMENTS) >/dev/null 2>&1 || \
	  $(PIP_DOWNLOAD) $(PY_WHEELHOUSE_REQUIREMENTS)
	@$(CARGO) metadata -q --locked --format-version 1 >/dev/null

test-python-package: lib python-wheelhouse
	@$(ETCD_RUN) tests/consumer/python/check-install $(PY) $(PY_WHEELHOUSE)
