//! Parsing the `Last-Event-ID` request header. Only the canonical decimal form this server writes in `id:`
//! (`0`, `42`; no sign, no leading zero, no whitespace, within `u64`) is honoured; anything else counts as no
//! header, so the client simply gets the current snapshot.

use axum::http::HeaderMap;

/// The header's value as a snapshot version, when it is one.
pub fn from_headers(headers: &HeaderMap) -> Option<u64> {
    parse(headers.get("last-event-id")?.as_bytes())
}

/// `Some(v)` exactly when `raw` is `v.to_string()`.
pub fn parse(raw: &[u8]) -> Option<u64> {
    let canonical = match raw {
        [] => false,
        [b'0'] => true,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    // Only ASCII digits: valid UTF-8, and `parse` fails (no panic) past `u64::MAX`.
    std::str::from_utf8(raw).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_canonical_decimals_are_versions() {
        assert_eq!(parse(b"0"), Some(0));
        assert_eq!(parse(b"42"), Some(42));
        assert_eq!(parse(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"007",
            b"+5",
            b"-5",
            b" 5",
            b"5 ",
            b"5.0",
            b"0x10",
            b"1e3",
            b"\xff",
            "٣".as_bytes(),
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn reads_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers), None);
        headers.insert("last-event-id", "17".parse().unwrap());
        assert_eq!(from_headers(&headers), Some(17));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Arbitrary bytes never panic, and anything honoured is exactly a version's canonical text.
        #[test]
        fn arbitrary_bytes_are_honoured_only_when_canonical(raw in prop::collection::vec(any::<u8>(), 0..32)) {
            if let Some(version) = parse(&raw) {
                let canonical = version.to_string();
                prop_assert_eq!(canonical.as_bytes(), &raw[..]);
            }
        }

        /// Strings near the format (digits, signs, spaces, zeros) are honoured only when canonical.
        #[test]
        fn near_misses_are_refused(raw in "[-+ 0-9]{0,24}") {
            let canonical = raw.parse::<u64>().ok().filter(|v| v.to_string() == raw);
            prop_assert_eq!(parse(raw.as_bytes()), canonical);
        }

        /// Every version round-trips.
        #[test]
        fn every_version_round_trips(version in any::<u64>()) {
            prop_assert_eq!(parse(version.to_string().as_bytes()), Some(version));
        }
    }
}
