//! A small MWS client for the demo shop's Auto Pay page: Signature Version 2 (HMAC-SHA256) over
//! form-encoded POSTs, the answers' XML read by element name. Its seller is made through the
//! built-in emulator's `/test_helpers/sellers` at first use.

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use quick_xml::events::Event;
use serde_json::Value;
use tokio::sync::OnceCell;

/// What Signature Version 2 leaves unencoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const SECTION: &str = "/OffAmazonPayments_Sandbox/2013-01-01";

/// The demo's seller at the emulator.
#[derive(Debug, Clone)]
pub struct MwsSeller {
    pub id: String,
    pub lwa_client_id: String,
    access_key: String,
    secret: kessai_core::Secret<String>,
}

/// A call that did not succeed: Amazon's error code (or none) and a message.
#[derive(Debug, Clone)]
pub struct MwsFailure {
    pub code: String,
    pub message: String,
}

fn failure(code: &str, message: impl Into<String>) -> MwsFailure {
    MwsFailure {
        code: code.into(),
        message: message.into(),
    }
}

/// An answer's XML.
#[derive(Debug, Clone)]
pub struct Xml(String);

impl Xml {
    /// The text of the first element named `name` (local name) inside an element named
    /// `parent`, or anywhere when `parent` is empty.
    pub fn get_in(&self, parent: &str, name: &str) -> Option<String> {
        let mut reader = quick_xml::Reader::from_str(&self.0);
        let mut path: Vec<String> = Vec::new();
        loop {
            match reader.read_event().ok()? {
                Event::Start(e) => {
                    path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
                }
                Event::End(_) => {
                    path.pop();
                }
                Event::Text(t) => {
                    let inside = path.last().is_some_and(|n| n == name)
                        && (parent.is_empty() || path.iter().rev().skip(1).any(|p| p == parent));
                    if inside {
                        return t.unescape().ok().map(|s| s.into_owned());
                    }
                }
                Event::Eof => return None,
                _ => {}
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.get_in("", name)
    }
}

/// The client: the emulator's address, its helper token, the seller once made.
pub struct MwsClient {
    base: String,
    /// The emulator's test-helper token header and value, when it asks for one.
    helpers_token: Option<(String, String)>,
    http: reqwest::Client,
    seller: OnceCell<MwsSeller>,
}

impl MwsClient {
    pub fn new(base: String, helpers_token: Option<(String, String)>) -> MwsClient {
        MwsClient {
            base: base.trim_end_matches('/').to_owned(),
            helpers_token,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            seller: OnceCell::new(),
        }
    }

    /// The emulator's address (its `Widgets.js` and widget frames are there).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The demo's seller, made at first use.
    pub async fn seller(&self) -> Result<&MwsSeller, MwsFailure> {
        self.seller
            .get_or_try_init(|| async {
                let mut request = self
                    .http
                    .post(format!("{}/test_helpers/sellers", self.base))
                    .json(&serde_json::json!({}));
                if let Some((name, token)) = &self.helpers_token {
                    request = request.header(name.as_str(), token);
                }
                let unreachable = |e: reqwest::Error| {
                    failure(
                        "",
                        format!("The emulator's seller helper cannot be reached: {e}"),
                    )
                };
                let v: Value = request
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(unreachable)?
                    .json()
                    .await
                    .map_err(unreachable)?;
                let field = |k: &str| {
                    v[k].as_str().map(str::to_owned).ok_or_else(|| {
                        failure("", format!("The emulator's seller helper gave no {k}."))
                    })
                };
                Ok(MwsSeller {
                    id: field("sellerId")?,
                    lwa_client_id: field("lwaClientId")?,
                    access_key: field("accessKey")?,
                    secret: kessai_core::Secret::new(field("secretKey")?),
                })
            })
            .await
    }

    /// A Login with Amazon profile call (`/auth/o2/tokeninfo`, `/user/profile`) with the
    /// buyer's access token; the JSON answer, or its `error`.
    pub async fn lwa_get(&self, path: &str, token: &str) -> Result<Value, MwsFailure> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("x-amz-access-token", token)
            .send()
            .await
            .map_err(|e| failure("", format!("Login with Amazon cannot be reached: {e}")))?;
        let ok = r.status().is_success();
        let v: Value = r
            .json()
            .await
            .map_err(|e| failure("", format!("Login with Amazon answered no JSON: {e}")))?;
        if ok {
            Ok(v)
        } else {
            Err(failure(
                v["error"].as_str().unwrap_or_default(),
                v["error_description"]
                    .as_str()
                    .unwrap_or("Login with Amazon refused the token."),
            ))
        }
    }

    /// Sends `action` with `params`, signed by the demo's seller; the answer's XML, or Amazon's
    /// error.
    pub async fn call(
        &self,
        action: &str,
        params: &[(&str, String)],
        now: time::OffsetDateTime,
    ) -> Result<Xml, MwsFailure> {
        let seller = self.seller().await?;
        let stamp = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| failure("", e.to_string()))?;
        let mut pairs: Vec<(String, String)> = vec![
            ("AWSAccessKeyId".into(), seller.access_key.clone()),
            ("Action".into(), action.into()),
            ("SellerId".into(), seller.id.clone()),
            ("SignatureMethod".into(), "HmacSHA256".into()),
            ("SignatureVersion".into(), "2".into()),
            ("Timestamp".into(), stamp),
            ("Version".into(), "2013-01-01".into()),
        ];
        pairs.extend(params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        pairs.sort();
        let encoded = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, UNRESERVED),
                    utf8_percent_encode(v, UNRESERVED)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let url = url::Url::parse(&format!("{}{SECTION}", self.base))
            .map_err(|e| failure("", e.to_string()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(failure("", "The emulator's address has no host.")),
        };
        let data = format!("POST\n{host}\n{SECTION}\n{encoded}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seller.secret.expose().as_bytes());
        let signature = base64::engine::general_purpose::STANDARD
            .encode(ring::hmac::sign(&key, data.as_bytes()).as_ref());
        let body = format!(
            "{encoded}&Signature={}",
            utf8_percent_encode(&signature, UNRESERVED)
        );
        let answer = self
            .http
            .post(url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| failure("", format!("The emulator cannot be reached: {e}")))?;
        let ok = answer.status().is_success();
        let xml = Xml(answer
            .text()
            .await
            .map_err(|e| failure("", format!("The emulator's answer was cut: {e}")))?);
        if ok {
            Ok(xml)
        } else {
            Err(failure(
                &xml.get_in("Error", "Code").unwrap_or_default(),
                xml.get_in("Error", "Message")
                    .unwrap_or_else(|| format!("{action} failed.")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_by_name_and_parent() {
        let x = Xml("<R xmlns=\"n\"><A><State>Open</State></A><B><State>Closed</State><Code>x&amp;y</Code></B></R>".into());
        assert_eq!(x.get("State").as_deref(), Some("Open"));
        assert_eq!(x.get_in("B", "State").as_deref(), Some("Closed"));
        assert_eq!(x.get("Code").as_deref(), Some("x&y"));
        assert_eq!(x.get("None"), None);
    }
}
