# The variables every suite shares (included before the suites' fragments): the etcd harness command,
# the Go toolchain, the Python venv and its pip, the C flags, and FETCH_TARGETS, the steps that
# download something, which each fragment extends with its own and test-offline (mk/offline.mk) runs
# again with no network.

# Real etcd clusters on loopback (tests/harness/etcd_cluster.py): ETCD_RUN CMD runs CMD inside a fresh
# 3-member cluster whose endpoints are in GNAMING_TEST_ETCD_ENDPOINTS; ETCD_RUN_1 inside a 1-member one.
ETCD_CLUSTER := python3 tests/harness/etcd_cluster.py
ETCD_RUN := $(ETCD_CLUSTER) run --members 3 --
ETCD_RUN_1 := $(ETCD_CLUSTER) run --members 1 --

# The official tarball installs into /usr/local/go, which is not always on PATH.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# The Go modules the suites build (each fragment adds its own); go-deps fetches what they need.
GO_MODULES :=

# The venv the Python binding, its tests, the demo and the benchmarks run in, and the requirements
# python-deps puts in it (mk/python.mk).
PYTHON ?= python3
PY_VENV := $(BUILD)/venv
PY := $(PY_VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check
# $(call pip_ensure,REQUIREMENTS): pip reaches the index only when the venv does not satisfy them yet;
# the first, --no-index attempt succeeds without any network when it does.
pip_ensure = $(PIP_INSTALL) --no-index $(1) >/dev/null 2>&1 || $(PIP_INSTALL) $(1)

# C programs against the library in target/release, found again at run time through their rpath.
C_WARN := -Wall -Wextra -Werror
C_FLAGS := -std=c11 -g -O1 $(C_WARN) -Iinclude -Itests/c -pthread
C_LINK := -L$(RELEASE_DIR) -lgnaming -Wl,-rpath,$(abspath $(RELEASE_DIR))
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# A dead member or a slow runner must not hang a suite.
C_TIMEOUT := timeout 600

# The host's target triple: crates are fetched for it only, as the builds need.
RUST_HOST = $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

# Every step that may download, each a no-op once what it fetches is there.
FETCH_TARGETS := deps
