//! etcd: cluster connections, the watch-based resolver and lease-backed registration.

pub(crate) mod backoff;
pub mod cluster;
pub mod registration;
pub mod stats;
pub mod value;
pub mod watcher;

use std::sync::Arc;

use crate::error::Error;
use crate::resolver::{BackendTask, ResolverContext};
use crate::target::EtcdTarget;

pub use cluster::{ClusterConfig, TlsConfig};
pub use registration::{Registration, RegistrationOptions, RegistrationState};

/// Resolver settings specific to `etcd:` targets. Cluster settings live in the cluster
/// configuration ([`cluster::register`]), shared by every resolver of the cluster.
#[derive(Debug, Clone, Default)]
pub struct EtcdResolverOptions {}

/// Subscribes to the target's shared watch and publishes each new state of it.
pub(crate) fn resolver_task(target: &EtcdTarget, mut ctx: ResolverContext) -> Result<BackendTask, Error> {
    let cluster = cluster::for_ref(&target.cluster)?;
    let watch = watcher::subscribe(&cluster, &format!("{}/", target.service))?;
    let copies = target.copies;
    // A registration of this process may have put a key the shared watch has not applied yet: the
    // first list must not be older than what that registration's caller already saw confirmed.
    let floor = watch.written();
    Ok(Box::pin(async move {
        let mut states = watch.states();
        loop {
            // `publish` and `publish_error` drop what changes nothing; no second check is kept here.
            let snapshot = Arc::clone(&states.borrow_and_update());
            match &snapshot.error {
                Some(message) => ctx.publish_error(message.clone()),
                None if snapshot.listed && snapshot.revision >= floor => {
                    let mut endpoints = Vec::new();
                    for endpoint in snapshot.endpoints() {
                        endpoint.clone().push_copies(copies, &mut endpoints);
                    }
                    ctx.publish(endpoints, None);
                }
                None => {}
            }
            tokio::select! {
                changed = states.changed() => if changed.is_err() { return },
                _ = ctx.resolve_now_requested() => watch.request_relist(),
            }
        }
    }))
}
