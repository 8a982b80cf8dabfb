//! The demo shop walked over plain HTTP with no script, as a buyer and a merchant evaluating
//! Kessai would: every page is a plain form, statuses are words, amounts read `¥3,240`, only the
//! actions the order's state allows are offered, and errors show where they happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Browser, Page, TestEnv};

/// The outer HTML of the form whose action ends with `suffix`.
fn form_ending(html: &str, suffix: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("form").unwrap();
    doc.select(&sel)
        .find(|f| f.value().attr("action").unwrap_or("").ends_with(suffix))
        .map(|f| f.html())
}

/// The text of the page, tags removed, whitespace collapsed.
fn words(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    doc.root_element()
        .text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

async fn press(
    browser: &mut Browser<'_>,
    page: &Page,
    suffix: &str,
    fields: &[(&str, &str)],
) -> Page {
    let form = form_ending(&page.html, suffix).unwrap_or_else(|| {
        panic!(
            "{} has no form ending {suffix}: {}",
            page.url,
            words(&page.html)
        )
    });
    browser.submit(&form, &page.url, fields).await
}

/// Buys `item` the way `pattern` says, walks the buyer through Amazon Pay and Kessai, and returns
/// the page the buyer lands on (the demo order page).
async fn buy(env: &TestEnv, browser: &mut Browser<'_>, form: usize, pattern: &str) -> Page {
    let shop = browser
        .go(reqwest::Method::GET, format!("{}/", env.gateway), None)
        .await;
    assert_eq!(shop.status, 200);
    let doc = scraper::Html::parse_document(&shop.html);
    let sel = scraper::Selector::parse("form").unwrap();
    let form = doc.select(&sel).nth(form).unwrap().html();
    let handoff = browser
        .submit(
            &form,
            &shop.url,
            &[("pattern", pattern), ("capture", "false")],
        )
        .await;
    assert_eq!(handoff.status, 200, "{}", words(&handoff.html));
    // The gateway's hand-off page (responseContents) works without script: its form goes on.
    let signin = browser.submit(&handoff.html, &handoff.url, &[]).await;
    browser
        .submit_page(signin, &[("instrument", "visa-1111")])
        .await
}

#[tokio::test]
async fn one_time_order_offers_what_its_state_allows() {
    let env = TestEnv::start("demo-one-time").await;
    let mut browser = Browser::new(&env.http);
    let confirm = buy(&env, &mut browser, 0, "once").await; // Kessai's confirmation page
    let amazon = browser.submit_page(confirm, &[]).await;
    let order = browser.submit_page(amazon, &[]).await;
    assert!(
        order.url.contains("/demo/orders/demo-tea-"),
        "{}",
        order.url
    );
    let text = words(&order.html);
    assert!(
        text.contains("Thank you: the payment went through."),
        "{text}"
    );
    assert!(text.contains("authorized ¥3,240"), "{text}");
    assert!(text.contains("〒"), "the address from GetAddress: {text}");
    assert!(form_ending(&order.html, "/capture").is_some());
    assert!(form_ending(&order.html, "/cancel").is_some());
    assert!(
        form_ending(&order.html, "/refund").is_none(),
        "no refund before capture"
    );

    // Capture part of it: the page now offers a refund and no capture.
    let captured = press(&mut browser, &order, "/capture", &[("amount", "3000")]).await;
    let text = words(&captured.html);
    assert!(text.contains("captured ¥3,000"), "{text}");
    assert!(form_ending(&captured.html, "/capture").is_none());
    assert!(form_ending(&captured.html, "/cancel").is_none());
    let refunded = press(&mut browser, &captured, "/refund", &[("amount", "500")]).await;
    let text = words(&refunded.html);
    assert!(text.contains("refunded ¥500 of ¥3,000"), "{text}");

    // A refund above what is left: the error shows at the refund, in words with its code.
    let refused = press(&mut browser, &refunded, "/refund", &[("amount", "9999")]).await;
    assert_eq!(refused.status, 200);
    let text = words(&refused.html);
    assert!(text.contains("The refund failed:"), "{text}");
    assert!(text.contains("E307"), "{text}");
    assert!(
        text.contains("refunded ¥500 of ¥3,000"),
        "nothing changed: {text}"
    );

    // The order list comes from the gateway.
    let shop = browser
        .go(reqwest::Method::GET, format!("{}/", env.gateway), None)
        .await;
    let text = words(&shop.html);
    assert!(text.contains("refunded ¥500 of ¥3,000"), "{text}");
    assert!(text.contains("¥3,240") && !text.contains("￥"), "{text}");

    // A form without the page's CSRF token is refused and changes nothing.
    let id = order
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let resp = env
        .http
        .post(format!("{}/demo/orders/{id}/refund", env.gateway))
        .form(&[("amount", "100")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(env.order(id).await.unwrap().order.refunded.get(), 500);
}

#[tokio::test]
async fn order_links_survive_a_restart() {
    // An emulator of its own, so that the gateway can stop and start again on the same files.
    let data_dir = common::fresh_dir("demo-restart");
    let emulator = common::standalone_emulator(&data_dir).await.to_string();
    let options = kessai::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir: data_dir.clone(),
        database_url: None,
        sandbox_listen: "127.0.0.1:0".parse().unwrap(),
        amazon_pay_endpoint: Some(url::Url::parse(&emulator).unwrap()),
        amazon_pay_public_key_id: None,
        amazon_pay_store_id: None,
        amazon_pay_private_key: None,
        amazon_pay_region: "jp".into(),
        amazon_pay_merchant_id: None,
        amazon_pay_sandbox: false,
        amazon_pay_public_key: None,
        amazon_pay_ca_file: None,
        sandbox_public_url: None,
        demo_ccid: None,
        demo_secret: None,
        demo_shop: true,
        allow_private_push_targets: false,
        push_lease: std::time::Duration::from_secs(30),
        gateway_tls: kessai::GatewayTls::LocalCa,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    };
    let first = kessai::start_with(options.clone(), kessai::Hooks::default())
        .await
        .unwrap();
    let gateway = first.gateway.base_url().to_owned();
    let (ccid, secret) = (
        first.demo.ccid.to_string(),
        first.demo.secret_hex.expose().clone(),
    );
    let running = tokio::spawn(first.serve());
    let env = TestEnv::external(&gateway, &emulator, &ccid, &secret, data_dir.clone()).await;
    let mut browser = Browser::new(&env.http);
    let confirm = buy(&env, &mut browser, 1, "once").await;
    let amazon = browser.submit_page(confirm, &[]).await;
    let order = browser.submit_page(amazon, &[]).await;
    assert!(words(&order.html).contains("authorized ¥1,980"));
    let path = url::Url::parse(&order.url).unwrap().path().to_owned();

    // Stopped and started again on the same files, the shop still knows the order and its list.
    running.abort();
    let _ = running.await;
    let again = kessai::start_with(options, kessai::Hooks::default())
        .await
        .unwrap();
    let base = again.gateway.base_url().to_owned();
    assert_eq!(again.demo.ccid.to_string(), ccid, "the same demo merchant");
    tokio::spawn(again.serve());
    let resp = env.http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = words(&resp.text().await.unwrap());
    assert!(text.contains("authorized ¥1,980"), "{text}");
    let resp = env.http.get(format!("{base}/")).send().await.unwrap();
    let text = words(&resp.text().await.unwrap());
    assert!(text.contains("authorized ¥1,980"), "{text}");
}

#[tokio::test]
async fn shop_confirmation_and_subscription_without_script() {
    let env = TestEnv::start("demo-patterns").await;
    let mut browser = Browser::new(&env.http);

    // The shop's own confirmation page: the address, a shipping fee, the final amount.
    let shop_confirm = buy(&env, &mut browser, 0, "once-shop").await;
    assert!(
        shop_confirm.url.contains("/confirm"),
        "{}: {}",
        shop_confirm.url,
        words(&shop_confirm.html)
    );
    let text = words(&shop_confirm.html);
    assert!(text.contains("〒") && text.contains("¥4,140"), "{text}");
    let kessai_pay = browser
        .submit_page(shop_confirm, &[("shipping", "express")])
        .await;
    assert!(words(&kessai_pay.html).contains("¥4,140"));
    let amazon = browser.submit_page(kessai_pay, &[]).await;
    let order = browser.submit_page(amazon, &[]).await;
    let text = words(&order.html);
    assert!(text.contains("authorized ¥4,140"), "{text}");

    // Consent only, then a charge: an order of its own, captured.
    let review = buy(&env, &mut browser, 1, "consent").await;
    let amazon = browser.submit_page(review, &[]).await;
    let sub = browser.submit_page(amazon, &[]).await;
    let text = words(&sub.html);
    assert!(
        text.contains("subscription active (no charge yet)"),
        "{text}"
    );
    assert!(form_ending(&sub.html, "/capture").is_none());
    let charge = press(&mut browser, &sub, "/charge-now", &[("amount", "1500")]).await;
    assert_ne!(charge.url, sub.url);
    let text = words(&charge.html);
    assert!(text.contains("captured ¥1,500"), "{text}");
    let sub_id = sub.url.split("/demo/orders/").nth(1).unwrap();
    let sub_id = sub_id.split('?').next().unwrap();
    assert!(text.contains(sub_id), "the charge names its subscription");

    // The end of the subscription: nothing more to charge.
    let sub = browser
        .go(
            reqwest::Method::GET,
            format!("{}/demo/orders/{sub_id}", env.gateway),
            None,
        )
        .await;
    let ended = press(&mut browser, &sub, "/end-subscription", &[]).await;
    let text = words(&ended.html);
    assert!(
        text.contains("Status subscription ended ") || text.ends_with("Status subscription ended"),
        "{text}"
    );
    assert!(form_ending(&ended.html, "/charge-now").is_none());
    let o = env.order(sub_id).await.unwrap();
    assert_eq!(
        o.consent.map(|c| c.state),
        Some(kessai_core::ConsentState::Terminated)
    );
}

/// Signs `buyer` in with Login with Amazon at the emulator for the client `client_id` (the
/// redirect form of `amazon.Login.authorize`); the access token.
async fn lwa_token(emulator: &str, client_id: &str, buyer: &str) -> String {
    const SCOPES: &str = "profile postal_code payments:widget payments:shipping_address";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let query = [
        ("client_id", client_id),
        ("scope", SCOPES),
        ("response_type", "token"),
        ("redirect_uri", "http://shop.example/back"),
        ("state", "s"),
    ];
    let page = http
        .get(format!("{emulator}/ap/oa"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let mut form: Vec<(&str, &str)> = query.to_vec();
    form.extend([
        ("csrf", csrf.as_str()),
        ("action", "signin"),
        ("buyer", buyer),
    ]);
    let done = http
        .post(format!("{emulator}/ap/oa"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let to = url::Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    to.query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .expect("an access token")
}

/// The attack: a signed-in buyer posts another buyer's billing agreement id to the Auto Pay
/// page's confirm. It is refused (403) and the agreement is not confirmed or charged: its owner
/// then confirms it and is charged once, as the first charge.
#[tokio::test]
async fn auto_pay_confirm_refuses_another_buyers_agreement() {
    let env = TestEnv::start("demo-autopay-owner").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/demo/autopay", env.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kessai_demo_csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("the demo's CSRF cookie");
    let html = page.text().await.unwrap();
    let attr = |name: &str| {
        html.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in the page"))
            .to_owned()
    };
    let (seller_id, client_id) = (attr("data-seller-id"), attr("data-client-id"));
    let csrf = {
        let doc = scraper::Html::parse_document(&html);
        let sel =
            scraper::Selector::parse("form[action$='/demo/autopay/confirm'] input[name=csrf]")
                .unwrap();
        doc.select(&sel)
            .next()
            .and_then(|input| input.value().attr("value"))
            .map(str::to_owned)
            .expect("the confirm form's CSRF field")
    };

    // Taro's agreement (the emulator's default buyer), with his consent.
    let made: serde_json::Value = http
        .post(format!("{}/test_helpers/billingAgreements", env.emulator))
        .json(&serde_json::json!({ "sellerId": seller_id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["AmazonBillingAgreementId"]
        .as_str()
        .unwrap()
        .to_owned();
    let consent = http
        .post(format!(
            "{}/test_helpers/billingAgreements/{id}/consent",
            env.emulator
        ))
        .json(&serde_json::json!({ "consent": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);

    let confirm = |token: String| {
        let (http, url) = (
            http.clone(),
            format!("{}/demo/autopay/confirm", env.gateway),
        );
        let cookie = format!("{csrf_cookie}; amazon_Login_accessToken={token}");
        let form = [("billingAgreementId", id.clone()), ("csrf", csrf.clone())];
        async move {
            http.post(url)
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let hanako = lwa_token(
        &env.emulator,
        &client_id,
        "amzn1.account.SANDBOXHANAKO000000000000002",
    )
    .await;
    let refused = confirm(hanako).await;
    assert_eq!(refused.status(), 403);
    let text = words(&refused.text().await.unwrap());
    assert!(text.contains("not the signed-in buyer's"), "{text}");

    let taro = lwa_token(
        &env.emulator,
        &client_id,
        "amzn1.account.SANDBOXTARO0000000000000001",
    )
    .await;
    let done = confirm(taro.clone()).await;
    assert_eq!(done.status(), 303, "the owner's confirm goes through");
    let to = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("/demo/autopay/agreements/{id}")) && to.contains("capture="),
        "{to}"
    );

    // The agreement's page and its actions are the owner's too: another buyer (or nobody) can
    // neither read it, nor charge it, nor refund its capture; the owner's view is unchanged.
    let capture = to
        .split("capture=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_owned();
    let page_as = |token: Option<&str>, query: &str| {
        let mut req = http.get(format!(
            "{}/demo/autopay/agreements/{id}{query}",
            env.gateway
        ));
        if let Some(t) = token {
            req = req.header("cookie", format!("amazon_Login_accessToken={t}"));
        }
        async move { req.send().await.unwrap() }
    };
    let post_as = |token: &str, action: &str, form: Vec<(&str, String)>| {
        let req = http
            .post(format!(
                "{}/demo/autopay/agreements/{id}/{action}",
                env.gateway
            ))
            .header(
                "cookie",
                format!("{csrf_cookie}; amazon_Login_accessToken={token}"),
            )
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    let owners_view = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        words(&r.text().await.unwrap())
    };
    let query = format!("?capture={capture}");
    let before = owners_view(page_as(Some(&taro), &query).await).await;
    assert!(before.contains("980"), "{before}");
    let hanako = lwa_token(
        &env.emulator,
        &client_id,
        "amzn1.account.SANDBOXHANAKO000000000000002",
    )
    .await;
    for (what, r) in [
        ("page without a token", page_as(None, "").await),
        (
            "page as another buyer",
            page_as(Some(&hanako), &query).await,
        ),
        (
            "charge as another buyer",
            post_as(&hanako, "charge", vec![("csrf", csrf.clone())]).await,
        ),
        (
            "refund as another buyer",
            post_as(
                &hanako,
                "refund",
                vec![
                    ("csrf", csrf.clone()),
                    ("capture", capture.clone()),
                    ("amount", "980".into()),
                ],
            )
            .await,
        ),
        (
            "refund of a capture not on this agreement",
            post_as(
                &taro,
                "refund",
                vec![
                    ("csrf", csrf.clone()),
                    ("capture", "C03-0000000-0000000-C000001".into()),
                    ("amount", "1".into()),
                ],
            )
            .await,
        ),
        (
            "page showing a capture not on this agreement",
            page_as(Some(&taro), "?capture=C03-0000000-0000000-C000001").await,
        ),
    ] {
        assert_eq!(r.status(), 403, "{what}");
    }
    let after = owners_view(page_as(Some(&taro), &query).await).await;
    assert_eq!(before, after, "the refusals charged and refunded nothing");
}
