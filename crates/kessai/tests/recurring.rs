//! Recurring (随時) orders end to end against the emulator: consent with a first charge, consent
//! only, ReAuthorize, UpdateConsent, Terminate, and what each refuses; the buyer's pages are
//! walked without script.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ok, refused, walk_buyer, TestEnv, MERCHANT_SITE};
use kessai_amazonpay::wire::{ChargePermissionState, ChargePermissionType, ChargeState};
use kessai_amazonpay::AmazonPay;
use kessai_core::{ConsentState, FrequencyUnit, OrderState, Yen};
use serde_json::{json, Value};

fn subscription(order_id: &str, amount: u64, consent_auth_type: &str) -> Value {
    json!({
        "orderId": order_id,
        "amount": amount.to_string(),
        "accountingType": "1",
        "consentAuthType": consent_auth_type,
        "frequencyUnit": "Month",
        "frequencyValue": "1",
        "noteToBuyer": "毎月のお届け",
        "successUrl": format!("{MERCHANT_SITE}/ok"),
        "cancelUrl": format!("{MERCHANT_SITE}/cancel"),
        "errorUrl": format!("{MERCHANT_SITE}/error"),
        "authorizePushUrl": format!("{MERCHANT_SITE}/push/authorize"),
    })
}

async fn subscribe(
    env: &TestEnv,
    order_id: &str,
    amount: u64,
    consent_auth_type: &str,
) -> url::Url {
    let r = env
        .mdk(
            "Authorize",
            subscription(order_id, amount, consent_auth_type),
        )
        .await;
    ok(&r);
    walk_buyer(env, &r, "visa-1111").await
}

#[tokio::test]
async fn subscription_charges_changes_and_ends() {
    let env = TestEnv::start("recurring-life").await;
    let landed = subscribe(&env, "sub-1", 980, "1").await;
    assert!(landed.as_str().starts_with(&format!("{MERCHANT_SITE}/ok")));
    let order = env.order("sub-1").await.unwrap();
    assert_eq!(order.order.state, OrderState::Authorized);
    let consent = order.consent.unwrap();
    assert_eq!(consent.state, ConsentState::Active);
    assert_eq!(consent.frequency.unit(), FrequencyUnit::Month);
    let amazon = env.amazon().await;
    let cp_id = order.charge_permission_id.clone().unwrap();
    let cp = amazon.get_charge_permission(&cp_id).await.unwrap();
    assert_eq!(
        cp.charge_permission_type,
        Some(ChargePermissionType::Recurring)
    );
    let meta = cp.recurring_metadata.unwrap();
    assert_eq!(meta.frequency.unwrap().unit, "Month");
    assert_eq!(meta.amount.unwrap().amount, "980");

    // The first charge lives the one-time life.
    ok(&env.mdk("Capture", json!({"orderId": "sub-1"})).await);

    // The next month: a new order against the consent, captured at once.
    let r = env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "sub-1-m2", "originalOrderId": "sub-1", "amount": "980", "withCapture": "true"}),
        )
        .await;
    ok(&r);
    assert_eq!(r["centerOrderId"], cp_id.as_str());
    let m2 = env.order("sub-1-m2").await.unwrap();
    assert_eq!(m2.order.state, OrderState::Captured);
    assert_eq!(
        m2.original_order_id.as_ref().map(|o| o.as_str()),
        Some("sub-1")
    );
    assert_eq!(
        m2.note_to_buyer.as_deref(),
        Some("毎月のお届け"),
        "defaults to the original's"
    );
    assert_eq!(
        m2.authorize_push_url, order.authorize_push_url,
        "push URLs default to the original's"
    );
    assert!(m2.consent.is_none());
    let charge = amazon
        .get_charge(m2.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.status_details.state, ChargeState::Captured);
    assert_eq!(charge.charge_permission_id, cp_id);
    // … and is refunded like any order.
    let r = env
        .mdk("Refund", json!({"orderId": "sub-1-m2", "amount": "300"}))
        .await;
    ok(&r);
    assert_eq!(r["refundableAmount"], "680");

    // A charge authorized only, then canceled.
    ok(&env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "sub-1-m3", "originalOrderId": "sub-1", "amount": "1200"}),
        )
        .await);
    assert_eq!(
        env.order("sub-1-m3").await.unwrap().order.state,
        OrderState::Authorized
    );
    ok(&env.mdk("Cancel", json!({"orderId": "sub-1-m3"})).await);

    // Change the plan, twice.
    ok(&env
        .mdk(
            "UpdateConsent",
            json!({"orderId": "sub-1", "amount": "1500", "frequencyUnit": "Week", "frequencyValue": "2"}),
        )
        .await);
    ok(&env
        .mdk(
            "UpdateConsent",
            json!({"orderId": "sub-1", "amount": "2000", "frequencyUnit": "Month", "frequencyValue": "3"}),
        )
        .await);
    let consent = env.order("sub-1").await.unwrap().consent.unwrap();
    assert_eq!(
        (consent.amount, consent.frequency.value()),
        (Yen::new(2000), 3)
    );
    let meta = amazon
        .get_charge_permission(&cp_id)
        .await
        .unwrap()
        .recurring_metadata
        .unwrap();
    assert_eq!(meta.amount.unwrap().amount, "2000");
    assert_eq!(meta.frequency.unwrap().value, "3");

    // End it: closed at Amazon; nothing more can be charged or changed.
    let r = env
        .mdk(
            "Terminate",
            json!({"orderId": "sub-1", "closureReason": "解約"}),
        )
        .await;
    ok(&r);
    let cp = amazon.get_charge_permission(&cp_id).await.unwrap();
    assert_eq!(cp.status_details.state, ChargePermissionState::Closed);
    assert_eq!(
        env.order("sub-1").await.unwrap().consent.unwrap().state,
        ConsentState::Terminated
    );
    let r = env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "sub-1-m4", "originalOrderId": "sub-1", "amount": "980"}),
        )
        .await;
    refused(&r, "E317", "originalOrderId");
    assert!(env.order("sub-1-m4").await.is_none(), "no order was made");
    let r = env
        .mdk(
            "UpdateConsent",
            json!({"orderId": "sub-1", "amount": "900", "frequencyUnit": "Month", "frequencyValue": "1"}),
        )
        .await;
    refused(&r, "E317", "orderId");
    refused(
        &env.mdk("Terminate", json!({"orderId": "sub-1"})).await,
        "E317",
        "orderId",
    );
    // The charges already made are untouched.
    assert_eq!(
        env.order("sub-1-m2").await.unwrap().order.refunded,
        Yen::new(300)
    );
}

#[tokio::test]
async fn consent_only_moves_no_money_until_charged() {
    let env = TestEnv::start("recurring-consent-only").await;
    let r = env.mdk("Authorize", subscription("c-1", 500, "0")).await;
    ok(&r);
    // The pages say no money moves now.
    let html = r["responseContents"].as_str().unwrap().to_owned();
    let mut browser = common::Browser::new(&env.http);
    let page = browser.submit(&html, &env.gateway, &[]).await;
    let page = browser
        .submit_page(page, &[("instrument", "visa-1111")])
        .await;
    assert!(page.html.contains("no payment now"), "{}", page.html);
    assert!(page.html.contains("¥500"), "{}", page.html);
    let page = browser.submit_page(page, &[]).await;
    let landed = browser.submit_page(page, &[]).await;
    assert!(landed
        .merchant_url
        .unwrap()
        .as_str()
        .starts_with(&format!("{MERCHANT_SITE}/ok")));

    let order = env.order("c-1").await.unwrap();
    assert_eq!(order.order.state, OrderState::Consented);
    assert_eq!(order.order.authorized, Yen::ZERO);
    assert!(order.charge_id.is_none());
    assert_eq!(order.consent.unwrap().state, ConsentState::Active);
    for command in ["Capture", "Cancel", "Refund"] {
        let r = env.mdk(command, json!({"orderId": "c-1"})).await;
        refused(&r, "E315", "orderId");
    }
    let r = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "c-1", "amount": "600"}),
        )
        .await;
    refused(&r, "E315", "orderId");
    ok(&env.mdk("GetAddress", json!({"orderId": "c-1"})).await);
    // "Charge now".
    ok(&env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "c-1-1", "originalOrderId": "c-1", "amount": "500"}),
        )
        .await);
    assert_eq!(
        env.order("c-1-1").await.unwrap().order.state,
        OrderState::Authorized
    );
    ok(&env.mdk("Capture", json!({"orderId": "c-1-1"})).await);
    // A consent the buyer never agreed to can be ended too.
    ok(&env.mdk("Authorize", subscription("c-2", 500, "0")).await);
    ok(&env.mdk("Terminate", json!({"orderId": "c-2"})).await);
    let r = env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "c-2-1", "originalOrderId": "c-2", "amount": "500"}),
        )
        .await;
    refused(&r, "E317", "originalOrderId");
}

#[tokio::test]
async fn reauthorize_refusals_change_nothing() {
    let env = TestEnv::start("recurring-refusals").await;
    subscribe(&env, "sub-r", 1000, "1").await;
    env.buy("one-time", 1000, false, "visa-1111").await;
    let before = env.order("sub-r").await.unwrap();
    let cases = [
        (
            json!({"orderId": "n1", "originalOrderId": "nope", "amount": "100"}),
            "E302",
            "originalOrderId",
        ),
        (
            json!({"orderId": "n1", "originalOrderId": "one-time", "amount": "100"}),
            "E316",
            "originalOrderId",
        ),
        (
            json!({"orderId": "n1", "originalOrderId": "sub-r", "amount": "0"}),
            "E206",
            "amount",
        ),
        (
            json!({"orderId": "n1", "originalOrderId": "sub-r", "amount": "100001"}),
            "E207",
            "amount",
        ),
        (
            json!({"orderId": "n1", "originalOrderId": "sub-r"}),
            "E201",
            "amount",
        ),
        (
            json!({"orderId": "n1", "amount": "100"}),
            "E201",
            "originalOrderId",
        ),
        (
            json!({"orderId": "one-time", "originalOrderId": "sub-r", "amount": "100"}),
            "E301",
            "orderId",
        ),
        (
            json!({"orderId": "sub-r", "originalOrderId": "sub-r", "amount": "100"}),
            "E301",
            "orderId",
        ),
        (
            json!({"orderId": "n1", "originalOrderId": "sub-r", "amount": "100", "withCapture": "maybe"}),
            "E210",
            "withCapture",
        ),
    ];
    for (params, block, field) in cases {
        let r = env.mdk("ReAuthorize", params.clone()).await;
        refused(&r, block, field);
    }
    assert!(env.order("n1").await.is_none());
    let after = env.order("sub-r").await.unwrap();
    assert_eq!(
        (after.order, after.consent, after.version),
        (before.order, before.consent, before.version)
    );
    // One-time orders have no consent to change or end.
    let r = env
        .mdk(
            "UpdateConsent",
            json!({"orderId": "one-time", "amount": "100", "frequencyUnit": "Month", "frequencyValue": "1"}),
        )
        .await;
    refused(&r, "E316", "orderId");
    refused(
        &env.mdk("Terminate", json!({"orderId": "one-time"})).await,
        "E316",
        "orderId",
    );
    // Another merchant's consent is unknown to this one.
    let other = TestEnv::start_against("recurring-other", &env.emulator).await;
    let r = other
        .mdk(
            "ReAuthorize",
            json!({"orderId": "n2", "originalOrderId": "sub-r", "amount": "100"}),
        )
        .await;
    refused(&r, "E302", "originalOrderId");
    // UpdateAuthorize is for one-time orders once authorized.
    let r = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "sub-r", "amount": "900"}),
        )
        .await;
    refused(&r, "E318", "orderId");
}

#[tokio::test]
async fn recurring_authorize_bad_input_changes_nothing() {
    let env = TestEnv::start("recurring-bad").await;
    let base = |extra: Value| {
        let mut p = json!({"orderId": "b1", "amount": "1000"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let cases = [
        (
            json!({"frequencyUnit": "Month", "frequencyValue": "1"}),
            "E211",
            "frequencyUnit",
        ),
        (json!({"frequencyValue": "1"}), "E211", "frequencyValue"),
        (json!({"consentAuthType": "1"}), "E211", "consentAuthType"),
        (json!({"accountingType": "1"}), "E201", "frequencyUnit"),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month"}),
            "E201",
            "frequencyValue",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month", "frequencyValue": "13"}),
            "E207",
            "frequencyValue",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month", "frequencyValue": "0"}),
            "E206",
            "frequencyValue",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Week", "frequencyValue": "53"}),
            "E207",
            "frequencyValue",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Day", "frequencyValue": "366"}),
            "E207",
            "frequencyValue",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Year", "frequencyValue": "2"}),
            "E207",
            "frequencyValue",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Hour", "frequencyValue": "1"}),
            "E210",
            "frequencyUnit",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month", "frequencyValue": "1", "amount": "100001"}),
            "E207",
            "amount",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month", "frequencyValue": "1", "consentAuthType": "2"}),
            "E210",
            "consentAuthType",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month", "frequencyValue": "1", "consentAuthType": "0", "withCapture": "true"}),
            "E211",
            "withCapture",
        ),
        (
            json!({"accountingType": "1", "frequencyUnit": "Month", "frequencyValue": "1", "extendExpiration": "true"}),
            "E211",
            "extendExpiration",
        ),
        (
            json!({"payConfirmScreenType": "1"}),
            "E201",
            "payConfirmScreenUrl",
        ),
        (
            json!({"payConfirmScreenType": "1", "payConfirmScreenUrl": "not a url"}),
            "E213",
            "payConfirmScreenUrl",
        ),
        (
            json!({"addressRestrictions": "[1]"}),
            "E210",
            "addressRestrictions",
        ),
        (
            json!({"addressRestrictions": "{\"type\":\"Maybe\",\"restrictions\":{}}"}),
            "E210",
            "addressRestrictions",
        ),
        (
            json!({"addressRestrictions": "{\"type\":\"Allowed\"}"}),
            "E210",
            "addressRestrictions",
        ),
        (
            json!({"suppressShippingAddressView": "yes"}),
            "E210",
            "suppressShippingAddressView",
        ),
        (json!({"platformId": "x".repeat(22)}), "E208", "platformId"),
    ];
    for (extra, block, field) in cases {
        let r = env.mdk("Authorize", base(extra.clone())).await;
        refused(&r, block, field);
    }
    assert!(
        env.order("b1").await.is_none(),
        "no bad Authorize made an order"
    );
    // UpdateConsent's own checks.
    subscribe(&env, "sub-b", 1000, "1").await;
    let before = env.order("sub-b").await.unwrap();
    for (params, block, field) in [
        (
            json!({"orderId": "sub-b", "amount": "100001", "frequencyUnit": "Month", "frequencyValue": "1"}),
            "E207",
            "amount",
        ),
        (
            json!({"orderId": "sub-b", "amount": "100", "frequencyUnit": "Month"}),
            "E201",
            "frequencyValue",
        ),
        (
            json!({"orderId": "sub-b", "amount": "100", "frequencyUnit": "Fortnight", "frequencyValue": "1"}),
            "E210",
            "frequencyUnit",
        ),
    ] {
        refused(&env.mdk("UpdateConsent", params).await, block, field);
    }
    let after = env.order("sub-b").await.unwrap();
    assert_eq!(after.consent, before.consent);
}

#[tokio::test]
async fn options_are_passed_through_to_amazon() {
    let env = TestEnv::start("recurring-options").await;
    let mut p = env.authorize_params("opt-1", 2000, false);
    p["addressRestrictions"] =
        json!("{\"type\":\"Allowed\",\"restrictions\":{\"JP\":{\"zipCodes\":[\"100-0001\"]}}}");
    p["extendExpiration"] = json!("true");
    p["platformId"] = json!("PLATFORM1");
    let r = env.mdk("Authorize", p).await;
    ok(&r);
    let order = env.order("opt-1").await.unwrap();
    assert!(order.options.extend_expiration);
    assert_eq!(order.options.platform_id.as_deref(), Some("PLATFORM1"));
    // The session the button makes from the signed payload carries them.
    let signin = common::Browser::new(&env.http)
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let session = common::query(
        &url::Url::parse(&signin.url).unwrap(),
        "amazonCheckoutSessionId",
    );
    let cs = env
        .amazon()
        .await
        .get_checkout_session(&session.unwrap())
        .await
        .unwrap();
    assert_eq!(cs.platform_id.as_deref(), Some("PLATFORM1"));
    let delivery = cs
        .delivery_specifications
        .expect("deliverySpecifications kept");
    assert_eq!(delivery["addressRestrictions"]["type"], "Allowed");
    assert_eq!(cs.payment_details.extend_expiration, Some(true));
}

/// Charges Amazon decides later: the consent order's first charge and a ReAuthorize charge share
/// one charge permission; each notification moves its own order.
#[tokio::test]
async fn pending_charges_of_one_consent_end_on_their_own_orders() {
    let env = TestEnv::start("recurring-pending").await;
    let r = env.mdk("Authorize", subscription("sub-p", 800, "1")).await;
    ok(&r);
    let landed = walk_buyer(&env, &r, "visa-0701").await;
    assert!(landed
        .query_pairs()
        .any(|(k, v)| k == "mstatus" && v == "pending"));
    let order = env.order("sub-p").await.unwrap();
    assert_eq!(order.order.state, OrderState::AuthorizationPending);
    assert_eq!(order.consent.unwrap().state, ConsentState::Active);
    let r = env
        .mdk(
            "ReAuthorize",
            json!({"orderId": "sub-p-2", "originalOrderId": "sub-p", "amount": "800"}),
        )
        .await;
    assert_eq!(r["mstatus"], "pending", "{r:?}");
    assert_eq!(r["vResultCode"], "P001000000000000", "{r:?}");
    assert_eq!(
        env.order("sub-p-2").await.unwrap().order.state,
        OrderState::AuthorizationPending
    );
    let advanced = env
        .http
        .post(format!("{}/test_helpers/clock/advance", env.emulator))
        .json(&json!({ "seconds": 60 }))
        .send()
        .await
        .unwrap();
    assert!(advanced.status().is_success());
    for _ in 0..150 {
        let a = env.order("sub-p").await.unwrap().order.state;
        let b = env.order("sub-p-2").await.unwrap().order.state;
        if a == OrderState::Authorized && b == OrderState::Authorized {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "both orders should be authorized by Amazon's notifications: {:?} {:?}",
        env.order("sub-p").await.unwrap().order.state,
        env.order("sub-p-2").await.unwrap().order.state
    );
}

/// `consentAuthType` left out: the merchant's setting decides (default "1").
#[tokio::test]
async fn a_left_out_consent_auth_type_is_the_merchants_setting() {
    let env = TestEnv::start("recurring-default").await;
    let mut params = subscription("d-1", 700, "1");
    params.as_object_mut().unwrap().remove("consentAuthType");
    ok(&env.mdk("Authorize", params.clone()).await);
    assert!(
        env.order("d-1")
            .await
            .unwrap()
            .consent
            .unwrap()
            .with_authorization
    );

    // A merchant whose setting is consent only.
    let mut m = kessai::new_merchant(
        "Consent-only shop",
        &kessai_core::SystemClock,
        &kessai_core::SeededIds::seeded(7),
    )
    .unwrap();
    m.consent_auth_default = false;
    env.store.insert_merchant(&m).await.unwrap();
    let other = TestEnv {
        gateway: env.gateway.clone(),
        emulator: env.emulator.clone(),
        ccid: m.ccid.to_string(),
        secret: m.secret_hex.expose().clone(),
        store: env.store.clone(),
        data_dir: env.data_dir.clone(),
        http: env.http.clone(),
        schema: env.schema.clone(),
    };
    params["orderId"] = json!("d-2");
    let r = other.mdk("Authorize", params.clone()).await;
    ok(&r);
    walk_buyer(&other, &r, "visa-1111").await;
    let order = other.order("d-2").await.unwrap();
    assert!(!order.consent.unwrap().with_authorization);
    assert_eq!(order.order.state, OrderState::Consented);
    // …and withCapture "true" with it is refused, naming the field.
    params["orderId"] = json!("d-3");
    params["withCapture"] = json!("true");
    refused(&other.mdk("Authorize", params).await, "E211", "withCapture");
    assert!(other.order("d-3").await.is_none());
}
