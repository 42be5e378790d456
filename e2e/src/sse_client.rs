//! A minimal SSE reader over a streaming `reqwest` response.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

/// One SSE message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: Option<String>,
}

impl Message {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).expect("event data is JSON")
    }
}

/// Reads an event stream message by message.
pub struct SseClient {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl std::fmt::Debug for SseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient").finish_non_exhaustive()
    }
}

impl SseClient {
    /// Connects with a bearer token.
    ///
    /// # Panics
    /// When the request fails or the answer is not `200`.
    pub async fn connect(http: &reqwest::Client, url: &str, token: &str) -> Self {
        let resp = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("connect to the SSE server");
        assert_eq!(resp.status(), 200, "SSE connect refused");
        Self {
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buffer: String::new(),
        }
    }

    /// The next `leaderboard` event, or `None` at the end of the stream or after `limit`.
    pub async fn next_snapshot(&mut self, limit: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let message = parse(&raw);
                if message.event.as_deref() == Some("leaderboard") {
                    return Some(message);
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

fn parse(raw: &str) -> Message {
    let mut message = Message::default();
    for line in raw.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "event" => message.event = Some(value),
            "id" => message.id = Some(value),
            "data" => message.data = Some(value),
            _ => {}
        }
    }
    message
}
