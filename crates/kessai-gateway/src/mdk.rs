//! The MDK wire protocol: request body, `authHash`, response envelope.
//!
//! The only module that knows the MDK's format: it reads requests and [`render`]s every answer. A request body is the JSON
//! `{"params":{…},"authHash":"…"}`, URL-encoded as a whole (as the MDK sends it) or raw.
//! `authHash` = hex SHA-256(merchantCcid + params text exactly as received + secret key).

use crate::reply::{Answer, PostalAddress, Reply};
use kessai_core::{Field, Kind, MerchantCcid, ResultCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest accepted body.
pub const MAX_BODY: usize = 64 * 1024;

/// A request whose envelope has been read but not yet authenticated.
#[derive(Debug)]
pub struct Envelope {
    /// The `params` JSON text exactly as received.
    pub params_text: String,
    pub params: Map<String, Value>,
    pub auth_hash: String,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(rename = "authHash")]
    auth_hash: Option<Value>,
}

/// Turns the body into the JSON text: raw JSON as is, anything else URL-decoded (`+` is a space).
pub fn body_text(body: &[u8], content_type: Option<&str>) -> Result<String, ResultCode> {
    let malformed = |why: &str| ResultCode::new(Kind::MalformedBody, format!("The body {why}."));
    let text = std::str::from_utf8(body).map_err(|_| malformed("is not UTF-8"))?;
    let is_json = content_type
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
        || text.trim_start().starts_with('{');
    if is_json {
        return Ok(text.to_owned());
    }
    let plus_as_space = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| malformed("is not URL-encoded UTF-8"))
}

pub fn parse_envelope(text: &str) -> Result<Envelope, ResultCode> {
    let raw: RawEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        ResultCode::new(
            Kind::MalformedBody,
            format!("The body is not a JSON object: {e}."),
        )
    })?;
    let params_raw = raw.params.ok_or_else(|| {
        ResultCode::field(
            Kind::MissingParams,
            Field::Params,
            "is missing from the body.",
        )
    })?;
    let params = match serde_json::from_str::<Value>(params_raw.get()) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(ResultCode::field(
                Kind::MissingParams,
                Field::Params,
                "must be a JSON object.",
            ))
        }
    };
    let auth_hash = match raw.auth_hash {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => {
            return Err(ResultCode::field(
                Kind::MissingAuthHash,
                Field::AuthHash,
                "is missing from the body or is not a string.",
            ))
        }
    };
    Ok(Envelope {
        params_text: params_raw.get().to_owned(),
        params,
        auth_hash,
    })
}

/// Lowercase hex SHA-256 of `merchantCcid + params + secret`.
pub fn auth_hash(ccid: &str, params_text: &str, secret_hex: &str) -> String {
    let mut h = Sha256::new();
    h.update(ccid.as_bytes());
    h.update(params_text.as_bytes());
    h.update(secret_hex.as_bytes());
    hex::encode(h.finalize())
}

/// Compares the received hash with the expected one in constant time.
pub fn hash_matches(received: &str, ccid: &str, params_text: &str, secret_hex: &str) -> bool {
    let expected = auth_hash(ccid, params_text, secret_hex);
    let received = received.to_ascii_lowercase();
    received.len() == expected.len() && bool::from(received.as_bytes().ct_eq(expected.as_bytes()))
}

/// `merchantCcid` from params, parsed.
pub fn merchant_ccid(params: &Map<String, Value>) -> Result<MerchantCcid, ResultCode> {
    match params.get("merchantCcid") {
        Some(Value::String(s)) if !s.is_empty() => MerchantCcid::parse(s)
            .map_err(|e| ResultCode::field(Kind::UnknownMerchant, Field::MerchantCcid, e)),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ResultCode::field(
            Kind::FieldMissing,
            Field::MerchantCcid,
            "is required.",
        )),
        Some(_) => Err(ResultCode::field(
            Kind::FieldWrongType,
            Field::MerchantCcid,
            "must be a string.",
        )),
    }
}

/// The per-response values that are not part of the answer itself.
pub struct ResponseMeta<'a> {
    /// `txnVersion` as the merchant sent it (default `2.0.0`).
    pub txn_version: Option<&'a str>,
    /// `marchTxn`: the gateway's id of this request (also in its log line).
    pub request_id: &'a str,
    /// `custTxn`.
    pub cust_txn: &'a str,
}

/// `YYYYMMDDhhmmss` in Japan time, as the MDK's `centerResponseDatetime`.
pub fn center_datetime(at: time::OffsetDateTime) -> String {
    let jst = time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC);
    at.to_offset(jst)
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

fn text(v: &Option<String>) -> Value {
    v.clone().map(Value::String).unwrap_or(Value::Null)
}

fn put_address(m: &mut Map<String, Value>, prefix: &str, a: &PostalAddress, with_contact: bool) {
    if with_contact {
        m.insert(format!("{prefix}Name"), text(&a.name));
        m.insert(format!("{prefix}Phone"), text(&a.phone));
    }
    m.insert(format!("{prefix}Address1"), text(&a.line1));
    m.insert(format!("{prefix}Address2"), text(&a.line2));
    m.insert(format!("{prefix}Address3"), text(&a.line3));
    m.insert(format!("{prefix}Prefecture"), text(&a.prefecture));
    m.insert(format!("{prefix}PostalCode"), text(&a.postal_code));
}

/// The MDK response body of `answer`: `{"result":{…}}`.
pub fn render(answer: &Answer, envelope: &ResponseMeta<'_>) -> Value {
    let mut m = Map::new();
    m.insert("serviceType".into(), "amazonpay".into());
    m.insert("mstatus".into(), answer.result.mstatus().into());
    m.insert("vResultCode".into(), answer.result.code().into());
    m.insert("merrMsg".into(), answer.result.message.clone().into());
    m.insert("marchTxn".into(), envelope.request_id.into());
    m.insert("orderId".into(), text(&answer.order_id));
    m.insert("custTxn".into(), envelope.cust_txn.into());
    m.insert(
        "txnVersion".into(),
        envelope.txn_version.unwrap_or("2.0.0").into(),
    );
    let center = |m: &mut Map<String, Value>, c: &crate::reply::Center| {
        m.insert(
            "centerResponseDatetime".into(),
            center_datetime(c.at).into(),
        );
        m.insert("centerOrderId".into(), text(&c.order_id));
        m.insert("centerTransactionId".into(), text(&c.transaction_id));
    };
    match &answer.reply {
        Reply::Nothing => {}
        Reply::BuyerPage { html } => {
            m.insert("responseContents".into(), html.clone().into());
        }
        Reply::Center(c) => center(&mut m, c),
        Reply::Refunded {
            center: c,
            refundable,
        } => {
            center(&mut m, c);
            m.insert("refundableAmount".into(), refundable.to_string().into());
        }
        Reply::Refundable(refundable) => {
            m.insert("refundableAmount".into(), refundable.to_string().into());
        }
        Reply::PayRedirect {
            center: c,
            pay_redirect_url,
        } => {
            center(&mut m, c);
            m.insert("payRedirectUrl".into(), pay_redirect_url.clone().into());
        }
        Reply::Address(a) => {
            m.insert(
                "centerResponseDatetime".into(),
                center_datetime(a.at).into(),
            );
            put_address(&mut m, "shipping", &a.shipping, true);
            m.insert("buyerId".into(), text(&a.buyer_id));
            m.insert("buyerEmail".into(), text(&a.buyer_email));
            if let Some(x) = &a.extended {
                m.insert("buyerName".into(), text(&x.name));
                m.insert("buyerPhoneNumber".into(), text(&x.phone));
                m.insert("paymentPreferences".into(), text(&x.payment_descriptor));
                put_address(&mut m, "billing", &x.billing, false);
            }
            if let Some(p) = &a.pre_auth {
                m.insert("payRedirectUrl".into(), p.pay_redirect_url.clone().into());
                m.insert("checkoutSessionId".into(), text(&p.checkout_session_id));
            }
        }
    }
    serde_json::json!({ "result": m })
}

/// The MDK response body of a Search: the envelope of [`render`] with `serviceType` `search`, then
/// `overMaxCountFlag`, `searchCount` and `orderInfos`. As the official MDK reads it, `orderInfos`
/// and `transactionInfos` are objects that wrap their arrays (`{"orderInfo":[…]}`); values are
/// strings, and a value the order does not have is left out.
pub fn render_search(answer: &crate::search::SearchAnswer, envelope: &ResponseMeta<'_>) -> Value {
    let mut m = Map::new();
    m.insert("serviceType".into(), "search".into());
    m.insert("mstatus".into(), answer.result.mstatus().into());
    m.insert("vResultCode".into(), answer.result.code().into());
    m.insert("merrMsg".into(), answer.result.message.clone().into());
    m.insert("marchTxn".into(), envelope.request_id.into());
    m.insert("custTxn".into(), envelope.cust_txn.into());
    m.insert(
        "txnVersion".into(),
        envelope.txn_version.unwrap_or("2.0.0").into(),
    );
    if let Some(found) = &answer.found {
        m.insert(
            "overMaxCountFlag".into(),
            found.over_max_count.to_string().into(),
        );
        m.insert("searchCount".into(), found.orders.len().to_string().into());
        let orders: Vec<Value> = found
            .orders
            .iter()
            .enumerate()
            .map(|(index, o)| search_order(index, o))
            .collect();
        m.insert(
            "orderInfos".into(),
            serde_json::json!({ "orderInfo": orders }),
        );
    }
    serde_json::json!({ "result": m })
}

fn put_some(m: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        m.insert(key.into(), v.into());
    }
}

fn search_order(index: usize, o: &crate::search::OrderInfo) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), index.to_string().into());
    m.insert("serviceTypeCd".into(), "amazonpay".into());
    m.insert("orderId".into(), o.order_id.clone().into());
    m.insert("orderStatus".into(), o.state.as_str().into());
    put_some(&mut m, "lastSuccessTxnType", o.last_success_command.clone());
    put_some(
        &mut m,
        "successDetailTxnType",
        o.last_success_detail.clone(),
    );
    let p = &o.proper;
    let mut proper = Map::new();
    proper.insert("detailOrderType".into(), o.state.as_str().into());
    proper.insert(
        "accountingType".into(),
        p.accounting_type.to_string().into(),
    );
    put_some(
        &mut proper,
        "consentStatus",
        p.consent_status.map(str::to_owned),
    );
    put_some(&mut proper, "originalOrderId", p.original_order_id.clone());
    proper.insert(
        "payConfirmScreenType".into(),
        p.pay_confirm_screen_type.to_string().into(),
    );
    put_some(&mut proper, "centerOrderId", p.center_order_id.clone());
    put_some(
        &mut proper,
        "centerTransactionId",
        p.center_transaction_id.clone(),
    );
    proper.insert("amount".into(), p.amount.to_string().into());
    proper.insert("authorizedAmount".into(), p.authorized.to_string().into());
    proper.insert("capturedAmount".into(), p.captured.to_string().into());
    proper.insert("refundedAmount".into(), p.refunded.to_string().into());
    proper.insert("dummy".into(), if p.dummy { "1" } else { "0" }.into());
    m.insert("properOrderInfo".into(), Value::Object(proper));
    let transactions: Vec<Value> = o
        .transactions
        .iter()
        .map(|t| {
            let mut tm = Map::new();
            tm.insert("txnId".into(), t.id.to_string().into());
            tm.insert("command".into(), t.command.clone().into());
            tm.insert("mstatus".into(), t.mstatus.clone().into());
            tm.insert("vResultCode".into(), t.v_result_code.clone().into());
            tm.insert("txnDatetime".into(), center_datetime(t.at).into());
            put_some(&mut tm, "amount", t.amount.map(|a| a.to_string()));
            tm.insert(
                "properTransactionInfo".into(),
                serde_json::json!({
                    "detailCommandType": t.command,
                    "merrMsg": t.message,
                }),
            );
            Value::Object(tm)
        })
        .collect();
    m.insert(
        "transactionInfos".into(),
        serde_json::json!({ "transactionInfo": transactions }),
    );
    Value::Object(m)
}

/// `dummyRequest`: `"1"` test mode, `"0"` or absent live.
pub fn dummy_request(params: &Map<String, Value>) -> Result<bool, ResultCode> {
    match params.get("dummyRequest") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) if s == "0" => Ok(false),
        Some(Value::String(s)) if s == "1" => Ok(true),
        Some(_) => Err(ResultCode::field(
            Kind::FieldInvalidValue,
            Field::DummyRequest,
            "must be \"0\" or \"1\".",
        )),
    }
}

/// `txnVersion` as sent, echoed in the answer.
pub fn txn_version(params: &Map<String, Value>) -> Option<String> {
    params
        .get("txnVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `orderId` as sent (even when it is not a valid id), echoed in a refusal.
pub fn order_id_text(params: &Map<String, Value>) -> Option<String> {
    params
        .get("orderId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One result record of a push, before its index suffix: what happened to which order.
pub struct PushFields<'a> {
    pub order_id: &'a str,
    pub txn_type: &'a str,
    pub result: &'a ResultCode,
    pub amount: u64,
    pub center_order_id: Option<&'a str>,
    pub center_transaction_id: Option<&'a str>,
    pub at: time::OffsetDateTime,
    pub dummy: bool,
    /// Amazon's state of the refund a record reports (`RefundInitiated`, `Refunded`, `Declined`).
    pub amazon_status: Option<&'a str>,
}

/// The fields of one push record, in the order they are sent (Kessai's choice where the reference
/// is unconfirmed: see docs/decisions.md).
pub fn push_record(f: &PushFields<'_>) -> Vec<(String, String)> {
    let mut out = vec![
        ("orderId".to_owned(), f.order_id.to_owned()),
        ("txnType".to_owned(), f.txn_type.to_owned()),
        ("mstatus".to_owned(), f.result.mstatus().to_owned()),
        ("vResultCode".to_owned(), f.result.code()),
        ("amount".to_owned(), f.amount.to_string()),
        (
            "centerOrderId".to_owned(),
            f.center_order_id.unwrap_or_default().to_owned(),
        ),
        (
            "centerTransactionId".to_owned(),
            f.center_transaction_id.unwrap_or_default().to_owned(),
        ),
        ("txnDatetime".to_owned(), center_datetime(f.at)),
        (
            "dummy".to_owned(),
            if f.dummy { "1" } else { "0" }.to_owned(),
        ),
        (
            "amazonStatus".to_owned(),
            f.amazon_status.unwrap_or_default().to_owned(),
        ),
    ];
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// The form-encoded body of one push POST: `numberOfNotify`, `pushTime`, `pushId`, then each
/// record's fields with a 4-digit index suffix (`orderId0000`, …) and `notifyIdNNNN`, Kessai's
/// stable id of the record (the same in every retry, so a merchant can drop duplicates).
pub fn push_body(
    records: &[(i64, &[(String, String)])],
    push_id: &str,
    at: time::OffsetDateTime,
) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("numberOfNotify", &records.len().to_string());
    form.append_pair("pushTime", &center_datetime(at));
    form.append_pair("pushId", push_id);
    for (index, (id, fields)) in records.iter().enumerate() {
        for (k, v) in fields.iter() {
            form.append_pair(&format!("{k}{index:04}"), v);
        }
        form.append_pair(&format!("notifyId{index:04}"), &id.to_string());
    }
    form.finish()
}

/// HMAC-SHA256 of `message` with the merchant's secret key, hex-decoded (the MDK's rule), as
/// lowercase hex; `None` if the secret is not hex.
pub fn hmac_hex(secret_hex: &str, message: &[u8]) -> Option<String> {
    let key = hex::decode(secret_hex).ok()?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    Some(hex::encode(ring::hmac::sign(&key, message).as_ref()))
}

/// The MDK's `content-hmac` header of a push body.
pub fn content_hmac(ccid: &str, secret_hex: &str, body: &str) -> Option<String> {
    hmac_hex(secret_hex, body.as_bytes()).map(|v| format!("h=HmacSHA256;s={ccid};v={v}"))
}

/// Kessai's `kessai-signature` header: `t=<unix seconds>,v1=<hex HMAC of "t." + body>`, so a
/// merchant can refuse a replayed push (documented in docs/pushes.md).
pub fn timestamped_signature(secret_hex: &str, unix: i64, body: &str) -> Option<String> {
    hmac_hex(secret_hex, format!("{unix}.{body}").as_bytes()).map(|v| format!("t={unix},v1={v}"))
}

/// Builds the body text a merchant's MDK would send (used by the demo shop and tests).
pub fn encode_request(params: &Value, ccid: &str, secret_hex: &str) -> String {
    let params_text = params.to_string();
    let hash = auth_hash(ccid, &params_text, secret_hex);
    let json = format!(r#"{{"params":{params_text},"authHash":"{hash}"}}"#);
    form_urlencoded::byte_serialize(json.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the MDK reference (§2a), observed from the official MDK.
    const PARAMS: &str = r#"{"orderId":"o-2","amount":"100","noteToBuyer":"a b+c~*","successUrl":"http://x/y?a=1&b=2","txnVersion":"2.0.0","dummyRequest":"1","merchantCcid":"A100000000000001069951cc"}"#;
    const BODY: &str = "%7B%22params%22%3A%7B%22orderId%22%3A%22o-2%22%2C%22amount%22%3A%22100%22%2C%22noteToBuyer%22%3A%22a+b%2Bc%7E%2A%22%2C%22successUrl%22%3A%22http%3A%2F%2Fx%2Fy%3Fa%3D1%26b%3D2%22%2C%22txnVersion%22%3A%222.0.0%22%2C%22dummyRequest%22%3A%221%22%2C%22merchantCcid%22%3A%22A100000000000001069951cc%22%7D%2C%22authHash%22%3A%22cee756b6f39e9716e6628788fd82782a132c11dfc4f56a9cb44f21a5346ee518%22%7D";

    #[test]
    fn mdk_vector_hash_and_body() {
        assert_eq!(
            auth_hash(
                "A100000000000001069951cc",
                PARAMS,
                "0123456789abcdef0123456789abcdef"
            ),
            "cee756b6f39e9716e6628788fd82782a132c11dfc4f56a9cb44f21a5346ee518"
        );
        let text = body_text(BODY.as_bytes(), Some("application/x-www-form-urlencoded")).unwrap();
        let env = parse_envelope(&text).unwrap();
        assert_eq!(env.params_text, PARAMS);
        assert!(hash_matches(
            &env.auth_hash,
            "A100000000000001069951cc",
            &env.params_text,
            "0123456789abcdef0123456789abcdef"
        ));
        assert!(!hash_matches(
            &env.auth_hash,
            "A100000000000001069951cc",
            &env.params_text,
            "0123456789abcdef0123456789abcdee"
        ));
    }

    #[test]
    fn raw_json_keeps_plus_signs() {
        let text = body_text(
            br#"{"params":{"a":"1+1"},"authHash":"x"}"#,
            Some("application/json"),
        )
        .unwrap();
        assert!(text.contains("1+1"));
    }

    #[test]
    fn envelope_errors() {
        assert_eq!(
            parse_envelope("{nope").unwrap_err().kind,
            Kind::MalformedBody
        );
        assert_eq!(
            parse_envelope(r#"{"authHash":"x"}"#).unwrap_err().kind,
            Kind::MissingParams
        );
        assert_eq!(
            parse_envelope(r#"{"params":[],"authHash":"x"}"#)
                .unwrap_err()
                .kind,
            Kind::MissingParams
        );
        assert_eq!(
            parse_envelope(r#"{"params":{}}"#).unwrap_err().kind,
            Kind::MissingAuthHash
        );
    }
}
