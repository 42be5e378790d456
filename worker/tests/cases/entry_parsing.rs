//! The strict stream entry parser the worker reads with (`parse_entry`), under bounded property tests:
//! it never panics on arbitrary field maps, accepts only entries that meet the v1 schema (and then
//! returns exactly their values), accepts every well-formed entry, and rejects any entry with one defect.

use std::collections::HashMap;

use proptest::prelude::*;
use redis::Value;
use scoreboard_worker::{MAX_ENTRY_INCREMENT, parse_entry};

const KNOWN: [&str; 6] = ["v", "user", "name", "inc", "ts", "req"];

fn text(fields: &HashMap<String, Value>, name: &str) -> Option<String> {
    match fields.get(name)? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn digits(raw: &str) -> Option<u64> {
    let ok = !raw.is_empty() && raw.len() <= 19 && raw.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| raw.parse().ok()).flatten()
}

/// Whether `fields` meets the documented v1 schema as far as this oracle checks it (the parser may be
/// stricter about names, never looser).
fn meets_schema(fields: &HashMap<String, Value>) -> bool {
    let known = fields.keys().all(|k| KNOWN.contains(&k.as_str()));
    let user = text(fields, "user")
        .is_some_and(|u| !u.is_empty() && u.len() <= 256 && !u.chars().any(char::is_control));
    let name = match fields.get("name") {
        None => true,
        Some(_) => text(fields, "name").is_some_and(|n| {
            !n.trim().is_empty() && n.chars().count() <= 64 && !n.chars().any(char::is_control)
        }),
    };
    let inc = text(fields, "inc")
        .as_deref()
        .and_then(digits)
        .is_some_and(|n| (1..=MAX_ENTRY_INCREMENT).contains(&n));
    let ts = text(fields, "ts").as_deref().and_then(digits).is_some();
    let req = text(fields, "req").is_some_and(|r| !r.is_empty() && r.len() <= 256);
    known && text(fields, "v").as_deref() == Some("1") && user && name && inc && ts && req
}

/// A value as Redis may hand it over: mostly bulk strings (arbitrary bytes or short text), sometimes
/// another reply type.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::BulkString),
        4 => "[0-9]{0,21}|-?[0-9]{1,4}(\\.[0-9])?|1|\\PC{0,12}"
            .prop_map(|s| Value::BulkString(s.into_bytes())),
        1 => "\\PC{0,12}".prop_map(Value::SimpleString),
        1 => any::<i64>().prop_map(Value::Int),
        1 => Just(Value::Nil),
        1 => Just(Value::Okay),
        1 => proptest::collection::vec(any::<i64>().prop_map(Value::Int), 0..3).prop_map(Value::Array),
    ]
}

/// Field maps mixing the schema's names with arbitrary ones.
fn field_map() -> impl Strategy<Value = HashMap<String, Value>> {
    let key = prop_oneof![
        6 => proptest::sample::select(KNOWN.to_vec()).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ];
    proptest::collection::hash_map(key, value(), 0..9)
}

/// Well-formed entries with up to three fields replaced by arbitrary values (often still valid), so
/// both the accepting and the rejecting side of the parser see many cases.
fn near_valid_map() -> impl Strategy<Value = HashMap<String, Value>> {
    let replacement = (
        prop_oneof![
            6 => proptest::sample::select(KNOWN.to_vec()).prop_map(str::to_owned),
            1 => "\\PC{0,8}",
        ],
        value(),
    );
    (well_formed(), proptest::collection::vec(replacement, 0..3)).prop_map(|(fields, changes)| {
        let mut map = to_map(&fields);
        map.extend(changes);
        map
    })
}

/// `(field, value)` pairs of a well-formed entry.
fn well_formed() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    (
        "[a-zA-Z0-9_|:.@-]{1,64}",
        proptest::option::of("[A-Za-z0-9][A-Za-z0-9 ]{0,30}"),
        1..=MAX_ENTRY_INCREMENT,
        0..=u64::from(u32::MAX) * 1000,
        "[a-zA-Z0-9-]{1,64}",
    )
        .prop_map(|(user, name, inc, ts, req)| {
            let mut fields = vec![
                ("v", "1".to_owned()),
                ("user", user),
                ("inc", inc.to_string()),
                ("ts", ts.to_string()),
                ("req", req),
            ];
            if let Some(name) = name {
                fields.push(("name", name));
            }
            fields
        })
}

fn to_map(fields: &[(&str, String)]) -> HashMap<String, Value> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::BulkString(v.clone().into_bytes())))
        .collect()
}

/// One defect that makes a well-formed entry malformed.
#[derive(Debug, Clone)]
enum Defect {
    Drop(&'static str),
    Set(&'static str, Value),
    Unknown(String),
}

fn defect() -> impl Strategy<Value = Defect> {
    let bad = |s: &'static str| Value::BulkString(s.as_bytes().to_vec());
    prop_oneof![
        proptest::sample::select(vec!["v", "user", "inc", "ts", "req"]).prop_map(Defect::Drop),
        proptest::sample::select(vec![
            ("v", bad("2")),
            ("v", bad("")),
            ("inc", bad("0")),
            ("inc", bad("-1")),
            ("inc", bad("1.5")),
            ("inc", bad("1000001")),
            ("inc", bad("18446744073709551616")),
            ("inc", bad(" 5")),
            ("ts", bad("soon")),
            ("ts", bad("")),
            ("user", bad("")),
            ("user", bad("a\nb")),
            ("name", bad("   ")),
            ("name", bad("A\u{7}")),
            ("req", bad("")),
            ("user", Value::BulkString(vec![0xff, 0xfe])),
            ("inc", Value::Int(5)),
            ("user", Value::Nil),
        ])
        .prop_map(|(field, value)| Defect::Set(field, value)),
        "[a-z_]{1,10}"
            .prop_filter("not a schema field", |k| !KNOWN.contains(&k.as_str()))
            .prop_map(Defect::Unknown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_accepts_only_what_meets_the_schema(
        fields in prop_oneof![field_map(), near_valid_map()],
    ) {
        if let Ok(event) = parse_entry("1-0", &fields) {
            prop_assert!(meets_schema(&fields), "accepted {fields:?}");
            prop_assert_eq!(Some(event.user), text(&fields, "user"));
            prop_assert_eq!(event.name, text(&fields, "name"));
            prop_assert_eq!(Some(event.inc), text(&fields, "inc").as_deref().and_then(digits));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn every_well_formed_entry_is_accepted_with_its_values(fields in well_formed()) {
        let map = to_map(&fields);
        let event = parse_entry("7-1", &map).map_err(|e| TestCaseError::fail(format!("{e}: {fields:?}")))?;
        prop_assert_eq!(event.id.as_str(), "7-1");
        prop_assert_eq!(Some(event.user), text(&map, "user"));
        prop_assert_eq!(event.name, text(&map, "name"));
        prop_assert_eq!(Some(event.inc.to_string()), text(&map, "inc"));
        prop_assert_eq!(Some(event.ts_ms.to_string()), text(&map, "ts"));
        prop_assert_eq!(Some(event.req), text(&map, "req"));
    }

    #[test]
    fn one_defect_makes_an_entry_malformed(fields in well_formed(), defect in defect()) {
        let mut map = to_map(&fields);
        match &defect {
            Defect::Drop(field) => { map.remove(*field); }
            Defect::Set(field, value) => { map.insert((*field).to_owned(), value.clone()); }
            Defect::Unknown(field) => { map.insert(field.clone(), Value::BulkString(b"1".to_vec())); }
        }
        prop_assert!(parse_entry("1-0", &map).is_err(), "accepted {defect:?} in {fields:?}");
    }
}
