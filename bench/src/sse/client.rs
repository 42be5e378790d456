//! A lightweight SSE client on a raw TCP socket: sends the request, then reports each event's `id:` (and,
//! when asked, its `data:`) with the time it arrived. Small buffers, so 10k of them fit in one process.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;

/// One event seen by one client.
#[derive(Debug)]
pub struct Arrival {
    pub client: u32,
    pub version: u64,
    pub at: Instant,
    pub data: Option<String>,
}

/// Connects and reads until the server closes; every event goes to `tx`. `connecting` is released once
/// the request is sent.
pub async fn follow(
    port: u16,
    token: String,
    client: u32,
    with_data: bool,
    tx: UnboundedSender<Arrival>,
    connecting: Option<OwnedSemaphorePermit>,
) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "GET /api/v1/scores/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    drop(connecting); // lets the next client connect
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        let at = Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        // Complete events end with a blank line; only `leaderboard` events carry an id.
        while let Some(end) = find(&buf, b"\n\n") {
            let event = &buf[..end];
            if let Some(version) = field(event, b"id: ").and_then(|v| v.parse().ok()) {
                let data = with_data.then(|| field(event, b"data: ")).flatten();
                let _ = tx.send(Arrival {
                    client,
                    version,
                    at,
                    data: data.map(str::to_owned),
                });
            }
            buf.drain(..end + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of the line starting with `name` in `event`.
fn field<'a>(event: &'a [u8], name: &[u8]) -> Option<&'a str> {
    event
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(name))
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.trim_end_matches('\r'))
}
