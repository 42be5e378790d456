//! The `Idempotency-Key` header: visible ASCII, 1 to 128 characters, at most one.

use http::HeaderMap;

use scoreboard_shared::problem::ApiError;

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 128;

/// The caller's idempotency key, if any.
///
/// # Errors
/// `400` when the header is repeated, empty, too long or holds anything but visible ASCII.
pub fn parse_idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::Validation(
            "send at most one Idempotency-Key header".into(),
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        return Err(ApiError::Validation(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("idempotency-key", HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn accepts_visible_ascii() {
        assert_eq!(
            parse_idempotency_key(&with(&[b"abc-123_~"]))
                .unwrap()
                .as_deref(),
            Some("abc-123_~")
        );
        assert_eq!(parse_idempotency_key(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn rejects_bad_keys() {
        let long = vec![b'a'; MAX_KEY_LEN + 1];
        for bad in [&b""[..], b"has space", b"tab\there", &long, b"caf\xc3\xa9"] {
            assert!(parse_idempotency_key(&with(&[bad])).is_err(), "{bad:?}");
        }
        assert!(parse_idempotency_key(&with(&[b"a", b"b"])).is_err());
    }
}
