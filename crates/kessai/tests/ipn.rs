//! Amazon Pay notifications into the gateway: the built-in emulator sends its signed SNS envelopes
//! to `POST /amazonpay/ipn`; the gateway checks them, fetches the object from Amazon Pay and moves
//! the order (an authorization that expired, a refund that settled) with the merchant's push.
//! Forged, replayed and misdirected notifications are refused and change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestEnv;
use kessai_core::{OrderState, PushKind};
use kessai_store::PushFilter;
use serde_json::{json, Value};
use std::time::Duration;

async fn advance_emulator(env: &TestEnv, seconds: i64) {
    let r = env
        .http
        .post(format!("{}/test_helpers/clock/advance", env.emulator))
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The emulator's notifications so far (their SNS envelopes).
async fn envelopes(env: &TestEnv) -> Vec<Value> {
    let list: Value = env
        .http
        .get(format!("{}/test_helpers/notifications", env.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| serde_json::from_str(n["body"].as_str().unwrap()).unwrap())
        .collect()
}

async fn post_ipn(env: &TestEnv, body: &str) -> (u16, String) {
    let r = env
        .http
        .post(format!("{}/amazonpay/ipn", env.gateway))
        .header("content-type", "text/plain; charset=UTF-8")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn notifications_move_orders_and_forgeries_change_nothing() {
    let env = TestEnv::start("ipn").await;
    let mut p = env.authorize_params("exp-1", 2000, false);
    p["cancelPushUrl"] = "http://merchant.example/push".into();
    let r = env.mdk("Authorize", p).await;
    common::walk_buyer(&env, &r, "visa-1111").await;
    let mut p = env.authorize_params("ref-1", 3000, true);
    p["cancelPushUrl"] = "http://merchant.example/push".into();
    let r = env.mdk("Authorize", p).await;
    common::walk_buyer(&env, &r, "visa-1111").await;
    let r = env
        .mdk("Refund", json!({"orderId": "ref-1", "amount": "1000"}))
        .await;
    assert_eq!(r["mstatus"], "success");

    // 31 days later at Amazon: the unused authorization expires, the refund settled long ago.
    advance_emulator(&env, 31 * 24 * 3600).await;
    wait_until("the expiry to reach the order", || async {
        env.order("exp-1").await.unwrap().order.state == OrderState::Expired
    })
    .await;
    let o = env.order("ref-1").await.unwrap();
    wait_until("the refund's settlement", || async {
        env.store.refunds(&o.merchant, &o.order_id).await.unwrap()[0].state == "Refunded"
    })
    .await;
    let pushes = env.store.pushes(&PushFilter::default()).await.unwrap();
    let expiry = pushes
        .iter()
        .find(|p| p.order_id.as_str() == "exp-1")
        .expect("the merchant is told of the expiry");
    assert_eq!(expiry.kind, PushKind::Cancel);
    assert!(expiry
        .fields
        .iter()
        .any(|(k, v)| k == "vResultCode" && v == "E410000000000000"));
    // The refund was pushed when Amazon accepted it, and again when Amazon settled it.
    let refund_states: Vec<String> = pushes
        .iter()
        .filter(|p| p.order_id.as_str() == "ref-1" && p.kind == PushKind::Refund)
        .map(|p| {
            p.fields
                .iter()
                .find(|(k, _)| k == "amazonStatus")
                .unwrap()
                .1
                .clone()
        })
        .collect();
    assert_eq!(refund_states, ["RefundInitiated", "Refunded"]);
    // The gateway's view equals the emulator's.
    let db = env.data_dir.join("sandbox.sqlite");
    common::check_order(&env, "ref-1", &db).await.unwrap();

    // A notification handled already: ignored, nothing changes.
    let all = envelopes(&env).await;
    let real = all
        .iter()
        .find(|e| e["Message"].as_str().unwrap().contains("CHARGE"))
        .expect("the emulator sent a CHARGE notification")
        .clone();
    let before = (env.order("exp-1").await, env.history_len("exp-1").await);
    let (status, text) = post_ipn(&env, &real.to_string()).await;
    assert_eq!((status, text.as_str()), (200, "already handled"));
    assert_eq!(
        (env.order("exp-1").await, env.history_len("exp-1").await),
        before
    );

    // Forgeries: a changed message, a certificate elsewhere, another topic, no signature version 2.
    let mut changed = real.clone();
    changed["MessageId"] = "forged-1".into();
    changed["Message"] = changed["Message"]
        .as_str()
        .unwrap()
        .replace("STATE_CHANGE", "ATTRIBUTE_CHANGE")
        .into();
    let mut elsewhere = real.clone();
    elsewhere["MessageId"] = "forged-2".into();
    elsewhere["SigningCertURL"] = "https://sns.attacker.example.com/cert.pem".into();
    let mut lookalike = real.clone();
    lookalike["MessageId"] = "forged-3".into();
    lookalike["SigningCertURL"] =
        "https://sns.ap-northeast-1.amazonaws.com.attacker.example/c.pem".into();
    let mut topic = real.clone();
    topic["MessageId"] = "forged-4".into();
    topic["TopicArn"] = "arn:aws:sns:ap-northeast-1:999999999999:Other".into();
    let mut v1 = real.clone();
    v1["MessageId"] = "forged-5".into();
    v1["SignatureVersion"] = "1".into();
    for (forged, why) in [
        (changed, "signature"),
        (elsewhere, "SigningCertURL"),
        (lookalike, "SigningCertURL"),
        (topic, "TopicArn"),
        (v1, "SignatureVersion"),
    ] {
        let (status, text) = post_ipn(&env, &forged.to_string()).await;
        assert_eq!(status, 403, "{why}: {text}");
        assert!(text.contains(why), "{why}: {text}");
    }
    let (status, _) = post_ipn(&env, "not json").await;
    assert_eq!(status, 400);
    assert_eq!(
        (env.order("exp-1").await, env.history_len("exp-1").await),
        before
    );
}

/// With every notification lost, the recovery worker finds orders past Amazon's deadlines (an
/// authorization older than 30 days, a checkout left for a day), asks Amazon, and moves them.
#[tokio::test]
async fn deadlines_move_orders_when_notifications_are_lost() {
    use kessai_core::clock::ManualClock;
    use std::sync::Arc;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hooks = kessai::Hooks {
        clock: Some(clock.clone()),
        recovery: Some(kessai_gateway::RecoverySettings {
            every: Duration::from_millis(100),
            waiting_after: Duration::from_secs(600),
        }),
        // Believe no notification: the deadlines alone must do it.
        ipn: Some(kessai_gateway::IpnSettings {
            extra_cert_origins: vec![],
            topic_arns: vec!["arn:aws:sns:none:0:none".into()],
        }),
        ..kessai::Hooks::default()
    };
    let env = TestEnv::start_with("deadlines", hooks).await;
    env.buy("dl-auth", 1500, false, "visa-1111").await;
    let r = env
        .mdk("Authorize", env.authorize_params("dl-left", 900, false))
        .await;
    assert_eq!(r["mstatus"], "success");
    advance_emulator(&env, 31 * 24 * 3600).await;
    clock.advance(time::Duration::days(31));
    wait_until("both orders to move", || async {
        env.order("dl-auth").await.unwrap().order.state == OrderState::Expired
            && env.order("dl-left").await.unwrap().order.state == OrderState::Expired
    })
    .await;
    let db = env.data_dir.join("sandbox.sqlite");
    common::check_order(&env, "dl-auth", &db).await.unwrap();
}

/// Cards that Amazon authorizes later: the buyer lands on the shop with mstatus "pending", the
/// order waits (commands answer E311), and Amazon's decision arrives by notification, moving the
/// order with the merchant's authorize push.
#[tokio::test]
async fn pending_authorizations_end_as_amazon_decides() {
    let env = TestEnv::start("pending-auth").await;
    let mut later_ok = env.authorize_params("pend-ok", 2500, false);
    later_ok["authorizePushUrl"] = "http://merchant.example/push".into();
    let r = env.mdk("Authorize", later_ok).await;
    let landed = common::walk_buyer(&env, &r, "visa-0701").await;
    assert_eq!(landed.path(), "/ok");
    assert_eq!(
        common::query(&landed, "mstatus").as_deref(),
        Some("pending")
    );
    assert_eq!(
        common::query(&landed, "vResultCode").as_deref(),
        Some("P001000000000000")
    );
    let r = env
        .mdk("Authorize", env.authorize_params("pend-no", 2500, false))
        .await;
    common::walk_buyer(&env, &r, "visa-4354").await;
    for id in ["pend-ok", "pend-no"] {
        assert_eq!(
            env.order(id).await.unwrap().order.state,
            OrderState::AuthorizationPending
        );
        let r = env.mdk("Capture", json!({"orderId": id})).await;
        assert_eq!(r["vResultCode"], "E311F00100000000", "{r:?}");
    }
    // Amazon decides after its review (30 s on the emulator's clock).
    advance_emulator(&env, 60).await;
    wait_until("Amazon's decisions", || async {
        env.order("pend-ok").await.unwrap().order.state == OrderState::Authorized
            && env.order("pend-no").await.unwrap().order.state == OrderState::Declined
    })
    .await;
    let r = env.mdk("Capture", json!({"orderId": "pend-ok"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let pushes: Vec<String> = env
        .store
        .pushes(&PushFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.order_id.as_str() == "pend-ok" && p.kind == PushKind::Authorize)
        .map(|p| {
            p.fields
                .iter()
                .find(|(k, _)| k == "mstatus")
                .unwrap()
                .1
                .clone()
        })
        .collect();
    assert_eq!(
        pushes,
        ["pending", "success"],
        "the pending result, then the final one"
    );
    let db = env.data_dir.join("sandbox.sqlite");
    common::check_order(&env, "pend-no", &db).await.unwrap();
}

/// A genuine notification about an object this gateway does not know (another merchant's, at the
/// same emulator): answered 200, logged, nothing changes; sent again, it is recognised.
#[tokio::test]
async fn a_notification_for_an_unknown_object_changes_nothing() {
    let a = TestEnv::start("ipn-known").await;
    a.buy("u-1", 1000, false, "visa-1111").await;
    advance_emulator(&a, 31 * 24 * 3600).await;
    wait_until("a's expiry", || async {
        a.order("u-1").await.unwrap().order.state == OrderState::Expired
    })
    .await;
    let real = envelopes(&a)
        .await
        .into_iter()
        .find(|e| e["Message"].as_str().unwrap().contains("CHARGE"))
        .unwrap();
    let b = TestEnv::start_against("ipn-unknown", &a.emulator).await;
    let (status, text) = post_ipn(&b, &real.to_string()).await;
    assert_eq!((status, text.as_str()), (200, "ignored: unknown object"));
    assert!(b.order("u-1").await.is_none());
    assert!(b
        .store
        .pushes(&PushFilter::default())
        .await
        .unwrap()
        .is_empty());
    let (status, text) = post_ipn(&b, &real.to_string()).await;
    assert_eq!((status, text.as_str()), (200, "already handled"));
}

/// Amazon declines a refund it had accepted: the notification gives the amount back (refundable
/// again), the refund's row says so, and the merchant gets an `E412` refund push.
#[tokio::test]
async fn a_declined_refund_is_refundable_again() {
    use std::sync::atomic::Ordering;
    let fe = common::FaultEnv::start("ipn-refund-declined").await;
    let env = &fe.env;
    let mut p = env.authorize_params("rd-1", 3000, true);
    p["cancelPushUrl"] = "http://merchant.example/push".into();
    let r = env.mdk("Authorize", p).await;
    common::walk_buyer(env, &r, "visa-1111").await;
    let r = env
        .mdk("Refund", json!({"orderId": "rd-1", "amount": "1000"}))
        .await;
    assert_eq!(r["refundableAmount"], "2000", "{r:?}");
    fe.amazon.refunds_declined.store(true, Ordering::SeqCst);
    // Amazon settles the refund (30 s later) and notifies; Get Refund says Declined.
    advance_emulator(env, 60).await;
    wait_until("the declined refund", || async {
        env.order("rd-1").await.unwrap().order.state == OrderState::Captured
    })
    .await;
    let o = env.order("rd-1").await.unwrap();
    assert_eq!(o.order.refunded, kessai_core::Yen::ZERO);
    assert_eq!(o.order.refundable(), kessai_core::Yen::new(3000));
    assert_eq!(
        env.store.refunds(&o.merchant, &o.order_id).await.unwrap()[0].state,
        "Declined"
    );
    let pushes = env.store.pushes(&PushFilter::default()).await.unwrap();
    let codes: Vec<&str> = pushes
        .iter()
        .filter(|p| p.kind == PushKind::Refund)
        .map(|p| {
            p.fields
                .iter()
                .find(|(k, _)| k == "vResultCode")
                .unwrap()
                .1
                .as_str()
        })
        .collect();
    assert_eq!(codes, ["S000000000000000", "E412000000000000"]);
}
