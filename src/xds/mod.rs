//! The embedded xDS server: serves every target a gRPC xDS client names (`xds:///echo`) over
//! state-of-the-world ADS, from the same resolvers as the native paths.
//!
//! [`names`] maps listener names to targets, [`resources`] builds Listener → Cluster →
//! ClusterLoadAssignment from a list (pure), [`registry`] shares one resolver per target among the
//! streams, [`stream`] speaks the protocol, [`server`] listens and writes the bootstrap.

pub mod names;
pub mod registry;
pub mod resources;
pub mod server;
pub mod stream;

pub use server::{configure_default, default_scheme, default_server, install_bootstrap, XdsOptions, XdsServer};
