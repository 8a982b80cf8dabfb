//! MWS instant payment notifications: the XML `NotificationData` in the `/ipn/` namespace,
//! wrapped in a JSON `Message` inside an SNS envelope signed with SignatureVersion 1
//! (RSA PKCS#1 v1.5 over SHA-1) by the emulator's own key, whose certificate is served at
//! [`CERT_PATH`]; and the worker that delivers the outbox.

use super::xml;
use crate::engine::agreements::service::Announce;
use crate::engine::agreements::store::OutboxRow;
use crate::engine::agreements::{Notice, Seller, Timestamp};
use crate::server::AppState;
use base64::Engine as _;
use kessai_core::IdSource;
use rsa::pkcs8::DecodePrivateKey;
use sha1::Digest;
use std::sync::Arc;
use std::time::Duration;

pub const CERT_PATH: &str = "/sns/mws-signing-cert.pem";
pub const TOPIC_ARN: &str = "arn:aws:sns:ap-northeast-1:000000000000:KessaiSandboxMwsIPN";
/// The marketplace named in notifications (Amazon.co.jp's, as far as known).
pub const MARKETPLACE_ID: &str = "A1VC38T7YXB528";
/// Deliveries of one notification before it is given up.
pub const MAX_ATTEMPTS: i64 = 16;

/// The emulator's SNS identity for MWS notifications.
pub struct IpnSigner {
    key: rsa::RsaPrivateKey,
    cert_pem: String,
}

impl std::fmt::Debug for IpnSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpnSigner(..)")
    }
}

impl IpnSigner {
    /// The key and certificate kept in the emulator's settings, or new ones stored there.
    pub async fn load_or_create(db: &crate::db::Db) -> Result<IpnSigner, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let (key_pem, cert_pem) = match (
            db.setting("mws_sns_key").await.map_err(|x| e(&x))?,
            db.setting("mws_sns_cert").await.map_err(|x| e(&x))?,
        ) {
            (Some(k), Some(c)) => (k, c),
            _ => {
                let key = kessai_amazonpay::PrivateKey::generate().map_err(|x| e(&x))?;
                let pair =
                    rcgen::KeyPair::from_pem_and_sign_algo(key.to_pem(), &rcgen::PKCS_RSA_SHA256)
                        .map_err(|x| e(&x))?;
                let host = "sns.ap-northeast-1.amazonaws.com";
                let mut params =
                    rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(|x| e(&x))?;
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, host);
                params.distinguished_name.push(
                    rcgen::DnType::OrganizationName,
                    "Kessai Amazon Pay sandbox (MWS notifications)",
                );
                let cert = params.self_signed(&pair).map_err(|x| e(&x))?;
                let cert_pem = cert.pem();
                db.set_setting("mws_sns_key", key.to_pem())
                    .await
                    .map_err(|x| e(&x))?;
                db.set_setting("mws_sns_cert", &cert_pem)
                    .await
                    .map_err(|x| e(&x))?;
                (key.to_pem().to_owned(), cert_pem)
            }
        };
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem).map_err(|x| e(&x))?;
        Ok(IpnSigner { key, cert_pem })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// RSA PKCS#1 v1.5 with SHA-1, Base64.
    pub fn sign(&self, data: &[u8]) -> Result<String, String> {
        let digest = sha1::Sha1::digest(data);
        let sig = self
            .key
            .sign(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &digest)
            .map_err(|e| e.to_string())?;
        if sig.is_empty() {
            return Err("empty signature".into());
        }
        Ok(base64::engine::general_purpose::STANDARD.encode(sig))
    }
}

/// The string SNS signs (SignatureVersion 1, no `Subject`).
pub fn string_to_sign(message: &str, message_id: &str, timestamp: &str) -> String {
    format!(
        "Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\nTopicArn\n{TOPIC_ARN}\nType\nNotification\n"
    )
}

/// Renders notices as signed SNS envelopes for the outbox.
pub struct Announcer {
    pub signer: Arc<IpnSigner>,
    pub base_url: String,
    pub ids: Arc<dyn IdSource>,
}

impl Announcer {
    fn notification_data(
        notice: &Notice,
        now: Timestamp,
    ) -> Result<(String, String, String), String> {
        let e = |x: super::error::MwsError| x.message;
        Ok(match notice {
            Notice::Agreement(b) => (
                "BillingAgreementNotification".into(),
                b.id().to_string(),
                xml::render_notification(
                    "BillingAgreementNotification",
                    "BillingAgreement",
                    &xml::agreement_notification(b, now),
                )
                .map_err(e)?,
            ),
            Notice::Authorization(a) => (
                "PaymentAuthorize".into(),
                a.id().to_string(),
                xml::render_notification(
                    "AuthorizationNotification",
                    "AuthorizationDetails",
                    &xml::authorization_details(a),
                )
                .map_err(e)?,
            ),
            Notice::Capture(c) => (
                "PaymentCapture".into(),
                c.id().to_string(),
                xml::render_notification(
                    "CaptureNotification",
                    "CaptureDetails",
                    &xml::capture_details(c),
                )
                .map_err(e)?,
            ),
            Notice::Refund(r) => (
                "PaymentRefund".into(),
                r.id().to_string(),
                xml::render_notification(
                    "RefundNotification",
                    "RefundDetails",
                    &xml::refund_details(r),
                )
                .map_err(e)?,
            ),
        })
    }
}

impl Announce for Announcer {
    fn announce(
        &self,
        seller: &Seller,
        notice: &Notice,
        now: Timestamp,
    ) -> Result<Option<OutboxRow>, String> {
        let Some(url) = seller.ipn_url() else {
            return Ok(None);
        };
        let (kind, object_id, data) = Announcer::notification_data(notice, now)?;
        let environment = match notice {
            Notice::Agreement(b) => b.environment(),
            Notice::Authorization(a) => a.environment(),
            Notice::Capture(c) => c.environment(),
            Notice::Refund(r) => r.environment(),
        };
        let stamp = xml::timestamp(now);
        let mut message = serde_json::json!({
            "NotificationReferenceId": self.ids.uuid(),
            "MarketplaceID": MARKETPLACE_ID,
            "NotificationType": kind,
            "SellerId": seller.id().as_str(),
            "ReleaseEnvironment": environment.as_str(),
            "Version": "2013-01-01",
            "NotificationData": data,
            "Timestamp": stamp,
        });
        if matches!(notice, Notice::Agreement(_)) {
            message["EventType"] = "BillingAgreementStatusUpdated".into();
        }
        let message = message.to_string();
        let message_id = self.ids.uuid();
        let signature = self
            .signer
            .sign(string_to_sign(&message, &message_id, &stamp).as_bytes())?;
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": TOPIC_ARN,
            "Message": message,
            "Timestamp": stamp,
            "SignatureVersion": "1",
            "Signature": signature,
            "SigningCertURL": format!("{}{CERT_PATH}", self.base_url),
            "UnsubscribeURL": format!("{}/sns/unsubscribe?SubscriptionArn={TOPIC_ARN}:kessai", self.base_url),
        });
        Ok(Some(OutboxRow {
            id: message_id,
            seller: seller.id().clone(),
            url: url.to_owned(),
            notification_type: kind,
            object_id,
            body: envelope.to_string(),
            created_at: now,
        }))
    }
}

/// Seconds before the n-th retry: 1, 2, 4 … capped at an hour (emulator clock).
pub fn backoff(attempts: i64) -> i64 {
    (1_i64 << attempts.clamp(0, 12)).min(3600)
}

/// Settles what fell due on the emulator's clock and delivers due notifications, until the
/// process ends.
pub async fn deliver_forever(state: AppState) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%e, "no HTTP client; MWS notifications will not be delivered");
            return;
        }
    };
    let mut failures = 0_u32;
    loop {
        let agreements = &state.mws.agreements;
        if let Err(e) = agreements.settle(state.now()).await {
            tracing::error!(%e, "MWS: cannot settle what fell due");
        }
        let due = match agreements.store().due_notifications(state.now()).await {
            Ok(d) => {
                failures = 0;
                d
            }
            Err(e) => {
                let wait = crate::notify::db_retry_after(failures);
                failures = failures.saturating_add(1);
                tracing::error!(%e, retry_in = ?wait, "MWS: cannot read the notification outbox");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for n in due {
            let error =
                crate::notify::post_envelope(&http, &n.url, n.id.as_str(), TOPIC_ARN, &n.body)
                    .await;
            let attempts = n.attempts + 1;
            let now = state.now();
            let retry_at = (attempts < MAX_ATTEMPTS).then(|| now + backoff(attempts - 1));
            if let Err(e) = agreements
                .store()
                .record_attempt(&n.id, attempts, error.as_deref(), retry_at, now)
                .await
            {
                tracing::error!(%e, "MWS: cannot record a delivery attempt");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_is_snss_version_1() {
        assert_eq!(
            string_to_sign("{\"a\":1}", "m-1", "2024-01-01T00:00:00.000Z"),
            format!("Message\n{{\"a\":1}}\nMessageId\nm-1\nTimestamp\n2024-01-01T00:00:00.000Z\nTopicArn\n{TOPIC_ARN}\nType\nNotification\n")
        );
        assert_eq!(backoff(0), 1);
        assert_eq!(backoff(3), 8);
        assert_eq!(backoff(40), 3600);
    }
}
