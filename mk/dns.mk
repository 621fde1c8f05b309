# DNS resolver. Its Rust tests (tests/dns.rs, run by test-rust) bring their own in-process DNS server;
# its C end-to-end test (tests/c/test_dns_dnsmasq.c, run by test-c) starts dnsmasq on a loopback port.
# `make test-dns` runs only these, the C test under ASan+UBSan.
APT_PACKAGES += dnsmasq-base

.PHONY: test-dns
test-dns: lib
	$(CARGO) test --lib dns::
	$(CARGO) test --test dns
	@mkdir -p $(BUILD)/c
	$(CC) $(C_FLAGS) $(SAN_FLAGS) tests/c/test_dns_dnsmasq.c -o $(BUILD)/c/test_dns_dnsmasq.asan $(C_LINK)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 $(C_TIMEOUT) $(BUILD)/c/test_dns_dnsmasq.asan
