//! Accepting connections and serving HTTP/1.1 on them with hyper, like `axum::serve`, plus one thing
//! it cannot do: when hyper refuses a request head it cannot read (a megabyte of query string, an
//! over-long header, a malformed request line), it writes a bare `431`/`414`/`400` itself, before
//! anything reaches the router, and hyper has no hook to change it. [`ProblemAnswers`] sees that
//! answer go out and writes the same refusal as a problem document instead, so every error the API
//! gives has one shape.

use crate::error::ApiError;
use axum::Router;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long a connection may take over its request head, and shutdown over its drain.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub header: Duration,
    pub shutdown: Duration,
}

/// Accepts connections until `stopped`, then stops accepting, lets every connection finish its
/// in-flight request for up to `limits.shutdown`, closes the ones still open after that (a client
/// that stopped reading, a request that never ends), and returns.
pub(crate) async fn serve(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>, limits: Limits) {
    let mut open = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set stays the size of the open ones.
            Some(_) = open.join_next(), if !open.is_empty() => continue,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let (tcp, remote) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        open.spawn(connection(tcp, remote, router.clone(), stopped.clone(), limits.header));
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown, async { while open.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = open.len(),
            "shutdown period over: closing the remaining connections"
        );
        // Aborting a connection's task drops its socket. A write already handed to the blocking
        // pool still commits or rolls back as a whole.
        open.shutdown().await;
    }
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
    header: Duration,
) {
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(axum::extract::ConnectInfo(remote));
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let io = hyper_util::rt::TokioIo::new(ProblemAnswers::new(tcp));
    let conn = hyper::server::conn::http1::Builder::new()
        // A head not complete within `header` (a slowloris client, an idle kept-alive connection)
        // closes the connection.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}

/// The socket of a connection, passing everything through except hyper's own answer to a request
/// head it could not parse, which it replaces with a problem document.
pub(crate) struct ProblemAnswers<T> {
    inner: T,
    /// The replacement still to be written, and how much of it has been.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemAnswers<T> {
    pub(crate) fn new(inner: T) -> Self {
        ProblemAnswers { inner, replacing: None }
    }
}

/// The problem document (as a whole HTTP/1.1 response) replacing `head` if it is hyper's answer to a
/// head it could not parse: status 400, 414 or 431 with an empty body (every answer of the router's
/// has a problem body, so nothing else looks like this).
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&head[..end]).ok()?.to_ascii_lowercase();
    let status = head.strip_prefix("http/1.1 ")?.get(..3)?;
    if !head.contains("\r\ncontent-length: 0") || head.contains("\r\ncontent-type:") {
        return None;
    }
    let err = match status {
        "414" | "431" => ApiError::HeadTooLarge(crate::middleware::MAX_HEAD),
        "400" => ApiError::BadRequest("the request line or headers could not be read".into()),
        _ => return None,
    };
    // Below the router, so below the access log layer: log the refusal here.
    tracing::info!(target: "crm_server::access", status = err.status().as_u16(), "request head refused");
    let body = err.problem_json();
    let status = err.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncWrite + Unpin> ProblemAnswers<T> {
    /// Writes the rest of the replacement.
    fn poll_replacing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.replacing {
            if *done == bytes.len() {
                self.replacing = None;
                break;
            }
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *done += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemAnswers<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Not vectored, so hyper hands over each response head in one buffer.
impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemAnswers<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none()
            && buf.starts_with(b"HTTP/1.1 4")
            && let Some(r) = replacement(buf)
        {
            this.replacing = Some((r, 0));
        }
        if this.replacing.is_some() {
            // hyper's answer counts as written once the replacement is.
            ready!(this.poll_replacing(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacing(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacing(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_parse_error_answers_are_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(replacement(bare).unwrap()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
        assert!(out.contains("content-type: application/problem+json\r\n"));
        let body: serde_json::Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(
            (body["status"].as_u64(), body["code"].as_str()),
            (Some(431), Some("too_large"))
        );
        let uri = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(
            String::from_utf8(replacement(uri).unwrap())
                .unwrap()
                .starts_with("HTTP/1.1 431 ")
        );
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(
            String::from_utf8(replacement(bad).unwrap())
                .unwrap()
                .contains("\"bad_request\"")
        );
        // The router's own answers have a problem body (or are not errors): untouched.
        for own in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 99\r\n\r\n{}"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(replacement(own), None, "{}", String::from_utf8_lossy(own));
        }
    }

    #[tokio::test]
    async fn the_replacement_is_written_whole_in_place_of_the_bare_answer() {
        use tokio::io::AsyncWriteExt;
        let mut w = ProblemAnswers::new(Vec::new());
        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        w.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        w.flush().await.unwrap();
        let out = String::from_utf8(w.inner).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 431 "),
            "{out}"
        );
        assert!(out.ends_with('}') && out.contains("\"too_large\""), "{out}");
    }
}
