//! Item 2 of the safe defaults: the gateway's buyer pages. A page of another site cannot confirm
//! or abandon a buyer's order, a plain GET (prefetcher, link scanner) cancels nothing, and the
//! pages carry the security headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Browser, Page, TestEnv};
use kessai_core::OrderState;

/// Authorize and walk the buyer to Kessai's confirmation page (order in `PreAuth`).
async fn at_review(env: &TestEnv, order_id: &str) -> (Page, String) {
    let r = env
        .mdk("Authorize", env.authorize_params(order_id, 800, false))
        .await;
    let mut browser = Browser::new(&env.http);
    let page = browser
        .submit(r["responseContents"].as_str().unwrap(), &env.gateway, &[])
        .await;
    let page = browser.submit_page(page, &[]).await; // Amazon sign-in
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.url.contains("/amazonpay/review/"), "{}", page.url);
    let reference = page
        .url
        .split("/amazonpay/review/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        env.order(order_id).await.unwrap().order.state,
        OrderState::PreAuth
    );
    (page, reference)
}

async fn unchanged(env: &TestEnv, order_id: &str, history: usize) {
    let o = env.order(order_id).await.unwrap();
    assert_eq!(o.order.state, OrderState::PreAuth, "the order did not move");
    assert_eq!(
        env.history_len(order_id).await,
        history,
        "nothing was recorded"
    );
}

#[tokio::test]
async fn another_site_cannot_confirm_or_abandon_an_order() {
    let env = TestEnv::start("csrf-gateway").await;
    let (_, reference) = at_review(&env, "order-csrf").await;
    let history = env.history_len("order-csrf").await;
    for step in ["confirm", "abandon"] {
        // What a form on another site posts: the reference from the URL, no cookie, no token.
        let resp = env
            .http
            .post(format!("{}/amazonpay/{step}/{reference}", env.gateway))
            .header("origin", "http://evil.example")
            .header("sec-fetch-site", "cross-site")
            .form(&[("x", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{step}");
        assert!(resp.headers().get("location").is_none(), "{step}");
        unchanged(&env, "order-csrf", history).await;
        // The same with a cookie and a token that do not belong together.
        let resp = env
            .http
            .post(format!("{}/amazonpay/{step}/{reference}", env.gateway))
            .header("cookie", "kessai_csrf=0123456789abcdef0123456789abcdef")
            .form(&[("csrf", "fedcba9876543210fedcba9876543210")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{step}");
        unchanged(&env, "order-csrf", history).await;
    }
}

#[tokio::test]
async fn a_plain_get_of_the_cancel_url_cancels_nothing() {
    let env = TestEnv::start("cancel-get").await;
    let (_, reference) = at_review(&env, "order-get").await;
    let history = env.history_len("order-get").await;
    let session = env
        .order("order-get")
        .await
        .unwrap()
        .checkout_session_id
        .unwrap();
    // A prefetcher or a link scanner follows the link.
    let resp = env
        .http
        .get(format!(
            "{}/amazonpay/cancel/{reference}?amazonCheckoutSessionId={session}",
            env.gateway
        ))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers().get("location").is_none(),
        "no redirect to the merchant's cancel URL"
    );
    unchanged(&env, "order-get", history).await;
}

#[tokio::test]
async fn buyer_pages_carry_the_security_headers() {
    let env = TestEnv::start("headers").await;
    let (_, reference) = at_review(&env, "order-h").await;
    let session = env
        .order("order-h")
        .await
        .unwrap()
        .checkout_session_id
        .unwrap();
    let resp = env
        .http
        .get(format!(
            "{}/amazonpay/review/{reference}?amazonCheckoutSessionId={session}",
            env.gateway
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let form_action = csp
        .split(';')
        .find(|d| d.trim().starts_with("form-action"))
        .unwrap();
    let emulator = url::Url::parse(&env.emulator).unwrap();
    let emulator_origin = emulator.origin().ascii_serialization();
    assert_eq!(
        form_action.trim(),
        format!(
            "form-action 'self' {emulator_origin} {}",
            common::MERCHANT_SITE
        ),
        "only the origins of the flow"
    );

    // The result URL loaded before the buyer paid at Amazon: its retry button may end at the
    // merchant's URLs, so its page's form-action names them too.
    let (review_page, reference) = at_review(&env, "order-h2").await;
    let mut browser = Browser::new(&env.http);
    let review_page = browser
        .go(reqwest::Method::GET, review_page.url, None)
        .await;
    let amazon = browser.submit_page(review_page, &[]).await; // 確定
    assert!(amazon.url.contains("/checkout/confirm"), "{}", amazon.url);
    let session = env
        .order("order-h2")
        .await
        .unwrap()
        .checkout_session_id
        .unwrap();
    let early = env
        .http
        .get(format!(
            "{}/amazonpay/result/{reference}?amazonCheckoutSessionId={session}",
            env.gateway
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409);
    let csp = early.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!(
            "form-action 'self' {emulator_origin} {};",
            common::MERCHANT_SITE
        )),
        "{csp}"
    );
}
