//! `gn_stats_json`, `gn_stats_prometheus` and `gn_string_free`: the process-wide counters as JSON and
//! as Prometheus text.

use std::ffi::{c_char, CString};

use super::error::{gn_error, gn_status};
use super::panic::{guard, with_status};
use super::plumbing::Out;
use crate::error::Error;

/// Writes the process-wide counters as a JSON object to `*json_out` (free it with `gn_string_free`):
/// `updates_delivered` (updates published by every resolver), `watch_restarts`, `relists`,
/// `compactions_seen`, `rewinds_seen`, `lease_grants`, `lease_renewals`, `lease_losses`, `reregistrations`, and the
/// current `watches_active`, `keepalive_streams`, `registrations_active`,
/// `registrations_registered`, `clusters_connected`; for the xDS servers `xds_streams_total`,
/// `xds_pushes`, `xds_acks`, `xds_nacks` and the current `xds_servers_active`, `xds_streams_active`,
/// `xds_resolvers_active`. New keys may appear in later versions.
/// `*json_out` is written on success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_stats_json(json_out: *mut *mut c_char, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or valid for a write, as documented.
        let out = unsafe { Out::new(json_out, "json_out") }?;
        let json = CString::new(crate::etcd::stats::to_json()).map_err(|_| Error::invalid_argument("NUL in stats"))?;
        out.write(json.into_raw())
    })
}

/// Writes the same counters as `gn_stats_json` to `*text_out` (free it with `gn_string_free`) in the
/// Prometheus text exposition format 0.0.4, ready to serve as `/metrics` with the content type
/// `text/plain; version=0.0.4`: each stat as `gnaming_<key>` with a `# HELP` and a `# TYPE` line,
/// counters ending in `_total` (`gnaming_updates_delivered_total`, `gnaming_xds_streams_total`),
/// gauges as they are (`gnaming_watches_active`). New metrics may appear in later versions.
/// `*text_out` is written on success only. Thread-safe.
#[no_mangle]
pub extern "C" fn gn_stats_prometheus(text_out: *mut *mut c_char, err_out: *mut *mut gn_error) -> gn_status {
    with_status(err_out, || {
        // SAFETY: NULL or valid for a write, as documented.
        let out = unsafe { Out::new(text_out, "text_out") }?;
        let text =
            CString::new(crate::etcd::stats::to_prometheus()).map_err(|_| Error::invalid_argument("NUL in stats"))?;
        out.write(text.into_raw())
    })
}

/// Frees a string this library returned (such as `gn_stats_json`'s or `gn_stats_prometheus`'). NULL is a no-op.
#[no_mangle]
pub extern "C" fn gn_string_free(s: *mut c_char) {
    guard((), || {
        if !s.is_null() {
            // SAFETY: `s` came from `CString::into_raw` in this library and is given up here.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
