//! The `Idempotency-Key` header: same key and request → the same answer, byte for byte, and one
//! operation at Amazon; another request → `E111`; a bad key → `E110`; a duplicate storm of 200
//! concurrent requests on one order moves money once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::faults::{Call, Fault};
use common::FaultEnv;
use kessai_amazonpay::AmazonPay;
use kessai_core::Yen;
use serde_json::{json, Value};

fn result(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap()["result"].clone()
}

async fn refunds_at_emulator(fe: &FaultEnv, order_id: &str) -> usize {
    let charge_id = fe.env.order(order_id).await.unwrap().charge_id.unwrap();
    fe.emulator_count("refund", "/refund/chargeId", &charge_id)
        .await
}

#[tokio::test]
async fn same_key_same_answer_other_request_refused_bad_keys_refused() {
    let fe = FaultEnv::start("idem").await;
    let env = &fe.env;
    env.buy("i-1", 5000, true, "visa-1111").await;
    let refund = json!({"orderId": "i-1", "amount": "1000"});
    let first = env.mdk_keyed("Refund", refund.clone(), Some("key-1")).await;
    assert_eq!(result(&first)["mstatus"], "success", "{first}");
    let again = env.mdk_keyed("Refund", refund.clone(), Some("key-1")).await;
    assert_eq!(
        again, first,
        "the same answer, byte for byte (marchTxn included)"
    );
    assert_eq!(refunds_at_emulator(&fe, "i-1").await, 1);
    assert_eq!(
        env.order("i-1").await.unwrap().order.refunded,
        Yen::new(1000)
    );

    // The same key with another amount: refused, nothing changes.
    let before = env.order("i-1").await;
    let other = env
        .mdk_keyed(
            "Refund",
            json!({"orderId": "i-1", "amount": "2000"}),
            Some("key-1"),
        )
        .await;
    assert_eq!(result(&other)["vResultCode"], "E111000000000000", "{other}");
    assert!(result(&other)["merrMsg"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    assert_eq!(env.order("i-1").await, before);
    assert_eq!(refunds_at_emulator(&fe, "i-1").await, 1);

    // Keys that cannot be used.
    for bad in ["x".repeat(300), "tab\there".to_owned()] {
        let r = env.mdk_keyed("Refund", refund.clone(), Some(&bad)).await;
        assert_eq!(result(&r)["vResultCode"], "E110000000000000", "{r}");
        assert!(result(&r)["merrMsg"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"));
    }
    let ok = "k".repeat(255);
    let r = env.mdk_keyed("Refund", refund.clone(), Some(&ok)).await;
    assert_eq!(
        result(&r)["mstatus"],
        "success",
        "255 characters are fine: {r}"
    );
    assert_eq!(
        env.order("i-1").await.unwrap().order.refunded,
        Yen::new(2000)
    );
}

#[tokio::test]
async fn an_unknown_outcome_is_not_kept_for_the_key() {
    let fe = FaultEnv::start("idem-unknown").await;
    fe.env.buy("i-2", 3000, false, "visa-1111").await;
    fe.amazon.arm(Call::Capture, Fault::DropAnswer);
    let capture = json!({"orderId": "i-2", "amount": "3000"});
    let first = fe
        .env
        .mdk_keyed("Capture", capture.clone(), Some("cap"))
        .await;
    assert_eq!(result(&first)["vResultCode"], "E500000000000000", "{first}");
    let retry = fe
        .env
        .mdk_keyed("Capture", capture.clone(), Some("cap"))
        .await;
    assert_eq!(result(&retry)["mstatus"], "success", "{retry}");
    let again = fe.env.mdk_keyed("Capture", capture, Some("cap")).await;
    assert_eq!(again, retry, "the final answer is kept");
}

#[tokio::test]
async fn a_duplicate_storm_moves_money_once() {
    let fe = FaultEnv::start("idem-storm").await;
    let env = &fe.env;
    env.buy("storm", 9000, false, "visa-1111").await;

    // 200 identical Captures at once, no key: one capture at Amazon, one success.
    let captures = (0..200).map(|_| env.mdk_keyed("Capture", json!({"orderId": "storm"}), None));
    let answers = futures_util::future::join_all(captures).await;
    let ok = answers
        .iter()
        .filter(|a| result(a)["mstatus"] == "success")
        .count();
    assert_eq!(ok, 1, "one capture succeeded");
    for a in &answers {
        let code = result(a)["vResultCode"].as_str().unwrap().to_owned();
        assert!(
            code.starts_with("S000") || code.starts_with("E303"),
            "{code}"
        );
    }
    let o = env.order("storm").await.unwrap();
    assert_eq!(o.order.captured, Yen::new(9000));
    let charge = env
        .amazon()
        .await
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.capture_amount.unwrap().amount, "9000");

    // 200 Refunds at once with one Idempotency-Key: one refund at Amazon, 200 identical answers.
    let refunds = (0..200).map(|_| {
        env.mdk_keyed(
            "Refund",
            json!({"orderId": "storm", "amount": "700"}),
            Some("storm-refund"),
        )
    });
    let answers = futures_util::future::join_all(refunds).await;
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "identical answers"
    );
    assert_eq!(result(&answers[0])["mstatus"], "success");
    assert_eq!(refunds_at_emulator(&fe, "storm").await, 1);
    let o = env.order("storm").await.unwrap();
    assert_eq!(o.order.refunded, Yen::new(700));
    assert!(o.order.invariants_hold());
    println!("duplicate storm: 200 Captures → 1 capture; 200 keyed Refunds → 1 refund, 200 identical answers");
}

/// A key claimed by a request still running in another process: `E112`, and nothing is done.
#[tokio::test]
async fn a_key_in_flight_elsewhere_is_refused_and_changes_nothing() {
    use sha2::{Digest, Sha256};
    let fe = FaultEnv::start("idem-in-flight").await;
    let env = &fe.env;
    env.buy("i-3", 4000, true, "visa-1111").await;
    let refund = json!({"orderId": "i-3", "amount": "500"});
    // The params text exactly as the request below sends it, and its fingerprint.
    let mut params = refund.as_object().cloned().unwrap();
    params.insert("txnVersion".into(), "2.0.0".into());
    params.insert("dummyRequest".into(), "1".into());
    params.insert("merchantCcid".into(), env.ccid.clone().into());
    let mut h = Sha256::new();
    h.update(b"Refund\0");
    h.update(Value::Object(params).to_string().as_bytes());
    let fingerprint = hex::encode(h.finalize());
    let ccid = kessai_core::MerchantCcid::parse(&env.ccid).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claim = env
        .store
        .claim_key(&ccid, "busy", &fingerprint, now, 300)
        .await
        .unwrap();
    assert_eq!(claim, kessai_store::KeyClaim::New);
    let before = (env.order("i-3").await, env.history_len("i-3").await);
    let r = env.mdk_keyed("Refund", refund, Some("busy")).await;
    assert_eq!(result(&r)["vResultCode"], "E112000000000000", "{r}");
    assert!(result(&r)["merrMsg"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    assert_eq!(
        (env.order("i-3").await, env.history_len("i-3").await),
        before
    );
    assert_eq!(refunds_at_emulator(&fe, "i-3").await, 0);
}
