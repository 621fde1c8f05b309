# etcd: real clusters on loopback (tests/harness/etcd_cluster.py, ETCD_RUN in mk/common.mk) for every
# suite that needs etcd.
# The Rust etcd tests start their own clusters through the harness and run inside test-rust.
APT_PACKAGES += etcd-server etcd-client
