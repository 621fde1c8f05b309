//! etcd: cluster connections, the watch-based resolver and lease-backed registration.

pub(crate) mod backoff;
pub mod cluster;
pub mod frameworks;
pub mod registration;
pub mod stats;
pub mod value;
mod watch_stream;
pub mod watcher;

use crate::error::Error;
use crate::resolver::{BackendTask, ResolverContext};
use crate::target::EtcdTarget;

pub use cluster::{ClusterConfig, TlsConfig};
pub use registration::{Registration, RegistrationOptions, RegistrationState};

/// Resolver settings specific to `etcd:` targets. Cluster settings live in the cluster
/// configuration ([`cluster::register`]), shared by every resolver of the cluster.
#[derive(Debug, Clone, Default)]
pub struct EtcdResolverOptions {}

/// Attaches to the target's shared watch, which publishes each new state of it straight through this
/// resolver's context on the watch's own task: no task of the resolver's is woken per change. The
/// resolver's task only holds the attachment and turns `resolve_now` into a re-list.
pub(crate) fn resolver_task(target: &EtcdTarget, mut ctx: ResolverContext) -> Result<BackendTask, Error> {
    let cluster = cluster::for_ref(&target.cluster)?;
    let watch = watcher::subscribe(&cluster, &format!("{}/", target.service))?;
    let copies = target.copies;
    // A registration of this process may have put a key the shared watch has not applied yet: the
    // first list must not be older than what that registration's caller already saw confirmed.
    let (history, floor) = watch.written();
    let resolve_now = ctx.resolve_now_signal();
    Ok(Box::pin(async move {
        let _attached = watch.attach(move |snapshot| {
            // `publish` and `publish_error` drop what changes nothing; no second check is kept here.
            match &snapshot.error {
                Some(message) => ctx.publish_error(message.clone()),
                None if snapshot.listed && (snapshot.history != history || snapshot.revision >= floor) => {
                    let mut endpoints = Vec::with_capacity(snapshot.entries.len() * copies.max(1) as usize);
                    for endpoint in snapshot.endpoints() {
                        endpoint.clone().push_copies(copies, &mut endpoints);
                    }
                    ctx.publish(endpoints, None);
                }
                None => {}
            }
        });
        loop {
            resolve_now.notified().await;
            watch.request_relist();
        }
    }))
}
