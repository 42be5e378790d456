//! A lightweight SSE client on a raw TCP socket: sends the request, then reports each event carrying a
//! snapshot (its version, and when asked its `data:`) with the time it arrived. Small buffers, so 10k of
//! them fit in one process. The same code reads the SSE server and nginx + nchan: the version comes from
//! `id:` when it is a number (the SSE server) and otherwise from the snapshot JSON (`{"version":N,…}`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
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
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    read_events(stream, &token, client, with_data, tx, connecting).await
}

/// [`follow`] from the loopback address `source` (so 10k+ clients do not run out of ephemeral ports).
pub async fn follow_from(
    source: IpAddr,
    port: u16,
    token: String,
    client: u32,
    tx: UnboundedSender<Arrival>,
    connecting: Option<OwnedSemaphorePermit>,
) -> std::io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    read_events(stream, &token, client, false, tx, connecting).await
}

async fn read_events(
    mut stream: TcpStream,
    token: &str,
    client: u32,
    with_data: bool,
    tx: UnboundedSender<Arrival>,
    connecting: Option<OwnedSemaphorePermit>,
) -> std::io::Result<()> {
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
        // Complete events end with a blank line; only snapshot events carry `data:`.
        while let Some(end) = find(&buf, b"\n\n") {
            let event = &buf[..end];
            let data = field(event, b"data: ");
            let version = field(event, b"id: ")
                .and_then(|v| v.parse().ok())
                .or_else(|| data.and_then(snapshot_version));
            if let Some(version) = version {
                let _ = tx.send(Arrival {
                    client,
                    version,
                    at,
                    data: with_data.then(|| data.map(str::to_owned)).flatten(),
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

/// `N` of a snapshot JSON that starts `{"version":N`.
fn snapshot_version(data: &str) -> Option<u64> {
    let rest = data.strip_prefix("{\"version\":")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
