//! The public listener's connections. Each connection's first request head is read here into a small,
//! temporary buffer: a `GET` of the event stream goes through the router like any request (auth, caps,
//! CORS, request id, tracing), and when the answer is a stream its events are then written **straight to
//! the socket** by one small task — pre-encoded, shared chunks, no HTTP server buffers, no response body
//! box. Every other connection (and every later request on it) is served by hyper as usual, with the bytes
//! already read replayed first ([`Rewind`]).
//!
//! Why: an idle open stream then costs its task, its socket and its `watch` receivers (about 1–2 KiB)
//! instead of hyper's per-connection read and write buffers (8 KiB each) and the boxed body stream; and a
//! new version is one `write` of shared bytes per client, each on its own task, so no client waits for a
//! slower one.
//!
//! Invariant: the direct path answers exactly what the router answered (status and headers, then the SSE
//! body as `Transfer-Encoding: chunked`, as hyper would); a request it does not fully understand (another
//! method or path, HTTP/1.0, a body, an upgrade, a malformed head) is left to hyper.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use scoreboard_shared::shutdown::Shutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::events::EVENTS_PATH;
use crate::stream::{ClientEvents, StreamSlot};
use crate::telemetry;
use crate::wire::LAST_CHUNK;

/// How long a new connection may take to send its first request head (hyper's default too).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// A head longer than this is left to hyper (which has its own limits).
const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed here; a request with more is left to hyper.
const MAX_HEADERS: usize = 64;
/// The first read's buffer; grown only for long heads (large tokens).
const FIRST_READ: usize = 2048;
/// A refusal body (problem+json) larger than this is not expected; the connection is dropped instead.
const MAX_REPLY_BODY: usize = 64 * 1024;

/// Accepts connections on `listener` until `stop` completes, then waits for every connection to end (the
/// caller's `stop` also triggers `closing`, which ends the streams and makes hyper finish gracefully).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    closing: Shutdown,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    // Every connection holds a receiver; `closed()` is when the last one ended.
    let (alive_tx, alive_rx) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %error, "accept failed");
                        tokio::select! {
                            () = &mut stop => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (router, closing, alive) = (router.clone(), closing.clone(), alive_rx.clone());
        tokio::spawn(async move {
            connection(tcp, router, closing).await;
            drop(alive);
        });
    }
    drop(listener);
    drop(alive_rx);
    alive_tx.closed().await;
    Ok(())
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn connection(mut tcp: TcpStream, router: Router, closing: Shutdown) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tcp)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    match head {
        Head::Stream(request) => respond(tcp, *request, router, closing).await,
        // Boxed: the hyper connection is large, and the direct path's task should not carry its size.
        Head::Other(read) => Box::pin(serve_hyper(tcp, read, router, closing)).await,
    }
}

/// The first request head on a connection.
#[derive(Debug)]
enum Head {
    /// A `GET` of the event stream, parsed.
    Stream(Box<Request<Body>>),
    /// Anything else: the bytes read so far, for hyper.
    Other(Vec<u8>),
}

/// Reads until a complete head; `None` when the client closed before sending anything.
async fn read_head(tcp: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::with_capacity(FIRST_READ);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len());
        }
        let n = tcp.read_buf(&mut buf).await.ok()?;
        if n == 0 {
            return (!buf.is_empty()).then_some(Head::Other(buf));
        }
        match parse(&buf) {
            Parsed::Partial if buf.len() < MAX_HEAD => {}
            Parsed::Stream(request) => return Some(Head::Stream(request)),
            Parsed::Partial | Parsed::Other => return Some(Head::Other(buf)),
        }
    }
}

#[derive(Debug)]
enum Parsed {
    Partial,
    Stream(Box<Request<Body>>),
    Other,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(_)) => {
            stream_request(&request).map_or(Parsed::Other, |r| Parsed::Stream(Box::new(r)))
        }
        Err(_) => Parsed::Other,
    }
}

/// The request as the router sees it, when it is a plain HTTP/1.1 `GET` of the event stream.
fn stream_request(parsed: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    if parsed.method != Some("GET") || parsed.version != Some(1) {
        return None;
    }
    let target = parsed.path?;
    if target.split('?').next() != Some(EVENTS_PATH) {
        return None;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(Version::HTTP_11);
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let with_body = (name == header::CONTENT_LENGTH && h.value != b"0")
            || name == header::TRANSFER_ENCODING;
        if with_body || name == header::UPGRADE || name == header::EXPECT {
            return None;
        }
        request = request.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    request.body(Body::empty()).ok()
}

/// Runs `request` through the router; a stream is then written here, anything else is sent whole and the
/// connection closed.
async fn respond(tcp: TcpStream, request: Request<Body>, router: Router, closing: Shutdown) {
    // Boxed so the streaming task does not keep the router's future's size.
    let Ok(response) = Box::pin(router.oneshot(request)).await;
    let (mut parts, body) = response.into_parts();
    let slot = parts.extensions.remove::<StreamSlot>();
    let events = match (parts.status, slot) {
        (StatusCode::OK, Some(slot)) => slot.take(),
        _ => None,
    };
    match events {
        Some(events) => {
            drop(body);
            let head = encode_head(parts.status, &parts.headers, None);
            drop(parts);
            stream(tcp, head, events, closing).await;
        }
        None => reply(tcp, parts.status, &parts.headers, body).await,
    }
}

/// Sends a whole response (a refusal: `401`, `429`, `503`, …) and closes.
async fn reply(mut tcp: TcpStream, status: StatusCode, headers: &http::HeaderMap, body: Body) {
    let collected = tokio::time::timeout(
        Duration::from_secs(5),
        Limited::new(body, MAX_REPLY_BODY).collect(),
    )
    .await;
    let Ok(Ok(collected)) = collected else {
        return;
    };
    let body = collected.to_bytes();
    let mut out = encode_head(status, headers, Some(body.len()));
    out.extend_from_slice(&body);
    if tcp.write_all(&out).await.is_ok() {
        let _ = tcp.shutdown().await;
    }
}

/// Writes the head, then every piece of `events` as a chunk, until the events end (then the last chunk),
/// the client goes away, or the process closes.
async fn stream(tcp: TcpStream, head: Vec<u8>, mut events: ClientEvents, mut closing: Shutdown) {
    if write_all(&tcp, &head, &mut closing).await.is_err() {
        return;
    }
    drop(head);
    loop {
        let piece = tokio::select! {
            biased;
            piece = events.next() => piece,
            ready = tcp.readable() => {
                if ready.is_err() || client_gone(&tcp) {
                    return;
                }
                continue;
            }
        };
        let Some(piece) = piece else {
            if write_all(&tcp, LAST_CHUNK, &mut closing).await.is_ok() {
                let mut tcp = tcp;
                let _ = tcp.shutdown().await;
            }
            return;
        };
        if write_all(&tcp, &piece.chunked, &mut closing).await.is_err() {
            return;
        }
    }
}

/// After a readiness event: whether the client closed (or reset) its side. Anything it sends on a stream is
/// read and ignored.
fn client_gone(tcp: &TcpStream) -> bool {
    let mut scratch = [0u8; 256];
    match tcp.try_read(&mut scratch) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    }
}

/// Writes all of `bytes`, waiting (without blocking anyone else) while the client's socket is full; the
/// wait ends when the process closes. The unwritten rest is counted in `sse_bytes_buffered` meanwhile.
async fn write_all(tcp: &TcpStream, mut bytes: &[u8], closing: &mut Shutdown) -> io::Result<()> {
    let mut backlog = Backlog::default();
    loop {
        match tcp.try_write(bytes) {
            Ok(n) => {
                bytes = &bytes[n..];
                if bytes.is_empty() {
                    return Ok(());
                }
                backlog.set(bytes.len());
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                backlog.set(bytes.len());
                tokio::select! {
                    biased;
                    () = closing.wait() => return Err(io::ErrorKind::Interrupted.into()),
                    ready = tcp.writable() => ready?,
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// One stream's share of `sse_bytes_buffered` and `sse_streams_write_blocked`, given back on drop.
#[derive(Debug, Default)]
struct Backlog {
    bytes: usize,
}

impl Backlog {
    fn set(&mut self, bytes: usize) {
        if self.bytes == 0 && bytes > 0 {
            telemetry::write_blocked(true);
        } else if self.bytes > 0 && bytes == 0 {
            telemetry::write_blocked(false);
        }
        telemetry::buffered(bytes as i64 - self.bytes as i64);
        self.bytes = bytes;
    }
}

impl Drop for Backlog {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// The status line and headers as hyper would write them, plus `Date`; with a length, the body is whole
/// and the connection closes after it, else the body is chunked.
fn encode_head(status: StatusCode, headers: &http::HeaderMap, length: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(http_date(time::OffsetDateTime::now_utc()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Some(length) => {
            out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
            out.extend_from_slice(b"connection: close\r\n");
        }
        None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `Sun, 29 Nov 2026 03:48:17 GMT` (RFC 9110 IMF-fixdate).
fn http_date(now: time::OffsetDateTime) -> String {
    let weekday = now.weekday().to_string();
    let month = now.month().to_string();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        &weekday[..3],
        now.day(),
        &month[..3],
        now.year(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// hyper for everything that is not a stream opened by the first request, with graceful shutdown.
async fn serve_hyper(tcp: TcpStream, read: Vec<u8>, router: Router, mut closing: Shutdown) {
    let io = TokioIo::new(Rewind {
        read: Bytes::from(read),
        io: tcp,
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = closing.wait() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A socket whose first bytes were already read: they are read again first.
#[derive(Debug)]
struct Rewind {
    read: Bytes,
    io: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            let replay = self.read.split_to(n);
            buf.put_slice(&replay);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Parsed {
        parse(raw.as_bytes())
    }

    #[test]
    fn only_a_complete_plain_get_of_the_stream_is_taken() {
        let get = "GET /api/v1/scores/events?access_token=t HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 4\r\n\r\n";
        let Parsed::Stream(request) = parsed(get) else {
            panic!("a stream request");
        };
        assert_eq!(request.uri().query(), Some("access_token=t"));
        assert_eq!(request.headers()["last-event-id"], "4");
        assert!(matches!(parsed(&get[..20]), Parsed::Partial));
        for other in [
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            "OPTIONS /api/v1/scores/events HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /api/v1/scores/events HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET /api/v1/scores/events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "GET /api/v1/scores/events HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /api/v1/scores/eventsx HTTP/1.1\r\n\r\n",
            "\x01\x02 nonsense\r\n\r\n",
        ] {
            assert!(matches!(parsed(other), Parsed::Other), "{other:?}");
        }
    }

    #[test]
    fn the_head_is_what_hyper_would_write() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let head = String::from_utf8(encode_head(StatusCode::OK, &headers, None)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ndate: "));
        assert!(
            head.ends_with("GMT\r\ntransfer-encoding: chunked\r\n\r\n"),
            "{head}"
        );
        assert!(!head.contains("99"));
        let refusal =
            String::from_utf8(encode_head(StatusCode::UNAUTHORIZED, &headers, Some(5))).unwrap();
        assert!(refusal.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(refusal.ends_with("content-length: 5\r\nconnection: close\r\n\r\n"));
    }

    #[test]
    fn dates_are_imf_fixdate() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_795_924_087).unwrap();
        assert_eq!(http_date(at), "Sun, 29 Nov 2026 03:48:07 GMT");
    }
}
