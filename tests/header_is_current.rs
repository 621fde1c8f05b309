//! The checked-in header is what cbindgen makes from the sources, and its version matches Cargo.toml.

#[test]
fn checked_in_header_matches_a_fresh_generation() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/gnaming.h"));
    let checked_in = include_str!("../include/gnaming.h");
    assert!(fresh == checked_in, "include/gnaming.h is stale: run `make header` and commit it");
}

#[test]
fn header_version_macros_match_cargo_toml() {
    let header = include_str!("../include/gnaming.h");
    let expect = [
        format!("#define GN_VERSION_MAJOR {}", env!("CARGO_PKG_VERSION_MAJOR")),
        format!("#define GN_VERSION_MINOR {}", env!("CARGO_PKG_VERSION_MINOR")),
        format!("#define GN_VERSION_PATCH {}", env!("CARGO_PKG_VERSION_PATCH")),
        format!("#define GN_VERSION_STRING \"{}\"", env!("CARGO_PKG_VERSION")),
    ];
    for line in expect {
        assert!(header.contains(&line), "header lacks `{line}`");
    }
}
