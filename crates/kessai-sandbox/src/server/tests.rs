//! The working set and the read path, seen from inside the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use kessai_amazonpay::wire::{CreateCheckoutSessionRequest, WebCheckoutDetailsRequest};
use kessai_amazonpay::{AmazonPay, AmazonPayClient, ClientConfig, PrivateKey};
use std::time::Duration;

/// Registers a fresh key at the emulator at `base`; a client that signs with `signing` (the
/// registered key, or another) under the registered key's id, and the store id.
async fn client_of(base: &str, signing: Option<Arc<PrivateKey>>) -> (AmazonPayClient, String) {
    let registered = Arc::new(PrivateKey::generate().unwrap());
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/test_helpers/publicKeys"))
        .json(&serde_json::json!({"publicKey": registered.public_key().to_pem().unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let store_id = v["storeId"].as_str().unwrap().to_owned();
    let client = AmazonPayClient::new(
        ClientConfig {
            endpoint: url::Url::parse(base).unwrap(),
            public_key_id: v["publicKeyId"].as_str().unwrap().into(),
            region: "jp".into(),
            store_id: store_id.clone(),
            timeout: Duration::from_secs(10),
        },
        signing.unwrap_or(registered),
    )
    .unwrap();
    (client, store_id)
}

/// A checkout session with nothing but its review URL, under `key`.
async fn open_session(
    client: &AmazonPayClient,
    store_id: String,
    key: &str,
) -> Result<kessai_amazonpay::wire::CheckoutSession, kessai_amazonpay::AmazonPayError> {
    client
        .create_checkout_session(
            &CreateCheckoutSessionRequest {
                web_checkout_details: WebCheckoutDetailsRequest {
                    checkout_review_return_url: Some("https://m.example/review".into()),
                    ..Default::default()
                },
                store_id,
                ..Default::default()
            },
            key,
        )
        .await
}

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
    let (client, store_id) = client_of(&base, None).await;
    let cs = open_session(&client, store_id, "unit-1").await.unwrap();
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

/// The null Amazon of `kessai bench --null-amazon`: a request signed with another key than the
/// one registered is served (no signature is checked), its records are kept between requests, and
/// no file is written. The same request to an emulator as Amazon is refused.
#[tokio::test]
async fn the_null_amazon_checks_no_signature_and_writes_no_file() {
    let dir = std::env::temp_dir().join(format!(
        "kessai-sandbox-null-{}-{}",
        std::process::id(),
        SeededIds::from_seed(rand::random()).hex(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = |name: &str| SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.join(name),
        public_url: None,
        tls: TlsSetting::Off,
        test_helpers: None,
        limits: kessai_http::Limits::default(),
    };
    let null = Sandbox::bind_null_for_benchmark(config("null.sqlite"), Sources::system())
        .await
        .unwrap();
    let amazon = Sandbox::bind(config("amazon.sqlite")).await.unwrap();
    let mut answers = Vec::new();
    for sandbox in [null, amazon] {
        let base = sandbox.base_url().to_owned();
        tokio::spawn(sandbox.serve());
        // Signs with a key the emulator never saw, under the registered key's id.
        let other = Arc::new(PrivateKey::generate().unwrap());
        let (client, store_id) = client_of(&base, Some(other)).await;
        let created = open_session(&client, store_id, "null-1").await;
        let read = match &created {
            Ok(cs) => Some(
                client
                    .get_checkout_session(&cs.checkout_session_id)
                    .await
                    .map(|r| r.checkout_session_id),
            ),
            Err(_) => None,
        };
        answers.push((created.map(|cs| cs.checkout_session_id), read));
    }
    let (null_created, null_read) = &answers[0];
    let id = null_created.as_ref().expect("the null Amazon served it");
    assert_eq!(null_read.as_ref().unwrap().as_ref().unwrap(), id);
    assert!(
        !dir.join("null.sqlite").exists(),
        "the null Amazon wrote a file"
    );
    let (amazon_created, _) = &answers[1];
    assert!(
        amazon_created.is_err(),
        "an emulator as Amazon served a request signed with an unknown key"
    );
    assert!(dir.join("amazon.sqlite").exists());
    std::fs::remove_dir_all(&dir).ok();
}
