//! The etcd value parser (`etcd::value::parse`) on any bytes: etcd's Go naming JSON, bare `host:port`
//! and the Kratos and go-micro documents. Never panics; every address it reads is a valid entry that
//! `value::format` writes back to the same entry in both formats; and an address `validate_address`
//! accepts reads back from both formats.
#![no_main]

use gnaming::etcd::value::{format, parse, validate_address, Entry};
use gnaming::Address;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn reads_back_when_written(data: &[u8], endpoint: &Address) {
    assert!(endpoint.weight >= 1, "{data:?}: weight {}", endpoint.weight);
    assert!(validate_address(&endpoint.address).is_ok(), "{data:?}: read an invalid address {endpoint:?}");
    let metadata: Option<Value> = endpoint
        .metadata
        .as_deref()
        .map(|m| serde_json::from_str(m).unwrap_or_else(|e| panic!("{data:?}: metadata {m:?} is not JSON: {e}")));
    let json = format(&endpoint.address, metadata.as_ref(), false);
    assert_eq!(parse(json.as_bytes()), Ok(Entry::Add(endpoint.clone())), "{data:?}: written as {json:?}");
    let raw = format(&endpoint.address, None, true);
    let bare = Address { weight: 1, metadata: None, ..endpoint.clone() };
    assert_eq!(parse(raw.as_bytes()), Ok(Entry::Add(bare)), "{data:?}: written as {raw:?}");
}

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Entry::Add(endpoint)) => reads_back_when_written(data, &endpoint),
        Ok(Entry::Several(endpoints)) => {
            assert!(endpoints.len() >= 2, "{data:?}: Several with {} addresses", endpoints.len());
            for endpoint in &endpoints {
                reads_back_when_written(data, endpoint);
            }
        }
        _ => {}
    }

    // The same bytes as an address to register: the check before registering and the reader agree.
    let Ok(addr) = std::str::from_utf8(data) else { return };
    let valid = validate_address(addr).is_ok();
    let json = format(addr, None, false);
    let read = parse(json.as_bytes());
    assert_eq!(valid, matches!(read, Ok(Entry::Add(_))), "{addr:?}: validate_address and {json:?} read as {read:?}");
    if let Ok(Entry::Add(from_json)) = read {
        let raw = format(addr, None, true);
        assert_eq!(parse(raw.as_bytes()), Ok(Entry::Add(from_json)), "{addr:?}: the bare form reads differently");
    }
});
