//! The JSON forms real MDK clients send: the MDK `json_encode`s what the merchant's code set, so
//! `"amount":100` and `"withCapture":true` arrive as often as `"100"` and `"true"`. Integers and
//! booleans in the MDK's number and flag fields do what their strings do; every other form is
//! refused with its own code, names the field and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{walk_buyer, TestEnv, MERCHANT_SITE};
use kessai_core::OrderState;
use serde_json::{json, Map, Value};

/// Sends `params_json` (an object's members, written exactly as given, without the common
/// fields) as the body of `command`, hashed over that exact text.
async fn send_text(env: &TestEnv, command: &str, params_json: &str) -> Map<String, Value> {
    let text = format!(
        r#"{{{params_json},"txnVersion":"2.0.0","dummyRequest":"1","merchantCcid":"{}"}}"#,
        env.ccid
    );
    let hash = kessai_gateway::mdk::auth_hash(&env.ccid, &text, &env.secret);
    env.mdk_raw(
        command,
        format!(r#"{{"params":{text},"authHash":"{hash}"}}"#),
        "application/json",
    )
    .await
}

fn urls() -> Value {
    json!({
        "successUrl": format!("{MERCHANT_SITE}/ok"),
        "cancelUrl": format!("{MERCHANT_SITE}/cancel"),
        "errorUrl": format!("{MERCHANT_SITE}/error"),
    })
}

fn with_urls(mut params: Value) -> Value {
    for (k, v) in urls().as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

fn expect_refused(r: &Map<String, Value>, code: &str, field: &str) {
    assert_eq!(r["mstatus"], "failure", "{r:?}");
    assert_eq!(r["vResultCode"], code, "{r:?}");
    let msg = r["merrMsg"].as_str().unwrap();
    assert!(msg.contains(field), "{msg:?} names {field}");
}

/// Authorizes `order_id` with `params` and walks the buyer through; returns where they land.
async fn buy_with(env: &TestEnv, params: Value) -> url::Url {
    let r = env.mdk("Authorize", with_urls(params)).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    walk_buyer(env, &r, "visa-1111").await
}

#[tokio::test]
async fn integers_and_booleans_do_what_their_strings_do() {
    let env = TestEnv::start("json-forms-ok").await;
    // The same purchase twice: once as the MDK's samples send it, once as json_encode of ints
    // and bools does.
    let strings = json!({"orderId": "as-strings", "amount": "3240", "withCapture": "false",
        "accountingType": "0", "payConfirmScreenType": "0",
        "suppressShippingAddressView": "false", "extendExpiration": "true"});
    let typed = json!({"orderId": "as-json", "amount": 3240, "withCapture": false,
        "accountingType": 0, "payConfirmScreenType": 0,
        "suppressShippingAddressView": false, "extendExpiration": true});
    let landed_s = buy_with(&env, strings).await;
    let landed_t = buy_with(&env, typed).await;
    assert_eq!(landed_s.path(), landed_t.path());
    let (s, t) = (
        env.order("as-strings").await.unwrap(),
        env.order("as-json").await.unwrap(),
    );
    assert_eq!(t.order.state, OrderState::Authorized);
    assert_eq!(
        (t.order.state, t.order.amount, t.with_capture, &t.options),
        (s.order.state, s.order.amount, s.with_capture, &s.options)
    );
    assert!(t.options.extend_expiration);
    assert_eq!(t.options.suppress_shipping_address_view, Some(false));

    // withCapture: true captures at once, as "true" does.
    buy_with(
        &env,
        json!({"orderId": "capture-now", "amount": 1980, "withCapture": true}),
    )
    .await;
    let o = env.order("capture-now").await.unwrap();
    assert_eq!(o.order.state, OrderState::Captured);
    assert_eq!(o.order.captured.get(), 1980);

    // Capture and Refund amounts as integers.
    let r = env
        .mdk("Capture", json!({"orderId": "as-json", "amount": 3000}))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let r = env
        .mdk("Refund", json!({"orderId": "as-json", "amount": 500}))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(r["refundableAmount"], "2500");
    let o = env.order("as-json").await.unwrap();
    assert_eq!(
        (o.order.captured.get(), o.order.refunded.get()),
        (3000, 500)
    );

    // GetAddress's addInfoRespFlag 1 adds the buyer's and billing data, as "1" does.
    let as_string = env
        .mdk(
            "GetAddress",
            json!({"orderId": "as-json", "addInfoRespFlag": "1"}),
        )
        .await;
    let as_int = env
        .mdk(
            "GetAddress",
            json!({"orderId": "as-json", "addInfoRespFlag": 1}),
        )
        .await;
    let plain = env.mdk("GetAddress", json!({"orderId": "as-json"})).await;
    assert_eq!(as_int["mstatus"], "success", "{as_int:?}");
    let keys = |m: &Map<String, Value>| {
        m.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .filter(|k| k != "marchTxn" && k != "custTxn" && k != "centerResponseDatetime")
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&as_int), keys(&as_string));
    assert!(
        keys(&as_int).len() > keys(&plain).len(),
        "addInfoRespFlag 1 adds fields: {:?} vs {:?}",
        keys(&as_int),
        keys(&plain)
    );
}

#[tokio::test]
async fn other_forms_are_refused_by_field_and_change_nothing() {
    let env = TestEnv::start("json-forms-refused").await;
    let authorize: &[(&str, &str, &str)] = &[
        (r#""amount":1.5"#, "E202F00200000000", "amount"),
        (r#""amount":-1"#, "E203F00200000000", "amount"),
        (r#""amount":1e3"#, "E205F00200000000", "amount"),
        (r#""amount":100.0"#, "E205F00200000000", "amount"),
        (r#""amount":"１００""#, "E204F00200000000", "amount"),
        (r#""amount":true"#, "E212F00200000000", "amount"),
        (r#""amount":[100]"#, "E212F00200000000", "amount"),
        (r#""amount":0"#, "E206F00200000000", "amount"),
        (r#""amount":10000001"#, "E207F00200000000", "amount"),
        (
            r#""amount":100,"withCapture":"maybe""#,
            "E210F00300000000",
            "withCapture",
        ),
        (
            r#""amount":100,"withCapture":1"#,
            "E212F00300000000",
            "withCapture",
        ),
        (
            r#""amount":100,"accountingType":2"#,
            "E210F00400000000",
            "accountingType",
        ),
        (
            r#""amount":100,"accountingType":false"#,
            "E212F00400000000",
            "accountingType",
        ),
        (
            r#""amount":100,"payConfirmScreenType":0.5"#,
            "E202F00500000000",
            "payConfirmScreenType",
        ),
        (
            r#""amount":100,"noteToBuyer":12"#,
            "E212F00900000000",
            "noteToBuyer",
        ),
        (
            r#""amount":100,"extendExpiration":"yes""#,
            "E210F02800000000",
            "extendExpiration",
        ),
    ];
    for (fields, code, field) in authorize {
        let r = send_text(&env, "Authorize", &format!(r#""orderId":"r1",{fields}"#)).await;
        expect_refused(&r, code, field);
    }
    // A number is not an order id.
    let r = send_text(&env, "Authorize", r#""orderId":12345,"amount":100"#).await;
    expect_refused(&r, "E212F00100000000", "orderId");
    assert!(env.order("r1").await.is_none(), "no refusal created r1");
    assert!(env.order("12345").await.is_none());

    // On an authorized order: Capture and Refund amounts in refused forms change nothing.
    buy_with(&env, json!({"orderId": "r2", "amount": 2000})).await;
    let before = env.order("r2").await.unwrap();
    for (fields, code) in [
        (r#""amount":1.5"#, "E202F00200000000"),
        (r#""amount":-5"#, "E203F00200000000"),
        (r#""amount":2e3"#, "E205F00200000000"),
        (r#""amount":false"#, "E212F00200000000"),
    ] {
        let r = send_text(&env, "Capture", &format!(r#""orderId":"r2",{fields}"#)).await;
        expect_refused(&r, code, "amount");
    }
    let r = send_text(
        &env,
        "GetAddress",
        r#""orderId":"r2","addInfoRespFlag":true"#,
    )
    .await;
    expect_refused(&r, "E212F01400000000", "addInfoRespFlag");
    let after = env.order("r2").await.unwrap();
    assert_eq!(after.order, before.order, "refusals changed nothing");
    assert_eq!(after.version, before.version);
}

#[tokio::test]
async fn recurring_fields_as_integers() {
    let env = TestEnv::start("json-forms-recurring").await;
    // A consent with its first charge, every 3 months, written as json_encode writes integers.
    let r = env
        .mdk(
            "Authorize",
            with_urls(
                json!({"orderId": "sub-json", "amount": 980, "accountingType": 1,
                "consentAuthType": 1, "frequencyUnit": "Month", "frequencyValue": 3,
                "withCapture": false}),
            ),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    walk_buyer(&env, &r, "visa-1111").await;
    let o = env.order("sub-json").await.unwrap();
    let consent = o.consent.expect("a recurring order has a consent");
    assert_eq!((consent.amount.get(), consent.frequency.value()), (980, 3));
    assert!(consent.with_authorization);
    assert_eq!(o.order.state, OrderState::Authorized);

    // UpdateConsent with integers; ReAuthorize with an integer amount and a boolean.
    let r = env
        .mdk(
            "UpdateConsent",
            json!({"orderId": "sub-json", "amount": 1200, "frequencyUnit": "Week", "frequencyValue": 2}),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let consent = env.order("sub-json").await.unwrap().consent.unwrap();
    assert_eq!((consent.amount.get(), consent.frequency.value()), (1200, 2));
    let r = env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "sub-json-2", "originalOrderId": "sub-json", "amount": 1200, "withCapture": true}),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(
        env.order("sub-json-2").await.unwrap().order.captured.get(),
        1200
    );

    // Refused forms name their field and change nothing.
    let before = env.order("sub-json").await.unwrap();
    for (fields, code, field) in [
        (
            r#""frequencyValue":1.5"#,
            "E202F02300000000",
            "frequencyValue",
        ),
        (
            r#""frequencyValue":13"#,
            "E207F02300000000",
            "frequencyValue",
        ),
        (
            r#""frequencyValue":true"#,
            "E212F02300000000",
            "frequencyValue",
        ),
        (
            r#""frequencyValue":-2"#,
            "E203F02300000000",
            "frequencyValue",
        ),
    ] {
        let r = send_text(
            &env,
            "UpdateConsent",
            &format!(r#""orderId":"sub-json","amount":1500,"frequencyUnit":"Month",{fields}"#),
        )
        .await;
        expect_refused(&r, code, field);
    }
    let after = env.order("sub-json").await.unwrap();
    assert_eq!(after.consent, before.consent, "refusals changed nothing");
    let r = send_text(
        &env,
        "Authorize",
        r#""orderId":"sub-bad","amount":980,"accountingType":1,"consentAuthType":2,"frequencyUnit":"Month","frequencyValue":1"#,
    )
    .await;
    expect_refused(&r, "E210F02100000000", "consentAuthType");
    assert!(env.order("sub-bad").await.is_none());
}
