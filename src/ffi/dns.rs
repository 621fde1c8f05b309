//! The DNS settings of `gn_resolver_options`: which server to ask, how often to look again, and which
//! record types (SRV, TXT) to use. Each setter checks its values against the rest of the DNS options
//! and leaves the options unchanged on error.

use std::ffi::c_char;
use std::time::Duration;

use super::error::{gn_error, gn_status};
use super::plumbing::{borrow_opt_str, edit_options};
use super::resolver::gn_resolver_options;
use crate::dns::{self, DnsOptions, DEFAULT_SRV_LABEL};
use crate::error::Error;

/// Applies `change` to the DNS options and keeps the result only if it is valid as a whole.
fn edit(
    options: *mut gn_resolver_options,
    err_out: *mut *mut gn_error,
    change: impl FnOnce(&mut DnsOptions) -> Result<(), Error>,
) -> gn_status {
    edit_options(options, err_out, |o| {
        change(&mut o.inner.dns)?;
        o.inner.dns.validate()
    })
}

/// The DNS server for `dns:` targets that name none in their authority: "10.0.0.1", "10.0.0.1:5353"
/// or "[::1]:5353" (port 53 when omitted); copied. NULL goes back to the default, the system
/// configuration (/etc/resolv.conf and /etc/hosts). A server in the target (`dns://10.0.0.1:53/host`)
/// wins over this. On error the options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_nameserver(
    options: *mut gn_resolver_options,
    nameserver: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        dns.nameserver = unsafe { borrow_opt_str(nameserver, "nameserver") }?.map(dns::parse_nameserver).transpose()?;
        Ok(())
    })
}

/// The least time between the starts of two lookups that `gn_resolver_resolve_now` asks for; calls in
/// between are folded into one lookup at the end of the interval. Default 30000 ms (as gRPC); at
/// most a day. On error the options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_min_resolve_interval_ms(
    options: *mut gn_resolver_options,
    interval_ms: u64,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.min_resolve_interval = Duration::from_millis(interval_ms);
        Ok(())
    })
}

/// Whether to look again when the shortest TTL of the records expires (default true), so that
/// changes are seen without waiting for a broken connection. The TTL is clamped to the refresh range
/// (`gn_resolver_options_set_dns_refresh_range_ms`). On error the options are unchanged. Not
/// thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_ttl_refresh(
    options: *mut gn_resolver_options,
    enabled: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.ttl_refresh = enabled;
        Ok(())
    })
}

/// The range the TTL refresh is clamped to: a record with TTL 0 is looked up again after `min_ms`, one
/// with a TTL of a week after `max_ms`. Default 30000..1800000 (30 s to 30 min). `min_ms` must be
/// above 0 and at most `max_ms`, both at most a day. On error the options are unchanged. Not
/// thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_refresh_range_ms(
    options: *mut gn_resolver_options,
    min_ms: u64,
    max_ms: u64,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.refresh_min = Duration::from_millis(min_ms);
        dns.refresh_max = Duration::from_millis(max_ms);
        Ok(())
    })
}

/// Retries after failed lookups: the first after `initial_ms`, each further one `multiplier` times
/// longer up to `max_ms`, every delay spread randomly by ±`jitter` (a fraction). Default 1000 ms, 1.6,
/// 120000 ms, 0.2 (as gRPC). `initial_ms` must be above 0 and at most `max_ms`, `multiplier` from 1
/// to 10, `jitter` from 0 to 1. A `gn_resolver_resolve_now` does not cut a retry delay short. On error
/// the options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_backoff(
    options: *mut gn_resolver_options,
    initial_ms: u64,
    multiplier: f64,
    max_ms: u64,
    jitter: f64,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.backoff_initial = Duration::from_millis(initial_ms);
        dns.backoff_multiplier = multiplier;
        dns.backoff_max = Duration::from_millis(max_ms);
        dns.backoff_jitter = jitter;
        Ok(())
    })
}

/// How long one DNS query waits for an answer (default 5000 ms) and how many times it is sent
/// (default 2, from 1 to 10). Queries go over UDP and fall back to TCP. On error the options are
/// unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_query_timeout_ms(
    options: *mut gn_resolver_options,
    timeout_ms: u64,
    attempts: u32,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.query_timeout = Duration::from_millis(timeout_ms);
        dns.query_attempts = attempts;
        Ok(())
    })
}

/// Whether to look up the service config in the TXT record at `_grpc_config.<host>` (default true).
/// The record starts with "grpc_config=" followed by gRPC's JSON list of choices; the first choice
/// whose `clientLanguage` (see `gn_resolver_options_set_client_language`), `clientHostname` and
/// `percentage` match is delivered as `gn_update_service_config`. A malformed record is reported as
/// a transient error that keeps the last good list and config. On error the options are unchanged.
/// Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_service_config(
    options: *mut gn_resolver_options,
    enabled: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.service_config = enabled;
        Ok(())
    })
}

/// Whether to add grpclb balancers from the SRV records at `_grpclb._tcp.<host>` (default false, as
/// gRPC). They come after the backends with kind `GN_ADDRESS_KIND_BALANCER` and metadata
/// `{"priority":P,"target":"name."}`; the target name is the balancer's authority. On error the
/// options are unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_grpclb(
    options: *mut gn_resolver_options,
    enabled: bool,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        dns.grpclb = enabled;
        Ok(())
    })
}

/// SRV backend mode (default off): the backends come from the SRV records at
/// `<service_label>.<host>` instead of the host's A/AAAA records, and the target's port is not used.
/// Each SRV target is resolved to its addresses; entries are ordered by priority (lowest first), then
/// weight (highest first), carry the SRV weight as `weight` (0 becomes 1) and metadata
/// `{"priority":P,"target":"name."}`. `service_label` is copied; NULL means "_grpc._tcp". With
/// `enabled` false the label is ignored and the mode is turned off. On error the options are
/// unchanged. Not thread-safe for one options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_srv_backends(
    options: *mut gn_resolver_options,
    enabled: bool,
    service_label: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        let label = unsafe { borrow_opt_str(service_label, "service_label") }?;
        dns.srv_backends = enabled.then(|| label.unwrap_or(DEFAULT_SRV_LABEL).to_string());
        Ok(())
    })
}

/// The host name matched against `clientHostname` in TXT service config choices; copied. NULL (the
/// default) uses this machine's name. On error the options are unchanged. Not thread-safe for one
/// options object.
#[no_mangle]
pub extern "C" fn gn_resolver_options_set_dns_client_hostname(
    options: *mut gn_resolver_options,
    hostname: *const c_char,
    err_out: *mut *mut gn_error,
) -> gn_status {
    edit(options, err_out, |dns| {
        // SAFETY: NULL or a NUL-terminated string, as documented.
        dns.client_hostname = unsafe { borrow_opt_str(hostname, "hostname") }?.map(str::to_string);
        Ok(())
    })
}
