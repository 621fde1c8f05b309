//! ZooKeeper ensembles: the process default and the ones configured by name, each a connect string,
//! optional digest credentials and the ACL of the nodes registrations create there.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use zookeeper_client::{Acl, Acls, Client, Permission};

use crate::error::{Error, ErrorKind};
use crate::target::EnsembleRef;

/// The ensemble when nothing configures the default and `GNAMING_ZK_SERVERS` is unset.
pub const DEFAULT_SERVERS: &str = "127.0.0.1:2181";
/// The environment variable that gives the default ensemble's connect string.
pub const SERVERS_ENV: &str = "GNAMING_ZK_SERVERS";

/// Who may do what with the nodes a registration creates (its instance node, and the service node
/// and parents when they are missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeAcl {
    /// Anyone may do anything (`world:anyone` ALL): Curator's default, and ZooKeeper's "open ACL".
    #[default]
    Open,
    /// Only sessions with the registering session's credentials (`auth` ALL): needs digest credentials.
    CreatorAll,
    /// The registering credentials may do anything, anyone may read: clients need no credentials.
    CreatorAllAnyoneRead,
}

static CREATOR_ALL_ANYONE_READ: [Acl; 2] =
    [Acl::new_const(Permission::ALL, "auth", ""), Acl::new_const(Permission::READ, "world", "anyone")];

impl NodeAcl {
    /// The names the C API and the bindings take.
    pub const NAMES: &'static str = "\"open\", \"creator-all\" or \"creator-all-anyone-read\"";

    pub fn from_name(name: &str) -> Result<NodeAcl, String> {
        match name {
            "open" => Ok(NodeAcl::Open),
            "creator-all" => Ok(NodeAcl::CreatorAll),
            "creator-all-anyone-read" => Ok(NodeAcl::CreatorAllAnyoneRead),
            other => Err(format!("node ACL '{other}' is not one of {}", Self::NAMES)),
        }
    }

    pub fn acls(self) -> Acls<'static> {
        match self {
            NodeAcl::Open => Acls::anyone_all(),
            NodeAcl::CreatorAll => Acls::creator_all(),
            NodeAcl::CreatorAllAnyoneRead => Acls::new(&CREATOR_ALL_ANYONE_READ),
        }
    }
}

/// How to reach one ensemble and what to create there.
#[derive(Clone, PartialEq, Eq)]
pub struct EnsembleConfig {
    /// A ZooKeeper connect string: `host:port[,host:port]` and an optional chroot (`/apps/prod`).
    pub servers: String,
    /// `digest` credentials (user, password), sent on every session before any request.
    pub digest: Option<(String, String)>,
    pub node_acl: NodeAcl,
}

// Written by hand so that a password never reaches a log line.
impl fmt::Debug for EnsembleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnsembleConfig")
            .field("servers", &self.servers)
            .field("digest_user", &self.digest.as_ref().map(|(u, _)| u))
            .field("node_acl", &self.node_acl)
            .finish()
    }
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig { servers: DEFAULT_SERVERS.to_string(), digest: None, node_acl: NodeAcl::Open }
    }
}

impl EnsembleConfig {
    /// Checks a connect string: `host:port[,host:port][/chroot]`, the chroot absolute, without an
    /// empty, '.' or '..' segment and not ending in '/'.
    pub fn parse_servers(connect: &str) -> Result<String, Error> {
        let connect = connect.trim();
        let (servers, chroot) = split_connect(connect);
        for server in servers.split(',') {
            let valid = server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains([' ', '#', '?']) && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid {
                return Err(Error::invalid_argument(format!(
                    "ZooKeeper server '{server}' in '{connect}' is not host:port"
                )));
            }
        }
        if !chroot.is_empty() && chroot[1..].split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(Error::invalid_argument(format!(
                "ZooKeeper chroot '{chroot}' in '{connect}' must be an absolute path without empty, '.' or '..' \
                 segments, not ending in '/'"
            )));
        }
        Ok(connect.to_string())
    }

    /// The servers (`host:port,...`) and the chroot (`/apps/prod`, or "") of the connect string.
    pub fn servers_and_chroot(&self) -> (&str, &str) {
        split_connect(&self.servers)
    }

    /// The default ensemble from the environment.
    fn from_env() -> Self {
        let mut config = EnsembleConfig::default();
        if let Some(value) = std::env::var(SERVERS_ENV).ok().filter(|v| !v.trim().is_empty()) {
            match Self::parse_servers(&value) {
                Ok(servers) => config.servers = servers,
                Err(e) => tracing::warn!("{SERVERS_ENV} ignored: {e}; using {DEFAULT_SERVERS}"),
            }
        }
        config
    }

    /// A refusal of a configuration that ZooKeeper would only refuse later, node by node.
    pub fn validate(&self) -> Result<(), Error> {
        Self::parse_servers(&self.servers)?;
        if self.digest.is_none() && self.node_acl != NodeAcl::Open {
            return Err(Error::invalid_argument(
                "a creator ACL needs digest credentials: ZooKeeper refuses it to a session without any",
            ));
        }
        Ok(())
    }

    /// A new session on this ensemble, its credentials added before the first request.
    pub async fn connect(&self, session_timeout: Duration) -> Result<Client, zookeeper_client::Error> {
        let mut connector = Client::connector().with_session_timeout(session_timeout).with_fail_eagerly();
        if let Some((user, password)) = &self.digest {
            connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
        }
        connector.connect(&self.servers).await
    }
}

fn split_connect(connect: &str) -> (&str, &str) {
    connect.split_at(connect.find('/').unwrap_or(connect.len()))
}

/// Configured ensembles by name; "" is the default.
static CONFIGS: Mutex<Option<HashMap<String, Arc<EnsembleConfig>>>> = Mutex::new(None);

/// Configures (or replaces, for resolvers and registrations that start from now on) the ensemble
/// called `name`; "" is the default one.
pub fn register(name: &str, config: EnsembleConfig) -> Result<(), Error> {
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(Error::invalid_argument(format!(
            "ZooKeeper ensemble name '{name}' may hold only letters, digits, '-', '_' and '.'"
        )));
    }
    config.validate()?;
    CONFIGS.lock().get_or_insert_with(HashMap::new).insert(name.to_string(), Arc::new(config));
    Ok(())
}

/// The configuration a target's ensemble reference stands for. Servers written in the target take
/// the default ensemble's credentials and ACL, so one setup serves `zk://host:port/...` too.
pub fn for_ref(ensemble: &EnsembleRef) -> Result<Arc<EnsembleConfig>, Error> {
    let mut configs = CONFIGS.lock();
    let configs = configs.get_or_insert_with(HashMap::new);
    let mut default =
        || Arc::clone(configs.entry(String::new()).or_insert_with(|| Arc::new(EnsembleConfig::from_env())));
    match ensemble {
        EnsembleRef::Default => Ok(default()),
        EnsembleRef::Servers(servers) => {
            let base = default();
            Ok(Arc::new(EnsembleConfig { servers: servers.join(","), ..(*base).clone() }))
        }
        EnsembleRef::Named(name) => configs.get(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "no ZooKeeper ensemble named '{name}' is configured (see gn_zk_register); servers are \
                     written with their port, as in zk://{name}:2181/path"
                ),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings_are_checked_and_kept_as_written() {
        for good in ["127.0.0.1:2181", "a:1,b:2,[::1]:3", "a:1/apps/prod", " a:1 "] {
            assert_eq!(EnsembleConfig::parse_servers(good).unwrap(), good.trim(), "{good}");
        }
        for (bad, says) in [
            ("", "ZooKeeper server '' in '' is not host:port"),
            ("a", "ZooKeeper server 'a' in 'a' is not host:port"),
            ("a:1,", "ZooKeeper server '' in 'a:1,' is not host:port"),
            ("a:0", "ZooKeeper server 'a:0' in 'a:0' is not host:port"),
            ("a:1/apps/", "ZooKeeper chroot '/apps/' in 'a:1/apps/' must be an absolute path"),
            ("a:1/apps//x", "ZooKeeper chroot '/apps//x' in 'a:1/apps//x' must be"),
            ("a:1/..", "ZooKeeper chroot '/..' in 'a:1/..' must be"),
        ] {
            let e = EnsembleConfig::parse_servers(bad).unwrap_err();
            assert!(e.message().starts_with(says), "'{bad}': {e}");
        }
    }

    #[test]
    fn names_resolve_to_their_configuration_and_servers_take_the_default_credentials() {
        let secret = EnsembleConfig {
            servers: "127.0.0.1:1/chroot".into(),
            digest: Some(("svc".into(), "s3cret".into())),
            node_acl: NodeAcl::CreatorAllAnyoneRead,
        };
        register("ensemble-unit", secret.clone()).unwrap();
        assert_eq!(*for_ref(&EnsembleRef::Named("ensemble-unit".into())).unwrap(), secret);
        assert!(!format!("{secret:?}").contains("s3cret"), "the password must not be printed");
        let missing = for_ref(&EnsembleRef::Named("ensemble-missing".into())).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(missing.message().contains("no ZooKeeper ensemble named 'ensemble-missing'"), "{missing}");
        let servers = for_ref(&EnsembleRef::Servers(vec!["a:1".into(), "b:2".into()])).unwrap();
        assert_eq!(servers.servers, "a:1,b:2");

        let acl_without_credentials = EnsembleConfig { node_acl: NodeAcl::CreatorAll, ..EnsembleConfig::default() };
        let e = register("ensemble-unit-2", acl_without_credentials).unwrap_err();
        assert!(e.message().contains("a creator ACL needs digest credentials"), "{e}");
        let e = register("a/b", EnsembleConfig::default()).unwrap_err();
        assert!(e.message().contains("may hold only letters"), "{e}");
    }
}
