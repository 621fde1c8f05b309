//! DNS: A/AAAA, SRV and TXT service config lookups with TTL-driven refresh.

use crate::error::{Error, ErrorKind};
use crate::resolver::{BackendTask, ResolverContext};
use crate::target::DnsTarget;

/// Resolver settings specific to `dns:` targets.
#[derive(Debug, Clone, Default)]
pub struct DnsOptions {}

pub(crate) fn resolver_task(_target: &DnsTarget, _ctx: ResolverContext) -> Result<BackendTask, Error> {
    Err(Error::new(ErrorKind::UnsupportedScheme, "dns: targets parse, but this build does not serve them yet"))
}
