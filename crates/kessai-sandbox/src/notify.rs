//! Instant payment notifications (IPN), delivered as Amazon does: an SNS envelope POSTed as
//! `text/plain`, signed (`SignatureVersion` 2, SHA256withRSA) with the emulator's own key, whose
//! certificate is served at the envelope's `SigningCertURL`.
//!
//! Notifications are written to an outbox in the same SQLite write as the change they report
//! (`Db::save`); a worker delivers them and retries with exponential backoff until the merchant
//! answers 2xx.

use crate::db::{Db, DbError, Outgoing};
use crate::engine::{Changed, Engine, Kind};
use base64::Engine as _;
use kessai_amazonpay::PrivateKey;
use kessai_core::{Clock, IdSource};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Why notifications could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot sign the SNS envelope: {0}")]
    Sign(String),
    #[error("cannot read the notification URL: {0}")]
    Db(#[from] DbError),
}

/// Attempts before a notification is given up (about 17 hours of backoff in all).
pub const MAX_ATTEMPTS: i64 = 16;
/// Backoff of the n-th retry: 1 s, 2 s, 4 s, … capped at one hour.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 12) as u32;
    (1_i64 << exp).min(3600)
}

pub const TOPIC_ARN: &str = "arn:aws:sns:ap-northeast-1:000000000000:KessaiSandboxAmazonPayIPN";
pub const CERT_PATH: &str = "/sns/SimpleNotificationService-kessai-sandbox.pem";

/// The emulator's SNS signing identity.
pub struct Signer {
    key: PrivateKey,
    pub cert_pem: String,
}

impl Signer {
    /// Loads the key and certificate from the database, or makes and stores them.
    pub async fn load_or_create(db: &Db) -> Result<Signer, String> {
        if let (Some(key), Some(cert)) = (
            db.setting("sns_key").await.map_err(|e| e.to_string())?,
            db.setting("sns_cert").await.map_err(|e| e.to_string())?,
        ) {
            let key = PrivateKey::from_pem(&key).map_err(|e| e.to_string())?;
            return Ok(Signer {
                key,
                cert_pem: cert,
            });
        }
        let key = PrivateKey::generate().map_err(|e| e.to_string())?;
        let pair = rcgen::KeyPair::from_pem_and_sign_algo(key.to_pem(), &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(vec!["sns.ap-northeast-1.amazonaws.com".to_owned()])
                .map_err(|e| e.to_string())?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "sns.ap-northeast-1.amazonaws.com",
        );
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Kessai Amazon Pay sandbox");
        let cert = params.self_signed(&pair).map_err(|e| e.to_string())?;
        let cert_pem = cert.pem();
        db.set_setting("sns_key", key.to_pem())
            .await
            .map_err(|e| e.to_string())?;
        db.set_setting("sns_cert", &cert_pem)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Signer { key, cert_pem })
    }

    /// The SNS envelope of `message`, signed with SignatureVersion 2.
    pub fn envelope(
        &self,
        base_url: &str,
        message_id: &str,
        message: &str,
        timestamp: &str,
    ) -> Result<Value, NotifyError> {
        envelope_signed_by(base_url, message_id, message, timestamp, |bytes| {
            self.key
                .sign_pkcs1_sha256(bytes)
                .map_err(|e| NotifyError::Sign(e.to_string()))
        })
    }
}

/// The SNS envelope, with its signature made by `sign`; a signing failure is an error, never an
/// envelope without a signature.
fn envelope_signed_by(
    base_url: &str,
    message_id: &str,
    message: &str,
    timestamp: &str,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, NotifyError>,
) -> Result<Value, NotifyError> {
    let to_sign = format!(
        "Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\nTopicArn\n{TOPIC_ARN}\nType\nNotification\n"
    );
    let signature = sign(to_sign.as_bytes())?;
    if signature.is_empty() {
        return Err(NotifyError::Sign("the signature is empty".into()));
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(signature);
    Ok(json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": TOPIC_ARN,
            "Message": message,
            "Timestamp": timestamp,
            "SignatureVersion": "2",
            "Signature": signature,
            "SigningCertURL": format!("{base_url}{CERT_PATH}"),
            "UnsubscribeURL": format!("{base_url}/sns/unsubscribe?SubscriptionArn={TOPIC_ARN}:kessai"),
    }))
}

/// SNS's timestamp form: `2024-01-01T00:00:00.000Z`.
fn iso_ms(now: time::OffsetDateTime) -> String {
    format!(
        "{}.{:03}Z",
        now.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default(),
        now.millisecond()
    )
}

/// The notification of one object that changed on its own, or `None` if Amazon sends none for it.
fn message_for(
    engine: &Engine,
    changed: &Changed,
    ids: &dyn IdSource,
) -> Option<(String, String, String)> {
    let notice = engine.notice(changed)?;
    let object_type = match notice.kind {
        Kind::Charge => "CHARGE",
        Kind::Refund => "REFUND",
        Kind::ChargePermission => "CHARGE_PERMISSION",
        Kind::CheckoutSession => return None,
    };
    let merchant = notice.merchant_id.as_str().to_owned();
    let message = json!({
        "MerchantID": merchant,
        "ObjectType": object_type,
        "ObjectId": notice.object_id,
        "ChargePermissionId": notice.permission_id.as_str(),
        "NotificationType": "STATE_CHANGE",
        "NotificationId": ids.uuid(),
        "NotificationVersion": "V2",
    });
    Some((merchant, object_type.to_owned(), message.to_string()))
}

/// The notifications of objects that changed on their own, signed and ready for the outbox (the
/// caller writes them in the transaction that stores the change).
pub async fn outgoing(
    db: &Db,
    signer: &Signer,
    base_url: &str,
    engine: &Engine,
    fired: &[Changed],
    ids: &dyn IdSource,
    now: time::OffsetDateTime,
) -> Result<Vec<Outgoing>, NotifyError> {
    // The URLs of every merchant concerned, in one read (none when nothing is reported).
    let merchants: BTreeSet<String> = fired
        .iter()
        .filter_map(|changed| engine.notice(changed))
        .filter(|notice| notice.kind != Kind::CheckoutSession)
        .map(|notice| notice.merchant_id.as_str().to_owned())
        .collect();
    if merchants.is_empty() {
        return Ok(Vec::new());
    }
    let urls = db.notification_urls(merchants).await?;
    let mut out = Vec::new();
    for changed in fired {
        let Some((merchant, object_type, message)) = message_for(engine, changed, ids) else {
            continue;
        };
        let Some(url) = urls.get(&merchant) else {
            continue;
        };
        let id = ids.uuid();
        let body = signer
            .envelope(base_url, &id, &message, &iso_ms(now))?
            .to_string();
        out.push(Outgoing {
            id,
            merchant_id: merchant,
            url: url.clone(),
            object_type,
            object_id: changed.id.clone(),
            body,
            created_unix: now.unix_timestamp(),
        });
    }
    Ok(out)
}

/// Posts one SNS envelope to `url` as SNS does (its headers, the envelope as the body): `None`
/// when the endpoint answered 2xx, else why not. Both faces' deliveries use it.
pub async fn post_envelope(
    http: &reqwest::Client,
    url: &str,
    message_id: &str,
    topic_arn: &str,
    body: &str,
) -> Option<String> {
    let outcome = http
        .post(url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", "Notification")
        .header("x-amz-sns-message-id", message_id)
        .header("x-amz-sns-topic-arn", topic_arn)
        .body(body.to_owned())
        .send()
        .await;
    match outcome {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Some(e.to_string()),
    }
}

/// How long the delivery worker waits after its n-th database failure in a row: 1 s doubling to
/// one minute.
pub(crate) fn db_retry_after(failures: u32) -> Duration {
    Duration::from_secs(1_u64 << failures.min(6)).min(Duration::from_secs(60))
}

/// Delivers due notifications until the process ends.
pub async fn deliver_forever(db: Db, clock: Arc<dyn Clock>) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%e, "no HTTP client; notifications will not be delivered");
            return;
        }
    };
    let mut failures = 0_u32;
    loop {
        let due = match db.due_notifications(clock.unix()).await {
            Ok(due) => {
                failures = 0;
                due
            }
            Err(e) => {
                let wait = db_retry_after(failures);
                failures = failures.saturating_add(1);
                tracing::error!(%e, retry_in = ?wait, "cannot read the notification outbox");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for n in due {
            let error = post_envelope(&http, &n.url, &n.id, TOPIC_ARN, &n.body).await;
            if let Err(e) = db
                .record_attempt(&n.id, n.attempts + 1, error.as_deref(), clock.unix())
                .await
            {
                tracing::error!(%e, "cannot record a delivery attempt");
            }
        }
    }
}

/// A notification as listed by `/test_helpers/notifications`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    pub object_type: String,
    pub object_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub body: String,
}

/// A row of the `notifications` table, read by column name.
pub fn listed_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Listed> {
    Ok(Listed {
        id: r.get("id")?,
        merchant_id: r.get("merchant_id")?,
        url: r.get("url")?,
        object_type: r.get("object_type")?,
        object_id: r.get("object_id")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        next_attempt_at: r.get("next_attempt_at")?,
        last_error: r.get("last_error")?,
        created_at: r.get("created_at")?,
        delivered_at: r.get("delivered_at")?,
        body: r.get("body")?,
    })
}

pub type SharedSigner = Arc<Signer>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_signing_failure_is_an_error_not_an_empty_signature() {
        let failed = envelope_signed_by("http://x", "m", "{}", "t", |_| {
            Err(NotifyError::Sign("no key".into()))
        });
        assert!(matches!(failed, Err(NotifyError::Sign(_))));
        let empty = envelope_signed_by("http://x", "m", "{}", "t", |_| Ok(Vec::new()));
        assert!(matches!(empty, Err(NotifyError::Sign(_))));
        let signed = envelope_signed_by("http://x", "m", "{}", "t", |_| Ok(vec![1, 2])).unwrap();
        assert_eq!(signed["Signature"], "AQI=");
    }

    #[test]
    fn database_retries_back_off_to_a_minute() {
        assert_eq!(db_retry_after(0), Duration::from_secs(1));
        assert_eq!(db_retry_after(3), Duration::from_secs(8));
        assert_eq!(db_retry_after(40), Duration::from_secs(60));
    }
}
