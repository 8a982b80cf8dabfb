//! Merchant-hosted confirmation (`payConfirmScreenType=1`: PreAuth, GetAddress, UpdateAuthorize,
//! the one-use `payRedirectUrl`) and UpdateAuthorize after authorization, end to end against the
//! emulator, the buyer's pages walked without script.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ok, refused, Browser, TestEnv, MERCHANT_SITE};
use kessai_amazonpay::wire::ChargeState;
use kessai_amazonpay::AmazonPay;
use kessai_core::{OrderState, Yen};
use serde_json::json;

#[tokio::test]
async fn merchant_hosted_confirmation_with_a_final_amount() {
    let env = TestEnv::start("merchant-hosted").await;
    let mut p = env.authorize_params("mh-1", 3000, false);
    p["payConfirmScreenType"] = json!("1");
    p["payConfirmScreenUrl"] = json!(format!("{MERCHANT_SITE}/confirm?step=2"));
    let r = env.mdk("Authorize", p).await;
    ok(&r);
    // Before the buyer signed in there is nothing to read.
    refused(
        &env.mdk("GetAddress", json!({"orderId": "mh-1"})).await,
        "E313",
        "orderId",
    );

    // Amazon's sign-in, then straight to the merchant's own confirmation screen.
    let mut browser = Browser::new(&env.http);
    let html = r["responseContents"].as_str().unwrap().to_owned();
    let page = browser.submit(&html, &env.gateway, &[]).await;
    let landed = browser
        .submit_page(page, &[("instrument", "visa-1111")])
        .await;
    let at_merchant = landed
        .merchant_url
        .expect("the buyer is at the merchant's screen");
    assert_eq!(at_merchant.path(), "/confirm");
    let q: Vec<(String, String)> = at_merchant.query_pairs().into_owned().collect();
    assert!(q.contains(&("step".into(), "2".into())));
    assert!(q.contains(&("orderId".into(), "mh-1".into())));
    assert_eq!(
        env.order("mh-1").await.unwrap().order.state,
        OrderState::PreAuth
    );

    // PreAuth: capture refused, GetAddress answers the links.
    refused(
        &env.mdk("Capture", json!({"orderId": "mh-1"})).await,
        "E308",
        "orderId",
    );
    let r = env.mdk("GetAddress", json!({"orderId": "mh-1"})).await;
    ok(&r);
    let pay_url = r["payRedirectUrl"].as_str().unwrap().to_owned();
    let cs_id = env
        .order("mh-1")
        .await
        .unwrap()
        .checkout_session_id
        .unwrap();
    assert_eq!(r["checkoutSessionId"], cs_id.as_str());
    assert!(
        r["shippingPostalCode"]
            .as_str()
            .is_some_and(|z| !z.is_empty()),
        "{r:?}"
    );

    // The shipping fee makes it 3,500.
    let r = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "mh-1", "amount": "3500"}),
        )
        .await;
    ok(&r);
    assert_eq!(r["payRedirectUrl"], pay_url.as_str());
    assert_eq!(
        env.order("mh-1").await.unwrap().order.amount,
        Yen::new(3500)
    );

    // The merchant sends the buyer to payRedirectUrl: Kessai's last step shows the new amount.
    let page = browser
        .go(reqwest::Method::GET, pay_url.clone(), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("¥3,500"), "{}", page.html);
    let page = browser.submit_page(page, &[]).await; // on to Amazon
    let landed = browser.submit_page(page, &[]).await; // Amazon: pay
    let done = landed.merchant_url.unwrap();
    assert_eq!(done.path(), "/ok");
    assert!(done
        .query_pairs()
        .any(|(k, v)| k == "mstatus" && v == "success"));
    assert!(done.query_pairs().any(|(k, _)| k == "vAuthInfo"));
    let order = env.order("mh-1").await.unwrap();
    assert_eq!(order.order.state, OrderState::Authorized);
    assert_eq!(order.order.authorized, Yen::new(3500));
    let charge = env
        .amazon()
        .await
        .get_charge(order.charge_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(charge.charge_amount.amount, "3500");

    // The link works once: again, from another browser, it is refused and changes nothing.
    let before = env.order("mh-1").await.unwrap();
    let mut other = Browser::new(&env.http);
    let page = other.go(reqwest::Method::GET, pay_url.clone(), None).await;
    assert_eq!(page.status, 409);
    assert!(page.html.contains("E319"), "{}", page.html);
    let page = browser.go(reqwest::Method::GET, pay_url, None).await;
    assert_eq!(page.status, 409);
    assert_eq!(env.order("mh-1").await.unwrap(), before);
    // And GetAddress after authorization no longer offers the links.
    let r = env.mdk("GetAddress", json!({"orderId": "mh-1"})).await;
    ok(&r);
    assert!(r.get("payRedirectUrl").is_none(), "{r:?}");
}

#[tokio::test]
async fn update_authorize_before_confirmation_is_for_merchant_screens() {
    let env = TestEnv::start("update-gateway-hosted").await;
    let r = env
        .mdk("Authorize", env.authorize_params("gh-1", 3000, false))
        .await;
    ok(&r);
    // On Kessai's own page the buyer sees the Authorize amount: it cannot change under them.
    let r2 = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "gh-1", "amount": "3500"}),
        )
        .await;
    refused(&r2, "E308", "orderId");
    assert_eq!(
        env.order("gh-1").await.unwrap().order.amount,
        Yen::new(3000)
    );
    // Signed in and waiting on Kessai's page (PreAuth): GetAddress's payRedirectUrl leads to the
    // same last step, with the Authorize amount.
    let mut browser = Browser::new(&env.http);
    let html = r["responseContents"].as_str().unwrap().to_owned();
    let page = browser.submit(&html, &env.gateway, &[]).await;
    let page = browser
        .submit_page(page, &[("instrument", "visa-1111")])
        .await;
    assert!(page.html.contains("¥3,000"), "{}", page.html);
    assert_eq!(
        env.order("gh-1").await.unwrap().order.state,
        OrderState::PreAuth
    );
    let r = env.mdk("GetAddress", json!({"orderId": "gh-1"})).await;
    ok(&r);
    let pay = browser
        .go(
            reqwest::Method::GET,
            r["payRedirectUrl"].as_str().unwrap().to_owned(),
            None,
        )
        .await;
    assert_eq!(pay.status, 200, "{}", pay.html);
    assert!(pay.html.contains("¥3,000"), "{}", pay.html);
}

#[tokio::test]
async fn update_authorize_after_authorization_replaces_the_authorization() {
    let env = TestEnv::start("update-authorized").await;
    env.buy("ua-1", 3000, false, "visa-1111").await;
    let amazon = env.amazon().await;
    let first = env.order("ua-1").await.unwrap();
    let old_charge = first.charge_id.clone().unwrap();

    // Lower: the new amount is authorized, the old authorization released.
    let r = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "ua-1", "amount": "2000"}),
        )
        .await;
    ok(&r);
    let order = env.order("ua-1").await.unwrap();
    assert_eq!(order.order.state, OrderState::Authorized);
    assert_eq!(
        (order.order.amount, order.order.authorized),
        (Yen::new(2000), Yen::new(2000))
    );
    let new_charge = order.charge_id.clone().unwrap();
    assert_ne!(new_charge, old_charge);
    assert_eq!(r["centerTransactionId"], new_charge.as_str());
    let old = amazon.get_charge(&old_charge).await.unwrap();
    assert_eq!(old.status_details.state, ChargeState::Canceled);
    let new = amazon.get_charge(&new_charge).await.unwrap();
    assert_eq!(new.status_details.state, ChargeState::Authorized);
    assert_eq!(new.charge_amount.amount, "2000");

    // More than Amazon allows on this order: refused before anything is released.
    let before = env.order("ua-1").await.unwrap();
    let r = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "ua-1", "amount": "9000"}),
        )
        .await;
    refused(&r, "E207", "amount");
    assert_eq!(env.order("ua-1").await.unwrap().order, before.order);
    assert_eq!(
        amazon
            .get_charge(&new_charge)
            .await
            .unwrap()
            .status_details
            .state,
        ChargeState::Authorized,
        "the authorization is untouched"
    );

    // Again (repeatable): back up to the original 3,000.
    ok(&env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "ua-1", "amount": "3000"}),
        )
        .await);
    // Capture is limited to the new amount.
    refused(
        &env.mdk("Capture", json!({"orderId": "ua-1", "amount": "3001"}))
            .await,
        "E306",
        "amount",
    );
    ok(&env.mdk("Capture", json!({"orderId": "ua-1"})).await);
    let order = env.order("ua-1").await.unwrap();
    assert_eq!(order.order.captured, Yen::new(3000));
    // After capture it is refused.
    refused(
        &env.mdk(
            "UpdateAuthorize",
            json!({"orderId": "ua-1", "amount": "100"}),
        )
        .await,
        "E303",
        "orderId",
    );
    // Exactly one live authorization was captured; the others were released.
    let mut live = 0;
    for key in [old_charge, new_charge, order.charge_id.unwrap()] {
        let c = amazon.get_charge(&key).await.unwrap();
        if c.status_details.state != ChargeState::Canceled {
            live += 1;
        }
    }
    assert_eq!(live, 1);
}

#[tokio::test]
async fn a_declined_new_amount_leaves_the_old_amount_authorized() {
    let env = TestEnv::start("update-declined").await;
    env.buy("ud-1", 3000, false, "visa-1111").await;
    let before = env.order("ud-1").await.unwrap();
    // The emulator declines the next authorization of this charge permission.
    env.simulate_next_charge_decline(before.charge_permission_id.as_deref().unwrap())
        .await;
    let r = env
        .mdk(
            "UpdateAuthorize",
            json!({"orderId": "ud-1", "amount": "2500"}),
        )
        .await;
    assert_eq!(r["mstatus"], "failure", "{r:?}");
    let msg = r["merrMsg"].as_str().unwrap();
    assert!(
        msg.contains("previous amount (3000 yen) is authorized again"),
        "{msg}"
    );
    let order = env.order("ud-1").await.unwrap();
    assert_eq!(order.order.state, OrderState::Authorized);
    assert_eq!(order.order.authorized, Yen::new(3000));
    ok(&env.mdk("Capture", json!({"orderId": "ud-1"})).await);
}
