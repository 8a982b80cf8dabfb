//! HTTP `CONNECT` answered by tunnelling to this same server: a test double's way to be reached
//! by clients that insist on a host of their own (Amazon's PHP SDK always dials
//! `https://pay-api.amazon.jp:443`) but honour a proxy setting. Whatever `host:port` a client
//! asks for, the tunnel leads to this server's own port, where the connection is served like any
//! other: a TLS handshake gets HTTPS (the certificate must then name the host the client asked
//! for), anything else plain HTTP, with the same limits. It never dials another address, so it is
//! no open proxy.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::TcpStream;

/// Wraps `router` so that a `CONNECT` request is tunnelled to `own_address` (the address this
/// server listens on; an unspecified address such as `0.0.0.0` is reached on loopback). Every
/// other request goes to `router` unchanged.
pub fn to_self(router: Router, own_address: SocketAddr) -> Router {
    let target = reachable(own_address);
    Router::new().fallback_service(tower::Layer::layer(
        &axum::middleware::from_fn_with_state(target, connect),
        router,
    ))
}

/// The address to dial for a server listening on `addr`.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

async fn connect(State(target): State<SocketAddr>, request: Request, next: Next) -> Response {
    if request.method() != Method::CONNECT {
        return next.run(request).await;
    }
    let Some(asked) = request.uri().authority().map(|a| a.to_string()) else {
        return (
            StatusCode::BAD_REQUEST,
            "CONNECT needs host:port (authority form)\n",
        )
            .into_response();
    };
    // Dialled before the answer, so a failure is a 502 the client sees, not a closed tunnel.
    let upstream = match TcpStream::connect(target).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(%e, %target, "CONNECT: cannot reach this server's own port");
            return (StatusCode::BAD_GATEWAY, "cannot open the tunnel\n").into_response();
        }
    };
    tracing::debug!(%asked, %target, "CONNECT tunnelled to this server");
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(%e, "CONNECT tunnel ended with an error");
                }
            }
            Err(e) => tracing::debug!(%e, "CONNECT: the connection was not handed over"),
        }
    });
    Response::new(Body::empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on port 0 that answers `GET /where` with the `Host` it was asked for, HTTPS
    /// (certificate for `names`) and HTTP on one port, CONNECT tunnelled to itself.
    async fn server(names: &[&str]) -> (SocketAddr, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pair =
            crate::tls::self_signed(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let config = crate::tls::server_config(&pair).unwrap();
        let router = Router::new().route(
            "/where",
            axum::routing::get(|headers: axum::http::HeaderMap| async move {
                format!(
                    "host={}",
                    headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                )
            }),
        );
        let router = to_self(router, addr);
        tokio::spawn(crate::tls::serve(
            listener,
            router,
            Some(config),
            crate::Limits::default(),
        ));
        (addr, pair.cert_pem)
    }

    fn client_through(proxy: SocketAddr, root_pem: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::https(format!("http://{proxy}")).unwrap())
            .add_root_certificate(reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn https_to_any_host_through_the_proxy_lands_on_this_server() {
        let (addr, cert) = server(&["pay-api.amazon.jp"]).await;
        let http = client_through(addr, &cert);
        let answer = http
            .get("https://pay-api.amazon.jp/where")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "host=pay-api.amazon.jp");
        // Kept alive: a second request on the same client goes through again.
        let again = http
            .get("https://pay-api.amazon.jp/where")
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
    }

    #[tokio::test]
    async fn the_certificate_must_name_the_host_asked_for() {
        let (addr, cert) = server(&[]).await;
        let http = client_through(addr, &cert);
        let e = http
            .get("https://pay-api.amazon.jp/where")
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect(), "{e:?}");
    }

    #[tokio::test]
    async fn a_raw_tunnel_carries_plain_http_too() {
        let (addr, _) = server(&[]).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"CONNECT elsewhere.example:80 HTTP/1.1\r\nHost: elsewhere.example:80\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed: {head:?}");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        stream
            .write_all(
                b"GET /where HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
        assert!(rest.ends_with("host=elsewhere.example"), "{rest}");
    }

    #[tokio::test]
    async fn without_the_wrapper_connect_is_not_tunnelled() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/where", axum::routing::get(|| async { "here" }));
        tokio::spawn(crate::serve(
            listener,
            router,
            crate::Limits::default(),
            |s| async move { Some(s) },
        ));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"CONNECT pay-api.amazon.jp:443 HTTP/1.1\r\nHost: pay-api.amazon.jp:443\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
