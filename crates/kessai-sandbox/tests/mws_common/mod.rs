//! Shared by the MWS tests: an emulator on port 0, a Signature Version 2 client written here
//! (independently of the emulator's own code), and a small XML reader.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use quick_xml::events::Event;
use serde_json::{json, Value};

pub const NS: &str = "http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01";
pub const SANDBOX: &str = "/OffAmazonPayments_Sandbox/2013-01-01";

pub struct Emulator {
    pub base: String,
    pub host: String,
    pub http: reqwest::Client,
}

pub async fn start() -> Emulator {
    let dir = std::env::temp_dir().join(format!(
        "kessai-mws-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = kessai_sandbox::Sandbox::bind(kessai_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: dir.join("sandbox.sqlite"),
        public_url: None,
        tls: kessai_sandbox::TlsSetting::Off,
        test_helpers: None,
        limits: kessai_sandbox::Limits::default(),
    })
    .await
    .unwrap();
    let base = sandbox.base_url().to_owned();
    let host = sandbox.local_addr().to_string();
    tokio::spawn(sandbox.serve());
    Emulator {
        base,
        host,
        http: reqwest::Client::new(),
    }
}

/// A seller as the helper answers it.
#[derive(Clone, Debug)]
pub struct Seller {
    pub id: String,
    pub access_key: String,
    pub secret: String,
}

/// What SigV2 leaves unencoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Python SDK style: sorted pairs, `quote(…, safe='-_.~')`, HMAC-SHA256, Base64.
pub fn signature(secret: &str, host: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort();
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let data = format!("POST\n{host}\n{path}\n{canonical}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()))
}

/// The form body as Python's `urlencode` writes it: sorted pairs, `+` for spaces, `Signature`
/// last.
pub fn form(params: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort();
    let plus = |s: &str| enc(s).replace("%20", "+");
    let mut parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", plus(k), plus(v)))
        .collect();
    if let Some((_, sig)) = params.iter().find(|(k, _)| k == "Signature") {
        parts.push(format!("Signature={}", plus(sig)));
    }
    parts.join("&")
}

pub fn timestamp(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap()
}

/// An answer: status, content type, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The text of the first element whose path ends with `suffix` (`A/B/C`).
    pub fn get(&self, suffix: &str) -> Option<String> {
        texts(&self.body)
            .into_iter()
            .find(|(p, _)| p == suffix || p.ends_with(&format!("/{suffix}")))
            .map(|(_, t)| t)
    }

    pub fn all(&self, suffix: &str) -> Vec<String> {
        texts(&self.body)
            .into_iter()
            .filter(|(p, _)| p == suffix || p.ends_with(&format!("/{suffix}")))
            .map(|(_, t)| t)
            .collect()
    }

    pub fn req(&self, suffix: &str) -> String {
        self.get(suffix)
            .unwrap_or_else(|| panic!("no {suffix} in {}", self.body))
    }

    /// Asserts Amazon's error document with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.get("ErrorResponse/Error/Code").as_deref(),
            Some(code),
            "{}",
            self.body
        );
        assert!(self.get("Error/Type").is_some(), "{}", self.body);
        assert!(self.get("Error/Message").is_some_and(|m| !m.is_empty()));
        assert!(self.get("ErrorResponse/RequestId").is_some());
        assert_xml_document(self);
    }

    pub fn assert_ok(&self, action: &str) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_xml_document(self);
        assert_eq!(root(&self.body).0, format!("{action}Response"));
        assert!(self
            .get(&format!("{action}Response/ResponseMetadata/RequestId"))
            .is_some());
    }
}

/// `text/xml`, well-formed, unprefixed root in Amazon's namespace.
pub fn assert_xml_document(a: &Answer) {
    assert_eq!(a.content_type, "text/xml");
    assert!(!a.body.is_empty());
    let (name, ns) = root(&a.body);
    assert!(!name.contains(':'), "prefixed root {name}");
    assert_eq!(ns.as_deref(), Some(NS));
    // Well-formed: the reader walks to the end without error.
    let mut r = quick_xml::Reader::from_str(&a.body);
    r.config_mut().check_end_names = true;
    loop {
        match r.read_event() {
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed: {e}: {}", a.body),
        }
    }
}

/// The root element's name and `xmlns`.
pub fn root(xml: &str) -> (String, Option<String>) {
    let mut r = quick_xml::Reader::from_str(xml);
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let ns = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"xmlns")
                    .map(|a| String::from_utf8(a.value.to_vec()).unwrap());
                return (name, ns);
            }
            Event::Eof => panic!("no root in {xml}"),
            _ => {}
        }
    }
}

/// Every text node with the path of element names above it.
pub fn texts(xml: &str) -> Vec<(String, String)> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut out = Vec::new();
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                stack.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap())
            }
            Ok(Event::End(_)) => {
                stack.pop();
            }
            Ok(Event::Empty(e)) => out.push((
                format!(
                    "{}/{}",
                    stack.join("/"),
                    String::from_utf8(e.name().as_ref().to_vec()).unwrap()
                ),
                String::new(),
            )),
            Ok(Event::Text(t)) => {
                let text = t.unescape().unwrap().into_owned();
                if !text.trim().is_empty() {
                    out.push((stack.join("/"), text));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

impl Emulator {
    pub async fn helper(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    pub async fn seller(&self) -> Seller {
        self.seller_with(json!({})).await
    }

    pub async fn seller_with(&self, body: Value) -> Seller {
        let v = self.helper("/test_helpers/sellers", body).await;
        assert!(v["lwaClientId"]
            .as_str()
            .unwrap()
            .starts_with("amzn1.application-oa2-client."));
        Seller {
            id: v["sellerId"].as_str().unwrap().into(),
            access_key: v["accessKey"].as_str().unwrap().into(),
            secret: v["secretKey"].as_str().unwrap().into(),
        }
    }

    /// A Draft agreement (consent given and confirmed if `open`).
    pub async fn agreement(&self, seller: &Seller, open: bool) -> String {
        let v = self
            .helper(
                "/test_helpers/billingAgreements",
                json!({"sellerId": seller.id}),
            )
            .await;
        let id = v["AmazonBillingAgreementId"].as_str().unwrap().to_owned();
        if open {
            self.consent(&id, true).await;
            let a = self
                .call(
                    seller,
                    "ConfirmBillingAgreement",
                    &[("AmazonBillingAgreementId", &id)],
                )
                .await;
            a.assert_ok("ConfirmBillingAgreement");
        }
        id
    }

    pub async fn consent(&self, id: &str, consent: bool) {
        self.helper(
            &format!("/test_helpers/billingAgreements/{id}/consent"),
            json!({ "consent": consent }),
        )
        .await;
    }

    pub async fn declines(&self, id: &str, declines: bool) {
        self.helper(
            &format!("/test_helpers/billingAgreements/{id}/paymentMethod"),
            json!({ "declines": declines }),
        )
        .await;
    }

    pub async fn now(&self) -> i64 {
        let v: Value = self
            .http
            .get(format!("{}/test_helpers/clock", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["unix"].as_i64().unwrap()
    }

    pub async fn advance(&self, seconds: i64) {
        self.helper("/test_helpers/clock/advance", json!({ "seconds": seconds }))
            .await;
    }

    /// The common parameters of a request by `seller`, stamped with this machine's clock as a
    /// client does (the emulator's clock may have been moved ahead).
    pub async fn common(&self, seller: &Seller, action: &str) -> Vec<(String, String)> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        [
            ("AWSAccessKeyId", seller.access_key.as_str()),
            ("Action", action),
            ("SellerId", seller.id.as_str()),
            ("SignatureMethod", "HmacSHA256"),
            ("SignatureVersion", "2"),
            ("Timestamp", &timestamp(now)),
            ("Version", "2013-01-01"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Signs `params` with `secret` over this emulator's host (port included) and posts them.
    pub async fn post_signed(
        &self,
        secret: &str,
        path: &str,
        mut params: Vec<(String, String)>,
    ) -> Answer {
        let sig = signature(secret, &self.host, path, &params);
        params.push(("Signature".into(), sig));
        self.post_raw(path, form(&params)).await
    }

    pub async fn post_raw(&self, path: &str, body: String) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    pub async fn call(&self, seller: &Seller, action: &str, extra: &[(&str, &str)]) -> Answer {
        let mut params = self.common(seller, action).await;
        params.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.post_signed(&seller.secret, SANDBOX, params).await
    }

    pub async fn agreement_state(&self, seller: &Seller, id: &str) -> Answer {
        let a = self
            .call(
                seller,
                "GetBillingAgreementDetails",
                &[("AmazonBillingAgreementId", id)],
            )
            .await;
        a.assert_ok("GetBillingAgreementDetails");
        a
    }
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: r.text().await.unwrap(),
    }
}
