//! Item 3 of the safe defaults: idle, silent and slow clients holding many connections to both
//! ports do not stop a normal client, and the servers close them when their time is up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use kessai::ServeOptions;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_READ: Duration = Duration::from_secs(1);
const REQUEST: Duration = Duration::from_secs(2);

/// What a slow-loris client does with one connection.
#[derive(Debug, Clone, Copy)]
enum Slow {
    /// Connects and sends nothing.
    Silent,
    /// Sends half a request head and stops.
    HalfHead,
    /// Sends a head announcing 100 bytes of body, 10 of them, and stops.
    HalfBody,
    /// Sends one whole request with keep-alive, reads the answer, and stays idle.
    Idle,
}

async fn open(addr: &str, how: Slow) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    match how {
        Slow::Silent => {}
        Slow::HalfHead => s
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap(),
        Slow::HalfBody => s
            .write_all(b"POST /test-paynow/v2/Authorize/amazonpay HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"params\":")
            .await
            .unwrap(),
        Slow::Idle => {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        }
    }
    s
}

/// Whether the server closed the connection within `within` (an answer such as 408 may come
/// first).
async fn closed_by_server(mut s: TcpStream, within: Duration) -> bool {
    let mut sink = Vec::new();
    matches!(
        tokio::time::timeout(within, s.read_to_end(&mut sink)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_stop_a_normal_client() {
    let data_dir = common::fresh_dir("slow-clients");
    let started = kessai::start(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir,
        database_url: None,
        sandbox_listen: "127.0.0.1:0".parse().unwrap(),
        amazon_pay_endpoint: None,
        amazon_pay_public_key_id: None,
        amazon_pay_store_id: None,
        amazon_pay_private_key: None,
        amazon_pay_region: "jp".into(),
        amazon_pay_merchant_id: None,
        amazon_pay_sandbox: false,
        amazon_pay_public_key: None,
        amazon_pay_ca_file: None,
        sandbox_public_url: None,
        demo_ccid: None,
        demo_secret: None,
        demo_shop: true,
        allow_private_push_targets: false,
        push_lease: std::time::Duration::from_secs(30),
        gateway_tls: kessai::GatewayTls::LocalCa,
        test_helpers: None,
        limits: kessai_sandbox::Limits {
            header_read_timeout: HEADER_READ,
            request_timeout: REQUEST,
            max_connections: 64,
        },
    })
    .await
    .unwrap();
    let gateway = started.gateway.local_addr().to_string();
    let emulator = started
        .amazon_pay_endpoint
        .host_str()
        .map(|h| format!("{h}:{}", started.amazon_pay_endpoint.port().unwrap()))
        .unwrap();
    tokio::spawn(started.serve());
    let http = reqwest::Client::new();
    for addr in [gateway, emulator] {
        // 40 of each kind: 160 connections, more than the 64 served at once.
        let mut held = Vec::new();
        for how in [Slow::Idle, Slow::Silent, Slow::HalfHead, Slow::HalfBody] {
            for _ in 0..40 {
                held.push((how, open(&addr, how).await));
            }
        }
        let began = Instant::now();
        let answer = http
            .get(format!("http://{addr}/health"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{addr}: a normal client was not served: {e}"));
        assert_eq!(answer.status(), 200, "{addr}");
        println!(
            "{addr}: a normal client was served in {:?}",
            began.elapsed()
        );
        for (how, s) in held {
            assert!(
                closed_by_server(s, HEADER_READ + REQUEST + Duration::from_secs(8)).await,
                "{addr}: a {how:?} connection is still open"
            );
        }
    }
}
