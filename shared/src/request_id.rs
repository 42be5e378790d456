//! Request ids: the caller's `x-request-id` when it is a sane token, else a fresh UUID v7.

use http::HeaderMap;

/// Longest caller-supplied request id kept.
const MAX_LEN: usize = 64;

/// The request id for this call.
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_clean_ids_and_replaces_others() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "abc-123".parse().unwrap());
        assert_eq!(from_headers(&headers), "abc-123");
        headers.insert("x-request-id", "bad id with spaces".parse().unwrap());
        assert_ne!(from_headers(&headers), "bad id with spaces");
        assert_eq!(from_headers(&HeaderMap::new()).len(), 36);
    }
}
