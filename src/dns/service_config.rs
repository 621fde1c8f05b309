//! Service config from DNS TXT records: the `grpc_config=` record at `_grpc_config.<host>`, parsed as
//! gRPC's list of choices, and the choice this client picks.

use serde_json::{Map, Value};

/// The prefix gRPC puts before the JSON in the TXT record.
pub const TXT_PREFIX: &str = "grpc_config=";
/// The label gRPC puts before the host name for the TXT lookup.
pub const TXT_LABEL: &str = "_grpc_config";

/// Who is asking: the facts a choice may be matched against.
#[derive(Debug, Clone)]
pub struct Chooser {
    /// The gRPC stack's language, compared without regard to case.
    pub language: String,
    /// This machine's host name.
    pub hostname: String,
    /// Drawn once per resolver from 1..=100: a choice with `percentage: p` applies when this is at
    /// most p, so the same resolver keeps the same choice across lookups.
    pub dice: u32,
}

/// Finds the `grpc_config=` record among TXT records (each a list of strings, joined as gRPC does)
/// and returns the JSON after the prefix. `Ok(None)`: no such record.
pub fn config_text(records: &[Vec<Vec<u8>>]) -> Result<Option<String>, String> {
    let mut found = None;
    for strings in records {
        let joined: Vec<u8> = strings.concat();
        let Some(json) = joined.strip_prefix(TXT_PREFIX.as_bytes()) else {
            continue;
        };
        if found.is_some() {
            return Err(format!("more than one TXT record starts with '{TXT_PREFIX}'"));
        }
        let json = String::from_utf8(json.to_vec()).map_err(|_| format!("the '{TXT_PREFIX}' record is not UTF-8"))?;
        found = Some(json);
    }
    Ok(found)
}

/// Parses gRPC's list of choices and returns the first that applies to `who`, as compact JSON.
/// `Ok(None)`: no choice applies.
pub fn choose(json: &str, who: &Chooser) -> Result<Option<String>, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("the service config choices are not valid JSON: {e}"))?;
    let Value::Array(choices) = value else {
        return Err("the service config choices must be a JSON array".into());
    };
    // Every choice is checked, also those after the one picked: a bad list is rejected as a whole,
    // so a broken record shows up at once and not only on the clients that reach it.
    let mut picked = None;
    for (i, choice) in choices.iter().enumerate() {
        let Value::Object(choice) = choice else {
            return Err(format!("service config choice #{} is not a JSON object", i + 1));
        };
        let applies = check_choice(choice, who).map_err(|m| format!("service config choice #{}: {m}", i + 1))?;
        if applies && picked.is_none() {
            picked = choice.get("serviceConfig").map(Value::to_string);
        }
    }
    Ok(picked)
}

/// Validates one choice and says whether it applies to `who`.
fn check_choice(choice: &Map<String, Value>, who: &Chooser) -> Result<bool, String> {
    for key in choice.keys() {
        if !matches!(key.as_str(), "clientLanguage" | "percentage" | "clientHostname" | "serviceConfig") {
            return Err(format!("unknown field '{key}'"));
        }
    }
    match choice.get("serviceConfig") {
        Some(Value::Object(_)) => {}
        Some(_) => return Err("'serviceConfig' must be a JSON object".into()),
        None => return Err("'serviceConfig' is missing".into()),
    }
    let language = string_list(choice, "clientLanguage")?;
    let hostname = string_list(choice, "clientHostname")?;
    let percentage = match choice.get("percentage") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(p) if p <= 100 => Some(p as u32),
            _ => return Err(format!("'percentage' must be an integer from 0 to 100, got {v}")),
        },
    };
    let language_ok = language.is_none_or(|l| l.iter().any(|l| l.eq_ignore_ascii_case(&who.language)));
    let hostname_ok = hostname.is_none_or(|h| h.iter().any(|h| *h == who.hostname));
    let percentage_ok = percentage.is_none_or(|p| who.dice <= p);
    Ok(language_ok && hostname_ok && percentage_ok)
}

fn string_list<'a>(choice: &'a Map<String, Value>, key: &str) -> Result<Option<Vec<&'a str>>, String> {
    let Some(value) = choice.get(key) else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(format!("'{key}' must be a list of strings"));
    };
    items
        .iter()
        .map(|v| v.as_str().ok_or_else(|| format!("'{key}' must be a list of strings")))
        .collect::<Result<_, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(language: &str, dice: u32) -> Chooser {
        Chooser { language: language.into(), hostname: "node-1".into(), dice }
    }

    #[test]
    fn strings_of_one_record_are_joined_and_the_prefix_is_removed() {
        let records =
            vec![vec![b"v=spf1".to_vec()], vec![b"grpc_config=[{\"serviceConfig\":".to_vec(), b"{}}]".to_vec()]];
        assert_eq!(config_text(&records).unwrap().as_deref(), Some("[{\"serviceConfig\":{}}]"));
        assert_eq!(config_text(&[vec![b"other".to_vec()]]).unwrap(), None);
    }

    #[test]
    fn two_config_records_are_an_error() {
        let records = vec![vec![b"grpc_config=[]".to_vec()], vec![b"grpc_config=[]".to_vec()]];
        assert!(config_text(&records).unwrap_err().contains("more than one"));
    }

    #[test]
    fn the_first_choice_matching_language_hostname_and_percentage_wins() {
        let json = r#"[
            {"clientLanguage": ["go"], "serviceConfig": {"n": 1}},
            {"clientHostname": ["other"], "serviceConfig": {"n": 2}},
            {"percentage": 10, "serviceConfig": {"n": 3}},
            {"clientLanguage": ["C", "python"], "clientHostname": ["node-1"], "serviceConfig": {"n": 4}},
            {"serviceConfig": {"n": 5}}
        ]"#;
        assert_eq!(choose(json, &who("c", 50)).unwrap().as_deref(), Some(r#"{"n":4}"#));
        assert_eq!(choose(json, &who("c", 10)).unwrap().as_deref(), Some(r#"{"n":3}"#));
        assert_eq!(choose(json, &who("go", 99)).unwrap().as_deref(), Some(r#"{"n":1}"#));
        assert_eq!(choose(json, &who("java", 99)).unwrap().as_deref(), Some(r#"{"n":5}"#));
    }

    #[test]
    fn percentage_zero_never_applies_and_no_match_means_no_config() {
        let json = r#"[{"percentage": 0, "serviceConfig": {}}]"#;
        assert_eq!(choose(json, &who("c", 1)).unwrap(), None);
        assert_eq!(choose("[]", &who("c", 1)).unwrap(), None);
    }

    #[test]
    fn bad_choice_lists_are_rejected_with_the_reason() {
        let cases = [
            ("{", "not valid JSON"),
            ("{}", "must be a JSON array"),
            ("[1]", "#1 is not a JSON object"),
            (r#"[{"serviceConfig": {}}, {"serviceConfig": []}]"#, "#2: 'serviceConfig' must be a JSON object"),
            (r#"[{}]"#, "'serviceConfig' is missing"),
            (r#"[{"percentage": 101, "serviceConfig": {}}]"#, "from 0 to 100"),
            (r#"[{"percentage": "5", "serviceConfig": {}}]"#, "from 0 to 100"),
            (r#"[{"clientLanguage": "go", "serviceConfig": {}}]"#, "list of strings"),
            (r#"[{"clientHostname": [1], "serviceConfig": {}}]"#, "list of strings"),
            (r#"[{"colour": 1, "serviceConfig": {}}]"#, "unknown field 'colour'"),
        ];
        for (json, needle) in cases {
            let e = choose(json, &who("c", 1)).unwrap_err();
            assert!(e.contains(needle), "{json}: expected {needle:?} in {e:?}");
        }
    }
}
