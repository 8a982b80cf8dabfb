//! Test orders (`/test-paynow`, `dummyRequest` "1") never reach the Amazon Pay of live orders:
//! with credentials for another Amazon Pay configured, they go to the built-in emulator, while
//! live orders (`/paynow`) go to the configured one. Here "the other Amazon Pay" is a second
//! emulator standing in for Amazon.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fresh_dir, walk_buyer, TestEnv, MERCHANT_SITE};
use kessai::ServeOptions;
use kessai_core::OrderState;
use serde_json::json;
use std::time::Duration;

/// The origin the Authorize page's no-script form posts the signed payload to.
fn hand_off_origin(answer: &serde_json::Map<String, serde_json::Value>) -> String {
    let html = answer["responseContents"].as_str().unwrap();
    let (method, action, _) = common::first_form(html, &[]);
    assert_eq!(method, reqwest::Method::POST);
    url::Url::parse(&action)
        .unwrap()
        .origin()
        .ascii_serialization()
}

#[tokio::test]
async fn test_orders_go_to_the_built_in_emulator_and_live_orders_do_not() {
    // "Amazon Pay": an emulator of its own, with a key registered like a merchant's at Amazon.
    let amazon_url = common::standalone_emulator(&fresh_dir("test-mode-amazon")).await;
    let data_dir = fresh_dir("test-mode");
    let key_path = data_dir.join("key.pem");
    let key = kessai::load_or_create_key(&key_path).unwrap();
    let reg = kessai::registration(&amazon_url, &key, None).await.unwrap();

    let started = kessai::start(ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir: data_dir.clone(),
        database_url: None,
        sandbox_listen: "127.0.0.1:0".parse().unwrap(),
        amazon_pay_endpoint: Some(amazon_url.clone()),
        amazon_pay_public_key_id: Some(reg.public_key_id),
        amazon_pay_store_id: Some(reg.store_id),
        amazon_pay_private_key: Some(key_path),
        amazon_pay_region: "jp".into(),
        // The button's merchantId (the emulator checks it is the key's merchant).
        amazon_pay_merchant_id: reg.merchant_id,
        amazon_pay_sandbox: true,
        amazon_pay_public_key: None,
        amazon_pay_ca_file: None,
        sandbox_public_url: None,
        demo_ccid: None,
        demo_secret: None,
        demo_shop: false,
        allow_private_push_targets: false,
        push_lease: Duration::from_secs(30),
        gateway_tls: kessai::GatewayTls::Off,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    })
    .await
    .unwrap();
    let builtin = started
        .test_amazon_pay_endpoint
        .clone()
        .expect("a built-in emulator for test orders");
    assert_ne!(builtin.origin(), amazon_url.origin());
    let env = TestEnv::external(
        started.gateway.base_url(),
        builtin.as_str(),
        started.demo.ccid.as_str(),
        started.demo.secret_hex.expose(),
        data_dir.clone(),
    )
    .await;
    tokio::spawn(started.serve());

    // A test order: handed to the built-in emulator, paid there, captured.
    let r = env
        .mdk("Authorize", env.authorize_params("t-1", 1200, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(hand_off_origin(&r), builtin.origin().ascii_serialization());
    let landed = walk_buyer(&env, &r, "visa-1111").await;
    assert!(landed.as_str().starts_with(&format!("{MERCHANT_SITE}/ok")));
    assert!(env.order("t-1").await.unwrap().dummy);
    let r = env.mdk("Capture", json!({"orderId": "t-1"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(
        env.order("t-1").await.unwrap().order.state,
        OrderState::Captured
    );

    // A live order: handed to "Amazon", which knows nothing of the test order.
    let r = env
        .mdk_live("Authorize", env.authorize_params("l-1", 1500, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(
        hand_off_origin(&r),
        amazon_url.origin().ascii_serialization()
    );
    let live = env.order("l-1").await.unwrap();
    assert!(!live.dummy);
    // The buyer presses the button: "Amazon" makes the session from the signed payload.
    let signin = common::Browser::new(&env.http)
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    assert!(
        signin.url.starts_with(amazon_url.as_str()),
        "{}",
        signin.url
    );
    let live_session = common::query(
        &url::Url::parse(&signin.url).unwrap(),
        "amazonCheckoutSessionId",
    )
    .unwrap();
    let test = env.order("t-1").await.unwrap();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    // The emulators' buyer pages for a session exist only where the session was made.
    for (session, at, expect_found) in [
        (live_session, &amazon_url, true),
        (
            test.checkout_session_id.clone().unwrap(),
            &amazon_url,
            false,
        ),
    ] {
        let status = http
            .post(format!(
                "{}/test_helpers/checkoutSessions/{session}/sign_in",
                at.as_str().trim_end_matches('/')
            ))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status != 404, expect_found, "{session} at {at}: {status}");
    }
}
