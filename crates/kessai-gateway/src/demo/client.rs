//! The demo shop's MDK client: test-mode commands over HTTP with the merchant's authHash, as an
//! external merchant's MDK sends them.

use crate::app::AppState;
use axum::http::header;
use kessai_core::MerchantCcid;
use serde_json::{Map, Value};

/// A command the gateway refused or could not be asked, in words with its code.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub message: String,
    pub code: String,
}

impl Failure {
    fn transport(message: String) -> Failure {
        Failure {
            message: format!("The gateway could not be asked: {message}"),
            code: String::new(),
        }
    }
}

pub struct MdkClient {
    pub ccid: MerchantCcid,
    pub base_url: String,
    http: reqwest::Client,
}

impl MdkClient {
    pub fn new(ccid: MerchantCcid, base_url: String) -> MdkClient {
        MdkClient {
            ccid,
            base_url,
            http: reqwest::Client::new(),
        }
    }

    /// The merchant's secret key (the demo is this gateway's demo merchant).
    pub async fn secret(&self, state: &AppState) -> Result<String, Failure> {
        let merchant = state
            .store
            .merchant(&self.ccid)
            .await
            .map_err(|e| Failure::transport(e.to_string()))?
            .ok_or_else(|| Failure::transport("the demo merchant does not exist".into()))?;
        Ok(merchant.secret_hex.expose().clone())
    }

    /// Sends `params` to `path` (test mode) and returns `result`, whatever its mstatus.
    async fn post(
        &self,
        state: &AppState,
        path: &str,
        mut params: Map<String, Value>,
    ) -> Result<Map<String, Value>, Failure> {
        let secret = self.secret(state).await?;
        params.insert("txnVersion".into(), "2.0.0".into());
        params.insert("dummyRequest".into(), "1".into());
        params.insert("merchantCcid".into(), self.ccid.as_str().into());
        let body = crate::mdk::encode_request(&Value::Object(params), self.ccid.as_str(), &secret);
        let answer: Value = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transport(e.to_string()))?
            .json()
            .await
            .map_err(|e| Failure::transport(format!("its answer is not MDK JSON ({e})")))?;
        match answer.get("result") {
            Some(Value::Object(r)) => Ok(r.clone()),
            _ => Err(Failure::transport("its answer has no result".into())),
        }
    }

    /// One Amazon Pay command; an answer other than success or pending is a [`Failure`].
    pub async fn call(
        &self,
        state: &AppState,
        command: &str,
        params: Map<String, Value>,
    ) -> Result<Map<String, Value>, Failure> {
        let result = self
            .post(
                state,
                &format!("/test-paynow/v2/{command}/amazonpay"),
                params,
            )
            .await?;
        match result.get("mstatus").and_then(Value::as_str) {
            Some("success") | Some("pending") => Ok(result),
            _ => Err(refused(&result)),
        }
    }

    /// Search: the `orderInfo` list of the orders `search_parameters` match.
    pub async fn search(
        &self,
        state: &AppState,
        search_parameters: Value,
    ) -> Result<Vec<Map<String, Value>>, Failure> {
        let mut params = Map::new();
        params.insert("serviceTypeCd".into(), serde_json::json!(["amazonpay"]));
        params.insert("newerFlag".into(), "false".into());
        params.insert("containDummyFlag".into(), "1".into());
        params.insert("maxCount".into(), "100".into());
        params.insert("searchParameters".into(), search_parameters);
        let result = self
            .post(state, "/test-paynow-search/v2/Search/search", params)
            .await?;
        if result.get("mstatus").and_then(Value::as_str) != Some("success") {
            return Err(refused(&result));
        }
        // The MDK's shape: an object that wraps the array.
        Ok(result
            .get("orderInfos")
            .and_then(|o| o.get("orderInfo"))
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_object).cloned().collect())
            .unwrap_or_default())
    }
}

fn refused(result: &Map<String, Value>) -> Failure {
    let s = |k: &str| {
        result
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Failure {
        message: s("merrMsg"),
        code: s("vResultCode"),
    }
}

/// The buyer's return is genuine: `vAuthInfo` is SHA-256 over the merchant id, the values of the
/// parameters `authParams` names, and the secret key.
pub fn return_is_signed(ccid: &str, secret: &str, query: &[(String, String)]) -> bool {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(names), Some(given)) = (get("authParams"), get("vAuthInfo")) else {
        return false;
    };
    let decoded = names
        .replace('*', "=")
        .replace('-', "/")
        .replace(['_', ' '], "+");
    let Ok(names) = base64::engine::general_purpose::STANDARD.decode(decoded) else {
        return false;
    };
    let names = String::from_utf8_lossy(&names).into_owned();
    let mut h = Sha256::new();
    h.update(ccid);
    for name in names.split(',') {
        match get(name) {
            Some(v) => h.update(v),
            None => return false,
        }
    }
    h.update(secret);
    hex::encode(h.finalize()) == given
}
