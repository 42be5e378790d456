//! The stream entry schema (v1: `v`, `user`, `name`?, `inc`, `ts`, `req`): the field names and schema
//! version the update function's script writes, and the strict parser the worker reads with. Anything
//! else — a missing or unknown field, a non-UTF-8 value, an out-of-range number, a name with characters
//! the token side strips (control, bidi, zero-width) — is malformed and goes to the DLQ with the reason;
//! it never reaches the store.

use std::collections::HashMap;

use redis::Value;

use crate::auth::forbidden_in_name;

/// Largest increment an entry may carry (the top of `MAX_SCORE_INCREMENT`'s range).
pub const MAX_ENTRY_INCREMENT: u64 = 1_000_000;
const MAX_USER_BYTES: usize = 256;
const MAX_NAME_CHARS: usize = 64;
const MAX_REQ_BYTES: usize = 256;

/// Schema version written in each entry's `v` field (the writer passes it to its script).
pub const SCHEMA_VERSION: &str = "1";
/// Field names, in the order the writer appends them.
pub const FIELD_VERSION: &str = "v";
pub const FIELD_USER: &str = "user";
pub const FIELD_NAME: &str = "name";
pub const FIELD_INCREMENT: &str = "inc";
pub const FIELD_TIMESTAMP: &str = "ts";
pub const FIELD_REQUEST: &str = "req";
const KNOWN_FIELDS: [&str; 6] = [
    FIELD_VERSION,
    FIELD_USER,
    FIELD_NAME,
    FIELD_INCREMENT,
    FIELD_TIMESTAMP,
    FIELD_REQUEST,
];

/// One valid accepted update, as read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The stream entry id: the event id.
    pub id: String,
    pub user: String,
    pub name: Option<String>,
    pub inc: u64,
    /// Acceptance time (ms since the epoch), for the lag metric.
    pub ts_ms: u64,
    pub req: String,
}

/// Parses an entry's fields, or says why it is malformed.
///
/// # Errors
/// The reason, for the DLQ.
pub fn parse_entry(id: &str, fields: &HashMap<String, Value>) -> Result<StreamEvent, String> {
    if let Some(unknown) = fields.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let text = |name: &str| -> Result<Option<String>, String> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::BulkString(bytes)) => String::from_utf8(bytes.clone())
                .map(Some)
                .map_err(|_| format!("field {name} is not UTF-8")),
            Some(Value::SimpleString(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field {name} is not a string")),
        }
    };
    let required = |name: &str| text(name)?.ok_or_else(|| format!("missing field {name}"));

    let v = required(FIELD_VERSION)?;
    if v != SCHEMA_VERSION {
        return Err(format!("unsupported schema version {v:?}"));
    }
    let user = required(FIELD_USER)?;
    if user.is_empty() || user.len() > MAX_USER_BYTES || user.chars().any(char::is_control) {
        return Err("user is empty, too long or has control characters".to_owned());
    }
    let name = text(FIELD_NAME)?;
    if let Some(name) = &name
        && (name.trim().is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(forbidden_in_name))
    {
        return Err(
            "name is blank, too long or has control, bidi or zero-width characters".to_owned(),
        );
    }
    let inc = digits(&required(FIELD_INCREMENT)?, FIELD_INCREMENT)?;
    if !(1..=MAX_ENTRY_INCREMENT).contains(&inc) {
        return Err(format!("inc {inc} is outside 1..={MAX_ENTRY_INCREMENT}"));
    }
    let ts_ms = digits(&required(FIELD_TIMESTAMP)?, FIELD_TIMESTAMP)?;
    let req = required(FIELD_REQUEST)?;
    if req.is_empty() || req.len() > MAX_REQ_BYTES {
        return Err("req is empty or too long".to_owned());
    }
    Ok(StreamEvent {
        id: id.to_owned(),
        user,
        name,
        inc,
        ts_ms,
        req,
    })
}

fn digits(raw: &str, name: &str) -> Result<u64, String> {
    if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} is not a non-negative integer"));
    }
    raw.parse().map_err(|_| format!("{name} is out of range"))
}

/// The fields as a JSON object of strings (non-UTF-8 bytes replaced), for the DLQ record.
pub fn fields_json(fields: &HashMap<String, Value>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Value::SimpleString(s) => s.clone(),
                other => format!("{other:?}"),
            };
            (k.clone(), serde_json::Value::String(text))
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::BulkString(v.as_bytes().to_vec())))
            .collect()
    }

    fn valid() -> Vec<(&'static str, &'static str)> {
        vec![
            ("v", "1"),
            ("user", "u1"),
            ("name", "Ann"),
            ("inc", "10"),
            ("ts", "1700000000000"),
            ("req", "r1"),
        ]
    }

    #[test]
    fn a_valid_entry_parses() {
        let event = parse_entry("1-0", &fields(&valid())).unwrap();
        assert_eq!(
            (event.user.as_str(), event.inc, event.name.as_deref()),
            ("u1", 10, Some("Ann"))
        );
    }

    #[test]
    fn name_is_optional() {
        let mut f = valid();
        f.retain(|(k, _)| *k != "name");
        assert_eq!(parse_entry("1-0", &fields(&f)).unwrap().name, None);
    }

    #[test]
    fn malformed_entries_are_rejected_with_a_reason() {
        let cases: Vec<(&str, &str)> = vec![
            ("v", "2"),
            ("inc", "0"),
            ("inc", "-5"),
            ("inc", "1.5"),
            ("inc", "ten"),
            ("inc", "1000001"),
            ("ts", "x"),
            ("user", ""),
            ("req", ""),
            ("extra", "1"),
        ];
        for (key, value) in cases {
            let mut f = valid();
            f.retain(|(k, _)| *k != key);
            f.push((key, value));
            assert!(parse_entry("1-0", &fields(&f)).is_err(), "{key}={value:?}");
        }
        for missing in ["v", "user", "inc", "ts", "req"] {
            let mut f = valid();
            f.retain(|(k, _)| *k != missing);
            let err = parse_entry("1-0", &fields(&f)).unwrap_err();
            assert!(err.contains(missing), "{err}");
        }
        let mut bad = fields(&valid());
        bad.insert("user".into(), Value::BulkString(vec![0xff, 0xfe]));
        assert!(parse_entry("1-0", &bad).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn names_with_characters_the_token_side_strips_are_malformed() {
        let spoofs = [
            "A\u{1}nn",    // control
            "\u{202E}nnA", // right-to-left override
            "Ann\u{202A}", // left-to-right embedding
            "\u{2067}Ann", // right-to-left isolate
            "Ann\u{2069}", // pop directional isolate
            "A\u{200B}nn", // zero-width space
            "A\u{200D}nn", // zero-width joiner
            "An\u{200F}n", // right-to-left mark
            "An\u{2060}n", // word joiner
            "\u{FEFF}Ann", // byte-order mark
        ];
        for name in spoofs {
            let mut f = valid();
            f.retain(|(k, _)| *k != "name");
            f.push(("name", name));
            let err = parse_entry("1-0", &fields(&f)).unwrap_err();
            assert!(err.contains("name"), "{name:?}: {err}");
        }
        // Visible non-ASCII names stay valid.
        let mut f = valid();
        f.retain(|(k, _)| *k != "name");
        f.push(("name", "Ren\u{E9} \u{5F20}\u{4F1F} \u{05D0}\u{05D1}"));
        assert!(parse_entry("1-0", &fields(&f)).is_ok());
    }
}
