# ZooKeeper: real ensembles on loopback (tests/harness/zk_ensemble.py: Debian's server started with
# java directly, three servers by default) for every suite that needs ZooKeeper. ZK_RUN CMD runs CMD
# inside a fresh 3-server ensemble whose servers are in GNAMING_TEST_ZK_SERVERS; ZK_RUN_1 inside a
# single server.
# The Rust ZooKeeper tests start their own ensembles through the harness and run inside test-rust.
APT_PACKAGES += zookeeper

ZK_ENSEMBLE := python3 tests/harness/zk_ensemble.py
ZK_RUN := $(ZK_ENSEMBLE) run --servers 3 --
ZK_RUN_1 := $(ZK_ENSEMBLE) run --servers 1 --
