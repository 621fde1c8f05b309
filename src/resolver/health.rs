//! Client-side health checking: the `healthCheckConfig` that the `health` policy adds to the service
//! config handed to the gRPC stack, merged into the source's own service config.

use serde_json::{json, Map, Value};

/// How a query names the empty health service name, which gRPC's health service reserves for the
/// server as a whole (a query value is never empty).
pub const WHOLE_SERVER: &str = "*";

/// The balancing policies added when a service config names none, first supported first: gRPC's
/// default, pick_first, ignores `healthCheckConfig` in every stack, and these two check health. The
/// Go binding's `gnaming_weighted` keeps weights as shares of picks where it is registered; every other
/// stack skips it for round_robin.
const BALANCING: &str = r#"[{"gnaming_weighted":{}},{"round_robin":{}}]"#;

/// The health service name a query value stands for.
pub fn from_query_value(value: &str) -> String {
    if value == WHOLE_SERVER {
        String::new()
    } else {
        value.to_string()
    }
}

/// The query value that stands for a health service name.
pub fn query_value(service: &str) -> String {
    if service.is_empty() {
        WHOLE_SERVER.to_string()
    } else {
        service.to_string()
    }
}

/// `service_config` with `"healthCheckConfig": {"serviceName": service}`, and a balancing policy that
/// checks health when it names none. A `healthCheckConfig` already there with another service name is
/// replaced (the client's own choice wins) and logged. A service config that is no JSON object is
/// handed on as it is, for the stack to refuse; the sources never produce one.
pub fn with_health_check(service_config: Option<String>, service: &str) -> Option<String> {
    let mut config = match service_config.as_deref().map(serde_json::from_str::<Value>) {
        None => Map::new(),
        Some(Ok(Value::Object(map))) => map,
        Some(_) => {
            tracing::warn!("the service config is no JSON object; health checking not added");
            return service_config;
        }
    };
    let wanted = json!({ "serviceName": service });
    match config.get("healthCheckConfig") {
        Some(theirs) if *theirs == wanted => {}
        Some(theirs) => {
            tracing::warn!(%theirs, service, "the source's healthCheckConfig replaced by the health setting");
            config.insert("healthCheckConfig".into(), wanted);
        }
        None => {
            config.insert("healthCheckConfig".into(), wanted);
        }
    }
    if !config.contains_key("loadBalancingConfig") && !config.contains_key("loadBalancingPolicy") {
        config.insert("loadBalancingConfig".into(), serde_json::from_str(BALANCING).expect("a JSON constant"));
    }
    Some(Value::Object(config).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(config: Option<String>) -> Value {
        serde_json::from_str(&config.expect("a service config")).unwrap()
    }

    #[test]
    fn no_service_config_gets_health_checking_and_policies_that_check_health() {
        let config = parsed(with_health_check(None, "echo.Echo"));
        assert_eq!(
            config,
            json!({
                "healthCheckConfig": {"serviceName": "echo.Echo"},
                "loadBalancingConfig": [{"gnaming_weighted": {}}, {"round_robin": {}}]
            })
        );
        assert_eq!(parsed(with_health_check(None, ""))["healthCheckConfig"], json!({"serviceName": ""}));
    }

    #[test]
    fn a_source_service_config_keeps_its_settings_and_its_policy() {
        let source =
            r#"{"loadBalancingConfig":[{"ring_hash":{}}],"methodConfig":[{"name":[{"service":"e"}],"timeout":"1s"}]}"#;
        let config = parsed(with_health_check(Some(source.into()), "e"));
        assert_eq!(config["loadBalancingConfig"], json!([{"ring_hash": {}}]));
        assert_eq!(config["methodConfig"][0]["timeout"], "1s");
        assert_eq!(config["healthCheckConfig"], json!({"serviceName": "e"}));
        let old_style = parsed(with_health_check(Some(r#"{"loadBalancingPolicy":"round_robin"}"#.into()), "e"));
        assert!(old_style.get("loadBalancingConfig").is_none(), "{old_style}");
    }

    #[test]
    fn the_resolvers_health_setting_replaces_a_different_one_from_the_source() {
        let source = r#"{"healthCheckConfig":{"serviceName":"other"},"loadBalancingPolicy":"round_robin"}"#;
        assert_eq!(
            parsed(with_health_check(Some(source.into()), "e"))["healthCheckConfig"],
            json!({"serviceName": "e"})
        );
        let same = r#"{"healthCheckConfig":{"serviceName":"e"},"loadBalancingPolicy":"round_robin"}"#;
        assert_eq!(parsed(with_health_check(Some(same.into()), "e")), serde_json::from_str::<Value>(same).unwrap());
    }

    #[test]
    fn the_query_spells_the_whole_server_as_a_star() {
        assert_eq!(from_query_value("*"), "");
        assert_eq!(from_query_value("grpc.health.v1.Health"), "grpc.health.v1.Health");
        assert_eq!(query_value(""), "*");
        assert_eq!(query_value("e"), "e");
    }
}
