//! etcd: cluster connections, the watch-based resolver and lease-backed registration.

use crate::error::{Error, ErrorKind};
use crate::resolver::{BackendTask, ResolverContext};
use crate::target::EtcdTarget;

/// Resolver settings specific to `etcd:` targets.
#[derive(Debug, Clone, Default)]
pub struct EtcdResolverOptions {}

pub(crate) fn resolver_task(_target: &EtcdTarget, _ctx: ResolverContext) -> Result<BackendTask, Error> {
    Err(Error::new(ErrorKind::UnsupportedScheme, "etcd: targets parse, but this build does not serve them yet"))
}
