//! MWS notifications delivered to a local listener: the SNS envelope, its SignatureVersion 1
//! signature checked with the certificate the emulator serves, and the XML inside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mws_common;
use mws_common::*;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use serde_json::{json, Value};
use sha1::Digest;
use std::sync::{Arc, Mutex};

type Inbox = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn listener() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    let app = axum::Router::new().route(
        "/ipn",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock()
                    .unwrap()
                    .push((headers, String::from_utf8(body.to_vec()).unwrap()));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ipn", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, inbox)
}

/// The RSA key of a certificate: its SubjectPublicKeyInfo is the sequence holding the
/// rsaEncryption algorithm identifier (a 2048-bit key: `30 82 01 22` before it).
fn public_key(pem: &str) -> rsa::RsaPublicKey {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let alg = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let at = der.windows(alg.len()).position(|w| w == alg).unwrap();
    let start = at - 4;
    assert_eq!(der[start], 0x30);
    let len = 4 + ((der[start + 2] as usize) << 8 | der[start + 3] as usize);
    rsa::RsaPublicKey::from_public_key_der(&der[start..start + len]).unwrap()
}

async fn wait_for(inbox: &Inbox, n: usize) -> Vec<(HeaderMap, Value)> {
    for _ in 0..100 {
        if inbox.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    inbox
        .lock()
        .unwrap()
        .iter()
        .map(|(h, b)| (h.clone(), serde_json::from_str(b).unwrap()))
        .collect()
}

#[tokio::test]
async fn notifications_are_signed_sns_envelopes_with_amazons_xml() {
    let e = start().await;
    let (url, inbox) = listener().await;
    let s = e.seller_with(json!({ "ipnUrl": url })).await;
    let cert = e
        .http
        .get(format!("{}/sns/mws-signing-cert.pem", e.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = public_key(&cert);

    let ba = e.agreement(&s, true).await; // Draft → Open: one notification
    let a = e
        .call(
            &s,
            "AuthorizeOnBillingAgreement",
            &[
                ("AmazonBillingAgreementId", &ba),
                ("AuthorizationReferenceId", "ipn-1"),
                ("AuthorizationAmount.Amount", "800"),
                ("AuthorizationAmount.CurrencyCode", "JPY"),
            ],
        )
        .await;
    assert_eq!(a.req("AuthorizationStatus/State"), "Pending");
    let auth = a.req("AmazonAuthorizationId");
    e.advance(30).await;
    let got = wait_for(&inbox, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");

    let mut types = Vec::new();
    for (headers, env) in &got {
        assert_eq!(headers["x-amz-sns-message-type"], "Notification");
        assert_eq!(
            headers["x-amz-sns-topic-arn"].to_str().unwrap(),
            env["TopicArn"].as_str().unwrap()
        );
        assert_eq!(env["Type"], "Notification");
        assert_eq!(env["SignatureVersion"], "1");
        assert!(env["SigningCertURL"]
            .as_str()
            .unwrap()
            .ends_with("/sns/mws-signing-cert.pem"));
        let to_sign = format!(
            "Message\n{}\nMessageId\n{}\nTimestamp\n{}\nTopicArn\n{}\nType\nNotification\n",
            env["Message"].as_str().unwrap(),
            env["MessageId"].as_str().unwrap(),
            env["Timestamp"].as_str().unwrap(),
            env["TopicArn"].as_str().unwrap(),
        );
        let sig = base64::engine::general_purpose::STANDARD
            .decode(env["Signature"].as_str().unwrap())
            .unwrap();
        key.verify(
            rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            &sha1::Sha1::digest(to_sign.as_bytes()),
            &sig,
        )
        .expect("the signature verifies with the served certificate");
        // A tampered message does not.
        let tampered = to_sign.replace("Notification\n", "Notification \n");
        assert!(key
            .verify(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(tampered.as_bytes()),
                &sig
            )
            .is_err());
        let message: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
        assert_eq!(message["SellerId"], s.id.as_str());
        assert_eq!(message["ReleaseEnvironment"], "Sandbox");
        assert_eq!(message["Version"], "2013-01-01");
        let data = message["NotificationData"].as_str().unwrap();
        assert!(data.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        let (root_name, ns) = root(data);
        assert_eq!(
            ns.as_deref(),
            Some("https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01")
        );
        let doc = Answer {
            status: 200,
            content_type: String::new(),
            body: data.to_owned(),
        };
        match message["NotificationType"].as_str().unwrap() {
            "BillingAgreementNotification" => {
                assert_eq!(root_name, "BillingAgreementNotification");
                assert_eq!(doc.req("BillingAgreement/AmazonBillingAgreementId"), ba);
                assert_eq!(doc.req("BillingAgreementStatus/State"), "Open");
                assert_eq!(message["EventType"], "BillingAgreementStatusUpdated");
            }
            "PaymentAuthorize" => {
                assert_eq!(root_name, "AuthorizationNotification");
                assert_eq!(doc.req("AuthorizationDetails/AmazonAuthorizationId"), auth);
                assert_eq!(doc.req("AuthorizationStatus/State"), "Open");
            }
            other => panic!("unexpected {other}"),
        }
        types.push(message["NotificationType"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["BillingAgreementNotification", "PaymentAuthorize"]);

    // Capture and refund: PaymentCapture at once, PaymentRefund when the refund completes.
    let c = e
        .call(
            &s,
            "Capture",
            &[
                ("AmazonAuthorizationId", &auth),
                ("CaptureReferenceId", "ipn-c"),
                ("CaptureAmount.Amount", "800"),
                ("CaptureAmount.CurrencyCode", "JPY"),
            ],
        )
        .await;
    let capture = c.req("AmazonCaptureId");
    e.call(
        &s,
        "Refund",
        &[
            ("AmazonCaptureId", &capture),
            ("RefundReferenceId", "ipn-r"),
            ("RefundAmount.Amount", "300"),
            ("RefundAmount.CurrencyCode", "JPY"),
        ],
    )
    .await
    .assert_ok("Refund");
    e.advance(30).await;
    let got = wait_for(&inbox, 5).await;
    let kinds: Vec<String> = got
        .iter()
        .map(|(_, env)| {
            let m: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
            m["NotificationType"].as_str().unwrap().to_owned()
        })
        .collect();
    // The authorization closed by the capture is announced too.
    assert!(
        kinds.iter().filter(|k| *k == "PaymentCapture").count() == 1,
        "{kinds:?}"
    );
    assert!(
        kinds.iter().filter(|k| *k == "PaymentRefund").count() == 1,
        "{kinds:?}"
    );
    let refund_env = got
        .iter()
        .map(|(_, env)| serde_json::from_str::<Value>(env["Message"].as_str().unwrap()).unwrap())
        .find(|m| m["NotificationType"] == "PaymentRefund")
        .unwrap();
    let doc = Answer {
        status: 200,
        content_type: String::new(),
        body: refund_env["NotificationData"].as_str().unwrap().to_owned(),
    };
    assert_eq!(doc.req("RefundDetails/RefundStatus/State"), "Completed");
    assert_eq!(doc.req("RefundDetails/RefundAmount/Amount"), "300");

    // The helper lists them as delivered.
    let v: Value = e
        .http
        .get(format!(
            "{}/test_helpers/sellers/{}/notifications",
            e.base, s.id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v["notifications"].as_array().unwrap();
    assert_eq!(list.len(), got.len());
    assert!(list.iter().all(|n| n["status"] == "delivered"), "{v}");
}

#[tokio::test]
async fn a_seller_without_an_ipn_url_gets_none_until_it_sets_one() {
    let e = start().await;
    let (url, inbox) = listener().await;
    let s = e.seller().await;
    let ba = e.agreement(&s, true).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(inbox.lock().unwrap().is_empty());
    e.helper(
        &format!("/test_helpers/sellers/{}/ipnUrl", s.id),
        json!({ "ipnUrl": url }),
    )
    .await;
    e.call(
        &s,
        "CloseBillingAgreement",
        &[("AmazonBillingAgreementId", &ba)],
    )
    .await
    .assert_ok("CloseBillingAgreement");
    let got = wait_for(&inbox, 1).await;
    assert_eq!(got.len(), 1);
    let m: Value = serde_json::from_str(got[0].1["Message"].as_str().unwrap()).unwrap();
    assert!(m["NotificationData"]
        .as_str()
        .unwrap()
        .contains("<State>Closed</State>"));
}
