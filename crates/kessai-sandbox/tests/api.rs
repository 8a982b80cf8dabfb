//! The emulator over HTTP with Kessai's own Amazon Pay client and hand-made requests: signatures,
//! idempotency, state rules, the clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kessai_amazonpay::signing::{self, Algorithm};
use kessai_amazonpay::wire::*;
use kessai_amazonpay::{AmazonPay, AmazonPayClient, AmazonPayError, ClientConfig, PrivateKey};
use kessai_core::{Currency, Money};
use kessai_sandbox::{Sandbox, SandboxConfig, Sources};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

struct Env {
    base: String,
    http: reqwest::Client,
    client: AmazonPayClient,
    key: Arc<PrivateKey>,
    key_id: String,
    store_id: String,
    merchant_id: String,
    /// The emulator's SQLite file.
    db: std::path::PathBuf,
}

async fn start() -> Env {
    start_with(Sources::system()).await
}

async fn start_with(sources: Sources) -> Env {
    let dir = std::env::temp_dir().join(format!(
        "kessai-sandbox-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = Sandbox::bind_with(
        SandboxConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: dir.join("sandbox.sqlite"),
            public_url: None,
            tls: kessai_sandbox::TlsSetting::SelfSigned,
            test_helpers: None,
            limits: kessai_sandbox::Limits::default(),
        },
        sources,
    )
    .await
    .unwrap();
    let base = sandbox.base_url().to_owned();
    tokio::spawn(sandbox.serve());
    let http = reqwest::Client::new();
    let key = Arc::new(PrivateKey::generate().unwrap());
    let (key_id, store_id, merchant_id) = register(&http, &base, &key).await;
    let client = AmazonPayClient::new(
        ClientConfig {
            endpoint: url::Url::parse(&base).unwrap(),
            public_key_id: key_id.clone(),
            region: "jp".into(),
            store_id: store_id.clone(),
            timeout: Duration::from_secs(10),
        },
        key.clone(),
    )
    .unwrap();
    Env {
        base,
        http,
        client,
        key,
        key_id,
        store_id,
        merchant_id,
        db: dir.join("sandbox.sqlite"),
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

async fn register(
    http: &reqwest::Client,
    base: &str,
    key: &PrivateKey,
) -> (String, String, String) {
    let v: Value = http
        .post(format!("{base}/test_helpers/publicKeys"))
        .json(&json!({"publicKey": key.public_key().to_pem().unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        v["publicKeyId"].as_str().unwrap().into(),
        v["storeId"].as_str().unwrap().into(),
        v["merchantId"].as_str().unwrap().into(),
    )
}

fn jpy(n: i64) -> Price {
    Price::from_money(Money::new(n, Currency::Jpy))
}

fn api_error(e: AmazonPayError) -> (u16, String) {
    match e {
        AmazonPayError::Api {
            status,
            reason_code,
            ..
        } => (status, reason_code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

impl Env {
    /// A new checkout session (nothing but the review URL set).
    async fn open_session(&self, key: &str, review_url: &str) -> CheckoutSession {
        self.client
            .create_checkout_session(
                &CreateCheckoutSessionRequest {
                    web_checkout_details: WebCheckoutDetailsRequest {
                        checkout_review_return_url: Some(review_url.into()),
                        ..Default::default()
                    },
                    store_id: self.store_id.clone(),
                    ..Default::default()
                },
                key,
            )
            .await
            .unwrap()
    }

    async fn helper(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A checkout session the buyer has signed in to and confirmed, with `intent`.
    async fn confirmed_session(
        &self,
        amount: i64,
        intent: &str,
        key: &str,
        card: &str,
    ) -> CheckoutSession {
        let cs = self
            .client
            .create_checkout_session(
                &CreateCheckoutSessionRequest {
                    web_checkout_details: WebCheckoutDetailsRequest {
                        checkout_review_return_url: Some("https://m.example/review".into()),
                        ..Default::default()
                    },
                    store_id: self.store_id.clone(),
                    ..Default::default()
                },
                key,
            )
            .await
            .unwrap();
        let id = cs.checkout_session_id.clone();
        let r = self
            .helper(
                &format!("/test_helpers/checkoutSessions/{id}/sign_in"),
                json!({"paymentMethod": card}),
            )
            .await;
        assert_eq!(
            r["redirectUrl"],
            format!("https://m.example/review?amazonCheckoutSessionId={id}")
        );
        let cs = self
            .client
            .update_checkout_session(
                &id,
                &UpdateCheckoutSessionRequest {
                    web_checkout_details: Some(WebCheckoutDetailsRequest {
                        checkout_result_return_url: Some("https://m.example/result".into()),
                        ..Default::default()
                    }),
                    payment_details: Some(PaymentDetailsRequest {
                        payment_intent: Some(intent.into()),
                        charge_amount: Some(jpy(amount)),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(cs.web_checkout_details.amazon_pay_redirect_url.is_some());
        let r = self
            .helper(
                &format!("/test_helpers/checkoutSessions/{id}/confirm"),
                json!({}),
            )
            .await;
        assert_eq!(
            r["redirectUrl"],
            format!("https://m.example/result?amazonCheckoutSessionId={id}")
        );
        cs
    }

    /// Sends a request signed with `key` (or unsigned), returning status and body.
    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: &str,
        key: Option<(&PrivateKey, &str)>,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        self.raw_as(method, path, path, body, key, extra).await
    }

    /// Sends to `path` a request signed (with this env's key) as if sent to `signed_path`.
    async fn raw_signed_for(
        &self,
        method: &str,
        path: &str,
        signed_path: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let key = Some((&*self.key, self.key_id.as_str()));
        self.raw_as(method, path, signed_path, body, key, extra)
            .await
    }

    async fn raw_as(
        &self,
        method: &str,
        path: &str,
        signed_path: &str,
        body: &str,
        key: Option<(&PrivateKey, &str)>,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let host = self.base.trim_start_matches("http://").to_owned();
        let mut headers: Vec<(String, String)> = vec![
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
            ("x-amz-pay-date".into(), date),
            ("x-amz-pay-host".into(), host),
            ("x-amz-pay-region".into(), "jp".into()),
        ];
        for (k, v) in extra {
            headers.retain(|(n, _)| n != k);
            headers.push(((*k).into(), (*v).into()));
        }
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((key, key_id)) = key {
            let signed: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
            let canonical = signing::canonical_request(
                method,
                signed_path,
                "",
                &headers,
                &signed,
                body.as_bytes(),
            )
            .unwrap();
            let sig =
                signing::sign(key, &signing::string_to_sign(Algorithm::V2, &canonical)).unwrap();
            let mut sorted = signed.clone();
            sorted.sort();
            req = req.header(
                "authorization",
                signing::authorization_header(key_id, &sorted, &sig),
            );
        }
        let resp = req.body(body.to_owned()).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn advance(&self, seconds: i64) {
        let r = self
            .helper("/test_helpers/clock/advance", json!({"seconds": seconds}))
            .await;
        assert!(r["offsetSeconds"].as_i64().unwrap() >= seconds);
    }
}

#[tokio::test]
async fn full_flow_capture_refund_and_settlement() {
    let env = start().await;
    let cs = env
        .confirmed_session(5000, "Authorize", "k-flow", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(5000),
                total_order_amount: None,
            },
            "k-complete",
        )
        .await
        .unwrap();
    assert_eq!(done.status_details.state.as_str(), "Completed");
    let cp = env
        .client
        .get_charge_permission(done.charge_permission_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(cp.status_details.state.as_str(), "Chargeable");
    assert_eq!(
        cp.shipping_address.unwrap().postal_code.as_deref(),
        Some("150-0002")
    );
    let charge_id = done.charge_id.unwrap();
    let charge = env.client.get_charge(&charge_id).await.unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Authorized");

    // capture above the authorization, then a real capture, then a second capture
    let err = env
        .client
        .capture_charge(
            &charge_id,
            &CaptureChargeRequest {
                capture_amount: jpy(5001),
                soft_descriptor: None,
            },
            "cap-1",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (400, "TransactionAmountExceeded".into()));
    let charge = env
        .client
        .capture_charge(
            &charge_id,
            &CaptureChargeRequest {
                capture_amount: jpy(5000),
                soft_descriptor: None,
            },
            "cap-1",
        )
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Captured");
    let err = env
        .client
        .capture_charge(
            &charge_id,
            &CaptureChargeRequest {
                capture_amount: jpy(1),
                soft_descriptor: None,
            },
            "cap-2",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "InvalidChargeStatus".into()));

    // refunds up to captured + min(15 %, 8400): 5000 + 750
    let r1 = env
        .client
        .create_refund(
            &CreateRefundRequest {
                charge_id: charge_id.clone(),
                refund_amount: jpy(5000),
                soft_descriptor: None,
            },
            "ref-1",
        )
        .await
        .unwrap();
    assert_eq!(r1.status_details.state.as_str(), "RefundInitiated");
    let err = env
        .client
        .create_refund(
            &CreateRefundRequest {
                charge_id: charge_id.clone(),
                refund_amount: jpy(751),
                soft_descriptor: None,
            },
            "ref-2",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (400, "TransactionAmountExceeded".into()));
    env.client
        .create_refund(
            &CreateRefundRequest {
                charge_id: charge_id.clone(),
                refund_amount: jpy(750),
                soft_descriptor: None,
            },
            "ref-3",
        )
        .await
        .unwrap();

    env.advance(31).await;
    let r1 = env.client.get_refund(&r1.refund_id).await.unwrap();
    assert_eq!(r1.status_details.state.as_str(), "Refunded");
    let charge = env.client.get_charge(&charge_id).await.unwrap();
    assert_eq!(charge.refunded_amount.unwrap().amount, "5750");
}

#[tokio::test]
async fn idempotent_replay_and_conflicting_reuse() {
    let env = start().await;
    let req = CreateCheckoutSessionRequest {
        web_checkout_details: WebCheckoutDetailsRequest {
            checkout_review_return_url: Some("https://m.example/r".into()),
            ..Default::default()
        },
        store_id: env.store_id.clone(),
        ..Default::default()
    };
    let a = env
        .client
        .create_checkout_session(&req, "same-key")
        .await
        .unwrap();
    let b = env
        .client
        .create_checkout_session(&req, "same-key")
        .await
        .unwrap();
    assert_eq!(a.checkout_session_id, b.checkout_session_id);
    let mut other = req.clone();
    other.web_checkout_details.checkout_review_return_url = Some("https://m.example/other".into());
    let err = env
        .client
        .create_checkout_session(&other, "same-key")
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (400, "DuplicateIdempotencyKey".into()));
    // a create without a key
    let body = serde_json::to_string(&req).unwrap();
    let (status, v) = env
        .raw(
            "POST",
            "/v2/checkoutSessions",
            &body,
            Some((&env.key, &env.key_id)),
            &[],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("MissingHeader"))
    );
    let (status, v) = env
        .raw(
            "POST",
            "/v2/checkoutSessions",
            &body,
            Some((&env.key, &env.key_id)),
            &[("x-amz-pay-idempotency-key", "has spaces !")],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("InvalidHeaderValue"))
    );
}

#[tokio::test]
async fn signature_errors() {
    let env = start().await;
    let path = "/v2/checkoutSessions/00000000-0000-0000-0000-000000000000";
    // unsigned
    let (status, v) = env.raw("GET", path, "", None, &[]).await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("MissingHeader"))
    );
    // an unknown key id
    let (status, v) = env
        .raw("GET", path, "", Some((&env.key, "SANDBOX-UNKNOWN")), &[])
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (401, Some("UnauthorizedAccess"))
    );
    // the right id with another private key
    let other = PrivateKey::generate().unwrap();
    let (status, v) = env
        .raw("GET", path, "", Some((&other, &env.key_id)), &[])
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (403, Some("InvalidRequestSignature"))
    );
    // a stale date
    let (status, v) = env
        .raw(
            "GET",
            path,
            "",
            Some((&env.key, &env.key_id)),
            &[("x-amz-pay-date", "20200101T000000Z")],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (403, Some("InvalidRequestSignature"))
    );
    // the Node SDK's date format, correctly signed: reaches the operation (404 for an unknown id)
    let node_date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap();
    let (status, v) = env
        .raw(
            "GET",
            path,
            "",
            Some((&env.key, &env.key_id)),
            &[("x-amz-pay-date", &node_date)],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    // odd header case is fine
    let (status, _) = env
        .raw(
            "GET",
            path,
            "",
            Some((&env.key, &env.key_id)),
            &[("X-Amz-Pay-Region", "JP")],
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn strict_input_errors() {
    let env = start().await;
    let signer = Some((&*env.key, env.key_id.as_str()));
    let key = [("x-amz-pay-idempotency-key", "k1")];
    let cases: Vec<(&str, &str)> = vec![
        ("not json", "InvalidRequestFormat"),
        (r#"{"storeId":"x"}"#, "MissingParameterValue"),
        (
            r#"{"webCheckoutDetails":{"checkoutReviewReturnUrl":"https://m.example/r"},"storeId":"x","surprise":1}"#,
            "UnrecognizedField",
        ),
        (
            r#"{"webCheckoutDetails":{"checkoutReviewReturnUrl":42},"storeId":"x"}"#,
            "InvalidParameterValue",
        ),
    ];
    for (body, reason) in cases {
        let (status, v) = env
            .raw("POST", "/v2/checkoutSessions", body, signer, &key)
            .await;
        assert_eq!(
            (status, v["reasonCode"].as_str()),
            (400, Some(reason)),
            "{body}"
        );
    }
    let good = |payment: &str| {
        format!(
            r#"{{"webCheckoutDetails":{{"checkoutReviewReturnUrl":"https://m.example/r"}},"storeId":"{}","paymentDetails":{payment}}}"#,
            env.store_id
        )
    };
    let (status, v) = env
        .raw(
            "POST",
            "/v2/checkoutSessions",
            &good(r#"{"chargeAmount":{"amount":"100.5","currencyCode":"JPY"}}"#),
            signer,
            &key,
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("InvalidParameterValue"))
    );
    let (status, v) = env
        .raw(
            "POST",
            "/v2/checkoutSessions",
            &good(r#"{"chargeAmount":{"amount":"100","currencyCode":"USD"}}"#),
            signer,
            &key,
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("CurrencyMismatch"))
    );
    let big = "x".repeat(10 * 1024 * 1024);
    let (status, v) = env
        .raw("POST", "/v2/checkoutSessions", &big, signer, &key)
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (413, Some("InvalidRequest"))
    );
    // another merchant's session looks not found
    let mine = env
        .confirmed_session(100, "Authorize", "k-mine", "visa-1111")
        .await;
    let stranger = PrivateKey::generate().unwrap();
    let (stranger_id, _, _) = register(&env.http, &env.base, &stranger).await;
    let path = format!("/v2/checkoutSessions/{}", mine.checkout_session_id);
    let (status, v) = env
        .raw("GET", &path, "", Some((&stranger, &stranger_id)), &[])
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (404, Some("ResourceNotFound"))
    );
}

#[tokio::test]
async fn declines_cancels_amount_mismatch_and_expiry_by_clock() {
    let env = start().await;
    // declined card
    let cs = env
        .confirmed_session(100, "Authorize", "k-d", "visa-3434")
        .await;
    let err = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(100),
                total_order_amount: None,
            },
            "c-d",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "CheckoutSessionCanceled".into()));
    let got = env
        .client
        .get_checkout_session(&cs.checkout_session_id)
        .await
        .unwrap();
    assert_eq!(
        (
            got.status_details.state.as_str(),
            got.status_details.reason_code.as_ref().map(|r| r.as_str())
        ),
        ("Canceled", Some("Declined"))
    );

    // amount mismatch
    let cs = env
        .confirmed_session(300, "AuthorizeWithCapture", "k-m", "visa-1111")
        .await;
    let err = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(299),
                total_order_amount: None,
            },
            "c-m",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (409, "AmountMismatch".into()));
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(300),
                total_order_amount: None,
            },
            "c-m2",
        )
        .await
        .unwrap();
    let charge = env
        .client
        .get_charge(done.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Captured");
    // complete again without replay
    let err = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(300),
                total_order_amount: None,
            },
            "c-m3",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "InvalidCheckoutSessionStatus".into()));

    // an authorization and an open session, then 30 days pass
    let cs = env
        .confirmed_session(400, "Authorize", "k-e", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(400),
                total_order_amount: None,
            },
            "c-e",
        )
        .await
        .unwrap();
    let open = env.open_session("k-open", "https://m.example/r").await;
    env.advance(24 * 3600 + 1).await;
    let got = env
        .client
        .get_checkout_session(&open.checkout_session_id)
        .await
        .unwrap();
    assert_eq!(
        (
            got.status_details.state.as_str(),
            got.status_details.reason_code.as_ref().map(|r| r.as_str())
        ),
        ("Canceled", Some("Expired"))
    );
    let charge_id = done.charge_id.unwrap();
    assert_eq!(
        env.client
            .get_charge(&charge_id)
            .await
            .unwrap()
            .status_details
            .state,
        ChargeState::Authorized
    );
    env.advance(30 * 24 * 3600).await;
    let charge = env.client.get_charge(&charge_id).await.unwrap();
    assert_eq!(
        (
            charge.status_details.state.as_str(),
            charge
                .status_details
                .reason_code
                .as_ref()
                .map(|r| r.as_str())
        ),
        ("Canceled", Some("ExpiredUnused"))
    );
    let err = env
        .client
        .cancel_charge(
            &charge_id,
            &CancelChargeRequest {
                cancellation_reason: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "InvalidChargeStatus".into()));
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "kessai-sandbox-restart-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sandbox.sqlite");
    let first = Sandbox::bind(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: db.clone(),
        public_url: None,
        tls: kessai_sandbox::TlsSetting::SelfSigned,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    })
    .await
    .unwrap();
    let base = first.base_url().to_owned();
    let handle = tokio::spawn(first.serve());
    let http = reqwest::Client::new();
    let key = Arc::new(PrivateKey::generate().unwrap());
    let (key_id, store_id, _) = register(&http, &base, &key).await;
    let config = |base: &str| ClientConfig {
        endpoint: url::Url::parse(base).unwrap(),
        public_key_id: key_id.clone(),
        region: "jp".into(),
        store_id: store_id.clone(),
        timeout: Duration::from_secs(10),
    };
    let client = AmazonPayClient::new(config(&base), key.clone()).unwrap();
    let cs = client
        .create_checkout_session(
            &CreateCheckoutSessionRequest {
                web_checkout_details: WebCheckoutDetailsRequest {
                    checkout_review_return_url: Some("https://m.example/r".into()),
                    ..Default::default()
                },
                store_id: store_id.clone(),
                ..Default::default()
            },
            "restart",
        )
        .await
        .unwrap();
    handle.abort();
    let _ = handle.await;
    let second = Sandbox::bind(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: db,
        public_url: None,
        tls: kessai_sandbox::TlsSetting::SelfSigned,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    })
    .await
    .unwrap();
    let base2 = second.base_url().to_owned();
    tokio::spawn(second.serve());
    let client = AmazonPayClient::new(config(&base2), key).unwrap();
    let got = client
        .get_checkout_session(&cs.checkout_session_id)
        .await
        .unwrap();
    assert_eq!(got.status_details.state.as_str(), "Open");
}

#[tokio::test]
async fn pending_authorization_completes_by_notification_with_retries() {
    use std::sync::Mutex;
    let env = start().await;
    // The merchant's IPN endpoint: fails the first delivery, accepts the rest.
    let received: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let received = received.clone();
        let calls = calls.clone();
        axum::Router::new().route(
            "/ipn",
            axum::routing::post(move |body: String| {
                let received = received.clone();
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    received.lock().unwrap().push(body);
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ipn_url = format!("http://{}/ipn", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The merchant of the key, as its first registration answered it.
    let merchant_id = env.merchant_id.clone();
    let r = env
        .helper(
            "/test_helpers/notificationUrl",
            json!({"merchantId": merchant_id, "url": ipn_url}),
        )
        .await;
    assert_eq!(r["url"], ipn_url);

    // A checkout with the card that authorizes after 30 s, and a merchant that can wait.
    let cs = env
        .open_session("k-pending", "https://m.example/review")
        .await;
    let id = cs.checkout_session_id;
    env.helper(
        &format!("/test_helpers/checkoutSessions/{id}/sign_in"),
        json!({"paymentMethod": "visa-0701"}),
    )
    .await;
    env.client
        .update_checkout_session(
            &id,
            &UpdateCheckoutSessionRequest {
                web_checkout_details: Some(WebCheckoutDetailsRequest {
                    checkout_result_return_url: Some("https://m.example/result".into()),
                    ..Default::default()
                }),
                payment_details: Some(PaymentDetailsRequest {
                    payment_intent: Some("Authorize".into()),
                    can_handle_pending_authorization: Some(true),
                    charge_amount: Some(jpy(2000)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.helper(
        &format!("/test_helpers/checkoutSessions/{id}/confirm"),
        json!({}),
    )
    .await;
    let done = env
        .client
        .complete_checkout_session(
            &id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(2000),
                total_order_amount: None,
            },
            "k-pc",
        )
        .await
        .unwrap();
    let charge_id = done.charge_id.unwrap();
    assert_eq!(
        env.client
            .get_charge(&charge_id)
            .await
            .unwrap()
            .status_details
            .state,
        ChargeState::AuthorizationInitiated
    );
    assert!(received.lock().unwrap().is_empty());

    env.advance(31).await;
    // First delivery fails (503), the retry after ~1 s succeeds.
    let mut waited = 0;
    while received.lock().unwrap().is_empty() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let body = received
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("an IPN arrived");
    let envelope: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["SignatureVersion"], "2");
    assert!(envelope["SigningCertURL"]
        .as_str()
        .unwrap()
        .starts_with(&env.base));
    let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["ObjectType"], "CHARGE");
    assert_eq!(message["ObjectId"], charge_id.as_str());
    assert_eq!(
        message["ChargePermissionId"],
        done.charge_permission_id.clone().unwrap().as_str()
    );
    assert_eq!(message["NotificationType"], "STATE_CHANGE");
    assert_eq!(message["MerchantID"], merchant_id.as_str());
    // The notification carries no state: the merchant reads the charge.
    assert_eq!(
        env.client
            .get_charge(&charge_id)
            .await
            .unwrap()
            .status_details
            .state,
        ChargeState::Authorized
    );
    let cert = env
        .http
        .get(envelope["SigningCertURL"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));

    // The outbox shows two attempts; a re-send delivers it again.
    let list: Value = env
        .http
        .get(format!(
            "{}/test_helpers/notifications?merchantId={merchant_id}",
            env.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = &list["notifications"][0];
    assert_eq!(
        (n["status"].as_str(), n["attempts"].as_i64()),
        (Some("delivered"), Some(2))
    );
    let r = env
        .helper(
            &format!(
                "/test_helpers/notifications/{}/resend",
                n["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(r["status"], "pending");
    let mut waited = 0;
    while received.lock().unwrap().len() < 2 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(received.lock().unwrap().len(), 2);
}

async fn recurring_permission(env: &Env, key: &str) -> String {
    let cs = env
        .client
        .create_checkout_session(
            &CreateCheckoutSessionRequest {
                web_checkout_details: WebCheckoutDetailsRequest {
                    checkout_review_return_url: Some("https://m.example/review".into()),
                    ..Default::default()
                },
                store_id: env.store_id.clone(),
                charge_permission_type: Some("Recurring".into()),
                recurring_metadata: Some(RecurringMetadata {
                    frequency: Some(Frequency {
                        unit: "Month".into(),
                        value: "1".into(),
                    }),
                    amount: Some(jpy(30_000)),
                }),
                ..Default::default()
            },
            key,
        )
        .await
        .unwrap();
    let id = cs.checkout_session_id;
    env.helper(
        &format!("/test_helpers/checkoutSessions/{id}/sign_in"),
        json!({}),
    )
    .await;
    env.client
        .update_checkout_session(
            &id,
            &UpdateCheckoutSessionRequest {
                web_checkout_details: Some(WebCheckoutDetailsRequest {
                    checkout_result_return_url: Some("https://m.example/result".into()),
                    ..Default::default()
                }),
                payment_details: Some(PaymentDetailsRequest {
                    payment_intent: Some("Confirm".into()),
                    charge_amount: Some(jpy(30_000)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.helper(
        &format!("/test_helpers/checkoutSessions/{id}/confirm"),
        json!({}),
    )
    .await;
    let done = env
        .client
        .complete_checkout_session(
            &id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(30_000),
                total_order_amount: None,
            },
            &format!("{key}-c"),
        )
        .await
        .unwrap();
    assert_eq!(done.charge_id, None, "Confirm makes no charge");
    done.charge_permission_id.unwrap()
}

fn charge_req(cp: &str, amount: i64, capture_now: bool) -> CreateChargeRequest {
    CreateChargeRequest {
        charge_permission_id: cp.to_owned(),
        charge_amount: jpy(amount),
        capture_now: Some(capture_now),
        soft_descriptor: None,
        can_handle_pending_authorization: None,
        merchant_metadata: None,
    }
}

#[tokio::test]
async fn recurring_charges_periodic_limit_update_and_close() {
    let env = start().await;
    let cp_id = recurring_permission(&env, "rec").await;
    let cp = env.client.get_charge_permission(&cp_id).await.unwrap();
    assert_eq!(
        cp.charge_permission_type,
        Some(ChargePermissionType::Recurring)
    );
    assert_eq!(
        cp.recurring_metadata.unwrap().frequency.unwrap().unit,
        "Month"
    );

    // Charges each period; 100,000 JPY per 30 days at most.
    let c1 = env
        .client
        .create_charge(&charge_req(&cp_id, 60_000, true), "rc-1")
        .await
        .unwrap();
    assert_eq!(c1.status_details.state.as_str(), "Captured");
    let replay = env
        .client
        .create_charge(&charge_req(&cp_id, 60_000, true), "rc-1")
        .await
        .unwrap();
    assert_eq!(replay.charge_id, c1.charge_id, "same key, same charge");
    let err = env
        .client
        .create_charge(&charge_req(&cp_id, 40_001, true), "rc-2")
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (400, "PeriodicAmountExceeded".into()));
    let c2 = env
        .client
        .create_charge(&charge_req(&cp_id, 40_000, false), "rc-3")
        .await
        .unwrap();
    assert_eq!(c2.status_details.state.as_str(), "Authorized");
    env.advance(31 * 24 * 3600).await;
    let c3 = env
        .client
        .create_charge(&charge_req(&cp_id, 90_000, true), "rc-4")
        .await
        .unwrap();
    assert_eq!(c3.status_details.state.as_str(), "Captured", "a new period");

    // Simulated declines, synchronous and pending.
    let mut sim = charge_req(&cp_id, 100, true);
    let (status, v) = env
        .raw(
            "POST",
            "/v2/charges",
            &serde_json::to_string(&sim).unwrap(),
            Some((&env.key, &env.key_id)),
            &[
                ("x-amz-pay-idempotency-key", "rc-5"),
                ("x-amz-pay-simulation-code", "HardDeclined"),
            ],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (422, Some("HardDeclined"))
    );
    let (status, v) = env
        .raw(
            "POST",
            "/v2/charges",
            &serde_json::to_string(&sim).unwrap(),
            Some((&env.key, &env.key_id)),
            &[
                ("x-amz-pay-idempotency-key", "rc-6"),
                ("x-amz-pay-simulation-code", "NoSuchThing"),
            ],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("InvalidSandboxSimulationSpecified"))
    );
    sim.can_handle_pending_authorization = Some(true);
    let (status, v) = env
        .raw(
            "POST",
            "/v2/charges",
            &serde_json::to_string(&sim).unwrap(),
            Some((&env.key, &env.key_id)),
            &[
                ("x-amz-pay-idempotency-key", "rc-7"),
                ("x-amz-pay-simulation-code", "SoftDeclined"),
            ],
        )
        .await;
    assert_eq!(
        (status, v["statusDetails"]["state"].as_str()),
        (201, Some("AuthorizationInitiated"))
    );
    env.advance(31).await;
    let pending = env
        .client
        .get_charge(v["chargeId"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (
            pending.status_details.state.as_str(),
            pending
                .status_details
                .reason_code
                .as_ref()
                .map(|r| r.as_str())
        ),
        ("Declined", Some("SoftDeclined"))
    );

    // Update, then close with pending charges canceled; closed permissions refuse both.
    let updated = env
        .client
        .update_charge_permission(
            &cp_id,
            &UpdateChargePermissionRequest {
                merchant_metadata: Some(MerchantMetadataRequest {
                    merchant_reference_id: Some("sub-42".into()),
                    ..Default::default()
                }),
                recurring_metadata: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated
            .merchant_metadata
            .unwrap()
            .merchant_reference_id
            .as_deref(),
        Some("sub-42")
    );
    let open = env
        .client
        .create_charge(&charge_req(&cp_id, 1_000, false), "rc-8")
        .await
        .unwrap();
    let closed = env
        .client
        .close_charge_permission(
            &cp_id,
            &CloseChargePermissionRequest {
                closure_reason: "cancelled".into(),
                cancel_pending_charges: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(closed.status_details.state.as_str(), "Closed");
    assert_eq!(
        closed.status_details.reasons.unwrap()[0].reason_code,
        ReasonCode::MerchantClosed
    );
    let open = env.client.get_charge(&open.charge_id).await.unwrap();
    assert_eq!(
        open.status_details.reason_code.as_ref().map(|r| r.as_str()),
        Some("ChargePermissionCanceled")
    );
    let err = env
        .client
        .create_charge(&charge_req(&cp_id, 100, true), "rc-9")
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (422, "InvalidChargePermissionStatus".into())
    );
    let err = env
        .client
        .update_charge_permission(&cp_id, &UpdateChargePermissionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (422, "ChargePermissionNotModifiable".into())
    );
    let err = env
        .client
        .close_charge_permission(
            &cp_id,
            &CloseChargePermissionRequest {
                closure_reason: "again".into(),
                cancel_pending_charges: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (422, "InvalidChargePermissionStatus".into())
    );
}

#[tokio::test]
async fn one_time_permission_limits_and_buyer() {
    let env = start().await;
    let cs = env
        .confirmed_session(1_000, "Confirm", "ot", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(1_000),
                total_order_amount: None,
            },
            "ot-c",
        )
        .await
        .unwrap();
    let cp_id = done.charge_permission_id.unwrap();
    let err = env
        .client
        .create_charge(&charge_req(&cp_id, 1_001, true), "ot-1")
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (400, "TransactionAmountExceeded".into()));
    env.client
        .create_charge(&charge_req(&cp_id, 600, true), "ot-2")
        .await
        .unwrap();
    env.client
        .create_charge(&charge_req(&cp_id, 400, true), "ot-3")
        .await
        .unwrap();
    let cp = env.client.get_charge_permission(&cp_id).await.unwrap();
    assert_eq!(
        cp.status_details.state.as_str(),
        "Closed",
        "the order total is captured"
    );

    let token: Value = env.helper("/test_helpers/buyerTokens", json!({})).await;
    let buyer = env
        .client
        .get_buyer(token["buyerToken"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(buyer.buyer_id, token["buyerId"].as_str().unwrap());
    assert_eq!(buyer.country_code.as_deref(), Some("JP"));
    let err = env.client.get_buyer("nope").await.unwrap_err();
    assert_eq!(api_error(err), (404, "ResourceNotFound".into()));
}

#[tokio::test]
async fn finalize_and_psp_update_charge() {
    let env = start().await;
    let signer = Some((&*env.key, env.key_id.as_str()));
    let cs = env.open_session("fin", "https://m.example/r").await;
    let path = format!("/v2/checkoutSessions/{}/finalize", cs.checkout_session_id);
    let body =
        r#"{"chargeAmount":{"amount":"2500","currencyCode":"JPY"},"paymentIntent":"Authorize"}"#;
    // before the buyer signed in
    let (status, v) = env.raw("POST", &path, body, signer, &[]).await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (422, Some("InvalidCheckoutSessionStatus"))
    );
    env.helper(
        &format!(
            "/test_helpers/checkoutSessions/{}/sign_in",
            cs.checkout_session_id
        ),
        json!({}),
    )
    .await;
    let (status, v) = env
        .raw(
            "POST",
            &path,
            r#"{"chargeAmount":{"amount":"2500","currencyCode":"JPY"}}"#,
            signer,
            &[],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("MissingParameterValue"))
    );
    let (status, v) = env.raw("POST", &path, body, signer, &[]).await;
    assert_eq!(
        (status, v["statusDetails"]["state"].as_str()),
        (200, Some("Completed")),
        "{v}"
    );
    let charge_id = v["chargeId"].as_str().unwrap().to_owned();

    let update = format!("/v2/charges/{charge_id}");
    let (status, v) = env
        .raw(
            "PATCH",
            &update,
            r#"{"statusDetails":{"state":"Captured"}}"#,
            signer,
            &[],
        )
        .await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (400, Some("InvalidParameterValue"))
    );
    let expire = r#"{"statusDetails":{"state":"Canceled","reasonCode":"ExpiredUnused"}}"#;
    let (status, v) = env.raw("PATCH", &update, expire, signer, &[]).await;
    assert_eq!(
        (status, v["statusDetails"]["reasonCode"].as_str()),
        (200, Some("ExpiredUnused"))
    );
    let (status, v) = env.raw("PATCH", &update, expire, signer, &[]).await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (422, Some("InvalidChargeStatus"))
    );
    // A method the operation does not have.
    let (status, v) = env.raw("PUT", &update, "{}", signer, &[]).await;
    assert_eq!(
        (status, v["reasonCode"].as_str()),
        (405, Some("UnsupportedOperation"))
    );
}

#[tokio::test]
async fn every_simulated_decline_and_the_charge_limits() {
    let env = start().await;
    let signer = Some((&*env.key, env.key_id.as_str()));
    let cs = env
        .confirmed_session(100, "Confirm", "lim", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(100),
                total_order_amount: None,
            },
            "lim-c",
        )
        .await
        .unwrap();
    let cp_id = done.charge_permission_id.unwrap();
    let body = serde_json::to_string(&charge_req(&cp_id, 1, false)).unwrap();
    for (i, (code, status)) in [
        ("SoftDeclined", 422),
        ("HardDeclined", 422),
        ("AmazonRejected", 422),
        ("TransactionTimedOut", 422),
        ("ProcessingFailure", 500),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("sim-{i}");
        let (got, v) = env
            .raw(
                "POST",
                "/v2/charges",
                &body,
                signer,
                &[
                    ("x-amz-pay-idempotency-key", &key),
                    ("x-amz-pay-simulation-code", code),
                ],
            )
            .await;
        assert_eq!((got, v["reasonCode"].as_str()), (status, Some(code)));
    }
    // softDescriptor needs captureNow; recurringMetadata needs a Recurring permission.
    let bad = format!(
        r#"{{"chargePermissionId":"{cp_id}","chargeAmount":{{"amount":"1","currencyCode":"JPY"}},"softDescriptor":"SHOP"}}"#
    );
    let (got, v) = env
        .raw(
            "POST",
            "/v2/charges",
            &bad,
            signer,
            &[("x-amz-pay-idempotency-key", "bad-1")],
        )
        .await;
    assert_eq!(
        (got, v["reasonCode"].as_str()),
        (400, Some("InvalidParameterCombination"))
    );
    let err = env
        .client
        .update_charge_permission(
            &cp_id,
            &UpdateChargePermissionRequest {
                merchant_metadata: None,
                recurring_metadata: Some(RecurringMetadata {
                    frequency: Some(Frequency {
                        unit: "Month".into(),
                        value: "1".into(),
                    }),
                    amount: None,
                }),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (400, "InvalidParameterCombination".into()));
    // At most 25 charges on a one-time permission.
    for i in 0..25 {
        env.client
            .create_charge(&charge_req(&cp_id, 1, false), &format!("n-{i}"))
            .await
            .unwrap();
    }
    let err = env
        .client
        .create_charge(&charge_req(&cp_id, 1, false), "n-26")
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "TransactionCountExceeded".into()));
}

#[tokio::test]
async fn legacy_paths_and_permission_expiry() {
    let env = start().await;
    let signer = Some((&*env.key, env.key_id.as_str()));
    let body = format!(
        r#"{{"webCheckoutDetails":{{"checkoutReviewReturnUrl":"https://m.example/r"}},"storeId":"{}"}}"#,
        env.store_id
    );
    let (status, v) = env
        .raw(
            "POST",
            "/live/v2/checkoutSessions",
            &body,
            signer,
            &[("x-amz-pay-idempotency-key", "live-1")],
        )
        .await;
    assert_eq!(
        (status, v["releaseEnvironment"].as_str()),
        (201, Some("Live"))
    );
    let (status, v) = env
        .raw(
            "POST",
            "/sandbox/v2/checkoutSessions",
            &body,
            signer,
            &[("x-amz-pay-idempotency-key", "sb-1")],
        )
        .await;
    assert_eq!(
        (status, v["releaseEnvironment"].as_str()),
        (201, Some("Sandbox"))
    );
    let id = v["checkoutSessionId"].as_str().unwrap();
    let (status, _) = env
        .raw(
            "GET",
            &format!("/sandbox/v2/checkoutSessions/{id}"),
            "",
            signer,
            &[],
        )
        .await;
    assert_eq!(status, 200);

    // A one-time permission closes as Expired after 180 days.
    let cs = env
        .confirmed_session(100, "Confirm", "exp", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(100),
                total_order_amount: None,
            },
            "exp-c",
        )
        .await
        .unwrap();
    let cp_id = done.charge_permission_id.unwrap();
    env.advance(180 * 24 * 3600 + 1).await;
    let cp = env.client.get_charge_permission(&cp_id).await.unwrap();
    assert_eq!(cp.status_details.state.as_str(), "Closed");
    assert_eq!(
        cp.status_details.reasons.unwrap()[0].reason_code,
        ReasonCode::Expired
    );
}

#[tokio::test]
async fn a_capture_after_seven_days_is_pending_then_captured() {
    let env = start().await;
    let cs = env
        .confirmed_session(700, "Authorize", "late", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(700),
                total_order_amount: None,
            },
            "late-c",
        )
        .await
        .unwrap();
    let charge_id = done.charge_id.unwrap();
    env.advance(8 * 24 * 3600).await;
    let charge = env
        .client
        .capture_charge(
            &charge_id,
            &CaptureChargeRequest {
                capture_amount: jpy(700),
                soft_descriptor: None,
            },
            "late-cap",
        )
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "CaptureInitiated");
    let err = env
        .client
        .create_refund(
            &CreateRefundRequest {
                charge_id: charge_id.clone(),
                refund_amount: jpy(1),
                soft_descriptor: None,
            },
            "late-r",
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (422, "InvalidChargeStatus".into()));
    env.advance(31).await;
    assert_eq!(
        env.client
            .get_charge(&charge_id)
            .await
            .unwrap()
            .status_details
            .state,
        ChargeState::Captured
    );
}

/// Everything a run made that depends on the emulator's randomness and clock.
async fn one_seeded_run(seed: u64, start: time::OffsetDateTime) -> Vec<String> {
    let clock = Arc::new(kessai_core::ManualClock::new(start));
    let env = start_with(Sources::seeded(seed, clock)).await;
    let cs = env
        .confirmed_session(3000, "Authorize", "k-seeded", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(3000),
                total_order_amount: None,
            },
            "k-seeded-complete",
        )
        .await
        .unwrap();
    let charge_id = done.charge_id.clone().unwrap();
    env.client
        .capture_charge(
            &charge_id,
            &CaptureChargeRequest {
                capture_amount: jpy(3000),
                soft_descriptor: None,
            },
            "k-seeded-capture",
        )
        .await
        .unwrap();
    let refund = env
        .client
        .create_refund(
            &CreateRefundRequest {
                charge_id: charge_id.clone(),
                refund_amount: jpy(1000),
                soft_descriptor: None,
            },
            "k-seeded-refund",
        )
        .await
        .unwrap();
    vec![
        env.key_id,
        env.store_id,
        done.checkout_session_id,
        done.charge_permission_id.unwrap(),
        charge_id,
        refund.refund_id,
        done.creation_timestamp.unwrap(),
        refund.creation_timestamp.unwrap(),
    ]
}

#[tokio::test]
async fn the_same_seed_and_requests_make_the_same_ids() {
    // Signed requests carry the real time, so the manual clock starts near it.
    let start = time::OffsetDateTime::now_utc();
    let first = one_seeded_run(7, start).await;
    let second = one_seeded_run(7, start).await;
    assert_eq!(first, second);
    let other = one_seeded_run(8, start).await;
    for (a, b) in first.iter().zip(&other).take(6) {
        assert_ne!(a, b, "another seed makes other ids");
    }
}

/// Opens the emulator's file beside it, as another process would.
async fn open_file(env: &Env) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&env.db)
                .busy_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_save_leaves_memory_as_the_file_has_it() {
    let env = start().await;
    let cs = env.open_session("k-fail", "https://m.example/review").await;
    let id = cs.checkout_session_id;
    let file = open_file(&env).await;
    sqlx::query("CREATE TRIGGER refuse_updates BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
        .execute(&file)
        .await
        .unwrap();
    let update = UpdateCheckoutSessionRequest {
        web_checkout_details: Some(WebCheckoutDetailsRequest {
            checkout_result_return_url: Some("https://m.example/result".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = env
        .client
        .update_checkout_session(&id, &update)
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (500, "InternalServerError".into()));
    sqlx::query("DROP TRIGGER refuse_updates")
        .execute(&file)
        .await
        .unwrap();
    // "Nothing was changed" is true: the session is still as stored.
    let got = env.client.get_checkout_session(&id).await.unwrap();
    assert_eq!(got.web_checkout_details.checkout_result_return_url, None);
    // And the same update now goes through.
    let updated = env
        .client
        .update_checkout_session(&id, &update)
        .await
        .unwrap();
    assert_eq!(
        updated
            .web_checkout_details
            .checkout_result_return_url
            .as_deref(),
        Some("https://m.example/result")
    );
}

#[tokio::test]
async fn a_notification_is_stored_with_its_change_or_not_at_all() {
    let env = start().await;
    // The merchant of the key, as its first registration answered it.
    let merchant_id = env.merchant_id.clone();
    // Nobody listens there: deliveries fail and stay in the outbox, which is what is checked.
    env.helper(
        "/test_helpers/notificationUrl",
        json!({"merchantId": merchant_id, "url": "http://127.0.0.1:9/ipn"}),
    )
    .await;
    let cs = env
        .confirmed_session(2000, "AuthorizeWithCapture", "k-outbox", "visa-1111")
        .await;
    let done = env
        .client
        .complete_checkout_session(
            &cs.checkout_session_id,
            &CompleteCheckoutSessionRequest {
                charge_amount: jpy(2000),
                total_order_amount: None,
            },
            "k-outbox-complete",
        )
        .await
        .unwrap();
    let refund = env
        .client
        .create_refund(
            &CreateRefundRequest {
                charge_id: done.charge_id.unwrap(),
                refund_amount: jpy(500),
                soft_descriptor: None,
            },
            "k-outbox-refund",
        )
        .await
        .unwrap();

    // The outbox cannot be written: the settlement must not be stored without its notification.
    let file = open_file(&env).await;
    sqlx::query("CREATE TRIGGER refuse_notifications BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
        .execute(&file)
        .await
        .unwrap();
    let r = env
        .http
        .post(format!("{}/test_helpers/clock/advance", env.base))
        .json(&json!({"seconds": 31}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let stored: String =
        sqlx::query_scalar("SELECT json FROM records WHERE kind = 'refund' AND id = ?")
            .bind(&refund.refund_id)
            .fetch_one(&file)
            .await
            .unwrap();
    assert!(stored.contains("\"RefundInitiated\""), "{stored}");
    let err = env.client.get_refund(&refund.refund_id).await;
    // Reads settle too, and fail the same way while the outbox is refused.
    assert_eq!(
        api_error(err.unwrap_err()),
        (500, "InternalServerError".into())
    );

    sqlx::query("DROP TRIGGER refuse_notifications")
        .execute(&file)
        .await
        .unwrap();
    let got = env.client.get_refund(&refund.refund_id).await.unwrap();
    assert_eq!(got.status_details.state, RefundState::Refunded);
    let list: Value = env
        .http
        .get(format!(
            "{}/test_helpers/notifications?merchantId={merchant_id}",
            env.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refunds: Vec<&Value> = list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["objectType"] == "REFUND" && n["objectId"] == refund.refund_id.as_str())
        .collect();
    assert_eq!(refunds.len(), 1, "{list}");
    let envelope: Value = serde_json::from_str(refunds[0]["body"].as_str().unwrap()).unwrap();
    assert!(!envelope["Signature"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn api_paths_with_a_trailing_slash_are_the_same_operation() {
    let env = start().await;
    let me = Some((&*env.key, env.key_id.as_str()));
    let body = json!({
        "webCheckoutDetails": {"checkoutReviewReturnUrl": "https://m.example/review"},
        "storeId": env.store_id,
    })
    .to_string();
    for prefix in ["/v2", "/sandbox/v2", "/live/v2"] {
        let key = format!("k-slash{}", prefix.len());
        let (status, created) = env
            .raw(
                "POST",
                &format!("{prefix}/checkoutSessions/"),
                &body,
                me,
                &[("x-amz-pay-idempotency-key", key.as_str())],
            )
            .await;
        assert_eq!(status, 201, "{prefix}: {created}");
        // The same key without the slash is the same request: replayed, not refused.
        let (status, again) = env
            .raw(
                "POST",
                &format!("{prefix}/checkoutSessions"),
                &body,
                me,
                &[("x-amz-pay-idempotency-key", key.as_str())],
            )
            .await;
        assert_eq!((status, &again), (201, &created), "{prefix}");
        let id = created["checkoutSessionId"].as_str().unwrap();
        let (status, got) = env
            .raw(
                "GET",
                &format!("{prefix}/checkoutSessions/{id}/"),
                "",
                me,
                &[],
            )
            .await;
        assert_eq!(
            (status, &got["checkoutSessionId"]),
            (200, &created["checkoutSessionId"])
        );
    }
    // The signature covers the path as sent: signed without the slash, sent with it, refused.
    let (status, refused) = env
        .raw_signed_for(
            "POST",
            "/v2/checkoutSessions/",
            "/v2/checkoutSessions",
            &body,
            &[("x-amz-pay-idempotency-key", "k-slash-forged")],
        )
        .await;
    assert_eq!(
        (status, refused["reasonCode"].as_str()),
        (403, Some("InvalidRequestSignature"))
    );

    // Complete and Create Refund with a trailing slash, through a real flow.
    let cs = env
        .confirmed_session(1500, "AuthorizeWithCapture", "k-slash-flow", "visa-1111")
        .await;
    let id = cs.checkout_session_id;
    let (status, done) = env
        .raw(
            "POST",
            &format!("/v2/checkoutSessions/{id}/complete/"),
            &json!({"chargeAmount": {"amount": "1500", "currencyCode": "JPY"}}).to_string(),
            me,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let charge_id = done["chargeId"].as_str().unwrap();
    let (status, refund) = env
        .raw(
            "POST",
            "/v2/refunds/",
            &json!({"chargeId": charge_id, "refundAmount": {"amount": "100", "currencyCode": "JPY"}})
                .to_string(),
            me,
            &[("x-amz-pay-idempotency-key", "k-slash-refund")],
        )
        .await;
    assert_eq!(
        (status, refund["statusDetails"]["state"].as_str()),
        (201, Some("RefundInitiated")),
        "{refund}"
    );
    // Not every slash is an operation.
    let (status, _) = env.raw("POST", "/v2/", "{}", me, &[]).await;
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------------------------------------
// checkout.js: the button's signed payload at /checkout/start
// ---------------------------------------------------------------------------------------------

/// The fields of a button's form post.
type ButtonForm = Vec<(String, String)>;

/// A Create Checkout Session payload of `store_id` for ¥`amount`.
fn button_payload(store_id: &str, amount: i64) -> String {
    json!({
        "webCheckoutDetails": {
            "checkoutReviewReturnUrl": "https://shop.example/review?order=7",
            "checkoutCancelUrl": "https://shop.example/cancel"
        },
        "storeId": store_id,
        "chargePermissionType": "OneTime",
        "paymentDetails": {
            "paymentIntent": "Authorize",
            "chargeAmount": {"amount": amount.to_string(), "currencyCode": "JPY"}
        },
        "merchantMetadata": {"merchantReferenceId": "order-7"}
    })
    .to_string()
}

impl Env {
    /// The form `checkout.js` posts for `signed`, with `merchantId` and the button's options.
    fn button_form(&self, signed: &kessai_amazonpay::SignedPayload) -> Vec<(String, String)> {
        [
            ("payloadJSON", signed.payload_json.as_str()),
            ("signature", signed.signature.as_str()),
            ("publicKeyId", signed.public_key_id.as_str()),
            ("algorithm", signed.algorithm.name()),
            ("merchantId", self.merchant_id.as_str()),
            ("ledgerCurrency", "JPY"),
            ("checkoutLanguage", "ja_JP"),
            ("productType", "PayAndShip"),
            ("placement", "Checkout"),
            ("sandbox", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Posts a button form; the status, the `Location` and the page.
    async fn press_button(&self, form: &[(String, String)]) -> (u16, Option<String>, String) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = http
            .post(format!("{}/checkout/start", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, r.text().await.unwrap())
    }

    async fn session_count(&self) -> i64 {
        let pool = open_file(self).await;
        sqlx::query_scalar("SELECT count(*) FROM records WHERE kind = 'checkoutSession'")
            .fetch_one(&pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_signed_button_payload_creates_the_checkout_session_and_goes_to_sign_in() {
    let env = start().await;
    let script = env
        .http
        .get(format!("{}/checkout.js", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let text = script.text().await.unwrap();
    for api in [
        "renderButton",
        "initCheckout",
        "bindChangeAction",
        "signout",
    ] {
        assert!(text.contains(api), "checkout.js has no {api}");
    }

    let signed = kessai_amazonpay::SignedPayload::sign(
        &env.key,
        &env.key_id,
        button_payload(&env.store_id, 1200),
    )
    .unwrap();
    let (status, location, body) = env.press_button(&env.button_form(&signed)).await;
    assert_eq!(status, 303, "{body}");
    let location = url::Url::parse(&location.unwrap()).unwrap();
    assert_eq!(location.path(), "/checkout/signin");
    let id = location
        .query_pairs()
        .find(|(k, _)| k == "amazonCheckoutSessionId")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    // The session is the payload's, as the merchant reads it back by API.
    let cs = env.client.get_checkout_session(&id).await.unwrap();
    assert_eq!(cs.store_id.as_deref(), Some(env.store_id.as_str()));
    assert_eq!(
        cs.web_checkout_details
            .checkout_review_return_url
            .as_deref(),
        Some("https://shop.example/review?order=7")
    );
    assert_eq!(cs.payment_details.charge_amount, Some(jpy(1200)));
    assert_eq!(
        cs.merchant_metadata.merchant_reference_id.as_deref(),
        Some("order-7")
    );
    assert_eq!(cs.status_details.state.as_str(), "Open");
    assert_eq!(cs.product_type.as_deref(), Some("PayAndShip"));
    // The sign-in page is there for it.
    let page = env.http.get(location.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);

    // A PayOnly button: the session collects and reports no shipping address, nor does its
    // charge permission.
    let mut form = env.button_form(&signed);
    for (k, v) in form.iter_mut() {
        if k == "productType" {
            *v = "PayOnly".into();
        }
    }
    let (status, location, body) = env.press_button(&form).await;
    assert_eq!(status, 303, "{body}");
    let location = url::Url::parse(&location.unwrap()).unwrap();
    let id = location
        .query_pairs()
        .find(|(k, _)| k == "amazonCheckoutSessionId")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let page = env
        .http
        .get(location.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("PayOnly"), "{page}");
    assert!(!page.contains("〒"), "no address to choose: {page}");
    let signed_in = env
        .http
        .post(format!(
            "{}/test_helpers/checkoutSessions/{id}/sign_in",
            env.base
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success());
    let cs = env.client.get_checkout_session(&id).await.unwrap();
    assert_eq!(cs.product_type.as_deref(), Some("PayOnly"));
    assert!(cs.buyer.is_some());
    assert_eq!(cs.shipping_address, None);
}

#[tokio::test]
async fn button_payloads_that_are_not_the_merchants_are_refused_and_create_nothing() {
    let env = start().await;
    let payload = button_payload(&env.store_id, 1200);
    let signed =
        kessai_amazonpay::SignedPayload::sign(&env.key, &env.key_id, payload.clone()).unwrap();
    let good = env.button_form(&signed);
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        good.iter()
            .map(|(k, v)| {
                let v = if k == name { value } else { v.as_str() };
                (k.clone(), v.to_owned())
            })
            .collect()
    };
    let without = |name: &str| -> Vec<(String, String)> {
        good.iter().filter(|(k, _)| k != name).cloned().collect()
    };
    // Signed by another key, for the same key id.
    let other_key = PrivateKey::generate().unwrap();
    let forged =
        kessai_amazonpay::SignedPayload::sign(&other_key, &env.key_id, payload.clone()).unwrap();
    // A payload for another store, signed by this merchant's key.
    let other_store = kessai_amazonpay::SignedPayload::sign(
        &env.key,
        &env.key_id,
        button_payload("amzn1.application-oa2-client.someone-else", 1200),
    )
    .unwrap();
    // An amount Amazon does not take, signed.
    let too_much = kessai_amazonpay::SignedPayload::sign(
        &env.key,
        &env.key_id,
        button_payload(&env.store_id, 10_000_001),
    )
    .unwrap();
    // (what, the form, the status, what the page says)
    let cases: Vec<(&str, ButtonForm, u16, &str)> = vec![
        (
            "tampered amount",
            with("payloadJSON", &payload.replace("1200", "12")),
            403,
            "signature does not match payloadJSON",
        ),
        (
            "signed by another key",
            with("signature", &forged.signature),
            403,
            "signature does not match payloadJSON",
        ),
        (
            "unknown key id",
            with("publicKeyId", "SANDBOX-NOBODY"),
            401,
            "publicKeyId SANDBOX-NOBODY is not registered",
        ),
        (
            "legacy algorithm named for a V2 signature",
            with("algorithm", "AMZN-PAY-RSASSA-PSS"),
            403,
            "signature does not match payloadJSON",
        ),
        (
            "unknown algorithm",
            with("algorithm", "RSA-SHA1"),
            400,
            "is neither AMZN-PAY-RSASSA-PSS-V2 nor",
        ),
        (
            "signature not Base64",
            with("signature", "%%%"),
            400,
            "signature is not Base64",
        ),
        (
            "no payload",
            without("payloadJSON"),
            400,
            "payloadJSON is missing",
        ),
        (
            "no merchant id",
            without("merchantId"),
            400,
            "merchantId is missing",
        ),
        (
            "another merchant id",
            with("merchantId", "A3OTHERMERCHANT"),
            403,
            "merchantId A3OTHERMERCHANT is not the merchant of publicKeyId",
        ),
        (
            "another ledger currency",
            with("ledgerCurrency", "USD"),
            400,
            "ledgerCurrency USD",
        ),
        (
            "unknown placement",
            with("placement", "Sidebar"),
            400,
            "is not one of Home, Product, Cart, Checkout, Other",
        ),
        (
            "unknown checkout language",
            with("checkoutLanguage", "xx_XX"),
            400,
            "is not one of ja_JP",
        ),
        (
            "productType SignIn",
            with("productType", "SignIn"),
            400,
            "is not emulated by this checkout.js",
        ),
        (
            "unknown productType",
            with("productType", "PayLater"),
            400,
            "is not one of PayAndShip, PayOnly, SignIn",
        ),
        (
            "another store's payload",
            env.button_form(&other_store),
            400,
            "storeId",
        ),
        (
            "amount out of range",
            env.button_form(&too_much),
            400,
            "paymentDetails.chargeAmount",
        ),
    ];
    let before = env.session_count().await;
    for (what, form, status, says) in cases {
        let (got, location, page) = env.press_button(&form).await;
        assert_eq!(got, status, "{what}: {page}");
        assert_eq!(location, None, "{what}");
        assert!(
            page.contains(says),
            "{what}: the page should say {says:?}: {page}"
        );
        assert!(page.contains("<h1>"), "{what}: a page, not a bare error");
    }
    assert_eq!(
        env.session_count().await,
        before,
        "refusals created nothing"
    );
    // The untouched form still works.
    assert_eq!(env.press_button(&good).await.0, 303);
    assert_eq!(env.session_count().await, before + 1);
}
