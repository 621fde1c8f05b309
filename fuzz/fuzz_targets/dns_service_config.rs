//! The DNS TXT service config: `config_text` over fuzzer-made TXT records, then `choose` for a
//! fuzzer-chosen client (language, host name, dice). Never panics; a picked config is a JSON object;
//! a bad list is rejected for every client alike; a lower dice or another case of the language never
//! loses a choice.
//!
//! Input: one byte for the dice (1..=100), the language up to 0x1f, the host name up to 0x1e, then
//! TXT records separated by 0x1e, each a list of strings separated by 0x1f.
#![no_main]

use gnaming::dns::service_config::{choose, config_text, Chooser, TXT_PREFIX};
use libfuzzer_sys::fuzz_target;

const RECORD: u8 = 0x1e;
const STRING: u8 = 0x1f;

fuzz_target!(|data: &[u8]| {
    let Some((&dice, rest)) = data.split_first() else { return };
    let (language, rest) = split_at_byte(rest, STRING);
    let (hostname, rest) = split_at_byte(rest, RECORD);
    let who = Chooser {
        language: String::from_utf8_lossy(language).into_owned(),
        hostname: String::from_utf8_lossy(hostname).into_owned(),
        dice: u32::from(dice) % 100 + 1,
    };
    let records: Vec<Vec<Vec<u8>>> =
        rest.split(|&b| b == RECORD).map(|r| r.split(|&b| b == STRING).map(<[u8]>::to_vec).collect()).collect();

    let text = match config_text(&records) {
        Ok(Some(text)) => text,
        Ok(None) => {
            assert!(!records.iter().any(|r| r.concat().starts_with(TXT_PREFIX.as_bytes())), "{records:?}");
            return;
        }
        Err(_) => {
            let found: Vec<Vec<u8>> =
                records.iter().map(|r| r.concat()).filter(|r| r.starts_with(TXT_PREFIX.as_bytes())).collect();
            let not_utf8 = found.iter().any(|r| std::str::from_utf8(r).is_err());
            assert!(found.len() > 1 || not_utf8, "{records:?}: rejected with one UTF-8 config record or none");
            return;
        }
    };
    let record = format!("{TXT_PREFIX}{text}");
    assert!(records.iter().any(|r| r.concat() == record.as_bytes()), "{text:?} is not one of {records:?}");

    let picked = choose(&text, &who);
    if let Ok(Some(config)) = &picked {
        let value: serde_json::Value =
            serde_json::from_str(config).unwrap_or_else(|e| panic!("{text:?}: picked {config:?}, not JSON: {e}"));
        assert!(value.is_object(), "{text:?}: picked {config:?}, not an object");
    }

    // Every choice is checked for every client: whether the list is rejected does not depend on who asks.
    let others = [
        Chooser { dice: 1, ..who.clone() },
        Chooser { dice: 100, ..who.clone() },
        Chooser { language: who.language.to_ascii_uppercase(), ..who.clone() },
        Chooser { hostname: String::new(), ..who.clone() },
    ];
    for other in &others {
        let again = choose(&text, other);
        assert_eq!(again.is_err(), picked.is_err(), "{text:?}: {who:?} got {picked:?}, {other:?} got {again:?}");
    }
    // Percentages apply to dice at most p: whatever applies to a dice applies to every lower one.
    if matches!(picked, Ok(Some(_))) {
        let lowest = choose(&text, &others[0]);
        assert!(matches!(lowest, Ok(Some(_))), "{text:?}: {who:?} got {picked:?}, dice 1 got {lowest:?}");
    }
    // Languages compare without regard to ASCII case.
    assert_eq!(choose(&text, &others[2]), picked, "{text:?}: the language's case changed the choice");
});

fn split_at_byte(data: &[u8], byte: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == byte) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
