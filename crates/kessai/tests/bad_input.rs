//! Every bad input of the MDK API: a failure with its own code and a message naming the field,
//! and nothing changed (the order, its history of state changes, and Amazon Pay's objects).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Browser, TestEnv};
use kessai_amazonpay::AmazonPay;
use kessai_core::OrderState;
use kessai_store::OrderRecord;
use serde_json::{json, Map, Value};

fn expect_failure(r: &Map<String, Value>, code: &str, field_in_message: &str) {
    assert_eq!(r["mstatus"], "failure", "{r:?}");
    assert_eq!(r["vResultCode"].as_str().unwrap(), code, "{r:?}");
    assert_eq!(r["vResultCode"].as_str().unwrap().len(), 16);
    let msg = r["merrMsg"].as_str().unwrap();
    assert!(
        msg.contains(field_in_message),
        "message {msg:?} should name {field_in_message}"
    );
}

/// Order and Amazon state that must not move when a command is refused.
async fn snapshot(env: &TestEnv, order_id: &str) -> (Option<OrderRecord>, Option<String>) {
    let o = env.order(order_id).await;
    let charge = match o.as_ref().and_then(|o| o.charge_id.clone()) {
        Some(id) => {
            let c = env.amazon().await.get_charge(&id).await.unwrap();
            Some(
                serde_json::to_string(&(
                    c.status_details.state,
                    c.capture_amount,
                    c.refunded_amount,
                ))
                .unwrap(),
            )
        }
        None => None,
    };
    (o, charge)
}

#[tokio::test]
async fn envelope_and_authentication_errors() {
    let env = TestEnv::start("bad-envelope").await;
    let params = json!({"orderId": "x1", "amount": "100", "txnVersion": "2.0.0", "dummyRequest": "1", "merchantCcid": env.ccid});
    let text = params.to_string();

    // wrong authHash
    let hash = kessai_gateway::mdk::auth_hash(&env.ccid, &text, "00");
    let r = env
        .mdk_raw(
            "Authorize",
            format!(r#"{{"params":{text},"authHash":"{hash}"}}"#),
            "application/json",
        )
        .await;
    expect_failure(&r, "E101F01800000000", "authHash");

    // a hash over a re-serialisation is not accepted: the params text must be hashed as sent
    let spaced = text.replace(",", ", ");
    let hash = kessai_gateway::mdk::auth_hash(&env.ccid, &text, &env.secret);
    let r = env
        .mdk_raw(
            "Authorize",
            format!(r#"{{"params":{spaced},"authHash":"{hash}"}}"#),
            "application/json",
        )
        .await;
    expect_failure(&r, "E101F01800000000", "authHash");

    // unknown merchantCcid
    let other = json!({"orderId": "x1", "amount": "100", "dummyRequest": "1", "merchantCcid": "A100000000000000nobody00"}).to_string();
    let hash = kessai_gateway::mdk::auth_hash("A100000000000000nobody00", &other, &env.secret);
    let r = env
        .mdk_raw(
            "Authorize",
            format!(r#"{{"params":{other},"authHash":"{hash}"}}"#),
            "application/json",
        )
        .await;
    expect_failure(&r, "E102F01500000000", "merchantCcid");

    // dummyRequest "1" on the production path
    let body = kessai_gateway::mdk::encode_request(&params, &env.ccid, &env.secret);
    let r = env
        .mdk_path(
            "/paynow/v2/Authorize/amazonpay",
            body,
            "application/x-www-form-urlencoded",
        )
        .await;
    expect_failure(&r, "E103F01700000000", "dummyRequest");
    // dummyRequest "0" on the test path
    let mut p0 = params.clone();
    p0["dummyRequest"] = "0".into();
    let body = kessai_gateway::mdk::encode_request(&p0, &env.ccid, &env.secret);
    let r = env
        .mdk_raw("Authorize", body, "application/x-www-form-urlencoded")
        .await;
    expect_failure(&r, "E103F01700000000", "dummyRequest");

    // malformed JSON, missing params, missing authHash
    let r = env
        .mdk_raw(
            "Authorize",
            "%7Bnot+json".into(),
            "application/x-www-form-urlencoded",
        )
        .await;
    expect_failure(&r, "E104000000000000", "JSON");
    let r = env
        .mdk_raw(
            "Authorize",
            r#"{"authHash":"00"}"#.into(),
            "application/json",
        )
        .await;
    expect_failure(&r, "E105F01900000000", "params");
    let r = env
        .mdk_raw(
            "Authorize",
            format!(r#"{{"params":{text}}}"#),
            "application/json",
        )
        .await;
    expect_failure(&r, "E108F01800000000", "authHash");

    // body over 64 KiB
    let big = json!({"orderId": "x1", "amount": "100", "noteToBuyer": "a".repeat(70_000), "dummyRequest": "1", "merchantCcid": env.ccid});
    let body = kessai_gateway::mdk::encode_request(&big, &env.ccid, &env.secret);
    let r = env
        .mdk_raw("Authorize", body, "application/x-www-form-urlencoded")
        .await;
    expect_failure(&r, "E106000000000000", "64 KiB");

    // unknown command, wrong service type
    let body = kessai_gateway::mdk::encode_request(&params, &env.ccid, &env.secret);
    let r = env
        .mdk_raw("Explode", body.clone(), "application/x-www-form-urlencoded")
        .await;
    expect_failure(&r, "E107000000000000", "Explode");
    let r = env
        .mdk_path(
            "/test-paynow/v2/Authorize/card",
            body,
            "application/x-www-form-urlencoded",
        )
        .await;
    expect_failure(&r, "E107000000000000", "card");

    // none of these created the order
    assert!(env.order("x1").await.is_none());
}

#[tokio::test]
async fn authorize_field_errors() {
    let env = TestEnv::start("bad-fields").await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"orderId": "f1", "amount": "0"}),
            "E206F00200000000",
            "amount",
        ),
        (
            json!({"orderId": "f1", "amount": "10000001"}),
            "E207F00200000000",
            "amount",
        ),
        (
            json!({"orderId": "f1", "amount": "1.5"}),
            "E202F00200000000",
            "amount",
        ),
        (
            json!({"orderId": "f1", "amount": "-1"}),
            "E203F00200000000",
            "amount",
        ),
        (
            json!({"orderId": "f1", "amount": "１００"}),
            "E204F00200000000",
            "amount",
        ),
        (
            json!({"orderId": "f1", "amount": "12a"}),
            "E205F00200000000",
            "amount",
        ),
        (
            json!({"orderId": "f1", "amount": true}),
            "E212F00200000000",
            "amount",
        ),
        (json!({"orderId": "f1"}), "E201F00200000000", "amount"),
        (
            json!({"orderId": "a".repeat(101), "amount": "100"}),
            "E208F00100000000",
            "orderId",
        ),
        (
            json!({"orderId": "a/b", "amount": "100"}),
            "E209F00100000000",
            "orderId",
        ),
        (json!({"amount": "100"}), "E201F00100000000", "orderId"),
        (
            json!({"orderId": "f1", "amount": "100", "withCapture": "yes"}),
            "E210F00300000000",
            "withCapture",
        ),
        (
            json!({"orderId": "f1", "amount": "100", "successUrl": "not a url"}),
            "E213F00600000000",
            "successUrl",
        ),
        (
            json!({"orderId": "f1", "amount": "100", "noteToBuyer": "あ".repeat(256)}),
            "E208F00900000000",
            "noteToBuyer",
        ),
        (
            json!({"orderId": "f1", "amount": "100", "frequencyUnit": "Month"}),
            "E211F02200000000",
            "frequencyUnit",
        ),
        (
            json!({"orderId": "f1", "amount": "100", "accountingType": "1"}),
            "E201F02200000000",
            "frequencyUnit",
        ),
        (
            json!({"orderId": "f1", "amount": "100", "accountingType": "2"}),
            "E210F00400000000",
            "accountingType",
        ),
        (
            json!({"orderId": "f1", "amount": "100", "payConfirmScreenUrl": "http://m.example/c"}),
            "E211F02700000000",
            "payConfirmScreenUrl",
        ),
    ];
    for (params, code, field) in cases {
        let r = env.mdk("Authorize", params.clone()).await;
        expect_failure(&r, code, field);
    }
    assert!(
        env.order("f1").await.is_none(),
        "no bad Authorize created an order"
    );
}

#[tokio::test]
async fn command_and_state_errors_change_nothing() {
    let env = TestEnv::start("bad-state").await;
    // An authorized order.
    env.buy("s1", 3000, false, "visa-1111").await;
    let before = snapshot(&env, "s1").await;

    // duplicate orderId
    let r = env
        .mdk("Authorize", env.authorize_params("s1", 3000, false))
        .await;
    expect_failure(&r, "E301F00100000000", "orderId");
    // refund before capture
    let r = env
        .mdk("Refund", json!({"orderId": "s1", "amount": "100"}))
        .await;
    expect_failure(&r, "E304F00100000000", "orderId");
    // capture above the authorized amount
    let r = env
        .mdk("Capture", json!({"orderId": "s1", "amount": "3001"}))
        .await;
    expect_failure(&r, "E306F00200000000", "amount");
    // bad capture amount
    let r = env
        .mdk("Capture", json!({"orderId": "s1", "amount": "1.5"}))
        .await;
    expect_failure(&r, "E202F00200000000", "amount");
    // unknown order id, for every command
    for command in ["Capture", "Cancel", "Refund", "GetAddress"] {
        let r = env.mdk(command, json!({"orderId": "nope"})).await;
        expect_failure(&r, "E302F00100000000", "orderId");
    }
    assert_eq!(
        snapshot(&env, "s1").await,
        before,
        "refusals changed nothing"
    );

    // capture, then: a second capture, cancel after capture, refund above refundable
    let r = env
        .mdk("Capture", json!({"orderId": "s1", "amount": "2000"}))
        .await;
    assert_eq!(r["mstatus"], "success");
    let captured = snapshot(&env, "s1").await;
    let r = env
        .mdk("Capture", json!({"orderId": "s1", "amount": "100"}))
        .await;
    expect_failure(&r, "E303F00100000000", "orderId");
    let r = env.mdk("Cancel", json!({"orderId": "s1"})).await;
    expect_failure(&r, "E305F00100000000", "orderId");
    let r = env
        .mdk("Refund", json!({"orderId": "s1", "amount": "2001"}))
        .await;
    expect_failure(&r, "E307F00200000000", "amount");
    assert_eq!(r["refundableAmount"], "2000");
    assert_eq!(
        snapshot(&env, "s1").await,
        captured,
        "refusals changed nothing"
    );

    // UpdateAuthorize after capture.
    let r = env
        .mdk("UpdateAuthorize", json!({"orderId": "s1", "amount": "100"}))
        .await;
    expect_failure(&r, "E303F00100000000", "orderId");
    assert_eq!(
        snapshot(&env, "s1").await,
        captured,
        "refusals changed nothing"
    );

    // Every command attempt on the order, refused or not, is in its history: the 5 steps of the
    // purchase (Authorize, the session bound, signed in, confirmed, completed), 3 refusals, the
    // capture, 4 refusals. (A duplicate Authorize never reaches the order.)
    assert_eq!(env.history_len("s1").await, 5 + 3 + 1 + 4);
}

#[tokio::test]
async fn buyer_returning_with_another_orders_session_is_refused() {
    let env = TestEnv::start("bad-session").await;
    let a = env
        .mdk("Authorize", env.authorize_params("sa", 100, false))
        .await;
    env.mdk("Authorize", env.authorize_params("sb", 200, false))
        .await;
    let mut browser = Browser::new(&env.http);
    // The buyer of A signs in at Amazon and is sent back to Kessai.
    let signin = browser
        .submit(a["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    assert_eq!(signin.status, 200);
    let a_before = env.order("sa").await.unwrap();
    let b_before = env.order("sb").await.unwrap();
    // The session A's button made (A's payload, signed by the merchant's key).
    let a_session = common::query(
        &url::Url::parse(&signin.url).unwrap(),
        "amazonCheckoutSessionId",
    )
    .expect("the sign-in page names its session");
    // ... but with B's return URL and A's session id.
    let url = format!(
        "{}/amazonpay/review/{}?amazonCheckoutSessionId={a_session}",
        env.gateway, b_before.public_ref
    );
    let page = browser.go(reqwest::Method::GET, url.clone(), None).await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("mstatus=failure"), "{}", page.html);
    assert!(page.html.contains("E310F02000000000"), "{}", page.html);
    assert!(
        page.html.contains("amazonCheckoutSessionId"),
        "{}",
        page.html
    );
    // The same for the result URL.
    let url = format!(
        "{}/amazonpay/result/{}?amazonCheckoutSessionId={a_session}",
        env.gateway, b_before.public_ref
    );
    let page = browser.go(reqwest::Method::GET, url, None).await;
    assert_eq!(page.status, 400);
    assert_eq!(env.order("sa").await.unwrap(), a_before);
    assert_eq!(env.order("sb").await.unwrap(), b_before);
    assert_eq!(b_before.order.state, OrderState::Started);
    assert_eq!(b_before.checkout_session_id, None);
    let cs = env
        .amazon()
        .await
        .get_checkout_session(&a_session)
        .await
        .unwrap();
    assert_eq!(cs.status_details.state.as_str(), "Open");
    // A's own return still works: the buyer signs in and comes back to A's review URL.
    let page = browser.submit_page(signin, &[]).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.url.contains(&a_before.public_ref), "{}", page.url);
    assert_eq!(
        env.order("sa").await.unwrap().checkout_session_id,
        Some(a_session)
    );
}

#[tokio::test]
async fn concurrent_captures_move_money_once() {
    let env = std::sync::Arc::new(TestEnv::start("race").await);
    env.buy("race-1", 1000, false, "visa-1111").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            env.mdk("Capture", json!({"orderId": "race-1", "amount": "600"}))
                .await
        }));
    }
    let mut successes = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r["mstatus"] == "success" {
            successes += 1;
        } else {
            assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E303", "{r:?}");
        }
    }
    assert_eq!(successes, 1);
    let o = env.order("race-1").await.unwrap();
    assert_eq!(o.order.captured.get(), 600);
    let charge = env
        .amazon()
        .await
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.capture_amount.unwrap().amount, "600");
}

/// A checkout session someone made for this order's review URL and reference, but not from the
/// order's signed payload: with another amount (the merchant's own key), or at another store (a
/// key of another merchant at the same Amazon Pay). Returning with it binds nothing and changes
/// nothing; the order's own button still works afterwards.
#[tokio::test]
async fn a_session_that_is_not_the_orders_payload_is_refused_at_the_review_url() {
    use kessai_amazonpay::wire::{
        CreateCheckoutSessionRequest, MerchantMetadataRequest, PaymentDetailsRequest,
        PaymentIntent, Price, WebCheckoutDetailsRequest,
    };
    use kessai_amazonpay::{AmazonPayClient, ClientConfig, PrivateKey};
    let env = TestEnv::start("foreign-session").await;
    let r = env
        .mdk("Authorize", env.authorize_params("fs-1", 1000, false))
        .await;
    let before = env.order("fs-1").await.unwrap();
    let review = format!("{}/amazonpay/review/{}", env.gateway, before.public_ref);
    let request = |store_id: &str, amount: &str| CreateCheckoutSessionRequest {
        web_checkout_details: WebCheckoutDetailsRequest {
            checkout_review_return_url: Some(review.clone()),
            checkout_result_return_url: None,
            checkout_cancel_url: None,
        },
        store_id: store_id.to_owned(),
        charge_permission_type: None,
        recurring_metadata: None,
        payment_details: Some(PaymentDetailsRequest {
            payment_intent: Some(PaymentIntent::Authorize),
            can_handle_pending_authorization: Some(true),
            charge_amount: Some(Price {
                amount: amount.into(),
                currency_code: "JPY".into(),
            }),
            total_order_amount: None,
            presentment_currency: None,
            extend_expiration: None,
        }),
        merchant_metadata: Some(MerchantMetadataRequest {
            merchant_reference_id: Some("fs-1".into()),
            merchant_store_name: None,
            note_to_buyer: None,
            custom_information: None,
        }),
        platform_id: None,
        delivery_specifications: None,
    };
    // ¥1 instead of ¥1,000, made with the merchant's own key.
    let merchant = env.amazon().await;
    let cheap = merchant
        .create_checkout_session(&request(merchant.store_id(), "1"), "foreign-1")
        .await
        .unwrap();
    // The same order's URL and reference, at another merchant's store.
    let endpoint = url::Url::parse(&env.emulator).unwrap();
    let other_key = PrivateKey::generate().unwrap();
    let (other_id, other_store) = kessai::register_key(&endpoint, &other_key).await.unwrap();
    let other = AmazonPayClient::new(
        ClientConfig {
            endpoint,
            public_key_id: other_id,
            region: "jp".into(),
            store_id: other_store.clone(),
            timeout: std::time::Duration::from_secs(10),
        },
        std::sync::Arc::new(other_key),
    )
    .unwrap();
    let foreign = other
        .create_checkout_session(&request(&other_store, "1000"), "foreign-2")
        .await
        .unwrap();
    let mut browser = Browser::new(&env.http);
    for (session, says) in [
        (&cheap.checkout_session_id, "has another amount"),
        // Amazon shows a merchant no other merchant's session: to Kessai it does not exist.
        (&foreign.checkout_session_id, "does not exist"),
        (&"no-such-session".to_owned(), "does not exist"),
    ] {
        let url = format!("{review}?amazonCheckoutSessionId={session}");
        let page = browser.go(reqwest::Method::GET, url, None).await;
        assert_eq!(page.status, 400, "{says}: {}", page.html);
        assert!(page.html.contains("E310F02000000000"), "{}", page.html);
        assert!(page.html.contains(says), "{says}: {}", page.html);
        assert_eq!(env.order("fs-1").await.unwrap(), before, "{says}");
    }
    // The review URL without a session, for an order that has none bound: refused, nothing bound.
    let page = browser.go(reqwest::Method::GET, review.clone(), None).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(page.html.contains("E201F020"), "{}", page.html);
    assert_eq!(env.order("fs-1").await.unwrap(), before);
    // The order's own button still leads to a payment.
    let landed = common::walk_buyer(&env, &r, "visa-1111").await;
    assert_eq!(landed.path(), "/ok");
    assert_eq!(
        env.order("fs-1").await.unwrap().order.state,
        OrderState::Authorized
    );
}
