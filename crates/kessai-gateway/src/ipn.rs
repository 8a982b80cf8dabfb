//! Amazon Pay notifications (IPN) at `POST /amazonpay/ipn`: an SNS envelope whose signature is
//! checked with the certificate at `SigningCertURL` (HTTPS on Amazon's SNS host, or an origin the
//! gateway was told to trust, such as its own emulator), whose `TopicArn` is checked, and whose
//! `MessageId` is handled once. The message carries no state: the object it names is fetched
//! from Amazon Pay and the order moves as Amazon says, with its merchant push, in one unit of work.
//!
//! What moves an order: an authorization Amazon expired (`ExpiredUnused`) or canceled; a refund
//! that settled (its row) or was declined (its amount is refundable again).

use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use kessai_amazonpay::wire::{ChargePermissionState, ChargeState, ReasonCode, RefundState};
use kessai_core::{ConsentEvent, Event, Kind, OrderState, PushKind, ResultCode};
use kessai_store::{OrderRecord, Unit, Write};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Which notifications the gateway believes.
#[derive(Debug, Clone, Default)]
pub struct IpnSettings {
    /// Origins (`scheme://host[:port]`) whose certificates are trusted besides Amazon's SNS hosts
    /// (`https://sns.<region>.amazonaws.com`): the emulator the gateway talks to.
    pub extra_cert_origins: Vec<String>,
    /// Accepted `TopicArn`s; empty: any SNS topic ARN.
    pub topic_arns: Vec<String>,
}

/// Certificates fetched, by URL.
#[derive(Default)]
pub struct CertCache {
    pems: Mutex<HashMap<String, Vec<u8>>>,
}

/// Why a notification is refused.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("not an SNS envelope: {0}")]
    Malformed(String),
    #[error("SigningCertURL {0} is not an allowed certificate location")]
    CertOrigin(String),
    #[error("TopicArn {0} is not accepted")]
    Topic(String),
    #[error("the signature does not verify: {0}")]
    Signature(String),
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, Refused> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Refused::Malformed(format!("{key} is missing")))
}

/// A key of the message, whatever its case (an older Amazon page writes camelCase).
fn field<'a>(message: &'a Value, key: &str) -> Option<&'a str> {
    message.as_object().and_then(|m| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
    })
}

fn cert_allowed(url: &str, settings: &IpnSettings) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let origin = u.origin().ascii_serialization();
    if settings
        .extra_cert_origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin)
    {
        return true;
    }
    // https://sns.<region>.amazonaws.com, nothing else.
    let host = u.host_str().unwrap_or_default();
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"));
    u.scheme() == "https"
        && u.port().is_none()
        && region.is_some_and(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

async fn certificate(state: &AppState, url: &str) -> Result<Vec<u8>, Refused> {
    if let Some(pem) = state
        .ipn_certs
        .pems
        .lock()
        .ok()
        .and_then(|m| m.get(url).cloned())
    {
        return Ok(pem);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Refused::Signature(e.to_string()))?;
    let resp = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| Refused::Signature(format!("cannot fetch the certificate: {e}")))?;
    let pem = resp
        .bytes()
        .await
        .map_err(|e| Refused::Signature(e.to_string()))?
        .to_vec();
    if pem.len() > 64 * 1024 {
        return Err(Refused::Signature("the certificate is too large".into()));
    }
    if let Ok(mut m) = state.ipn_certs.pems.lock() {
        m.insert(url.to_owned(), pem.clone());
    }
    Ok(pem)
}

/// Checks the envelope; returns (MessageId, Message).
async fn verify(state: &AppState, body: &str) -> Result<(String, Value), Refused> {
    let envelope: Value =
        serde_json::from_str(body).map_err(|e| Refused::Malformed(e.to_string()))?;
    let kind = text(&envelope, "Type")?;
    if kind != "Notification" {
        return Err(Refused::Malformed(format!("Type {kind} is not handled")));
    }
    let cert_url = text(&envelope, "SigningCertURL")?;
    if !cert_allowed(cert_url, &state.ipn) {
        return Err(Refused::CertOrigin(cert_url.to_owned()));
    }
    let topic = text(&envelope, "TopicArn")?;
    let topic_ok = if state.ipn.topic_arns.is_empty() {
        topic.starts_with("arn:aws:sns:")
    } else {
        state.ipn.topic_arns.iter().any(|t| t == topic)
    };
    if !topic_ok {
        return Err(Refused::Topic(topic.to_owned()));
    }
    let version = text(&envelope, "SignatureVersion")?;
    if version != "2" {
        return Err(Refused::Signature(format!(
            "SignatureVersion {version} (only 2, SHA256withRSA, is accepted)"
        )));
    }
    let message = text(&envelope, "Message")?;
    let message_id = text(&envelope, "MessageId")?;
    let mut to_sign = format!("Message\n{message}\nMessageId\n{message_id}\n");
    if let Some(subject) = envelope.get("Subject").and_then(Value::as_str) {
        to_sign.push_str(&format!("Subject\n{subject}\n"));
    }
    to_sign.push_str(&format!(
        "Timestamp\n{}\nTopicArn\n{topic}\nType\n{kind}\n",
        text(&envelope, "Timestamp")?
    ));
    let signature = base64::engine::general_purpose::STANDARD
        .decode(text(&envelope, "Signature")?)
        .map_err(|e| Refused::Signature(format!("Signature is not Base64: {e}")))?;
    let pem = certificate(state, cert_url).await?;
    let der = CertificateDer::from_pem_slice(&pem)
        .map_err(|e| Refused::Signature(format!("the certificate is not PEM: {e:?}")))?;
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Refused::Signature(format!("the certificate does not parse: {e}")))?;
    cert.verify_signature(
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        to_sign.as_bytes(),
        &signature,
    )
    .map_err(|e| Refused::Signature(e.to_string()))?;
    let message: Value =
        serde_json::from_str(message).map_err(|e| Refused::Malformed(format!("Message: {e}")))?;
    Ok((message_id.to_owned(), message))
}

/// `POST /amazonpay/ipn`.
pub async fn receive(State(state): State<AppState>, body: String) -> Response {
    let (message_id, message) = match verify(&state, &body).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(%e, "Amazon Pay notification refused");
            let status = match e {
                Refused::Malformed(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            return (status, e.to_string()).into_response();
        }
    };
    match handle(&state, &message_id, &message).await {
        Ok(what) => {
            tracing::info!(message_id = %message_id, what, "Amazon Pay notification");
            (StatusCode::OK, what).into_response()
        }
        // Not handled now (Amazon Pay unreachable, the store failed): SNS sends it again.
        Err(e) => {
            tracing::warn!(message_id = %message_id, %e, "Amazon Pay notification not handled yet");
            (StatusCode::SERVICE_UNAVAILABLE, e).into_response()
        }
    }
}

async fn seen_only(
    state: &AppState,
    message_id: &str,
    what: &'static str,
) -> Result<&'static str, String> {
    state
        .store
        .mark_ipn_seen(message_id, state.clock.unix())
        .await
        .map_err(|e| e.to_string())?;
    Ok(what)
}

async fn handle(
    state: &AppState,
    message_id: &str,
    message: &Value,
) -> Result<&'static str, String> {
    if state
        .store
        .ipn_seen(message_id)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok("already handled");
    }
    let (Some(object_type), Some(object_id), Some(cp)) = (
        field(message, "ObjectType"),
        field(message, "ObjectId"),
        field(message, "ChargePermissionId"),
    ) else {
        return seen_only(state, message_id, "ignored: no object named").await;
    };
    // Many orders share a recurring consent's charge permission: find the order by the object.
    let by_object = match object_type.to_ascii_uppercase().as_str() {
        "CHARGE" => state.store.order_by_charge(object_id).await,
        "REFUND" => state.store.order_by_refund(object_id).await,
        _ => Ok(None),
    }
    .map_err(|e| e.to_string())?;
    let found = match by_object {
        Some(o) => Some(o),
        None => state
            .store
            .order_by_charge_permission(cp)
            .await
            .map_err(|e| e.to_string())?,
    };
    let Some(found) = found else {
        tracing::warn!(
            object_type,
            object_id,
            "a notification for an unknown object"
        );
        return seen_only(state, message_id, "ignored: unknown object").await;
    };
    let _guard = state.locks.lock(&found.merchant, &found.order_id).await;
    let record = state
        .store
        .order(&found.merchant, &found.order_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the order vanished")?;
    let change = match object_type.to_ascii_uppercase().as_str() {
        "CHARGE" => charge_change(state, &record, object_id).await?,
        "REFUND" => refund_change(state, &record, object_id).await?,
        "CHARGE_PERMISSION" => permission_change(state, &record, object_id).await?,
        _ => None,
    };
    let Some(change) = change else {
        return seen_only(state, message_id, "no change").await;
    };
    let history = format!("{{\"objectType\":\"{object_type}\",\"objectId\":\"{object_id}\"}}");
    let seen = Write::IpnSeen {
        message_id: message_id.to_owned(),
        at: state.clock.unix(),
    };
    state
        .abort_at
        .reached(crate::crash::Point::IpnAfterFetch, None);
    apply(
        state,
        &record,
        change,
        "AmazonNotification",
        &history,
        Some(seen),
    )
    .await?;
    Ok("order updated")
}

/// Stores a change Amazon made to an order, with its history entry, its push and `extra`.
pub(crate) async fn apply(
    state: &AppState,
    record: &OrderRecord,
    change: Change,
    command: &str,
    request: &str,
    extra: Option<Write>,
) -> Result<OrderRecord, String> {
    let Change {
        event,
        consent,
        push: kind,
        result,
        amount,
        writes,
    } = change;
    let mut after = record.clone();
    if let Some(event) = event {
        after.order = record.order.apply(event).map_err(|e| e.to_string())?;
    }
    if let Some(event) = consent {
        let c = record
            .consent
            .ok_or("a consent change on an order without one")?;
        after.consent = Some(c.apply(event).map_err(|e| e.to_string())?);
    }
    after.version += 1;
    after.updated_at = state.now_text();
    let mut unit = Unit::new(&record.merchant, &record.order_id)
        .with(Write::UpdateOrder(after.clone()))
        .with(Write::History(crate::util::history(
            command,
            request,
            &result,
            state.now_text(),
        )));
    if let Some(w) = extra {
        unit = unit.with(w);
    }
    let (transaction, refund_state) = writes
        .iter()
        .find_map(|w| match w {
            Write::RefundState {
                amazon_refund_id,
                state,
            } => Some((Some(amazon_refund_id.clone()), Some(state.clone()))),
            _ => None,
        })
        .unwrap_or((None, None));
    for w in writes {
        unit = unit.with(w);
    }
    if let Some(push) = crate::pushes::record(
        state,
        &after,
        kind,
        &result,
        amount,
        transaction.as_deref(),
        refund_state.as_deref(),
    ) {
        unit = unit.with(push);
    }
    state.store.apply(&unit).await.map_err(|e| e.to_string())?;
    Ok(after)
}

/// A change Amazon made on its own, as the gateway stores it.
pub(crate) struct Change {
    event: Option<Event>,
    /// What happened to the order's recurring consent.
    consent: Option<ConsentEvent>,
    push: PushKind,
    result: ResultCode,
    amount: kessai_core::Yen,
    writes: Vec<Write>,
}

pub(crate) fn change(
    event: Option<Event>,
    push: PushKind,
    result: ResultCode,
    amount: kessai_core::Yen,
    writes: Vec<Write>,
) -> Change {
    Change {
        event,
        consent: None,
        push,
        result,
        amount,
        writes,
    }
}

/// An authorization Amazon expired or canceled on its own.
pub(crate) async fn charge_change(
    state: &AppState,
    record: &OrderRecord,
    charge_id: &str,
) -> Result<Option<Change>, String> {
    let pending = record.order.state == OrderState::AuthorizationPending;
    if record.charge_id.as_deref() != Some(charge_id)
        || !(pending || record.order.state == OrderState::Authorized)
    {
        return Ok(None);
    }
    let charge = state
        .amazon
        .get_charge(charge_id)
        .await
        .map_err(|e| e.to_string())?;
    if pending {
        // A pending authorization that Amazon decided.
        let amount = record.order.amount;
        let reason = charge
            .status_details
            .reason_code
            .as_ref()
            .map(ReasonCode::as_str)
            .unwrap_or("no reason given");
        let (event, result) = match charge.status_details.state {
            ChargeState::Authorized => (Event::Authorized { amount }, ResultCode::success()),
            ChargeState::Captured | ChargeState::CaptureInitiated => (
                Event::AuthorizedAndCaptured { amount },
                ResultCode::success(),
            ),
            ChargeState::Declined => (
                Event::Declined,
                ResultCode::new(
                    Kind::AmazonDeclined,
                    format!("Amazon Pay declined the authorization ({reason})."),
                ),
            ),
            _ => return Ok(None),
        };
        return Ok(Some(change(
            Some(event),
            PushKind::Authorize,
            result,
            amount,
            vec![],
        )));
    }
    if charge.status_details.state != ChargeState::Canceled {
        return Ok(None);
    }
    let amount = record.order.authorized;
    Ok(Some(match charge.status_details.reason_code {
        Some(ReasonCode::ExpiredUnused) => change(
            Some(Event::Expired),
            PushKind::Cancel,
            ResultCode::new(
                Kind::AuthorizationExpired,
                "The authorization expired unused (30 days at Amazon Pay).",
            ),
            amount,
            vec![],
        ),
        reason => change(
            Some(Event::Canceled),
            PushKind::Cancel,
            ResultCode::new(
                Kind::AmazonCanceledAuthorization,
                format!(
                    "Amazon Pay canceled the authorization ({}).",
                    reason
                        .as_ref()
                        .map(ReasonCode::as_str)
                        .unwrap_or("no reason given")
                ),
            ),
            amount,
            vec![],
        ),
    }))
}

/// A refund that settled or was declined.
async fn refund_change(
    state: &AppState,
    record: &OrderRecord,
    refund_id: &str,
) -> Result<Option<Change>, String> {
    let rows = state
        .store
        .refunds(&record.merchant, &record.order_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(row) = rows.iter().find(|r| r.amazon_refund_id == refund_id) else {
        return Ok(None);
    };
    let refund = state
        .amazon
        .get_refund(refund_id)
        .await
        .map_err(|e| e.to_string())?;
    let now = refund.status_details.state.to_string();
    if now == row.state {
        return Ok(None);
    }
    let write = Write::RefundState {
        amazon_refund_id: refund_id.to_owned(),
        state: now,
    };
    Ok(Some(match refund.status_details.state {
        RefundState::Declined => change(
            Some(Event::RefundDeclined { amount: row.amount }),
            PushKind::Refund,
            ResultCode::new(
                Kind::AmazonRefundDeclined,
                format!(
                    "Amazon Pay declined the refund ({}); its amount is refundable again.",
                    refund
                        .status_details
                        .reason_code
                        .as_ref()
                        .map(ReasonCode::as_str)
                        .unwrap_or("no reason given")
                ),
            ),
            row.amount,
            vec![write],
        ),
        RefundState::Refunded => change(
            None,
            PushKind::Refund,
            ResultCode::success(),
            row.amount,
            vec![write],
        ),
        _ => return Ok(None),
    }))
}

/// A recurring consent's charge permission that Amazon closed (the buyer ended it, Amazon closed
/// it, or it lapsed).
async fn permission_change(
    state: &AppState,
    record: &OrderRecord,
    charge_permission_id: &str,
) -> Result<Option<Change>, String> {
    let Some(consent) = record.consent else {
        return Ok(None);
    };
    if consent.state.is_ended()
        || record.charge_permission_id.as_deref() != Some(charge_permission_id)
    {
        return Ok(None);
    }
    let cp = state
        .amazon
        .get_charge_permission(charge_permission_id)
        .await
        .map_err(|e| e.to_string())?;
    if cp.status_details.state != ChargePermissionState::Closed {
        return Ok(None);
    }
    let reason = cp
        .status_details
        .reasons
        .as_ref()
        .and_then(|r| r.first())
        .map(|r| r.reason_code.clone());
    let (event, result) = match &reason {
        Some(ReasonCode::Expired) => (
            ConsentEvent::Expired,
            ResultCode::new(
                Kind::ConsentNotActive,
                "The recurring consent expired at Amazon Pay.",
            ),
        ),
        other => (
            ConsentEvent::Terminated,
            ResultCode::new(
                Kind::ConsentNotActive,
                format!(
                    "Amazon Pay closed the recurring consent ({}).",
                    other
                        .as_ref()
                        .map(ReasonCode::as_str)
                        .unwrap_or("no reason given")
                ),
            ),
        ),
    };
    Ok(Some(Change {
        event: None,
        consent: Some(event),
        push: PushKind::Terminate,
        result,
        amount: consent.amount,
        writes: vec![],
    }))
}
