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

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

/// A connection whose automatic parser-error responses become envelopes.
pub struct EnvelopedIo<T> {
    inner: T,
    /// A rewritten response not yet fully written, and how much of it has been.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T: AsyncWrite + Unpin> EnvelopedIo<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
            if *done == bytes.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EnvelopedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EnvelopedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(rewritten) = rewrite(buf) {
            // Taken whole: hyper sees its bytes written, the client gets the envelope.
            self.pending = Some((rewritten, 0));
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if rewrite(first).is_some() => self.poll_write(cx, first),
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TCP listener whose connections are [`EnvelopedIo`]. Serve it with `axum::serve`.
pub struct EnvelopedListener(pub TcpListener);

impl Listener for EnvelopedListener {
    type Io = EnvelopedIo<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        let _ = stream.set_nodelay(true);
        (
            EnvelopedIo {
                inner: stream,
                pending: None,
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
