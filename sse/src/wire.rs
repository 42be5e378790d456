//! The bytes a stream writes, encoded once and shared: each [`Piece`] holds an SSE message both as it is
//! (the body of a response served by hyper) and already framed as an HTTP/1.1 chunk (written straight to the
//! socket by [`crate::direct`]). A snapshot is encoded once per version for every client; the heartbeat
//! once per process. Clients hold `Bytes` handles (a reference count), never copies.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;

/// One SSE message, unframed and chunk-framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The SSE text (`event: …\nid: …\ndata: …\n\n`).
    pub sse: Bytes,
    /// The same text as one `Transfer-Encoding: chunked` chunk (`<len hex>\r\n<text>\r\n`).
    pub chunked: Bytes,
}

/// The chunk that ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

impl Piece {
    fn encode(text: String) -> Self {
        let chunked = format!("{:x}\r\n{text}\r\n", text.len());
        Self {
            sse: Bytes::from(text),
            chunked: Bytes::from(chunked),
        }
    }

    /// A `leaderboard` event: `id` is the version, `data` the snapshot JSON (compact JSON has no newline).
    pub fn event(name: &str, id: u64, json: &str) -> Self {
        debug_assert!(!json.contains('\n'));
        Self::encode(format!("event: {name}\nid: {id}\ndata: {json}\n\n"))
    }

    /// An SSE comment (`: text`).
    pub fn comment(text: &str) -> Self {
        Self::encode(format!(": {text}\n\n"))
    }

    /// The reconnection hint (`retry: <ms>`).
    pub fn retry(after: Duration) -> Self {
        Self::encode(format!("retry: {}\n\n", after.as_millis()))
    }

    /// The heartbeat comment, encoded once per process.
    pub fn heartbeat() -> Self {
        static HEARTBEAT: OnceLock<Piece> = OnceLock::new();
        HEARTBEAT
            .get_or_init(|| Self::comment(crate::stream::HEARTBEAT))
            .clone()
    }

    /// The SSE text, for tests.
    #[cfg(test)]
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.sse).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_framed_as_one_chunk_of_its_own_length() {
        let piece = Piece::event("leaderboard", 42, r#"{"version":42}"#);
        assert_eq!(
            piece.text(),
            "event: leaderboard\nid: 42\ndata: {\"version\":42}\n\n"
        );
        let expected = format!("{:x}\r\n{}\r\n", piece.sse.len(), piece.text());
        assert_eq!(piece.chunked, expected.as_bytes());
    }

    #[test]
    fn comments_and_the_retry_hint_match_the_sse_grammar() {
        assert_eq!(Piece::heartbeat().text(), ": heartbeat\n\n");
        assert_eq!(&Piece::heartbeat().chunked[..], b"d\r\n: heartbeat\n\n\r\n");
        assert_eq!(
            Piece::retry(Duration::from_secs(2)).text(),
            "retry: 2000\n\n"
        );
    }
}
