# Python binding: a venv in build/venv with grpcio, pytest and the package installed from
# bindings/python (pip copies target/release/libgnaming.so into it, as for users), then the pytest
# suite against a real 3-member etcd cluster from tests/harness (with grpcio's own xDS client fed
# by gnaming.xds and by `gnaming xds-agent`).
TEST_TARGETS += test-python
APT_PACKAGES += python3-venv

PYTHON ?= python3
PY_VENV := $(BUILD)/venv

.PHONY: test-python python-install

$(PY_VENV)/bin/python:
	$(PYTHON) -m venv $(PY_VENV)

# Reinstalled every time: the copied library must be the one just built.
python-install: lib $(PY_VENV)/bin/python
	$(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check "grpcio>=1.50" "pytest>=7" "setuptools>=64" wheel
	$(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall ./bindings/python

# pytest exits non-zero also when it collects no test. The CLI is for the xDS agent test;
# prometheus-client (installed when missing) is the real parser that test_prometheus.py reads the metrics with.
test-python: python-install cli
	$(PY_VENV)/bin/python -c 'import prometheus_client' 2>/dev/null || \
	  $(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check "prometheus-client>=0.17"
	$(PYTHON) tests/harness/etcd_cluster.py run -- \
	  $(PY_VENV)/bin/python -m pytest -p no:cacheprovider -q bindings/python/tests
