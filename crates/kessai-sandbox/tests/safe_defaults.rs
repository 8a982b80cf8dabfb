//! Attacks on the emulator's defaults, each tried against a real server on port 0: the attack
//! must fail and change nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_arguments
)]

use kessai_amazonpay::signing::{self, Algorithm};
use kessai_amazonpay::PrivateKey;
use kessai_sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};

struct Emu {
    base: String,
    http: reqwest::Client,
    db: std::path::PathBuf,
}

async fn start(name: &str) -> Emu {
    start_config(name, |c| c).await
}

async fn start_config(name: &str, f: impl FnOnce(SandboxConfig) -> SandboxConfig) -> Emu {
    let dir = std::env::temp_dir().join(format!(
        "kessai-safe-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = f(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.join("sandbox.sqlite"),
        public_url: None,
        tls: kessai_sandbox::TlsSetting::Off,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    });
    let sandbox = Sandbox::bind(config).await.unwrap();
    let base = format!("http://{}", sandbox.local_addr());
    tokio::spawn(sandbox.serve());
    Emu {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db: dir.join("sandbox.sqlite"),
    }
}

fn now_date() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap()
}

impl Emu {
    fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn register(&self, key: &PrivateKey) -> Value {
        let (status, v) = self
            .post_json(
                "/test_helpers/publicKeys",
                json!({"publicKey": key.public_key().to_pem().unwrap()}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v
    }

    /// A request signed with `key` as `key_id`, claiming `x-amz-pay-host: host`.
    async fn signed(
        &self,
        method: &str,
        path: &str,
        body: &str,
        key: &PrivateKey,
        key_id: &str,
        host: &str,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let mut headers: Vec<(String, String)> = vec![
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
            ("x-amz-pay-date".into(), now_date()),
            ("x-amz-pay-host".into(), host.to_owned()),
            ("x-amz-pay-region".into(), "jp".into()),
        ];
        if let Some(k) = idem {
            headers.push(("x-amz-pay-idempotency-key".into(), k.to_owned()));
        }
        let names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        let canonical =
            signing::canonical_request(method, path, "", &headers, &names, body.as_bytes())
                .unwrap();
        let sig = signing::sign(key, &signing::string_to_sign(Algorithm::V2, &canonical)).unwrap();
        let mut sorted = names.clone();
        sorted.sort();
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .header(
                "authorization",
                signing::authorization_header(key_id, &sorted, &sig),
            )
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// How many objects of `kind` the emulator's file holds.
    async fn count(&self, kind: &str) -> i64 {
        let url = format!("sqlite://{}?mode=ro", self.db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM records WHERE kind = ?")
            .bind(kind)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

fn session_body(store_id: &Value) -> String {
    json!({
        "webCheckoutDetails": {"checkoutReviewReturnUrl": "https://m.example/review"},
        "storeId": store_id,
    })
    .to_string()
}

/// Item 6: a request signed for one host is refused at another, and creates nothing.
#[tokio::test]
async fn request_signed_for_another_host_is_refused() {
    let emu = start("host").await;
    let key = PrivateKey::generate().unwrap();
    let reg = emu.register(&key).await;
    let id = reg["publicKeyId"].as_str().unwrap();
    let before = emu.count("checkoutSession").await;
    for other in ["other-emulator.example:8443", "localhost:1"] {
        let (status, v) = emu
            .signed(
                "POST",
                "/v2/checkoutSessions",
                &session_body(&reg["storeId"]),
                &key,
                id,
                other,
                Some("host-replay-1"),
            )
            .await;
        assert_eq!(status, 403, "signed for {other}: {v}");
        assert_eq!(v["reasonCode"], "InvalidRequestSignature", "{v}");
    }
    assert_eq!(
        emu.count("checkoutSession").await,
        before,
        "nothing created"
    );
    // The same request signed for this host goes through.
    let (status, v) = emu
        .signed(
            "POST",
            "/v2/checkoutSessions",
            &session_body(&reg["storeId"]),
            &key,
            id,
            &emu.host(),
            Some("host-replay-2"),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(emu.count("checkoutSession").await, before + 1);
}

/// A victim merchant with one checkout session ready for the buyer's confirmation page.
struct Victim {
    key: PrivateKey,
    key_id: String,
    merchant_id: String,
    session: String,
}

async fn victim_with_session(emu: &Emu) -> Victim {
    let key = PrivateKey::generate().unwrap();
    let reg = emu.register(&key).await;
    let key_id = reg["publicKeyId"].as_str().unwrap().to_owned();
    let (status, cs) = emu
        .signed(
            "POST",
            "/v2/checkoutSessions",
            &session_body(&reg["storeId"]),
            &key,
            &key_id,
            &emu.host(),
            Some("victim-session"),
        )
        .await;
    assert_eq!(status, 201, "{cs}");
    let session = cs["checkoutSessionId"].as_str().unwrap().to_owned();
    let (status, v) = emu
        .post_json(
            &format!("/test_helpers/checkoutSessions/{session}/sign_in"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let update = json!({
        "webCheckoutDetails": {"checkoutResultReturnUrl": "https://m.example/result"},
        "paymentDetails": {"paymentIntent": "Authorize", "chargeAmount": {"amount": "1000", "currencyCode": "JPY"}},
    })
    .to_string();
    let (status, v) = emu
        .signed(
            "PATCH",
            &format!("/v2/checkoutSessions/{session}"),
            &update,
            &key,
            &key_id,
            &emu.host(),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["webCheckoutDetails"]["amazonPayRedirectUrl"].is_string(),
        "{v}"
    );
    Victim {
        key,
        key_id,
        merchant_id: reg["merchantId"].as_str().unwrap().to_owned(),
        session,
    }
}

impl Emu {
    /// Completing the session answers 422 InvalidCheckoutSessionStatus until the buyer paid.
    async fn buyer_has_paid(&self, v: &Victim) -> bool {
        let body = json!({"chargeAmount": {"amount": "1000", "currencyCode": "JPY"}}).to_string();
        let (status, answer) = self
            .signed(
                "POST",
                &format!("/v2/checkoutSessions/{}/complete", v.session),
                &body,
                &v.key,
                &v.key_id,
                &self.host(),
                None,
            )
            .await;
        match status {
            200 => true,
            422 => {
                assert_eq!(answer["reasonCode"], "InvalidCheckoutSessionStatus");
                false
            }
            other => panic!("complete answered {other}: {answer}"),
        }
    }
}

/// Item 1: posting a merchant's public key does not reveal its merchant, and a stranger cannot
/// join that merchant with a key of their own and read its objects.
#[tokio::test]
async fn strangers_cannot_learn_or_join_a_merchant() {
    let emu = start("join").await;
    let victim = victim_with_session(&emu).await;
    let victim_pem = victim.key.public_key().to_pem().unwrap();
    // 1. Post the victim's public key (which is not secret).
    let (status, v) = emu
        .post_json("/test_helpers/publicKeys", json!({"publicKey": victim_pem}))
        .await;
    assert!(
        v.get("merchantId").is_none() && v.get("publicKeyId").is_none(),
        "the key's merchant and id are not given to a caller who does not hold the key: {status} {v}"
    );
    // 2. Register an own key into the victim's merchant without its token.
    let attacker = PrivateKey::generate().unwrap();
    let (status, v) = emu
        .post_json(
            "/test_helpers/publicKeys",
            json!({"publicKey": attacker.public_key().to_pem().unwrap(), "merchantId": victim.merchant_id}),
        )
        .await;
    assert_eq!(status, 403, "joining a merchant needs its token: {v}");
    // 3. Nothing was registered: a signed read with the attacker's key is not accepted.
    let (status, v) = emu
        .signed(
            "GET",
            &format!("/v2/checkoutSessions/{}", victim.session),
            "",
            &attacker,
            "SANDBOX-ANY",
            &emu.host(),
            None,
        )
        .await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = emu
        .post_json(
            "/test_helpers/publicKeys",
            json!({"publicKey": attacker.public_key().to_pem().unwrap()}),
        )
        .await;
    assert_eq!(status, 201, "the attacker's key was not stored before: {v}");
    assert_ne!(v["merchantId"], victim.merchant_id.as_str());
}

/// Item 1: a cross-site form POST carrying only the session id does not pay for the buyer.
#[tokio::test]
async fn cross_site_post_cannot_pay_for_a_session() {
    let emu = start("csrf").await;
    let victim = victim_with_session(&emu).await;
    let resp = emu
        .http
        .post(format!("{}/checkout/confirm", emu.base))
        .header("origin", "http://evil.example")
        .form(&[
            ("amazonCheckoutSessionId", victim.session.as_str()),
            ("action", "continue"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "a cross-site POST is refused");
    assert!(resp.headers().get("location").is_none());
    assert!(!emu.buyer_has_paid(&victim).await, "nothing was paid");
    // The same POST with a cookie that was never issued with the form, and a made-up token.
    let resp = emu
        .http
        .post(format!("{}/checkout/confirm", emu.base))
        .header("cookie", "kessai_emulator_csrf=abc")
        .form(&[
            ("amazonCheckoutSessionId", victim.session.as_str()),
            ("csrf", "def"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(!emu.buyer_has_paid(&victim).await, "nothing was paid");
}

/// Item 1: the buyer's own browser (the page's cookie and its form's token) still pays.
#[tokio::test]
async fn the_buyers_own_form_still_pays() {
    let emu = start("csrf-ok").await;
    let victim = victim_with_session(&emu).await;
    let page = emu
        .http
        .get(format!(
            "{}/checkout/confirm?amazonCheckoutSessionId={}",
            emu.base, victim.session
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .expect("the page sets its CSRF cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries the token")
        .to_owned();
    let resp = emu
        .http
        .post(format!("{}/checkout/confirm", emu.base))
        .header("cookie", pair)
        .form(&[
            ("amazonCheckoutSessionId", victim.session.as_str()),
            ("csrf", token.as_str()),
            ("action", "continue"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert!(emu.buyer_has_paid(&victim).await);
}

async fn clock_offset(db: &std::path::Path) -> Option<String> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let v: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE name = 'clock_offset'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    pool.close().await;
    v.map(|(s,)| s)
}

/// Item 1: bound beyond loopback, the unsigned helpers are not open by default: the clock
/// cannot be moved 31 days to expire every authorization.
#[tokio::test]
async fn helpers_are_closed_by_default_beyond_loopback() {
    let emu = start_config("helpers-default", |c| SandboxConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..c
    })
    .await;
    let base = emu.base.replace("0.0.0.0", "127.0.0.1");
    let resp = emu
        .http
        .post(format!("{base}/test_helpers/clock/advance"))
        .json(&json!({"seconds": 31 * 24 * 3600}))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_client_error(),
        "advance answered {}",
        resp.status()
    );
    assert_eq!(clock_offset(&emu.db).await, None, "the clock did not move");
    let resp = emu
        .http
        .post(format!("{base}/test_helpers/publicKeys"))
        .json(&json!({"publicKey": PrivateKey::generate().unwrap().public_key().to_pem().unwrap()}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
}

/// Item 1: the key's holder (who signs the registration with it) gets its ids back, and a
/// merchant's token lets its holder add a key to it.
#[tokio::test]
async fn holders_of_the_key_or_the_token_still_get_in() {
    let emu = start("proof").await;
    let key = PrivateKey::generate().unwrap();
    let first = emu.register(&key).await;
    let body = json!({"publicKey": key.public_key().to_pem().unwrap()}).to_string();
    let (status, again) = emu
        .signed(
            "POST",
            "/test_helpers/publicKeys",
            &body,
            &key,
            "ANY",
            &emu.host(),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["publicKeyId"], first["publicKeyId"]);
    assert_eq!(again["merchantId"], first["merchantId"]);
    // Signed by another key: no.
    let other = PrivateKey::generate().unwrap();
    let (status, v) = emu
        .signed(
            "POST",
            "/test_helpers/publicKeys",
            &body,
            &other,
            "ANY",
            &emu.host(),
            None,
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(v.get("merchantId").is_none());
    // A second key for the same merchant, with its token.
    let second = PrivateKey::generate().unwrap();
    let (status, v) = emu
        .post_json(
            "/test_helpers/publicKeys",
            json!({
                "publicKey": second.public_key().to_pem().unwrap(),
                "merchantId": first["merchantId"],
                "merchantToken": first["merchantToken"],
            }),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["merchantId"], first["merchantId"]);
    // A wrong token does not.
    let third = PrivateKey::generate().unwrap();
    let (status, v) = emu
        .post_json(
            "/test_helpers/publicKeys",
            json!({
                "publicKey": third.public_key().to_pem().unwrap(),
                "merchantId": first["merchantId"],
                "merchantToken": "0".repeat(64),
            }),
        )
        .await;
    assert_eq!(status, 403, "{v}");
}

/// Item 1: with `--test-helpers=token` only the token's holders move the clock; with `off`,
/// nobody.
#[tokio::test]
async fn helpers_behind_a_token_or_off() {
    let token = "s3cret-helpers-token";
    let emu = start_config("helpers-token", |c| SandboxConfig {
        test_helpers: Some(kessai_sandbox::TestHelpers::Token(token.into())),
        ..c
    })
    .await;
    let advance = |t: Option<&'static str>| {
        let mut req = emu
            .http
            .post(format!("{}/test_helpers/clock/advance", emu.base))
            .json(&json!({"seconds": 31 * 24 * 3600}));
        if let Some(t) = t {
            req = req.header("x-test-helpers-token", t);
        }
        req.send()
    };
    for wrong in [None, Some("guess"), Some("")] {
        let resp = advance(wrong).await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{wrong:?}");
        assert_eq!(clock_offset(&emu.db).await, None, "the clock did not move");
    }
    let resp = advance(Some(token)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        clock_offset(&emu.db).await.as_deref(),
        Some("2678400"),
        "the token's holder moves it"
    );
    assert_eq!(
        emu.http
            .get(format!("{}/health", emu.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let off = start_config("helpers-off", |c| SandboxConfig {
        test_helpers: Some(kessai_sandbox::TestHelpers::Off),
        ..c
    })
    .await;
    let resp = off
        .http
        .post(format!("{}/test_helpers/clock/advance", off.base))
        .header("x-test-helpers-token", token)
        .json(&json!({"seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(clock_offset(&off.db).await, None);
}

/// Item 1: the sign-in page's form cannot be posted from another site either.
#[tokio::test]
async fn cross_site_post_cannot_sign_a_buyer_in() {
    let emu = start("csrf-signin").await;
    let key = PrivateKey::generate().unwrap();
    let reg = emu.register(&key).await;
    let (status, cs) = emu
        .signed(
            "POST",
            "/v2/checkoutSessions",
            &session_body(&reg["storeId"]),
            &key,
            reg["publicKeyId"].as_str().unwrap(),
            &emu.host(),
            Some("signin-csrf"),
        )
        .await;
    assert_eq!(status, 201);
    let id = cs["checkoutSessionId"].as_str().unwrap();
    let resp = emu
        .http
        .post(format!("{}/checkout/signin", emu.base))
        .form(&[("amazonCheckoutSessionId", id), ("action", "continue")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let (_, after) = emu
        .signed(
            "GET",
            &format!("/v2/checkoutSessions/{id}"),
            "",
            &key,
            reg["publicKeyId"].as_str().unwrap(),
            &emu.host(),
            None,
        )
        .await;
    assert!(after["buyer"].is_null(), "nobody signed in: {after}");
}
