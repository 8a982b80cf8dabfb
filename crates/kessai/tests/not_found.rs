//! Addresses without a route: the gateway and the emulator answer a page (404, or 405 for a
//! wrong method) with the headers of their other pages, the emulator's root says what it is, and
//! MDK and Amazon Pay API paths keep answering in their own JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestEnv;
use serde_json::Value;

async fn page(env: &TestEnv, method: reqwest::Method, url: String) -> (u16, String, String) {
    let resp = env.http.request(method, &url).send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers();
    assert_eq!(
        h["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8",
        "{url}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{url}: {csp}");
    (status, csp, resp.text().await.unwrap())
}

#[tokio::test]
async fn gateway_pages_for_unknown_addresses_and_methods() {
    let env = TestEnv::start("not-found-gateway").await;
    let g = &env.gateway;
    let (status, _, html) = page(&env, reqwest::Method::GET, format!("{g}/no/such/page")).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"), "{html}");
    assert!(
        html.contains("/assets/kessai.css"),
        "styled like the other pages"
    );

    // A route that exists, with a method it does not take.
    for url in [
        format!("{g}/health"),
        format!("{g}/test-paynow/v2/Authorize/amazonpay"),
    ] {
        let (status, _, html) = page(&env, reqwest::Method::DELETE, url.clone()).await;
        assert_eq!(status, 405, "{url}");
        assert!(html.contains("Method not allowed"), "{html}");
    }
    let (status, _, _) = page(
        &env,
        reqwest::Method::GET,
        format!("{g}/paynow/v2/Capture/amazonpay"),
    )
    .await;
    assert_eq!(status, 405, "the MDK API is POST only");

    // What looks like an MDK request gets an MDK answer, not a page.
    let r = env
        .mdk_path(
            "/test-paynow/v2/Authorize",
            env.mdk_body(serde_json::json!({"orderId": "x"}), true),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(r["mstatus"], "failure");
    assert!(
        r["vResultCode"].as_str().unwrap().starts_with("E107"),
        "{r:?}"
    );
    // The MDK routes still answer MDK JSON for their own errors.
    let r = env
        .mdk_raw("Authorize", "not json".into(), "application/json")
        .await;
    assert!(
        r["vResultCode"].as_str().unwrap().starts_with("E104"),
        "{r:?}"
    );
    let r = env
        .mdk_raw("NoSuchCommand", "{}".into(), "application/json")
        .await;
    assert!(
        r["vResultCode"].as_str().unwrap().starts_with("E107"),
        "{r:?}"
    );
}

#[tokio::test]
async fn emulator_root_and_not_found_pages() {
    let env = TestEnv::start("not-found-emulator").await;
    let e = &env.emulator;
    let (status, _, html) = page(&env, reqwest::Method::GET, format!("{e}/")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Amazon Pay emulator"), "{html}");
    for doc in ["docs/sandbox.md", "docs/conformance.md", "README.md"] {
        assert!(html.contains(doc), "the root page names {doc}");
    }
    assert!(html.contains("/static/checkout.css"));

    let (status, _, html) = page(&env, reqwest::Method::GET, format!("{e}/no/such/page")).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"), "{html}");
    let (status, _, html) = page(
        &env,
        reqwest::Method::DELETE,
        format!("{e}/checkout/signin"),
    )
    .await;
    assert_eq!(status, 405);
    assert!(html.contains("Method not allowed"), "{html}");

    // Amazon Pay's API paths keep their JSON errors.
    let resp = env
        .http
        .get(format!("{e}/v2/noSuchThing"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    let body: Value = resp.json().await.unwrap();
    assert!(body["reasonCode"].is_string(), "{body}");
}
