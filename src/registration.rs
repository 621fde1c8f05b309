//! A registration wherever its service string points: a service written as a zk: target
//! ("zk://host:port,.../path/to/service" or "zk:///path/to/service") registers in ZooKeeper, so that
//! a server registers under the very string its clients resolve; everything else is an etcd prefix.
//! The C API, the bindings and the command line tool all start registrations here.

use std::time::Duration;

use crate::error::Error;
use crate::etcd::{RegistrationOptions, RegistrationState};

/// One registration, in etcd or in ZooKeeper.
pub enum Registration {
    Etcd(crate::etcd::Registration),
    Zk(crate::zk::registration::Registration),
}

impl Registration {
    pub fn start(service: &str, address: &str, options: &RegistrationOptions) -> Result<Self, Error> {
        if crate::zk::registration::is_zk_service(service) {
            crate::zk::registration::Registration::start(service, address, options).map(Registration::Zk)
        } else {
            crate::etcd::Registration::start(service, address, options).map(Registration::Etcd)
        }
    }

    /// Where it is registered: the etcd key, or the ZooKeeper node's path.
    pub fn key(&self) -> &str {
        match self {
            Registration::Etcd(r) => r.key(),
            Registration::Zk(r) => r.path(),
        }
    }

    pub fn wait(&self, timeout: Option<Duration>) -> Result<(), Error> {
        match self {
            Registration::Etcd(r) => r.wait(timeout),
            Registration::Zk(r) => r.wait(timeout),
        }
    }

    pub fn state(&self) -> RegistrationState {
        match self {
            Registration::Etcd(r) => r.state(),
            Registration::Zk(r) => r.state(),
        }
    }

    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        match self {
            Registration::Etcd(r) => r.close(timeout),
            Registration::Zk(r) => r.close(timeout),
        }
    }

    pub fn drain(&self, drain: Duration, timeout: Duration) -> Result<(), Error> {
        match self {
            Registration::Etcd(r) => r.drain(drain, timeout),
            Registration::Zk(r) => r.drain(drain, timeout),
        }
    }
}
