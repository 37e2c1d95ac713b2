//! Requests the HTTP/1 parser refuses before any handler runs (a garbage request line, a
//! path over 64 KiB, headers over the read buffer, a byte no header may hold). hyper answers
//! those itself with an empty body and closes the connection, and offers no hook for the
//! body. So the edge's connections are wrapped: a response head that hyper wrote on its own
//! (every response the router produces carries `openwop-version`; hyper's automatic ones
//! carry nothing but `connection`, `content-length: 0` and `date`) is rewritten on its way
//! out into the protocol's error envelope.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::PROTOCOL_VERSION;

/// The error a parser refusal becomes, by the status hyper chose.
fn envelope(status: u16) -> (&'static str, &'static str) {
    match status {
        414 => (
            "uri_too_long",
            "the request target is longer than this server accepts",
        ),
        431 => (
            "request_headers_too_large",
            "the request headers are larger than this server accepts",
        ),
        _ => (
            "validation_error",
            "the request is not valid HTTP/1.1 (request line or headers)",
        ),
    }
}

/// If `buf` begins with a complete response head that hyper produced itself, the whole
/// response rewritten as an envelope; otherwise `None`.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !(400..500).contains(&status) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let automatic = headers
        .iter()
        .all(|h| !h.to_ascii_lowercase().starts_with("openwop-version:"))
        && headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-length: 0"));
    if !automatic {
        return None;
    }
    let (code, message) = envelope(status);
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut out = format!("{status_line}\r\n");
    for h in headers
        .iter()
        .filter(|h| !h.to_ascii_lowercase().starts_with("content-length:"))
    {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-type: application/json\r\nopenwop-version: {PROTOCOL_VERSION}\r\n\
         cache-control: no-store\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    // Anything hyper wrote after the head (nothing, for these) follows unchanged.
    let mut out = out.into_bytes();
    out.extend_from_slice(&buf[end + 4..]);
    Some(out)
}

/// How long, and for how many bytes, a refused request's leftovers are read and dropped
/// after the envelope went out (see `Drop`).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 << 20;

/// A connection whose automatic parser-error responses become envelopes.
pub struct EnvelopedIo {
    /// Always `Some` until dropped.
    inner: Option<TcpStream>,
    /// A rewritten response not yet fully written, and how much of it has been.
    pending: Option<(Vec<u8>, usize)>,
    /// An envelope replaced one of hyper's refusals: the client may still be sending.
    refused: bool,
}

impl EnvelopedIo {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.inner.as_mut().expect("the stream lives until drop"))
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending.is_some() {
            let (bytes, done) = self.pending.take().expect("checked");
            let n = match self.stream().poll_write(cx, &bytes[done..]) {
                Poll::Ready(Ok(n)) => n,
                other => {
                    self.pending = Some((bytes, done));
                    return other.map_ok(|_| ());
                }
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if done + n < bytes.len() {
                self.pending = Some((bytes, done + n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// After a refusal hyper closes the connection while the client may still be sending (a
/// megabyte of headers, say). Closing a socket with unread input makes the kernel answer
/// with a reset, which can destroy the envelope before the client reads it; so, like
/// nginx's lingering close, the rest is read and dropped for a moment first.
impl Drop for EnvelopedIo {
    fn drop(&mut self) {
        let Some(mut stream) = self.inner.take() else {
            return;
        };
        if !self.refused {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut sink = vec![0u8; 64 << 10];
                let mut read = 0;
                let drain = async {
                    while read < LINGER_BYTES {
                        match stream.read(&mut sink).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => read += n,
                        }
                    }
                };
                let _ = tokio::time::timeout(LINGER, drain).await;
            });
        }
    }
}

impl AsyncRead for EnvelopedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for EnvelopedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(rewritten) = rewrite(buf) {
            // Taken whole: hyper sees its bytes written, the client gets the envelope.
            self.pending = Some((rewritten, 0));
            self.refused = true;
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if rewrite(first).is_some() => self.poll_write(cx, first),
            _ => self.stream().poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        self.stream().poll_shutdown(cx)
    }
}

/// A TCP listener whose connections are [`EnvelopedIo`]. Serve it with `axum::serve`.
pub struct EnvelopedListener(pub TcpListener);

impl Listener for EnvelopedListener {
    type Io = EnvelopedIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        // Small writes (SSE frames, short JSON) go out at once instead of waiting on Nagle.
        let _ = stream.set_nodelay(true);
        (
            EnvelopedIo {
                inner: Some(stream),
                pending: None,
                refused: false,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_hypers_own_error_heads() {
        let auto = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 06:41:17 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(auto).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(head.contains("\r\nconnection: close") && head.contains("\r\ndate: "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "uri_too_long");

        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nopenwop-version: 1.0\r\ncontent-length: 2\r\n\r\n{}";
        assert!(rewrite(ours).is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"{\"events\": []}").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad").is_none(), "an incomplete head");
    }
}
