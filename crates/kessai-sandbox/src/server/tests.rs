//! The working set and the read path, seen from inside the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use kessai_amazonpay::wire::{CreateCheckoutSessionRequest, WebCheckoutDetailsRequest};
use kessai_amazonpay::{AmazonPay, AmazonPayClient, ClientConfig, PrivateKey};
use std::time::Duration;

/// The emulator keeps no object in memory between requests, and reads answer while a change
/// holds the lock.
#[tokio::test]
async fn records_live_in_the_file_and_reads_skip_the_lock() {
    let dir = std::env::temp_dir().join(format!(
        "kessai-sandbox-unit-{}-{}",
        std::process::id(),
        SeededIds::from_seed(rand::random()).hex(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = Sandbox::bind(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.join("sandbox.sqlite"),
        public_url: None,
        tls: TlsSetting::Off,
        test_helpers: None,
        limits: kessai_http::Limits::default(),
    })
    .await
    .unwrap();
    let state = sandbox.state.clone();
    let base = sandbox.base_url().to_owned();
    tokio::spawn(sandbox.serve());
    let key = Arc::new(PrivateKey::generate().unwrap());
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/test_helpers/publicKeys"))
        .json(&serde_json::json!({"publicKey": key.public_key().to_pem().unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let store_id = v["storeId"].as_str().unwrap().to_owned();
    let client = AmazonPayClient::new(
        ClientConfig {
            endpoint: url::Url::parse(&base).unwrap(),
            public_key_id: v["publicKeyId"].as_str().unwrap().into(),
            region: "jp".into(),
            store_id: store_id.clone(),
            timeout: Duration::from_secs(10),
        },
        key,
    )
    .unwrap();
    let cs = client
        .create_checkout_session(
            &CreateCheckoutSessionRequest {
                web_checkout_details: WebCheckoutDetailsRequest {
                    checkout_review_return_url: Some("https://m.example/review".into()),
                    ..Default::default()
                },
                store_id,
                ..Default::default()
            },
            "unit-1",
        )
        .await
        .unwrap();
    assert_eq!(state.engine.lock().await.held(), 0);
    // A change in progress holds the lock; a read still answers, from the file.
    let guard = state.engine.lock().await;
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_checkout_session(&cs.checkout_session_id),
    )
    .await
    .expect("a read waited for the lock")
    .unwrap();
    assert_eq!(read.checkout_session_id, cs.checkout_session_id);
    // A change waits for it.
    let helper = tokio::spawn(
        reqwest::Client::new()
            .post(format!(
                "{base}/test_helpers/checkoutSessions/{}/sign_in",
                cs.checkout_session_id
            ))
            .json(&serde_json::json!({}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!helper.is_finished());
    drop(guard);
    assert!(helper.await.unwrap().unwrap().status().is_success());
    assert_eq!(state.engine.lock().await.held(), 0);
}
