//! Parsing the update body `{"scoreIncrement": n}` strictly: one integer field in range, nothing else.

use serde::Deserialize;

use scoreboard_shared::problem::ApiError;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(rename = "scoreIncrement")]
    score_increment: serde_json::Value,
}

/// Validates the content type, size and JSON of an update and returns the increment.
///
/// # Errors
/// `413` over [`MAX_BODY_BYTES`], `415` unless `application/json`, `400` for anything but
/// `{"scoreIncrement": n}` with an integer `n` in `1..=max_increment`.
pub fn parse_increment(
    content_type: Option<&str>,
    body: &[u8],
    max_increment: u32,
) -> Result<u32, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if !is_json(content_type) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let shape_error = |reason: &dyn std::fmt::Display| {
        ApiError::Validation(format!(
            "body must be {{\"scoreIncrement\": <integer>}}: {reason}"
        ))
    };
    // serde would also read the struct from a JSON array; only an object is accepted.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(shape_error(&"not a JSON object"));
    }
    let parsed: UpdateBody = serde_json::from_slice(body).map_err(|e| shape_error(&e))?;
    let range_msg = || format!("scoreIncrement must be an integer from 1 to {max_increment}");
    let number = match &parsed.score_increment {
        serde_json::Value::Number(n) => n,
        _ => return Err(ApiError::Validation(range_msg())),
    };
    match number.as_u64() {
        Some(n) if (1..=u64::from(max_increment)).contains(&n) => Ok(n as u32),
        _ => Err(ApiError::Validation(range_msg())),
    }
}

/// `application/json`, optionally with `charset=utf-8`; media type names are case-insensitive.
fn is_json(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    let media_ok = parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/json"));
    media_ok
        && parts.all(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("charset")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn parse(body: &str) -> Result<u32, ApiError> {
        parse_increment(JSON, body.as_bytes(), 100)
    }

    #[test]
    fn accepts_an_integer_in_range() {
        assert_eq!(parse(r#"{"scoreIncrement": 10}"#).unwrap(), 10);
        assert_eq!(parse(r#"{"scoreIncrement":1}"#).unwrap(), 1);
        assert_eq!(parse(r#"{"scoreIncrement":100}"#).unwrap(), 100);
    }

    #[test]
    fn rejects_every_other_shape_with_400() {
        for body in [
            r#"{"scoreIncrement":0}"#,
            r#"{"scoreIncrement":-5}"#,
            r#"{"scoreIncrement":101}"#,
            r#"{"scoreIncrement":10.5}"#,
            r#"{"scoreIncrement":10.0}"#,
            r#"{"scoreIncrement":1e1}"#,
            r#"{"scoreIncrement":"10"}"#,
            r#"{"scoreIncrement":null}"#,
            r#"{"scoreIncrement":[10]}"#,
            r#"{"scoreIncrement":18446744073709551616}"#,
            r#"{}"#,
            r#"{"scoreIncrement":10,"userId":"admin"}"#,
            r#"{"scoreIncrement":10,"scoreIncrement":10}"#,
            r#"[10]"#,
            r#"10"#,
            r#"not json"#,
            "",
        ] {
            assert!(
                matches!(parse(body), Err(ApiError::Validation(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn wrong_content_type_is_415() {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/json; charset=latin1"),
            Some("application/jsonx"),
        ] {
            assert!(
                matches!(
                    parse_increment(ct, br#"{"scoreIncrement":1}"#, 100),
                    Err(ApiError::UnsupportedMediaType)
                ),
                "{ct:?}"
            );
        }
        assert!(
            parse_increment(
                Some("Application/JSON; charset=UTF-8"),
                br#"{"scoreIncrement":1}"#,
                100
            )
            .is_ok()
        );
    }

    #[test]
    fn oversized_body_is_413_before_anything_else() {
        let body = format!(
            r#"{{"scoreIncrement":1,"pad":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        assert!(matches!(
            parse_increment(Some("text/plain"), body.as_bytes(), 100),
            Err(ApiError::PayloadTooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics_and_never_accepts_out_of_range(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            if let Ok(n) = parse_increment(JSON, &bytes, 100) {
                prop_assert!((1..=100).contains(&n));
            }
        }

        #[test]
        fn accepts_exactly_the_integers_in_range(n in any::<i64>()) {
            let body = format!(r#"{{"scoreIncrement":{n}}}"#);
            let accepted = parse_increment(JSON, body.as_bytes(), 100).is_ok();
            prop_assert_eq!(accepted, (1..=100).contains(&n));
        }

        #[test]
        fn accepted_bodies_roundtrip(n in 1u32..=100, extra in "[a-zA-Z]{1,8}") {
            let ok = format!(r#"{{"scoreIncrement":{n}}}"#);
            prop_assert_eq!(parse_increment(JSON, ok.as_bytes(), 100).ok(), Some(n));
            let with_extra = format!(r#"{{"scoreIncrement":{n},"{extra}":1}}"#);
            prop_assert!(parse_increment(JSON, with_extra.as_bytes(), 100).is_err());
        }
    }
}
