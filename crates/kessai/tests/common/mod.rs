//! Test support: start the gateway and the emulator on port 0 with fresh files, talk MDK like a
//! merchant, and walk the buyer's pages like a browser (follow redirects, submit forms).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod faults;
pub mod pg;
pub mod procs;

use faults::{FaultyAmazon, FaultyStore};
use kessai::ServeOptions;
use kessai_amazonpay::{AmazonPayClient, ClientConfig, PrivateKey};
use kessai_core::{MerchantCcid, OrderId};
use kessai_store::{OrderRecord, SqliteStore, Store};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const MERCHANT_SITE: &str = "http://merchant.example";

pub struct TestEnv {
    pub gateway: String,
    pub emulator: String,
    pub ccid: String,
    pub secret: String,
    pub store: Arc<dyn Store>,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    /// With `KESSAI_TEST_BACKEND=postgres`: the gateway's schema on the test server, dropped with
    /// the last clone of this.
    pub schema: Option<Arc<pg::Schema>>,
}

/// An emulator of its own, serving on a port of its own (its file `sandbox.sqlite` in `dir`).
pub async fn standalone_emulator(dir: &std::path::Path) -> url::Url {
    let sandbox = kessai_sandbox::Sandbox::bind(kessai_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.join("sandbox.sqlite"),
        public_url: None,
        tls: kessai_sandbox::TlsSetting::SelfSigned,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    })
    .await
    .unwrap();
    let url = url::Url::parse(sandbox.base_url()).unwrap();
    tokio::spawn(sandbox.serve());
    url
}

pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kessai-test-{name}-{}-{}",
        std::process::id(),
        kessai::random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether this run puts the gateways of the tests on PostgreSQL (`KESSAI_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("KESSAI_TEST_BACKEND").as_deref() == Ok("postgres")
}

impl TestEnv {
    pub async fn start(name: &str) -> TestEnv {
        TestEnv::start_with(name, kessai::Hooks::default()).await
    }

    pub async fn start_with(name: &str, hooks: kessai::Hooks) -> TestEnv {
        TestEnv::start_full(name, hooks, None, None).await
    }

    /// A gateway whose store is the database at `database_url` (`postgres://…`).
    pub async fn start_on_database(name: &str, database_url: &str) -> TestEnv {
        TestEnv::start_full(
            name,
            kessai::Hooks::default(),
            None,
            Some(database_url.to_owned()),
        )
        .await
    }

    /// A second instance on the database at `database_url`, against another instance's emulator
    /// (`--database-url` and `--amazon-pay-endpoint`, nothing else).
    #[allow(dead_code)]
    pub async fn start_on_database_against(
        name: &str,
        database_url: &str,
        emulator: &str,
    ) -> TestEnv {
        TestEnv::start_full(
            name,
            kessai::Hooks::default(),
            Some(url::Url::parse(emulator).unwrap()),
            Some(database_url.to_owned()),
        )
        .await
    }

    /// A gateway of its own (its own merchant at the emulator) against another's emulator.
    pub async fn start_against(name: &str, emulator: &str) -> TestEnv {
        let endpoint = url::Url::parse(emulator).unwrap();
        TestEnv::start_full(name, kessai::Hooks::default(), Some(endpoint), None).await
    }

    /// A gateway started with `tweak` applied to the options the others use.
    pub async fn start_tweaked(name: &str, tweak: impl FnOnce(&mut ServeOptions)) -> TestEnv {
        TestEnv::start_full_with(name, kessai::Hooks::default(), None, None, tweak).await
    }

    async fn start_full(
        name: &str,
        hooks: kessai::Hooks,
        amazon_pay_endpoint: Option<url::Url>,
        database_url: Option<String>,
    ) -> TestEnv {
        TestEnv::start_full_with(name, hooks, amazon_pay_endpoint, database_url, |_| {}).await
    }

    async fn start_full_with(
        name: &str,
        hooks: kessai::Hooks,
        amazon_pay_endpoint: Option<url::Url>,
        database_url: Option<String>,
        tweak: impl FnOnce(&mut ServeOptions),
    ) -> TestEnv {
        let data_dir = fresh_dir(name);
        // The whole suite runs on PostgreSQL too: with KESSAI_TEST_BACKEND=postgres every
        // gateway a test starts gets a schema of its own there instead of a SQLite file.
        let (database_url, schema) = match database_url {
            Some(url) => (Some(url), None),
            None if on_postgres() => {
                let schema = pg::Schema::create().await;
                (Some(schema.database_url()), Some(Arc::new(schema)))
            }
            None => (None, None),
        };
        let mut options = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            data_dir: data_dir.clone(),
            database_url,
            sandbox_listen: "127.0.0.1:0".parse().unwrap(),
            amazon_pay_endpoint,
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
            push_lease: Duration::from_secs(30),
            gateway_tls: kessai::GatewayTls::LocalCa,
            test_helpers: None,
            limits: kessai_sandbox::Limits::default(),
        };
        tweak(&mut options);
        let started = kessai::start_with(options, hooks).await.unwrap();
        let gateway = started.gateway.base_url().to_owned();
        let emulator = started
            .amazon_pay_endpoint
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let ccid = started.demo.ccid.to_string();
        let secret = started.demo.secret_hex.expose().clone();
        let store = started.store.clone();
        tokio::spawn(started.serve());
        TestEnv {
            gateway,
            emulator,
            ccid,
            secret,
            store,
            data_dir,
            schema,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// The body the official MDK sends for `params`: the common fields added, the JSON
    /// URL-encoded with its authHash.
    pub fn mdk_body(&self, params: Value, test_mode: bool) -> String {
        let mut params = params.as_object().cloned().unwrap();
        params.insert("txnVersion".into(), "2.0.0".into());
        params.insert(
            "dummyRequest".into(),
            if test_mode { "1" } else { "0" }.into(),
        );
        params.insert("merchantCcid".into(), self.ccid.clone().into());
        kessai_gateway::mdk::encode_request(&Value::Object(params), &self.ccid, &self.secret)
    }

    /// Sends one MDK command as the official MDK does (URL-encoded JSON, authHash) and returns
    /// the `result` object.
    pub async fn mdk(&self, command: &str, params: Value) -> Map<String, Value> {
        let body = self.mdk_body(params, true);
        self.mdk_raw(command, body, "application/x-www-form-urlencoded")
            .await
    }

    pub async fn mdk_raw(
        &self,
        command: &str,
        body: String,
        content_type: &str,
    ) -> Map<String, Value> {
        self.mdk_path(
            &format!("/test-paynow/v2/{command}/amazonpay"),
            body,
            content_type,
        )
        .await
    }

    pub async fn mdk_path(
        &self,
        path: &str,
        body: String,
        content_type: &str,
    ) -> Map<String, Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.gateway))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "MDK answers are HTTP 200");
        let v: Value = resp.json().await.unwrap();
        v["result"].as_object().cloned().unwrap()
    }

    pub async fn order(&self, order_id: &str) -> Option<OrderRecord> {
        self.store
            .order(
                &MerchantCcid::parse(&self.ccid).unwrap(),
                &OrderId::parse(order_id).unwrap(),
            )
            .await
            .unwrap()
    }

    pub async fn history_len(&self, order_id: &str) -> usize {
        self.store
            .history(
                &MerchantCcid::parse(&self.ccid).unwrap(),
                &OrderId::parse(order_id).unwrap(),
            )
            .await
            .unwrap()
            .len()
    }

    /// An Amazon Pay client with the gateway's own key, to look at what the emulator holds.
    pub async fn amazon(&self) -> AmazonPayClient {
        // On PostgreSQL the key is in the database, not in the data directory.
        let pem = match std::fs::read_to_string(self.data_dir.join("amazon-pay-private-key.pem")) {
            Ok(pem) => pem,
            Err(_) => self
                .store
                .setting("amazon_pay_private_key")
                .await
                .unwrap()
                .expect("the Amazon Pay key is in the file or in the database"),
        };
        let key = PrivateKey::from_pem(&pem).unwrap();
        let endpoint = url::Url::parse(&self.emulator).unwrap();
        let (id, store_id) = kessai::register_key(&endpoint, &key).await.unwrap();
        AmazonPayClient::new(
            ClientConfig {
                endpoint,
                public_key_id: id,
                region: "jp".into(),
                store_id,
                timeout: Duration::from_secs(10),
            },
            Arc::new(key),
        )
        .unwrap()
    }

    pub fn authorize_params(&self, order_id: &str, amount: u64, with_capture: bool) -> Value {
        json!({
            "orderId": order_id,
            "amount": amount.to_string(),
            "withCapture": if with_capture { "true" } else { "false" },
            "noteToBuyer": "テスト注文",
            "successUrl": format!("{MERCHANT_SITE}/ok?shop=1"),
            "cancelUrl": format!("{MERCHANT_SITE}/cancel"),
            "errorUrl": format!("{MERCHANT_SITE}/error"),
        })
    }

    /// Authorize, then walk the buyer through Amazon and Kessai with `instrument`, and return the
    /// merchant URL the buyer lands on.
    pub async fn buy(
        &self,
        order_id: &str,
        amount: u64,
        with_capture: bool,
        instrument: &str,
    ) -> url::Url {
        let r = self
            .mdk(
                "Authorize",
                self.authorize_params(order_id, amount, with_capture),
            )
            .await;
        assert_eq!(r["mstatus"], "success", "{r:?}");
        walk_buyer(self, &r, instrument).await
    }

    /// Makes the emulator decline the next charge made on `charge_permission_id`.
    pub async fn simulate_next_charge_decline(&self, charge_permission_id: &str) {
        let resp = self
            .http
            .post(format!(
                "{}/test_helpers/chargePermissions/{charge_permission_id}/simulation",
                self.emulator
            ))
            .json(&json!({"code": "HardDeclined"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    }

    /// A test environment around a gateway that runs as its own process.
    pub async fn external(
        gateway: &str,
        emulator: &str,
        ccid: &str,
        secret: &str,
        data_dir: PathBuf,
    ) -> TestEnv {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&data_dir.join("gateway.sqlite"))
                .await
                .unwrap(),
        );
        TestEnv {
            gateway: gateway.trim_end_matches('/').to_owned(),
            emulator: emulator.trim_end_matches('/').to_owned(),
            ccid: ccid.to_owned(),
            secret: secret.to_owned(),
            store,
            data_dir,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            schema: None,
        }
    }

    /// As [`TestEnv::mdk`], but a connection that breaks (the gateway died) is an `Err`.
    pub async fn try_mdk(
        &self,
        command: &str,
        params: Value,
    ) -> Result<Map<String, Value>, reqwest::Error> {
        let body = self.mdk_body(params, true);
        let resp = self
            .http
            .post(format!(
                "{}/test-paynow/v2/{command}/amazonpay",
                self.gateway
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let v: Value = resp.json().await?;
        Ok(v["result"].as_object().cloned().unwrap())
    }

    /// Sends one MDK command in test mode with an `Idempotency-Key` header (if given); returns the
    /// answer's body exactly as received.
    pub async fn mdk_keyed(&self, command: &str, params: Value, key: Option<&str>) -> String {
        let body = self.mdk_body(params, true);
        let mut req = self
            .http
            .post(format!(
                "{}/test-paynow/v2/{command}/amazonpay",
                self.gateway
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// Sends one MDK command in live mode (`/paynow`, `dummyRequest` "0").
    pub async fn mdk_live(&self, command: &str, params: Value) -> Map<String, Value> {
        let body = self.mdk_body(params, false);
        self.mdk_path(
            &format!("/paynow/v2/{command}/amazonpay"),
            body,
            "application/x-www-form-urlencoded",
        )
        .await
    }
}

/// A refused command: mstatus `failure`, a code starting with `block`, a message naming `field`.
pub fn refused(r: &Map<String, Value>, block: &str, field: &str) {
    assert_eq!(r["mstatus"], "failure", "{r:?}");
    let code = r["vResultCode"].as_str().unwrap();
    assert!(
        code.starts_with(block),
        "{code} should start with {block}: {r:?}"
    );
    let msg = r["merrMsg"].as_str().unwrap();
    assert!(msg.contains(field), "message {msg:?} should name {field}");
}

/// A command that succeeded.
pub fn ok(r: &Map<String, Value>) {
    assert_eq!(r["mstatus"], "success", "{r:?}");
    assert!(
        r["vResultCode"].as_str().unwrap().starts_with("S000"),
        "{r:?}"
    );
}

/// Walks the buyer of an Authorize answer through Amazon's sign-in, Kessai's 確定 and Amazon's
/// confirmation with `instrument`; returns the merchant URL the buyer lands on.
pub async fn walk_buyer(
    env: &TestEnv,
    authorized: &Map<String, Value>,
    instrument: &str,
) -> url::Url {
    let html = authorized["responseContents"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&env.http);
    let page = browser.submit(&html, &env.gateway, &[]).await;
    let page = browser
        .submit_page(page, &[("instrument", instrument)])
        .await; // Amazon sign-in
    let page = browser.submit_page(page, &[]).await; // Kessai confirmation: 確定
    let landed = browser.submit_page(page, &[]).await; // Amazon confirmation: pay
    landed
        .merchant_url
        .expect("the buyer lands on the merchant's site")
}

/// Where the browser is: a page, or the merchant's site (which the test does not load).
pub struct Page {
    pub url: String,
    pub status: u16,
    pub html: String,
    pub merchant_url: Option<url::Url>,
}

pub struct Browser<'a> {
    http: &'a reqwest::Client,
    /// Cookies by host, as a browser keeps them (cookies do not tell ports apart).
    cookies: std::collections::HashMap<String, Vec<(String, String)>>,
}

impl<'a> Browser<'a> {
    pub fn new(http: &'a reqwest::Client) -> Self {
        Browser {
            http,
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let host = url::Url::parse(url).ok()?.host_str()?.to_owned();
        let jar = self.cookies.get(&host)?;
        Some(
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn keep_cookies(&mut self, url: &str, resp: &reqwest::Response) {
        let host = url::Url::parse(url).unwrap().host_str().unwrap().to_owned();
        let jar = self.cookies.entry(host).or_default();
        for value in resp.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            jar.retain(|(n, _)| n != name);
            jar.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }

    /// Sends one request with this browser's cookies and does not follow its redirect (a tab
    /// closed right after the answer).
    pub async fn send_once(
        &mut self,
        method: reqwest::Method,
        url: String,
        form: &[(String, String)],
    ) -> reqwest::Response {
        let mut req = self.http.request(method, &url).form(form);
        if let Some(cookie) = self.cookie_header(&url) {
            req = req.header("cookie", cookie);
        }
        let resp = req.send().await.unwrap();
        self.keep_cookies(&url, &resp);
        resp
    }

    /// Loads a URL, following redirects until a page or the merchant's site.
    pub async fn go(
        &mut self,
        method: reqwest::Method,
        url: String,
        form: Option<Vec<(String, String)>>,
    ) -> Page {
        let mut method = method;
        let mut url = url;
        let mut form = form;
        for _ in 0..10 {
            if url.starts_with(MERCHANT_SITE) {
                return Page {
                    url: url.clone(),
                    status: 0,
                    html: String::new(),
                    merchant_url: Some(url::Url::parse(&url).unwrap()),
                };
            }
            let mut req = self.http.request(method.clone(), &url);
            if let Some(f) = &form {
                if method == reqwest::Method::GET {
                    req = req.query(f);
                } else {
                    req = req.form(f);
                }
            }
            if let Some(cookie) = self.cookie_header(&url) {
                req = req.header("cookie", cookie);
            }
            let resp = req.send().await.unwrap();
            self.keep_cookies(&url, &resp);
            let status = resp.status().as_u16();
            if resp.status().is_redirection() {
                let location = resp.headers()["location"].to_str().unwrap().to_owned();
                url = url::Url::parse(&url)
                    .unwrap()
                    .join(&location)
                    .unwrap()
                    .to_string();
                method = reqwest::Method::GET;
                form = None;
                continue;
            }
            let final_url = resp.url().to_string();
            let html = resp.text().await.unwrap();
            return Page {
                url: final_url,
                status,
                html,
                merchant_url: None,
            };
        }
        panic!("too many redirects");
    }

    /// Submits the first form of `html` (as its first submit button does), with `choices`
    /// overriding radio or hidden values.
    pub async fn submit(&mut self, html: &str, base: &str, choices: &[(&str, &str)]) -> Page {
        let (method, action, fields) = first_form(html, choices);
        let url = url::Url::parse(base)
            .unwrap()
            .join(&action)
            .unwrap()
            .to_string();
        self.go(method, url, Some(fields)).await
    }

    /// Presses the cancel button of an Amazon page's form (`action=cancel`) instead of the first.
    pub async fn press_cancel(&mut self, page: &Page) -> Page {
        let (_, action, mut fields) = first_form(&page.html, &[]);
        fields.retain(|(k, _)| k != "action");
        fields.push(("action".into(), "cancel".into()));
        let url = url::Url::parse(&page.url)
            .unwrap()
            .join(&action)
            .unwrap()
            .to_string();
        let page = self.go(reqwest::Method::POST, url, Some(fields)).await;
        // Back at Kessai after a cancel at Amazon: a GET records nothing, the buyer's return to
        // the shop (the page's form) confirms the cancel.
        if page.merchant_url.is_none()
            && page.status == 200
            && page.url.contains("/amazonpay/cancel/")
        {
            let (html, url) = (page.html.clone(), page.url.clone());
            return self.submit(&html, &url, &[]).await;
        }
        page
    }

    pub async fn submit_page(&mut self, page: Page, choices: &[(&str, &str)]) -> Page {
        assert!(
            page.merchant_url.is_none(),
            "already at the merchant: {}",
            page.url
        );
        assert_eq!(
            page.status, 200,
            "page {} answered {}: {}",
            page.url, page.status, page.html
        );
        self.submit(&page.html, &page.url, choices).await
    }
}

/// The first form's method, action and the fields its first submit button would send.
pub fn first_form(
    html: &str,
    choices: &[(&str, &str)],
) -> (reqwest::Method, String, Vec<(String, String)>) {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let input_sel = scraper::Selector::parse("input, button").unwrap();
    let form = doc.select(&form_sel).next().expect("the page has a form");
    let method = match form
        .value()
        .attr("method")
        .unwrap_or("get")
        .to_ascii_lowercase()
        .as_str()
    {
        "post" => reqwest::Method::POST,
        _ => reqwest::Method::GET,
    };
    let action = form.value().attr("action").unwrap_or("").to_owned();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut submitted = false;
    for el in form.select(&input_sel) {
        let v = el.value();
        let name = v.attr("name");
        let value = v.attr("value").unwrap_or("").to_owned();
        let kind = v.attr("type").unwrap_or(if v.name() == "button" {
            "submit"
        } else {
            "text"
        });
        match (kind, name) {
            ("submit", Some(n)) if !submitted => {
                fields.push((n.to_owned(), value));
                submitted = true;
            }
            ("submit", _) => submitted = true,
            ("radio", Some(n)) => {
                let chosen = choices.iter().find(|(c, _)| *c == n);
                let pick = match chosen {
                    Some((_, want)) => value == *want,
                    None => v.attr("checked").is_some(),
                };
                if pick {
                    fields.push((n.to_owned(), value));
                }
            }
            (_, Some(n)) => {
                let value = choices
                    .iter()
                    .find(|(c, _)| *c == n)
                    .map(|(_, w)| (*w).to_owned())
                    .unwrap_or(value);
                fields.push((n.to_owned(), value));
            }
            _ => {}
        }
    }
    (method, action, fields)
}

pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A gateway with fault injection in front of Amazon Pay and the store, next to an emulator that
/// runs on its own (so the gateway can be stopped and started again on the same files).
pub struct FaultEnv {
    pub env: TestEnv,
    pub amazon: Arc<FaultyAmazon>,
    pub faulty_store: Arc<FaultyStore>,
    options: ServeOptions,
    gateway: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl FaultEnv {
    pub async fn start(name: &str) -> FaultEnv {
        let data_dir = fresh_dir(name);
        let emulator = standalone_emulator(&data_dir).await;
        let options = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            data_dir,
            database_url: None,
            sandbox_listen: "127.0.0.1:0".parse().unwrap(),
            amazon_pay_endpoint: Some(emulator),
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
            demo_shop: false,
            allow_private_push_targets: false,
            push_lease: Duration::from_secs(30),
            gateway_tls: kessai::GatewayTls::LocalCa,
            test_helpers: None,
            limits: kessai_sandbox::Limits::default(),
        };
        let (env, amazon, faulty_store, gateway) = FaultEnv::launch(&options).await;
        let mut options = options;
        // Restarts listen where the first gateway did, so buyer URLs stay valid.
        options.listen = url::Url::parse(&env.gateway)
            .unwrap()
            .socket_addrs(|| None)
            .unwrap()[0];
        FaultEnv {
            env,
            amazon,
            faulty_store,
            options,
            gateway,
        }
    }

    async fn launch(
        options: &ServeOptions,
    ) -> (
        TestEnv,
        Arc<FaultyAmazon>,
        Arc<FaultyStore>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let amazon_slot: Arc<std::sync::Mutex<Option<Arc<FaultyAmazon>>>> = Arc::default();
        let store_slot: Arc<std::sync::Mutex<Option<Arc<FaultyStore>>>> = Arc::default();
        let (a, s) = (amazon_slot.clone(), store_slot.clone());
        let hooks = kessai::Hooks {
            amazon: Some(Arc::new(move |inner| {
                let f = Arc::new(FaultyAmazon::new(inner));
                *a.lock().unwrap() = Some(f.clone());
                f
            })),
            store: Some(Arc::new(move |inner| {
                let f = Arc::new(FaultyStore::new(inner));
                *s.lock().unwrap() = Some(f.clone());
                f
            })),
            ..kessai::Hooks::default()
        };
        let started = kessai::start_with(options.clone(), hooks).await.unwrap();
        let env = TestEnv {
            gateway: started.gateway.base_url().to_owned(),
            emulator: started
                .amazon_pay_endpoint
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            ccid: started.demo.ccid.to_string(),
            secret: started.demo.secret_hex.expose().clone(),
            store: started.store.clone(),
            data_dir: options.data_dir.clone(),
            schema: None,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let gateway = tokio::spawn(started.serve());
        let amazon = amazon_slot.lock().unwrap().clone().unwrap();
        let store = store_slot.lock().unwrap().clone().unwrap();
        (env, amazon, store, gateway)
    }

    /// Stops the gateway (as a crash would: no shutdown work) and starts it again on the same
    /// files and port, with no faults armed.
    pub async fn restart(&mut self) {
        self.gateway.abort();
        let _ = (&mut self.gateway).await;
        let (env, amazon, store, gateway) = FaultEnv::launch(&self.options).await;
        self.env = env;
        self.amazon = amazon;
        self.faulty_store = store;
        self.gateway = gateway;
    }

    /// How many objects of `kind` (`charge`, `refund`, …) the emulator holds whose value at the
    /// JSON `pointer` is `value`, read from the emulator's own file.
    pub async fn emulator_count(&self, kind: &str, pointer: &str, value: &str) -> usize {
        let url = format!(
            "sqlite://{}?mode=ro",
            self.env.data_dir.join("sandbox.sqlite").display()
        );
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: Vec<(String,)> = sqlx::query_as("SELECT json FROM records WHERE kind = ?")
            .bind(kind)
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows.iter()
            .filter(|(json,)| {
                let v: Value = kessai_sandbox::stored_as_v2(kind, json).unwrap();
                v.pointer(pointer).and_then(Value::as_str) == Some(value)
            })
            .count()
    }
}

/// The emulator's objects, read once from its SQLite file.
pub struct EmulatorView {
    objects: Vec<(String, Value)>,
}

impl EmulatorView {
    pub async fn load(emulator_db: &std::path::Path) -> EmulatorView {
        let url = format!("sqlite://{}?mode=ro", emulator_db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT kind, json FROM records")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        EmulatorView {
            objects: rows
                .into_iter()
                .map(|(k, j)| {
                    let v = kessai_sandbox::stored_as_v2(&k, &j).unwrap();
                    (k, v)
                })
                .collect(),
        }
    }

    fn all<'a>(
        &'a self,
        kind: &'a str,
        pointer: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |(k, v)| {
                k == kind && v.pointer(pointer).and_then(Value::as_str) == Some(value)
            })
            .map(|(_, v)| v)
    }
}

/// The invariants of one order, checked in one place after any step: `captured ≤ authorized`,
/// `refunded ≤ captured`, nothing in flight, and the gateway's view equal to the emulator's (the
/// charge's state and amounts, one charge per order, the refunds). `emulator_db` is the emulator's
/// SQLite file.
pub async fn check_order(
    env: &TestEnv,
    order_id: &str,
    emulator_db: &std::path::Path,
) -> Result<(), String> {
    let view = EmulatorView::load(emulator_db).await;
    check_order_against(env, order_id, &view).await
}

/// As [`check_order`], against a view of the emulator read once.
pub async fn check_order_against(
    env: &TestEnv,
    order_id: &str,
    view: &EmulatorView,
) -> Result<(), String> {
    use kessai_core::OrderState as S;
    let o = env.order(order_id).await.ok_or("no such order")?;
    if !o.order.invariants_hold() {
        return Err(format!("{order_id}: invariants broken: {:?}", o.order));
    }
    if o.in_flight.is_some() {
        return Err(format!("{order_id}: an operation is still in flight"));
    }
    // Every result is pushed once: no two records report the same thing.
    let pushes = env
        .store
        .pushes(&kessai_store::PushFilter {
            order_id: Some(o.order_id.clone()),
            ..kessai_store::PushFilter::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    for p in &pushes {
        let what: Vec<&(String, String)> = p
            .fields
            .iter()
            .filter(|(k, _)| k != "txnDatetime")
            .collect();
        if !seen.insert(format!("{:?}{what:?}", p.kind)) {
            return Err(format!("{order_id}: a result was pushed twice: {what:?}"));
        }
    }
    let Some(cp) = o.charge_permission_id.clone() else {
        // No authorization: nothing may have been charged for this order's session.
        return match o.order.state {
            S::Started
            | S::PreAuth
            | S::Authorizing
            | S::Canceled
            | S::BuyerCanceled
            | S::Declined
            | S::Expired => Ok(()),
            s => Err(format!("{order_id}: {s:?} without a charge permission")),
        };
    };
    let charges: Vec<&Value> = view
        .all("charge", "/charge/chargePermissionId", &cp)
        .map(|v| &v["charge"])
        .collect();
    if charges.len() != 1 {
        return Err(format!(
            "{order_id}: {} charges at the emulator",
            charges.len()
        ));
    }
    let charge = charges[0];
    let state = charge["statusDetails"]["state"]
        .as_str()
        .unwrap_or_default();
    let captured = charge["captureAmount"]["amount"]
        .as_str()
        .map(|a| a.parse::<u64>().unwrap())
        .unwrap_or(0);
    let expected = match o.order.state {
        S::Authorized => state == "Authorized",
        S::Captured | S::PartiallyRefunded | S::Refunded => {
            (state == "Captured" || state == "CaptureInitiated")
                && captured == o.order.captured.get()
        }
        // Canceled by the merchant or by Amazon; an authorization that expired unused.
        S::Canceled | S::Expired => state == "Canceled",
        S::Declined => state == "Declined",
        _ => false,
    };
    if !expected {
        return Err(format!(
            "{order_id}: the gateway says {:?} (captured {}), the emulator's charge is {state} (captured {captured})",
            o.order.state, o.order.captured
        ));
    }
    let charge_id = charge["chargeId"].as_str().unwrap_or_default();
    let refunded: u64 = view
        .all("refund", "/refund/chargeId", charge_id)
        .map(|v| {
            v["refund"]["refundAmount"]["amount"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    if refunded != o.order.refunded.get() {
        return Err(format!(
            "{order_id}: the gateway refunded {}, the emulator {refunded}",
            o.order.refunded
        ));
    }
    Ok(())
}
