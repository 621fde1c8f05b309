# Python binding: a venv in build/venv with grpcio, pytest and the package installed from
# bindings/python (pip builds it with setuptools-rust, as for users), then the pytest
# suite against a real 3-member etcd cluster and a 3-server ZooKeeper ensemble from tests/harness (with
# grpcio's own xDS client fed by gnaming.xds and by `gnaming xds-agent`).
TEST_TARGETS += test-python
APT_PACKAGES += python3-venv

.PHONY: test-python python-deps python-install

$(PY):
	$(PYTHON) -m venv $(PY_VENV)

# What the suites run in the venv: the binding's tests, its build backend (setuptools, setuptools-rust),
# `python -m build` for test-python-package, the demo's and the xDS agent suite's greeter stubs
# (grpcio-tools), Prometheus' own parser for the metrics test (prometheus-client); installed only when
# missing.
PY_REQUIREMENTS := "grpcio>=1.50" "pytest>=7" "setuptools>=70.1" "setuptools-rust>=1.9" build \
  "grpcio-tools>=1.50" "prometheus-client>=0.17"
FETCH_TARGETS += python-deps

python-deps: $(PY)
	@$(call pip_ensure,$(PY_REQUIREMENTS))

# Reinstalled every time, from the tree alone, so the package holds the library just built: pip's build
# runs cargo on the checkout's target/, where `lib` left it, and cargo finds it up to date (no relink).
python-install: lib python-deps
	$(PIP_INSTALL) --no-index --no-build-isolation --no-deps --force-reinstall ./bindings/python

# pytest exits non-zero also when it collects no test. The CLI is for the xDS agent test; the
# ZooKeeper ensemble (tests/harness/zk_ensemble.py) for test_zk.py.
test-python: python-install cli
	$(ETCD_RUN) $(ZK_RUN) \
	  $(PY) -m pytest -p no:cacheprovider -q bindings/python/tests
