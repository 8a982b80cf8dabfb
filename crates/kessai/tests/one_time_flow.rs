//! The one-time (都度) flow end to end: a merchant on MDK, a buyer in a (scripted) browser, the
//! gateway and the emulator as real servers on port 0 with fresh SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{query, Browser, TestEnv, MERCHANT_SITE};
use kessai_amazonpay::AmazonPay;
use kessai_core::{OrderState, Yen};
use serde_json::json;

fn assert_invariants(o: &kessai_store::OrderRecord) {
    assert!(
        o.order.invariants_hold(),
        "invariants broken: {:?}",
        o.order
    );
}

#[tokio::test]
async fn authorize_capture_refund_twice_to_zero() {
    let env = TestEnv::start("capture-refund").await;
    let landed = env.buy("order-1", 5000, false, "visa-1111").await;
    assert_eq!(landed.path(), "/ok");
    assert_eq!(
        query(&landed, "shop").as_deref(),
        Some("1"),
        "the merchant's own query is kept"
    );
    assert_eq!(query(&landed, "orderId").as_deref(), Some("order-1"));
    assert_eq!(query(&landed, "mstatus").as_deref(), Some("success"));
    assert_eq!(
        query(&landed, "vResultCode").as_deref(),
        Some("S000000000000000")
    );
    let o = env.order("order-1").await.unwrap();
    assert_eq!(o.order.state, OrderState::Authorized);
    assert_eq!(o.order.authorized, Yen::new(5000));
    assert_invariants(&o);

    let amazon = env.amazon().await;
    let charge = amazon
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Authorized");

    let r = env
        .mdk(
            "GetAddress",
            json!({"orderId": "order-1", "addInfoRespFlag": "1"}),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(r["shippingPostalCode"], "150-0002");
    assert_eq!(r["shippingPrefecture"], "東京都");
    assert_eq!(r["buyerEmail"], "taro.yamada@example.jp");
    assert_eq!(r["paymentPreferences"], "Visa ****1111");

    let r = env
        .mdk("Capture", json!({"orderId": "order-1", "amount": "4000"}))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(
        r["centerOrderId"].as_str(),
        o.charge_permission_id.as_deref()
    );
    assert_eq!(r["centerTransactionId"].as_str(), o.charge_id.as_deref());
    assert_eq!(r["centerResponseDatetime"].as_str().unwrap().len(), 14);
    let o = env.order("order-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.captured),
        (OrderState::Captured, Yen::new(4000))
    );
    let charge = amazon
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Captured");
    assert_eq!(charge.capture_amount.unwrap().amount, "4000");

    let r = env
        .mdk("Refund", json!({"orderId": "order-1", "amount": "1500"}))
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(r["refundableAmount"], "2500");
    let o = env.order("order-1").await.unwrap();
    assert_eq!(o.order.state, OrderState::PartiallyRefunded);
    assert_invariants(&o);

    let r = env.mdk("Refund", json!({"orderId": "order-1"})).await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert_eq!(r["refundableAmount"], "0");
    let refund_id = r["centerTransactionId"].as_str().unwrap().to_owned();
    let o = env.order("order-1").await.unwrap();
    assert_eq!(
        (o.order.state, o.order.refunded),
        (OrderState::Refunded, Yen::new(4000))
    );
    assert_invariants(&o);
    let refund = amazon.get_refund(&refund_id).await.unwrap();
    assert_eq!(refund.refund_amount.amount, "2500");

    let refunds = env.store.refunds(&o.merchant, &o.order_id).await.unwrap();
    assert_eq!(
        refunds.iter().map(|r| r.amount.get()).collect::<Vec<_>>(),
        vec![1500, 2500]
    );
    let history = env.store.history(&o.merchant, &o.order_id).await.unwrap();
    let commands: Vec<&str> = history.iter().map(|h| h.command.as_str()).collect();
    assert_eq!(
        commands,
        vec![
            "Authorize",
            "CheckoutSessionBound",
            "BuyerSignedIn",
            "BuyerConfirmed",
            "AuthorizeResult",
            "GetAddress",
            "Capture",
            "Refund",
            "Refund"
        ]
    );

    // Nothing is left: a third refund is refused.
    let r = env
        .mdk("Refund", json!({"orderId": "order-1", "amount": "1"}))
        .await;
    assert_eq!(r["mstatus"], "failure");
    assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E312");
}

#[tokio::test]
async fn authorize_with_capture() {
    let env = TestEnv::start("with-capture").await;
    let landed = env.buy("order-wc", 1200, true, "visa-1111").await;
    assert_eq!(query(&landed, "mstatus").as_deref(), Some("success"));
    let o = env.order("order-wc").await.unwrap();
    assert_eq!(o.order.state, OrderState::Captured);
    assert_eq!(
        (o.order.authorized, o.order.captured),
        (Yen::new(1200), Yen::new(1200))
    );
    let charge = env
        .amazon()
        .await
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Captured");
    // Already captured: a Capture is refused, a Refund works.
    let r = env.mdk("Capture", json!({"orderId": "order-wc"})).await;
    assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E303");
    let r = env
        .mdk("Refund", json!({"orderId": "order-wc", "amount": "200"}))
        .await;
    assert_eq!(r["mstatus"], "success");
    assert_eq!(r["refundableAmount"], "1000");
}

#[tokio::test]
async fn authorize_then_cancel() {
    let env = TestEnv::start("cancel").await;
    env.buy("order-c", 800, false, "mc-4444").await;
    let r = env
        .mdk(
            "Cancel",
            json!({"orderId": "order-c", "cancellationReason": "out of stock"}),
        )
        .await;
    assert_eq!(r["mstatus"], "success", "{r:?}");
    let o = env.order("order-c").await.unwrap();
    assert_eq!(o.order.state, OrderState::Canceled);
    let charge = env
        .amazon()
        .await
        .get_charge(o.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.status_details.state.as_str(), "Canceled");
    assert_eq!(
        charge
            .status_details
            .reason_code
            .as_ref()
            .map(|r| r.as_str()),
        Some("MerchantCanceled")
    );
    let r = env.mdk("Capture", json!({"orderId": "order-c"})).await;
    assert_eq!(&r["vResultCode"].as_str().unwrap()[..4], "E309");
}

#[tokio::test]
async fn buyer_cancels_at_amazon() {
    let env = TestEnv::start("buyer-cancel").await;
    let r = env
        .mdk("Authorize", env.authorize_params("order-bc", 500, false))
        .await;
    let mut browser = Browser::new(&env.http);
    let signin = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    assert!(signin.html.contains("キャンセル"));
    // Press the cancel button instead of the first one.
    let landed = browser.press_cancel(&signin).await.merchant_url.unwrap();
    assert_eq!(
        landed.as_str().split('?').next(),
        Some(format!("{MERCHANT_SITE}/cancel").as_str())
    );
    assert_eq!(query(&landed, "mstatus").as_deref(), Some("failure"));
    assert_eq!(&query(&landed, "vResultCode").unwrap()[..4], "E402");
    let o = env.order("order-bc").await.unwrap();
    assert_eq!(o.order.state, OrderState::BuyerCanceled);
    // Canceled before coming back to the review URL: no session was bound to the order; the
    // one the button made is the sign-in page's.
    assert_eq!(o.checkout_session_id, None);
    let session_id = query(
        &url::Url::parse(&signin.url).unwrap(),
        "amazonCheckoutSessionId",
    );
    let cs = env
        .amazon()
        .await
        .get_checkout_session(&session_id.unwrap())
        .await
        .unwrap();
    assert_eq!(cs.status_details.state.as_str(), "Canceled");
    assert_eq!(
        cs.status_details.reason_code.as_ref().map(|r| r.as_str()),
        Some("BuyerCanceled")
    );
}

#[tokio::test]
async fn declined_payment_goes_to_error_url() {
    let env = TestEnv::start("declined").await;
    let landed = env.buy("order-d", 700, false, "visa-3434").await;
    assert_eq!(landed.path(), "/error");
    assert_eq!(&query(&landed, "vResultCode").unwrap()[..4], "E401");
    assert_eq!(
        env.order("order-d").await.unwrap().order.state,
        OrderState::Declined
    );
}

#[tokio::test]
async fn return_urls_carry_a_verifiable_auth_hash() {
    use sha2::Digest;
    let env = TestEnv::start("tamper").await;
    let landed = env.buy("order-t", 100, false, "visa-1111").await;
    let auth_params = query(&landed, "authParams").unwrap();
    let decoded = base64_decode(
        &auth_params
            .replace('*', "=")
            .replace('-', "/")
            .replace('_', "+"),
    );
    assert_eq!(decoded, "orderId,mstatus,vResultCode");
    let mut h = sha2::Sha256::new();
    h.update(&env.ccid);
    for name in decoded.split(',') {
        h.update(query(&landed, name).unwrap());
    }
    h.update(&env.secret);
    assert_eq!(
        query(&landed, "vAuthInfo").unwrap(),
        hex::encode(h.finalize())
    );
}

fn base64_decode(s: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

#[tokio::test]
async fn reloading_the_result_page_does_not_charge_twice() {
    let env = TestEnv::start("reload").await;
    let r = env
        .mdk("Authorize", env.authorize_params("order-r", 900, true))
        .await;
    let mut browser = Browser::new(&env.http);
    let page = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let page = browser.submit_page(page, &[]).await;
    let page = browser.submit_page(page, &[]).await; // Amazon's confirmation page
    let landed = browser.submit_page(page, &[]).await.merchant_url.unwrap();
    assert_eq!(query(&landed, "mstatus").as_deref(), Some("success"));
    let o = env.order("order-r").await.unwrap();
    // The buyer's browser replays the return URL: same answer, no second charge.
    let result_url = format!(
        "{}/amazonpay/result/{}?amazonCheckoutSessionId={}",
        env.gateway,
        o.public_ref,
        o.checkout_session_id.clone().unwrap()
    );
    let again = browser
        .go(reqwest::Method::GET, result_url, None)
        .await
        .merchant_url
        .unwrap();
    assert_eq!(query(&again, "mstatus").as_deref(), Some("success"));
    let o2 = env.order("order-r").await.unwrap();
    assert_eq!(o2.version, o.version, "nothing changed");
    assert_eq!(o2.charge_id, o.charge_id);
}

#[tokio::test]
async fn buyer_cancels_on_amazons_confirmation_page() {
    let env = TestEnv::start("buyer-cancel-late").await;
    let r = env
        .mdk("Authorize", env.authorize_params("order-bcl", 700, false))
        .await;
    let mut browser = Browser::new(&env.http);
    let page = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let page = browser.submit_page(page, &[]).await; // Amazon sign-in
    let page = browser.submit_page(page, &[]).await; // Kessai's 確定
    assert_eq!(
        env.order("order-bcl").await.unwrap().order.state,
        OrderState::Authorizing
    );
    // On Amazon's confirmation page the buyer presses cancel instead of paying.
    let landed = browser
        .press_cancel(&page)
        .await
        .merchant_url
        .expect("the buyer lands on the merchant's cancel URL");
    assert_eq!(
        landed.as_str().split('?').next(),
        Some(format!("{MERCHANT_SITE}/cancel").as_str())
    );
    assert_eq!(&query(&landed, "vResultCode").unwrap()[..4], "E402");
    let o = env.order("order-bcl").await.unwrap();
    assert_eq!(o.order.state, OrderState::BuyerCanceled);
    assert_eq!(o.charge_id, None, "nothing was authorized");
}
