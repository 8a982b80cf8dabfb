//! Serving a router with limits: at most `max_connections` connections at once (more wait in the
//! listen backlog), a header-read timeout that also ends idle kept-alive connections (hyper times
//! the wait for every request's head after the first byte; the wait for the first byte and the
//! TLS handshake are timed here), and a request timeout
//! (tower-http) from the request's head to the end of its answer.

use axum::http::StatusCode;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

/// How long and how many: the limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's head: from the connection's start (TLS handshake
    /// included) or from the end of the previous answer on a kept-alive connection. An idle
    /// kept-alive connection is closed after this long.
    pub header_read_timeout: Duration,
    /// Time from a request's head to its answer, the body's upload included (408 after it).
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one ends.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// Serves `router` on `listener` within `limits`. `handshake` turns an accepted connection into
/// the stream HTTP is read from (TLS, or the connection itself); it gets the header-read timeout.
pub async fn serve<H, Fut, Io>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    handshake: H,
) -> std::io::Result<()>
where
    H: Fn(TcpStream) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Option<Io>> + Send,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = router.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    // HTTP/1 only: no protocol sniffing, which would wait for a silent client's first bytes
    // with no timeout.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted.
                tracing::warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let handshake = handshake.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // hyper's header-read timer starts with a client's first byte: a silent client is
            // timed here, with the handshake.
            let first_bytes = async move {
                let mut first = [0u8; 1];
                stream.peek(&mut first).await.ok()?;
                handshake(stream).await
            };
            let io = match tokio::time::timeout(limits.header_read_timeout, first_bytes).await {
                Ok(Some(io)) => io,
                Ok(None) => return,
                Err(_) => {
                    tracing::debug!("connection closed: no handshake in time");
                    return;
                }
            };
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
                .await
            {
                tracing::debug!(%e, "connection ended with an error");
            }
        });
    }
}
