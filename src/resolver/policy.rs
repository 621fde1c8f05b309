//! Discovery policies applied to every backend's lists in one place: metadata selectors, zone
//! preference, subsetting ([`super::subset`]), what an empty list does and client-side health
//! checking ([`super::health`]), set by a target's query or by resolver options.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{health, subset};
use crate::error::{Error, ErrorKind};
use crate::update::Address;

/// The metadata key that holds an entry's zone.
pub const ZONE_KEY: &str = "zone";
/// The environment variable that gives the local zone when neither the target nor the options do.
pub const ZONE_ENV: &str = "GNAMING_ZONE";
/// The largest `min-zone`.
pub const MAX_MIN_ZONE: u32 = 10_000;

/// What a list that is empty (after selection) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmptyPolicy {
    /// Deliver the empty list: clients stop picking anything (the default).
    Pass,
    /// Keep the last list, in an update whose state says the registry reported empty.
    Keep,
}

impl EmptyPolicy {
    /// The policy a query value or an option names: `keep` or `pass`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "keep" => Some(EmptyPolicy::Keep),
            "pass" => Some(EmptyPolicy::Pass),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EmptyPolicy::Pass => "pass",
            EmptyPolicy::Keep => "keep",
        }
    }
}

/// The policies of one resolver; unset fields take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Metadata key → value every kept entry must have.
    pub selectors: BTreeMap<String, String>,
    pub empty: Option<EmptyPolicy>,
    /// The local zone: entries whose metadata `zone` is this one are preferred.
    pub prefer_zone: Option<String>,
    /// How many local entries must exist for only those to be used (default 1).
    pub min_zone: Option<u32>,
    /// How many distinct addresses this client keeps (`subset`); all when unset.
    pub subset: Option<u32>,
    /// The id that seeds this client's subset (`client-id`).
    pub client_id: Option<String>,
    /// The gRPC health service to check on every address (`health`; "" is the server as a whole).
    pub health: Option<String>,
}

impl Policy {
    /// Adds the target query's settings to these options; a key that both set to different values is
    /// an error naming the key.
    pub fn merge(&mut self, query: &Policy) -> Result<(), Error> {
        let conflict = |key: &str, ours: &dyn std::fmt::Display, theirs: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::InvalidTarget,
                format!("query key '{key}': the target says '{theirs}', the resolver options '{ours}'"),
            )
        };
        for (key, value) in &query.selectors {
            match self.selectors.get(key) {
                Some(ours) if ours != value => return Err(conflict(&format!("select.{key}"), ours, value)),
                _ => {
                    self.selectors.insert(key.clone(), value.clone());
                }
            }
        }
        merge_one(&mut self.empty, query.empty, |o, t| conflict("empty", &o.name(), &t.name()))?;
        merge_one(&mut self.prefer_zone, query.prefer_zone.clone(), |o, t| conflict("prefer-zone", &o, &t))?;
        merge_one(&mut self.min_zone, query.min_zone, |o, t| conflict("min-zone", &o, &t))?;
        merge_one(&mut self.subset, query.subset, |o, t| conflict("subset", &o, &t))?;
        merge_one(&mut self.client_id, query.client_id.clone(), |o, t| conflict("client-id", &o, &t))?;
        merge_one(&mut self.health, query.health.clone(), |o, t| {
            conflict("health", &health::query_value(&o), &health::query_value(&t))
        })?;
        Ok(())
    }

    /// The policy a resolver runs with: the local zone from `GNAMING_ZONE` when nothing else set one;
    /// with a subset, the client id from `GNAMING_CLIENT_ID`, else the default one.
    pub fn resolved(&self) -> Policy {
        let mut policy = self.clone();
        if policy.prefer_zone.is_none() {
            policy.prefer_zone = std::env::var(ZONE_ENV).ok().filter(|z| !z.is_empty());
        }
        if policy.subset.is_some() && policy.client_id.is_none() {
            let from_env = std::env::var(subset::CLIENT_ID_ENV).ok().filter(|id| !id.is_empty());
            policy.client_id = Some(from_env.unwrap_or_else(subset::default_client_id));
        }
        policy
    }

    /// The entries a client gets from `endpoints`: those matching every selector, then the local
    /// zone's alone if at least `min-zone` of them are left, else all of them, then this client's
    /// subset of those. The result depends on the list only, so an update that leaves the local count
    /// on the same side of `min-zone` never switches between the two.
    pub fn select(&self, endpoints: Vec<Address>) -> Vec<Address> {
        let mut kept: Vec<Address> = if self.selectors.is_empty() {
            endpoints
        } else {
            endpoints.into_iter().filter(|e| self.selectors.iter().all(|(k, v)| has(e, k, v))).collect()
        };
        if let Some(zone) = &self.prefer_zone {
            let local = kept.iter().filter(|e| has(e, ZONE_KEY, zone)).count();
            if local > 0 && local >= self.min_zone.unwrap_or(1) as usize {
                kept.retain(|e| has(e, ZONE_KEY, zone));
            }
        }
        // The subset comes last: taken first, it could hold no entry that the selectors match while
        // others do, and it would hide local entries from the count that `min-zone` compares. A subset
        // of a non-empty list is never empty, so the empty-list policy sees what it would without it.
        if let Some(n) = self.subset {
            kept = subset::subset(kept, n as usize, self.client_id.as_deref().unwrap_or_default());
        }
        kept
    }
}

fn merge_one<T: PartialEq + Clone>(
    ours: &mut Option<T>,
    theirs: Option<T>,
    conflict: impl Fn(T, T) -> Error,
) -> Result<(), Error> {
    match (ours.clone(), theirs) {
        (Some(o), Some(t)) if o != t => Err(conflict(o, t)),
        (_, Some(t)) => {
            *ours = Some(t);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the entry's metadata has `key` equal to `value`: a string equal to it, or a number or
/// boolean written as it. A missing key, or metadata that is no JSON object, does not match.
fn has(endpoint: &Address, key: &str, value: &str) -> bool {
    let Some(text) = &endpoint.metadata else { return false };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else { return false };
    match map.get(key) {
        Some(Value::String(s)) => s == value,
        Some(Value::Number(n)) => n.to_string() == value,
        Some(Value::Bool(b)) => b.to_string() == value,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::AddressFamily;

    fn entry(addr: &str, metadata: &str) -> Address {
        let mut e = Address::backend(addr.into(), AddressFamily::Ipv4);
        e.metadata = (!metadata.is_empty()).then(|| metadata.into());
        e
    }

    fn addrs(list: &[Address]) -> Vec<&str> {
        list.iter().map(|e| e.address.as_str()).collect()
    }

    fn fleet() -> Vec<Address> {
        vec![
            entry("1.0.0.1:1", r#"{"version":"v1","zone":"a"}"#),
            entry("1.0.0.2:1", r#"{"version":"v2","zone":"a","canary":true}"#),
            entry("1.0.0.3:1", r#"{"version":"v2","zone":"b","port":8}"#),
            entry("1.0.0.4:1", ""),
            entry("1.0.0.5:1", "[1]"),
        ]
    }

    fn policy(selectors: &[(&str, &str)]) -> Policy {
        Policy {
            selectors: selectors.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Policy::default()
        }
    }

    #[test]
    fn selectors_keep_entries_matching_every_key_and_a_missing_key_never_matches() {
        assert_eq!(addrs(&policy(&[("version", "v2")]).select(fleet())), ["1.0.0.2:1", "1.0.0.3:1"]);
        assert_eq!(addrs(&policy(&[("version", "v2"), ("zone", "b")]).select(fleet())), ["1.0.0.3:1"]);
        assert_eq!(addrs(&policy(&[("canary", "true")]).select(fleet())), ["1.0.0.2:1"]);
        assert_eq!(addrs(&policy(&[("port", "8")]).select(fleet())), ["1.0.0.3:1"]);
        assert!(policy(&[("version", "v3")]).select(fleet()).is_empty());
        assert_eq!(policy(&[]).select(fleet()).len(), 5);
    }

    #[test]
    fn the_local_zone_is_used_alone_only_while_it_has_min_zone_entries() {
        let zone = |z: &str, k: Option<u32>| Policy { prefer_zone: Some(z.into()), min_zone: k, ..Policy::default() };
        assert_eq!(addrs(&zone("a", None).select(fleet())), ["1.0.0.1:1", "1.0.0.2:1"]);
        assert_eq!(addrs(&zone("a", Some(2)).select(fleet())), ["1.0.0.1:1", "1.0.0.2:1"]);
        assert_eq!(zone("a", Some(3)).select(fleet()).len(), 5, "below min-zone every entry is used");
        assert_eq!(zone("c", None).select(fleet()).len(), 5, "a zone with no entries uses every entry");
        let mut canary_in_a = zone("a", Some(2));
        canary_in_a.selectors.insert("version".into(), "v2".into());
        assert_eq!(addrs(&canary_in_a.select(fleet())), ["1.0.0.2:1", "1.0.0.3:1"], "zones count after selection");
    }

    #[test]
    fn merging_options_and_query_fails_only_on_different_values() {
        let mut options = policy(&[("version", "v2")]);
        options.empty = Some(EmptyPolicy::Keep);
        let mut query = policy(&[("version", "v2"), ("zone", "a")]);
        query.empty = Some(EmptyPolicy::Keep);
        options.merge(&query).unwrap();
        assert_eq!(options.selectors.len(), 2);
        let e = options.clone().merge(&policy(&[("version", "v1")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTarget);
        assert_eq!(e.message(), "query key 'select.version': the target says 'v1', the resolver options 'v2'");
        let pass = Policy { empty: Some(EmptyPolicy::Pass), ..Policy::default() };
        let e = options.merge(&pass).unwrap_err();
        assert_eq!(e.message(), "query key 'empty': the target says 'pass', the resolver options 'keep'");
    }

    #[test]
    fn the_subset_is_taken_after_the_selectors_and_the_zone() {
        let fleet: Vec<Address> = (1..=12)
            .map(|i| entry(&format!("1.0.0.{i}:1"), &format!(r#"{{"zone":"{}","v":{}}}"#, ["a", "b"][i % 2], i % 3)))
            .collect();
        let mut p = Policy { subset: Some(2), client_id: Some("c1".into()), ..Policy::default() };
        p.selectors.insert("v".into(), "0".into());
        p.prefer_zone = Some("a".into());
        // v=0: 3, 6, 9, 12; of those zone a (even): 6 and 12, which a subset of 2 keeps whole.
        assert_eq!(addrs(&p.select(fleet.clone())), ["1.0.0.6:1", "1.0.0.12:1"]);
        p.subset = Some(1);
        assert_eq!(p.select(fleet.clone()).len(), 1);
        let all = Policy { subset: Some(5), client_id: Some("c1".into()), ..Policy::default() };
        assert_eq!(all.select(fleet.clone()).len(), 5);
        assert_eq!(all.select(fleet.clone()), all.select(fleet));
    }

    #[test]
    fn subset_and_client_id_conflicts_name_their_key() {
        let set = |subset: Option<u32>, id: Option<&str>| Policy {
            subset,
            client_id: id.map(Into::into),
            ..Policy::default()
        };
        let mut options = set(Some(3), Some("a"));
        options.merge(&set(Some(3), Some("a"))).unwrap();
        let e = options.clone().merge(&set(Some(4), None)).unwrap_err();
        assert_eq!(e.message(), "query key 'subset': the target says '4', the resolver options '3'");
        let e = options.clone().merge(&set(None, Some("b"))).unwrap_err();
        assert_eq!(e.message(), "query key 'client-id': the target says 'b', the resolver options 'a'");
        let mut none = Policy::default();
        none.merge(&set(Some(3), Some("a"))).unwrap();
        assert_eq!(none, set(Some(3), Some("a")));
    }

    #[test]
    fn a_subset_without_a_client_id_takes_one_from_the_environment_or_the_host_and_process() {
        let p = Policy { subset: Some(2), ..Policy::default() };
        // The only test that sets GNAMING_CLIENT_ID; nothing else in this binary reads it.
        std::env::set_var(subset::CLIENT_ID_ENV, "from-env");
        let from_env = p.resolved().client_id;
        std::env::remove_var(subset::CLIENT_ID_ENV);
        assert_eq!(from_env.as_deref(), Some("from-env"));
        assert_eq!(p.resolved().client_id, Some(subset::default_client_id()));
        assert!(subset::default_client_id().ends_with(&format!("/{}", std::process::id())));
        let set = Policy { client_id: Some("mine".into()), ..p };
        assert_eq!(set.resolved().client_id.as_deref(), Some("mine"));
        assert_eq!(Policy::default().resolved().client_id, None, "no subset, no client id");
    }

    #[test]
    fn a_health_conflict_names_its_key_and_spells_the_whole_server_as_in_the_query() {
        let set = |health: &str| Policy { health: Some(health.into()), ..Policy::default() };
        let mut options = set("");
        options.merge(&set("")).unwrap();
        let e = options.merge(&set("echo.Echo")).unwrap_err();
        assert_eq!(e.message(), "query key 'health': the target says 'echo.Echo', the resolver options '*'");
        let mut none = Policy::default();
        none.merge(&set("h")).unwrap();
        assert_eq!(none, set("h"));
    }
}
