//! The gateway answers HTTPS on its own port, as MDK clients need: an MDK-style request (HTTP/1.0,
//! no keep-alive, `Host: host:port`, form-encoded body) over TLS, verified against the local CA
//! the gateway made in its data directory, gets the MDK answer; a client that does not trust that
//! CA cannot connect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestEnv;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(roots: rustls::RootCertStore) -> tokio_rustls::TlsConnector {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn an_mdk_request_over_https_verified_against_the_local_ca() {
    let env = TestEnv::start("mdk-tls").await;
    let ca_pem = std::fs::read(env.data_dir.join("gateway-ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&ca_pem).unwrap())
        .unwrap();
    let addr = env.gateway.trim_start_matches("http://").to_owned();

    let mut params = env
        .authorize_params("tls-1", 1500, false)
        .as_object()
        .cloned()
        .unwrap();
    params.insert("txnVersion".into(), "2.0.0".into());
    params.insert("dummyRequest".into(), "1".into());
    params.insert("merchantCcid".into(), env.ccid.clone().into());
    let body = kessai_gateway::mdk::encode_request(&Value::Object(params), &env.ccid, &env.secret);
    let request = format!(
        "POST /test-paynow/v2/Authorize/amazonpay HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = client(roots).connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // HTTP/1.0 without keep-alive: the gateway closes after the answer.
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["result"]["mstatus"], "success", "{json}");
    assert!(json["result"]["responseContents"]
        .as_str()
        .unwrap()
        .contains("form"));
    assert!(env.order("tls-1").await.is_some());

    // A client that trusts another CA refuses the gateway's certificate.
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let other = kessai_http::tls::local_ca(&[]).unwrap();
    let mut wrong = rustls::RootCertStore::empty();
    wrong
        .add(CertificateDer::from_pem_slice(other.ca_cert_pem.as_bytes()).unwrap())
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    assert!(client(wrong).connect(name, tcp).await.is_err());

    // Plain HTTP on the same port still works (buyers' browsers, the demo shop).
    let r = env.mdk("GetAddress", json!({"orderId": "tls-1"})).await;
    assert_eq!(r["vResultCode"], "E313F00100000000", "{r:?}");
}
