//! Configuration for going live: the start-up check refuses an inconsistent set naming the flag,
//! an emulator reached over https is trusted through `--amazon-pay-ca-file` (and without it the
//! start names that flag), the built-in emulator's public URL is where buyers are sent, and the
//! emulator's `CONNECT` tunnel takes a client that insists on `https://pay-api.amazon.jp` (as
//! Amazon's PHP SDK does) to the emulator: real servers, real TLS, real signatures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fresh_dir, walk_buyer, TestEnv, MERCHANT_SITE};
use kessai::ServeOptions;
use kessai_amazonpay::wire::{CreateCheckoutSessionRequest, WebCheckoutDetailsRequest};
use kessai_amazonpay::{AmazonPay, AmazonPayClient, ClientConfig, PrivateKey};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The options of a gateway with its own data directory and nothing else set.
fn options(data_dir: PathBuf) -> ServeOptions {
    ServeOptions {
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
        demo_shop: false,
        allow_private_push_targets: false,
        push_lease: Duration::from_secs(30),
        gateway_tls: kessai::GatewayTls::Off,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    }
}

/// A standalone emulator (as `kessai sandbox`): its https URL (the same port as its http one)
/// and its self-signed certificate, written next to its database.
async fn https_emulator(dir: &Path) -> (url::Url, PathBuf) {
    let http = common::standalone_emulator(dir).await;
    let cert = dir.join("sandbox.cert.pem");
    assert!(
        cert.exists(),
        "the emulator writes its certificate next to its database"
    );
    let mut https = http.clone();
    https.set_scheme("https").unwrap();
    (https, cert)
}

fn client_trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_gateway_completes_a_flow_against_an_emulator_over_https_with_its_ca_file() {
    let (emulator, cert) = https_emulator(&fresh_dir("golive-https-emulator")).await;
    let mut env = TestEnv::start_tweaked("golive-https", |o| {
        o.amazon_pay_endpoint = Some(emulator.clone());
        o.amazon_pay_ca_file = Some(cert.clone());
    })
    .await;
    assert_eq!(env.emulator, emulator.as_str().trim_end_matches('/'));
    // The buyer's browser trusts the emulator's certificate too (its pages are on https here).
    env.http = client_trusting(&cert);
    let r = env
        .mdk("Authorize", env.authorize_params("https-1", 3000, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let landed = walk_buyer(&env, &r, "visa-1111").await;
    assert!(
        landed.as_str().starts_with(&format!("{MERCHANT_SITE}/ok")),
        "{landed}"
    );
    let c = env
        .mdk("Capture", json!({"orderId": "https-1", "amount": "3000"}))
        .await;
    assert_eq!(c["mstatus"], "success", "{c:?}");
    assert_eq!(
        env.order("https-1").await.unwrap().order.state,
        kessai_core::OrderState::Captured
    );
}

#[tokio::test]
async fn without_the_ca_file_the_start_fails_naming_the_flag() {
    let (emulator, _) = https_emulator(&fresh_dir("golive-noca-emulator")).await;
    let mut o = options(fresh_dir("golive-noca"));
    o.amazon_pay_endpoint = Some(emulator);
    let e = kessai::start(o).await.err().expect("refused");
    let text = format!("{e:#}");
    assert!(text.contains("--amazon-pay-ca-file"), "{text}");
    assert!(text.contains("certificate"), "{text}");
}

#[tokio::test]
async fn credentials_at_an_https_endpoint_are_checked_at_start_with_the_ca_file() {
    let (emulator, cert) = https_emulator(&fresh_dir("golive-creds-emulator")).await;
    let data_dir = fresh_dir("golive-creds");
    let key_path = data_dir.join("key.pem");
    let key = kessai::load_or_create_key(&key_path).unwrap();
    let pem = std::fs::read_to_string(&cert).unwrap();
    let reg = kessai::registration_trusting(&emulator, &key, None, Some(&pem))
        .await
        .unwrap();
    let with = |ca: Option<PathBuf>| {
        let mut o = options(data_dir.clone());
        o.amazon_pay_endpoint = Some(emulator.clone());
        o.amazon_pay_public_key_id = Some(reg.public_key_id.clone());
        o.amazon_pay_store_id = Some(reg.store_id.clone());
        o.amazon_pay_merchant_id = reg.merchant_id.clone();
        o.amazon_pay_private_key = Some(key_path.clone());
        o.amazon_pay_sandbox = true;
        o.amazon_pay_ca_file = ca;
        o
    };
    let e = kessai::start(with(None)).await.err().expect("refused");
    assert!(format!("{e:#}").contains("--amazon-pay-ca-file"), "{e:#}");
    let started = kessai::start(with(Some(cert))).await.unwrap();
    let summary = &started.amazon_pay_summary;
    assert!(
        summary.contains("emulator with credentials, sandbox"),
        "{summary}"
    );
    assert!(summary.contains(&reg.public_key_id), "{summary}");
    assert!(summary.contains("SHA256:"), "{summary}");
    assert!(!summary.contains("PRIVATE KEY"), "{summary}");
}

#[tokio::test]
async fn an_inconsistent_set_is_refused_before_anything_is_made() {
    let data_dir = std::env::temp_dir().join(format!(
        "kessai-test-golive-refused-{}-{}",
        std::process::id(),
        kessai::random_hex(4)
    ));
    type Tweak = Box<dyn Fn(&mut ServeOptions)>;
    let live = |o: &mut ServeOptions| {
        o.amazon_pay_public_key_id = Some("LIVE-AFVX7ULWSGBZ5535PCUQOY7B".into());
        o.amazon_pay_store_id = Some("amzn1.application-oa2-client.x".into());
        o.amazon_pay_merchant_id = Some("A2B3C4D5E6F7G8".into());
    };
    let cases: Vec<(&str, Tweak)> = vec![
        (
            "--amazon-pay-sandbox",
            Box::new(move |o| {
                live(o);
                o.amazon_pay_sandbox = true;
            }),
        ),
        (
            "--amazon-pay-endpoint",
            Box::new(|o| {
                o.amazon_pay_endpoint = Some("https://pay-api.amazon.eu".parse().unwrap());
                o.amazon_pay_public_key_id = Some("SANDBOX-AFVX7ULWSGBZ5535PCUQOY7B".into());
                o.amazon_pay_store_id = Some("amzn1.application-oa2-client.x".into());
                o.amazon_pay_sandbox = true;
            }),
        ),
        (
            "--amazon-pay-private-key",
            Box::new(move |o| {
                live(o);
                o.amazon_pay_private_key = Some("/nonexistent/key.pem".into());
            }),
        ),
        (
            "--amazon-pay-region",
            Box::new(|o| o.amazon_pay_region = "fe".into()),
        ),
    ];
    for (flag, tweak) in cases {
        let mut o = options(data_dir.clone());
        tweak(&mut o);
        let e = kessai::start(o).await.err().expect("refused");
        assert!(format!("{e:#}").starts_with(flag), "{flag}: {e:#}");
        assert!(!data_dir.exists(), "{flag}: nothing is made");
    }
}

#[tokio::test]
async fn buyers_are_sent_to_the_built_in_emulators_public_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://localhost:{port}");
    let env = TestEnv::start_tweaked("golive-public-url", |o| {
        o.sandbox_listen = format!("127.0.0.1:{port}").parse().unwrap();
        o.sandbox_public_url = Some(public.clone());
    })
    .await;
    assert_eq!(env.emulator, public);
    let r = env
        .mdk("Authorize", env.authorize_params("public-1", 1500, true))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let html = r["responseContents"].as_str().unwrap();
    let doc = scraper::Html::parse_document(html);
    let attr = |selector: &str, name: &str| {
        let sel = scraper::Selector::parse(selector).unwrap();
        let el = doc.select(&sel).next().expect(selector);
        el.value().attr(name).unwrap().to_owned()
    };
    assert_eq!(attr("script[src]", "src"), format!("{public}/checkout.js"));
    assert_eq!(attr("form", "action"), format!("{public}/checkout/start"));
    assert!(!html.contains(&format!("127.0.0.1:{port}")), "{html}");
    let landed = walk_buyer(&env, &r, "visa-1111").await;
    assert!(
        landed.as_str().starts_with(&format!("{MERCHANT_SITE}/ok")),
        "{landed}"
    );
}

/// Amazon's PHP SDK dials `https://pay-api.amazon.jp:443` whatever it is told, and honours a
/// proxy: through the emulator's `CONNECT` tunnel, trusting the emulator's certificate, a signed
/// v2 call to Amazon's host lands on the emulator.
#[tokio::test]
async fn a_client_through_the_emulators_connect_tunnel_reaches_it_as_pay_api_amazon_jp() {
    let dir = fresh_dir("golive-connect");
    let emulator = common::standalone_emulator(&dir).await;
    let cert = std::fs::read(dir.join("sandbox.cert.pem")).unwrap();
    let key = Arc::new(PrivateKey::generate().unwrap());
    let reg = kessai::registration(&emulator, &key, None).await.unwrap();
    let config = ClientConfig {
        endpoint: "https://pay-api.amazon.jp".parse().unwrap(),
        public_key_id: reg.public_key_id.clone(),
        region: "jp".into(),
        store_id: reg.store_id.clone(),
        timeout: Duration::from_secs(10),
    };
    let through = |config: ClientConfig, trust: bool| {
        let mut b = AmazonPayClient::builder(config, key.clone())
            .https_proxy(&emulator)
            .unwrap();
        if trust {
            b = b.trust_pem(&cert).unwrap();
        }
        b.build().unwrap()
    };
    let request = CreateCheckoutSessionRequest {
        web_checkout_details: WebCheckoutDetailsRequest {
            checkout_review_return_url: Some("https://shop.example/review".into()),
            ..Default::default()
        },
        store_id: reg.store_id.clone(),
        ..Default::default()
    };
    let client = through(config.clone(), true);
    let session = client
        .create_checkout_session(&request, "connect-1")
        .await
        .unwrap();
    // It is the emulator's object: readable there directly, over plain HTTP.
    let direct = AmazonPayClient::new(
        ClientConfig {
            endpoint: emulator.clone(),
            ..config.clone()
        },
        key.clone(),
    )
    .unwrap();
    let read = direct
        .get_checkout_session(&session.checkout_session_id)
        .await
        .unwrap();
    assert_eq!(read.checkout_session_id, session.checkout_session_id);
    // Without the emulator's certificate the tunnel's TLS is refused: nothing else answers.
    let untrusting = through(config, false);
    let e = untrusting
        .get_checkout_session(&session.checkout_session_id)
        .await
        .unwrap_err();
    assert!(
        matches!(e, kessai_amazonpay::AmazonPayError::Transport(_)),
        "{e:?}"
    );
}

/// The `renderButton` options of a hand-off page, and its one script's `src`.
fn hand_off_of(html: &str) -> (serde_json::Value, String, bool) {
    let doc = scraper::Html::parse_document(html);
    let options = scraper::Selector::parse("script#kessai-amazonpay-button").unwrap();
    let text: String = doc.select(&options).next().unwrap().text().collect();
    let src = scraper::Selector::parse("script[src]").unwrap();
    let src = doc
        .select(&src)
        .next()
        .unwrap()
        .value()
        .attr("src")
        .unwrap();
    let form = scraper::Selector::parse("form").unwrap();
    let has_form = doc.select(&form).next().is_some();
    (
        serde_json::from_str(&text).unwrap(),
        src.to_owned(),
        has_form,
    )
}

/// Live orders are handed to Amazon's own `checkout.js` of the region, with a payload signed by
/// the merchant's key over the exact string the page hands the script; test orders of the same
/// gateway still go to the built-in emulator's double. (Amazon is never called: Authorize records
/// the order and signs; the real hosts are not reachable here.)
#[tokio::test]
async fn the_live_hand_off_loads_amazons_checkout_js_with_a_payload_signed_by_the_merchants_key() {
    let key_dir = fresh_dir("golive-live-key");
    let key_path = key_dir.join("amazon-pay.pem");
    let key = kessai::load_or_create_key(&key_path).unwrap();
    let key_id = "LIVE-AEXAMPLEKEYID0000000000";
    let store_id = "amzn1.application-oa2-client.0123456789abcdef";
    let env = TestEnv::start_tweaked("golive-live-hand-off", |o| {
        o.amazon_pay_public_key_id = Some(key_id.into());
        o.amazon_pay_store_id = Some(store_id.into());
        o.amazon_pay_private_key = Some(key_path.clone());
        o.amazon_pay_merchant_id = Some("A2EXAMPLEMERCHANT".into());
    })
    .await;
    let r = env
        .mdk_live("Authorize", env.authorize_params("live-1", 2400, false))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let (options, src, has_form) = hand_off_of(r["responseContents"].as_str().unwrap());
    assert_eq!(src, "https://static-fe.payments-amazon.com/checkout.js");
    assert!(!has_form, "Amazon has no no-script entry: no form");
    assert_eq!(options["merchantId"], "A2EXAMPLEMERCHANT");
    assert_eq!(options["sandbox"], false);
    assert_eq!(options["ledgerCurrency"], "JPY");
    assert_eq!(options["productType"], "PayAndShip");
    let config = &options["createCheckoutSessionConfig"];
    assert_eq!(config["publicKeyId"], key_id);
    assert_eq!(config["algorithm"], "AMZN-PAY-RSASSA-PSS-V2");
    let payload = config["payloadJSON"].as_str().unwrap();
    kessai_amazonpay::button::verify(
        key.public_key(),
        kessai_amazonpay::signing::Algorithm::V2,
        payload,
        config["signature"].as_str().unwrap(),
    )
    .expect("the payload's signature verifies with the configured key");
    // The payload is the order's: this store, this order, this amount, Kessai's review URL.
    let p: serde_json::Value = serde_json::from_str(payload).unwrap();
    assert_eq!(p["storeId"], store_id);
    assert_eq!(p["merchantMetadata"]["merchantReferenceId"], "live-1");
    assert_eq!(p["paymentDetails"]["chargeAmount"]["amount"], "2400");
    let order = env.order("live-1").await.unwrap();
    assert_eq!(
        p["webCheckoutDetails"]["checkoutReviewReturnUrl"],
        format!("{}/amazonpay/review/{}", env.gateway, order.public_ref)
    );
    assert_eq!(order.checkout_session_id, None, "nothing bound yet");

    // suppressShippingAddressView: the button asks for a payment only.
    let mut params = env.authorize_params("live-2", 500, false);
    params["suppressShippingAddressView"] = "true".into();
    let r = env.mdk_live("Authorize", params).await;
    let (options, _, _) = hand_off_of(r["responseContents"].as_str().unwrap());
    assert_eq!(options["productType"], "PayOnly");

    // A test order of the same gateway goes to the built-in emulator's checkout.js.
    let r = env
        .mdk("Authorize", env.authorize_params("test-1", 100, false))
        .await;
    let (options, src, has_form) = hand_off_of(r["responseContents"].as_str().unwrap());
    assert!(src.starts_with("http://127.0.0.1:"), "{src}");
    assert!(src.ends_with("/checkout.js"), "{src}");
    assert!(has_form);
    assert_eq!(options["sandbox"], true);
    assert_ne!(
        options["createCheckoutSessionConfig"]["publicKeyId"],
        key_id
    );
}
