//! Instant payment notifications (IPN), delivered as Amazon does: an SNS envelope POSTed as
//! `text/plain`, signed (`SignatureVersion` 2, SHA256withRSA) with the emulator's own key, whose
//! certificate is served at the envelope's `SigningCertURL`.
//!
//! Notifications are written to an outbox in the same critical section as the change they report;
//! a worker delivers them and retries with exponential backoff until the merchant answers 2xx.

use crate::db::Db;
use crate::world::{Changed, Kind, World};
use base64::Engine as _;
use kessai_amazonpay::PrivateKey;
use serde_json::{json, Value};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

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
    ) -> Value {
        let to_sign = format!(
            "Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\nTopicArn\n{TOPIC_ARN}\nType\nNotification\n"
        );
        let signature = self
            .key
            .sign_pkcs1_sha256(to_sign.as_bytes())
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s))
            .unwrap_or_default();
        json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": TOPIC_ARN,
            "Message": message,
            "Timestamp": timestamp,
            "SignatureVersion": "2",
            "Signature": signature,
            "SigningCertURL": format!("{base_url}{CERT_PATH}"),
            "UnsubscribeURL": format!("{base_url}/sns/unsubscribe?SubscriptionArn={TOPIC_ARN}:kessai"),
        })
    }
}

fn iso_now_ms() -> String {
    let now = time::OffsetDateTime::now_utc();
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
fn message_for(world: &World, changed: &Changed) -> Option<(String, String, String)> {
    let (object_type, merchant, cp) = match changed.kind {
        Kind::Charge => {
            let c = world.charges.get(&changed.id)?;
            (
                "CHARGE",
                c.merchant_id.clone(),
                c.charge.charge_permission_id.clone(),
            )
        }
        Kind::Refund => {
            let r = world.refunds.get(&changed.id)?;
            let cp = world
                .charges
                .get(&r.refund.charge_id)?
                .charge
                .charge_permission_id
                .clone();
            ("REFUND", r.merchant_id.clone(), cp)
        }
        Kind::ChargePermission => {
            let p = world.permissions.get(&changed.id)?;
            (
                "CHARGE_PERMISSION",
                p.merchant_id.clone(),
                changed.id.clone(),
            )
        }
        Kind::CheckoutSession => return None,
    };
    let message = json!({
        "MerchantID": merchant,
        "ObjectType": object_type,
        "ObjectId": changed.id,
        "ChargePermissionId": cp,
        "NotificationType": "STATE_CHANGE",
        "NotificationId": uuid::Uuid::new_v4().to_string(),
        "NotificationVersion": "V2",
    });
    Some((merchant, object_type.to_owned(), message.to_string()))
}

/// Writes the notifications of objects that changed on their own to the outbox.
pub async fn enqueue(
    db: &Db,
    signer: &Signer,
    base_url: &str,
    world: &World,
    fired: &[Changed],
) -> Result<(), sqlx::Error> {
    for changed in fired {
        let Some((merchant, object_type, message)) = message_for(world, changed) else {
            continue;
        };
        let Some(url) = db.notification_url(&merchant).await? else {
            continue;
        };
        let id = uuid::Uuid::new_v4().to_string();
        let body = signer
            .envelope(base_url, &id, &message, &iso_now_ms())
            .to_string();
        db.insert_notification(&id, &merchant, &url, &object_type, &changed.id, &body)
            .await?;
    }
    Ok(())
}

/// Delivers due notifications until the process ends.
pub async fn deliver_forever(db: Db) {
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
    loop {
        let due = db.due_notifications().await.unwrap_or_default();
        if due.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for n in due {
            let outcome = http
                .post(&n.url)
                .header("content-type", "text/plain; charset=UTF-8")
                .header("x-amz-sns-message-type", "Notification")
                .header("x-amz-sns-message-id", n.id.as_str())
                .header("x-amz-sns-topic-arn", TOPIC_ARN)
                .body(n.body.clone())
                .send()
                .await;
            let error = match outcome {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
                Err(e) => Some(e.to_string()),
            };
            if let Err(e) = db
                .record_attempt(&n.id, n.attempts + 1, error.as_deref())
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

pub fn listed_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Listed, sqlx::Error> {
    Ok(Listed {
        id: r.try_get("id")?,
        merchant_id: r.try_get("merchant_id")?,
        url: r.try_get("url")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
        body: r.try_get("body")?,
    })
}

pub type SharedSigner = Arc<Signer>;
