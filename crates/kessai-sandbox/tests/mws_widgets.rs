//! The Auto Pay buyer side over HTTP: the served `Widgets.js`, Login with Amazon (sign-in page,
//! access token, tokeninfo and profile in the three ways clients send a token), the widget
//! frames changing a billing agreement step by step, and frame requests without their token
//! refused with nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mws_common;
use mws_common::*;
use serde_json::{json, Value};

const ORIGIN: &str = "http://shop.example:8080";
const SCOPES: &str = "profile postal_code payments:widget payments:shipping_address";

/// A seller as the helper answers it, with its Login with Amazon client id.
async fn seller_and_client(e: &Emulator) -> (Seller, String) {
    let v = e.helper("/test_helpers/sellers", json!({})).await;
    let seller = Seller {
        id: v["sellerId"].as_str().unwrap().into(),
        access_key: v["accessKey"].as_str().unwrap().into(),
        secret: v["secretKey"].as_str().unwrap().into(),
    };
    (seller, v["lwaClientId"].as_str().unwrap().into())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name="…" value="…"` (or a `data-…="…"` attribute) in a page.
fn attribute(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))
        + marker.len();
    let rest = &html[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Signs a test buyer in on the emulator's Login with Amazon page (redirect flow); the query of
/// the redirect back to the merchant.
async fn sign_in(e: &Emulator, client_id: &str, buyer: Option<&str>) -> Vec<(String, String)> {
    let http = no_redirects();
    let page = http
        .get(format!("{}/ap/oa", e.base))
        .query(&[
            ("client_id", client_id),
            ("scope", SCOPES),
            ("response_type", "token"),
            ("redirect_uri", "http://shop.example:8080/back?x=1"),
            ("state", "s123"),
        ])
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
    assert!(html.contains("山田 太郎"), "{html}");
    let csrf = attribute(&html, "name=\"csrf\" value=\"");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("client_id", client_id),
        ("scope", SCOPES),
        ("response_type", "token"),
        ("redirect_uri", "http://shop.example:8080/back?x=1"),
        ("state", "s123"),
        ("action", "signin"),
    ];
    if let Some(b) = buyer {
        form.push(("buyer", b));
    }
    let done = http
        .post(format!("{}/ap/oa", e.base))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let to = url::Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/back");
    to.query_pairs().into_owned().collect()
}

fn param(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key} in {pairs:?}"))
}

#[tokio::test]
async fn widgets_js_is_served_as_a_script_that_defines_amazons_functions() {
    let e = start().await;
    for path in [
        "/OffAmazonPayments/jp/sandbox/lpa/js/Widgets.js",
        "/OffAmazonPayments/jp/lpa/js/Widgets.js",
    ] {
        let r = e
            .http
            .get(format!("{}{path}", e.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/javascript; charset=utf-8"
        );
        let js = r.text().await.unwrap();
        for name in [
            "window.OffAmazonPayments",
            "Button:",
            "AddressBook: widget('addressbook')",
            "Wallet: widget('wallet')",
            "Consent: widget('consent')",
            "window.amazon.Login = Login",
            "setClientId:",
            "authorize:",
            "getAmazonBillingAgreementId",
            "getConsentStatus",
            "onAmazonLoginReady",
            "onAmazonPaymentsReady",
        ] {
            assert!(js.contains(name), "{path} lacks {name}");
        }
    }
    // The MWS paths around it still answer XML.
    let a = e
        .post_raw("/OffAmazonPayments/jp/lpa/js/Other.js", String::new())
        .await;
    assert_eq!(a.content_type, "text/xml");
}

#[tokio::test]
async fn login_gives_a_token_whose_audience_is_the_sellers_client_in_all_three_forms() {
    let e = start().await;
    let (_, client_id) = seller_and_client(&e).await;
    let back = sign_in(
        &e,
        &client_id,
        Some("amzn1.account.SANDBOXHANAKO000000000000002"),
    )
    .await;
    let token = param(&back, "access_token");
    assert!(token.starts_with("Atza|"), "{token}");
    assert_eq!(param(&back, "token_type"), "bearer");
    assert_eq!(param(&back, "expires_in"), "3600");
    assert_eq!(param(&back, "state"), "s123");
    assert_eq!(param(&back, "x"), "1");

    let forms: [(&str, reqwest::RequestBuilder); 3] = [
        (
            "bearer",
            e.http
                .get(format!("{}/auth/o2/tokeninfo", e.base))
                .header("authorization", format!("bearer {token}")),
        ),
        (
            "query",
            e.http
                .get(format!("{}/auth/o2/tokeninfo", e.base))
                .query(&[("access_token", &token)]),
        ),
        (
            "x-amz-access-token",
            e.http
                .get(format!("{}/auth/o2/tokeninfo", e.base))
                .header("x-amz-access-token", &token),
        ),
    ];
    for (how, request) in forms {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200, "{how}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["aud"], client_id.as_str(), "{how}");
        assert_eq!(v["user_id"], "amzn1.account.SANDBOXHANAKO000000000000002");
        assert!(v["exp"].as_i64().unwrap() > 3500 && v["exp"].as_i64().unwrap() <= 3600);
        assert!(v["iat"].as_i64().is_some());
        assert!(v["app_id"]
            .as_str()
            .unwrap()
            .starts_with("amzn1.application."));
    }
    let profiles = [
        e.http
            .get(format!("{}/user/profile", e.base))
            .header("Authorization", format!("Bearer {token}")),
        e.http
            .get(format!("{}/user/profile", e.base))
            .query(&[("access_token", &token)]),
        e.http
            .get(format!("{}/user/profile", e.base))
            .header("x-amz-access-token", &token),
    ];
    for request in profiles {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({
                "user_id": "amzn1.account.SANDBOXHANAKO000000000000002",
                "name": "佐藤 花子",
                "email": "hanako.sato@example.jp",
                "postal_code": "060-0001",
            })
        );
    }
}

#[tokio::test]
async fn wrong_missing_and_expired_tokens_are_refused() {
    let e = start().await;
    let (_, client_id) = seller_and_client(&e).await;
    let token = param(&sign_in(&e, &client_id, None).await, "access_token");
    let info = |t: Option<&str>| {
        let mut r = e.http.get(format!("{}/auth/o2/tokeninfo", e.base));
        if let Some(t) = t {
            r = r.header("x-amz-access-token", t);
        }
        r.send()
    };
    let r = info(Some("Atza|not-a-token")).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_token");
    let r = info(None).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = e
        .http
        .get(format!("{}/user/profile", e.base))
        .header("authorization", "bearer Atza|nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");

    // Still good just before the hour is up, refused after.
    e.advance(3590).await;
    assert_eq!(info(Some(&token)).await.unwrap().status(), 200);
    e.advance(20).await;
    let r = info(Some(&token)).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_token");
    assert!(v["error_description"].as_str().unwrap().contains("expired"));

    // An unknown client id gets no sign-in page.
    let r = e
        .http
        .get(format!("{}/ap/oa", e.base))
        .query(&[
            ("client_id", "amzn1.application-oa2-client.unknown"),
            ("scope", "profile"),
            ("redirect_uri", "http://shop.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Opens a widget frame; (status, page html).
async fn frame(
    e: &Emulator,
    kind: &str,
    seller: &str,
    token: &str,
    ba: Option<&str>,
) -> (u16, String) {
    let mut q = vec![
        ("sellerId", seller),
        ("origin", ORIGIN),
        ("access_token", token),
        ("env", "sandbox"),
        ("frame", "w1"),
    ];
    if let Some(id) = ba {
        q.push(("amazonBillingAgreementId", id));
    }
    let r = e
        .http
        .get(format!("{}/mws/widgets/{kind}", e.base))
        .query(&q)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains(&format!("frame-ancestors {ORIGIN};")), "{csp}");
    }
    (status, r.text().await.unwrap())
}

async fn act(e: &Emulator, form: &[(&str, &str)]) -> (u16, Value) {
    let r = e
        .http
        .post(format!("{}/mws/widgets/action", e.base))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn constraints(a: &Answer) -> Vec<String> {
    a.all("Constraint/ConstraintID")
}

#[tokio::test]
async fn the_widgets_make_a_draft_and_clear_its_constraints_one_by_one_then_it_confirms() {
    let e = start().await;
    let (seller, client_id) = seller_and_client(&e).await;
    let token = param(&sign_in(&e, &client_id, None).await, "access_token");

    // The address book without an agreement makes a Draft one.
    let (status, html) = frame(&e, "addressbook", &seller.id, &token, None).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("渋谷"), "{html}");
    let page = attribute(&html, "data-page=\"");
    let (status, v) = act(&e, &[("page", &page), ("op", "create")]).await;
    assert_eq!(status, 200, "{v}");
    let id = v["amazonBillingAgreementId"].as_str().unwrap().to_owned();
    assert!(id.starts_with('C'), "{id}");
    assert_eq!(v["state"], "Draft");
    let a = e.agreement_state(&seller, &id).await;
    assert_eq!(a.req("BillingAgreementStatus/State"), "Draft");
    assert_eq!(
        constraints(&a),
        [
            "ShippingAddressNotSet",
            "PaymentPlanNotSet",
            "BuyerConsentNotSet"
        ]
    );
    // Creating again from the same frame gives the same agreement.
    let (_, again) = act(&e, &[("page", &page), ("op", "create")]).await;
    assert_eq!(again["amazonBillingAgreementId"], id.as_str());

    // Another buyer's address is refused; the buyer's own clears ShippingAddressNotSet.
    let (status, _) = act(
        &e,
        &[("page", &page), ("op", "address"), ("value", "hanako-home")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, v) = act(
        &e,
        &[("page", &page), ("op", "address"), ("value", "taro-office")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let a = e.agreement_state(&seller, &id).await;
    assert_eq!(constraints(&a), ["PaymentPlanNotSet", "BuyerConsentNotSet"]);

    // The wallet, on that agreement: a payment method clears PaymentPlanNotSet.
    let (status, html) = frame(&e, "wallet", &seller.id, &token, Some(&id)).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("visa-3434"),
        "the wallet offers a card that declines"
    );
    let wallet = attribute(&html, "data-page=\"");
    let (status, _) = act(
        &e,
        &[("page", &wallet), ("op", "address"), ("value", "taro-home")],
    )
    .await;
    assert_eq!(status, 400, "a wallet frame does not choose addresses");
    let (status, v) = act(
        &e,
        &[("page", &wallet), ("op", "payment"), ("value", "jcb-0005")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["constraints"], json!(["BuyerConsentNotSet"]));
    let a = e.agreement_state(&seller, &id).await;
    assert_eq!(constraints(&a), ["BuyerConsentNotSet"]);
    e.call(
        &seller,
        "ConfirmBillingAgreement",
        &[("AmazonBillingAgreementId", &id)],
    )
    .await
    .assert_error(400, "BillingAgreementConstraintsExist");

    // The consent widget: consent clears the last constraint.
    let (status, html) = frame(&e, "consent", &seller.id, &token, Some(&id)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-consent=\"false\""));
    let consent = attribute(&html, "data-page=\"");
    let (status, v) = act(
        &e,
        &[("page", &consent), ("op", "consent"), ("value", "true")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["consent"], true);
    let a = e.agreement_state(&seller, &id).await;
    assert!(constraints(&a).is_empty(), "{}", a.body);
    assert_eq!(a.req("BillingAgreementConsent"), "true");

    // Before confirm the address is partial without a token, whole with the buyer's.
    assert_eq!(a.get("PhysicalDestination/AddressLine1"), None);
    let full = e
        .call(
            &seller,
            "GetBillingAgreementDetails",
            &[
                ("AmazonBillingAgreementId", &id),
                ("AddressConsentToken", &token),
            ],
        )
        .await;
    full.assert_ok("GetBillingAgreementDetails");
    assert_eq!(full.req("PhysicalDestination/AddressLine1"), "梅田3-1-1");
    let full = e
        .call(
            &seller,
            "GetBillingAgreementDetails",
            &[("AmazonBillingAgreementId", &id), ("AccessToken", &token)],
        )
        .await;
    assert_eq!(full.req("PhysicalDestination/PostalCode"), "530-0001");

    e.call(
        &seller,
        "ConfirmBillingAgreement",
        &[("AmazonBillingAgreementId", &id)],
    )
    .await
    .assert_ok("ConfirmBillingAgreement");
    let a = e.agreement_state(&seller, &id).await;
    assert_eq!(a.req("BillingAgreementStatus/State"), "Open");
    // After confirm consent is no longer the buyer's to change.
    let (status, _) = act(
        &e,
        &[("page", &consent), ("op", "consent"), ("value", "false")],
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        e.agreement_state(&seller, &id)
            .await
            .req("BillingAgreementConsent"),
        "true"
    );
}

#[tokio::test]
async fn the_wallets_declining_card_makes_validation_fail() {
    let e = start().await;
    let (seller, client_id) = seller_and_client(&e).await;
    let token = param(&sign_in(&e, &client_id, None).await, "access_token");
    let (_, html) = frame(&e, "wallet", &seller.id, &token, None).await;
    let page = attribute(&html, "data-page=\"");
    let (_, v) = act(&e, &[("page", &page), ("op", "create")]).await;
    let id = v["amazonBillingAgreementId"].as_str().unwrap().to_owned();
    act(
        &e,
        &[("page", &page), ("op", "payment"), ("value", "visa-3434")],
    )
    .await;
    let (_, html) = frame(&e, "addressbook", &seller.id, &token, Some(&id)).await;
    let page = attribute(&html, "data-page=\"");
    act(
        &e,
        &[("page", &page), ("op", "address"), ("value", "taro-home")],
    )
    .await;
    let (_, html) = frame(&e, "consent", &seller.id, &token, Some(&id)).await;
    let page = attribute(&html, "data-page=\"");
    act(&e, &[("page", &page), ("op", "consent"), ("value", "true")]).await;
    e.call(
        &seller,
        "ConfirmBillingAgreement",
        &[("AmazonBillingAgreementId", &id)],
    )
    .await
    .assert_ok("ConfirmBillingAgreement");
    let v = e
        .call(
            &seller,
            "ValidateBillingAgreement",
            &[("AmazonBillingAgreementId", &id)],
        )
        .await;
    assert_eq!(v.req("ValidationResult"), "Failure");
    assert_eq!(v.req("FailureReasonCode"), "InvalidPaymentMethod");
}

#[tokio::test]
async fn frame_requests_without_the_frames_token_are_refused_and_change_nothing() {
    let e = start().await;
    let (seller, client_id) = seller_and_client(&e).await;
    let token = param(&sign_in(&e, &client_id, None).await, "access_token");
    let (_, html) = frame(&e, "addressbook", &seller.id, &token, None).await;
    let page = attribute(&html, "data-page=\"");
    let (_, v) = act(&e, &[("page", &page), ("op", "create")]).await;
    let id = v["amazonBillingAgreementId"].as_str().unwrap().to_owned();
    let before = e.agreement_state(&seller, &id).await;

    for form in [
        vec![("op", "address"), ("value", "taro-home")],
        vec![("page", ""), ("op", "address"), ("value", "taro-home")],
        vec![
            ("page", "0123456789abcdef0123456789abcdef"),
            ("op", "address"),
            ("value", "taro-home"),
        ],
        vec![("op", "create")],
    ] {
        let (status, v) = act(&e, &form).await;
        assert_eq!(status, 403, "{form:?}");
        assert_eq!(v["error"], "InvalidFrameToken");
    }
    let after = e.agreement_state(&seller, &id).await;
    assert_eq!(constraints(&before), constraints(&after));
    assert_eq!(
        before.req("BillingAgreementStatus/LastUpdatedTimestamp"),
        after.req("BillingAgreementStatus/LastUpdatedTimestamp")
    );

    // A frame's token expires with the buyer's access token.
    e.advance(3601).await;
    let (status, _) = act(
        &e,
        &[("page", &page), ("op", "address"), ("value", "taro-home")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(constraints(&e.agreement_state(&seller, &id).await).len(), 3);
}

#[tokio::test]
async fn frames_refuse_bad_tokens_other_sellers_and_other_buyers_agreements() {
    let e = start().await;
    let (seller, client_id) = seller_and_client(&e).await;
    let (other, other_client) = seller_and_client(&e).await;
    let taro = param(&sign_in(&e, &client_id, None).await, "access_token");
    let hanako = param(
        &sign_in(
            &e,
            &client_id,
            Some("amzn1.account.SANDBOXHANAKO000000000000002"),
        )
        .await,
        "access_token",
    );
    let at_other = param(&sign_in(&e, &other_client, None).await, "access_token");

    let (status, html) = frame(&e, "addressbook", &seller.id, "Atza|nope", None).await;
    assert_eq!(status, 401);
    assert!(
        html.contains("data-error-code=\"BuyerSessionExpired\""),
        "{html}"
    );
    assert!(attribute(&html, "data-page=\"").is_empty());
    let (status, _) = frame(&e, "addressbook", &seller.id, &at_other, None).await;
    assert_eq!(status, 403, "a token of another seller's client");
    let (status, _) = frame(&e, "consent", &seller.id, &taro, None).await;
    assert_eq!(status, 400, "consent needs an agreement");

    let (_, html) = frame(&e, "addressbook", &seller.id, &taro, None).await;
    let page = attribute(&html, "data-page=\"");
    let (_, v) = act(&e, &[("page", &page), ("op", "create")]).await;
    let id = v["amazonBillingAgreementId"].as_str().unwrap().to_owned();
    let (status, _) = frame(&e, "wallet", &seller.id, &hanako, Some(&id)).await;
    assert_eq!(status, 400, "another buyer's agreement");
    let (status, _) = frame(&e, "wallet", &other.id, &at_other, Some(&id)).await;
    assert_eq!(status, 400, "another seller's agreement");

    // Another buyer's token shows no address of this agreement.
    e.call(
        &seller,
        "GetBillingAgreementDetails",
        &[
            ("AmazonBillingAgreementId", &id),
            ("AddressConsentToken", &hanako),
        ],
    )
    .await
    .assert_error(404, "InvalidAddressConsentToken");
}
