//! libgnaming: service discovery for any gRPC stack, as a Rust core behind a C ABI.
//!
//! Data flow, module by module:
//! target string → [`target`] parser → [`resolver`] task on the [`runtime`] (one backend per scheme:
//! [`resolver::static_list`], [`etcd`], [`dns`]) → complete [`update::Update`] → delivery to a
//! callback or a pull queue ([`resolver::delivery`]) → the C ABI in `ffi`, which every binding wraps;
//! or → the embedded [`xds`] server, which serves the same lists to gRPC's own xDS clients.

pub mod dns;
pub mod error;
pub mod etcd;
pub mod log;
pub mod registration;
pub mod resolver;
pub mod runtime;
pub mod target;
pub mod update;
pub mod xds;
pub mod zk;

mod ffi;

pub use error::{Error, ErrorKind};
pub use resolver::{Resolver, ResolverOptions, UpdateHandler};
pub use target::Target;
pub use update::{Address, AddressFamily, AddressKind, ResolverState, Update};
