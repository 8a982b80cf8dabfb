//! Small helpers shared by the gateway's modules.

use kessai_amazonpay::wire::ErrorCode;
use kessai_amazonpay::AmazonPayError;
use kessai_core::{Kind, MerchantCcid, OrderId, ResultCode};
use kessai_store::{HistoryEntry, StoreError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The idempotency key of one intended Amazon Pay operation: derived from what the operation is,
/// so a retry, a race or a recovery of the same operation always sends the same key.
pub fn idempotency_key(ccid: &MerchantCcid, order_id: &OrderId, operation: &str) -> String {
    let mut h = Sha256::new();
    h.update(ccid.as_str().as_bytes());
    h.update([0]);
    h.update(order_id.as_str().as_bytes());
    h.update([0]);
    h.update(operation.as_bytes());
    let mut key = hex::encode(h.finalize());
    key.truncate(32);
    key
}

/// The unguessable reference of an order in the buyer's URLs, derived with the gateway's key.
pub fn buyer_ref(key: &str, ccid: &MerchantCcid, order_id: &OrderId) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(ccid.as_str().as_bytes());
    h.update([0]);
    h.update(order_id.as_str().as_bytes());
    let mut r = hex::encode(h.finalize());
    r.truncate(32);
    r
}

/// A history entry of a command or step, at `at` (RFC 3339, from the gateway's clock).
pub fn history(command: &str, request: &str, result: &ResultCode, at: String) -> HistoryEntry {
    HistoryEntry {
        command: command.to_owned(),
        request: request.to_owned(),
        mstatus: result.mstatus().to_owned(),
        v_result_code: result.code(),
        message: result.message.clone(),
        amount: None,
        at,
    }
}

/// Maps an Amazon Pay failure to a result code; the message keeps Amazon's reason.
/// An internal error of the gateway (E599): logged, and answered without changing anything.
pub fn internal(e: impl std::fmt::Display) -> ResultCode {
    tracing::error!(%e, "internal error");
    ResultCode::new(Kind::Internal, format!("Internal error: {e}"))
}

/// The answer to a failure of the store: E504 when the database is unreachable or timed out (the
/// merchant retries), else an internal error.
pub fn store_failure(e: StoreError) -> ResultCode {
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(%cause, "the database is unavailable");
            ResultCode::new(
                Kind::DatabaseUnavailable,
                "The gateway's database is unavailable; send the same command again later.",
            )
        }
        e => internal(e),
    }
}

pub fn amazon_failure(e: &AmazonPayError) -> ResultCode {
    let kind = match e {
        AmazonPayError::Api {
            status,
            reason_code,
            ..
        } => match ErrorCode::parse(reason_code) {
            ErrorCode::SoftDeclined => Kind::AmazonSoftDeclined,
            ErrorCode::HardDeclined => Kind::AmazonHardDeclined,
            ErrorCode::AmazonRejected => Kind::AmazonRejected,
            ErrorCode::TransactionTimedOut => Kind::AmazonTransactionTimedOut,
            ErrorCode::ProcessingFailure => Kind::AmazonProcessingFailure,
            _ if *status >= 500 || *status == 408 || *status == 429 => Kind::AmazonServerError,
            _ => Kind::AmazonRefused,
        },
        AmazonPayError::Transport(_) => Kind::AmazonUnreachable,
        AmazonPayError::Decode { .. } => Kind::AmazonAnswerNotUnderstood,
        AmazonPayError::Request(_) => Kind::Internal,
    };
    ResultCode::new(kind, e.to_string())
}

/// One lock per order, so commands on the same order run one at a time in this process.
/// (Across processes the store's version check refuses the second writer.)
#[derive(Default)]
pub struct OrderLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl OrderLocks {
    pub async fn lock(
        &self,
        ccid: &MerchantCcid,
        order_id: &OrderId,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        self.lock_named(&format!("order/{ccid}/{order_id}")).await
    }

    /// A lock by name, for other things that must run one at a time in this process.
    pub async fn lock_named(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let key = name.to_owned();
        let lock = {
            let mut map = match self.locks.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            if map.len() > 10_000 {
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            map.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_fit_amazon_rules_and_differ_per_operation() {
        let m = MerchantCcid::parse("M").unwrap();
        let o = OrderId::parse("o1").unwrap();
        let a = idempotency_key(&m, &o, "capture");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, idempotency_key(&m, &o, "capture"));
        assert_ne!(a, idempotency_key(&m, &o, "refund-1"));
    }

    #[test]
    fn buyer_refs_are_stable_per_order_and_depend_on_the_key() {
        let m = MerchantCcid::parse("M").unwrap();
        let o = OrderId::parse("o1").unwrap();
        assert_eq!(buyer_ref("k", &m, &o), buyer_ref("k", &m, &o));
        assert_ne!(buyer_ref("k", &m, &o), buyer_ref("other", &m, &o));
        assert_ne!(
            buyer_ref("k", &m, &o),
            buyer_ref("k", &m, &OrderId::parse("o2").unwrap())
        );
    }
}

/// An amount as people read it: `¥3,240`.
pub fn yen_text(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("¥{out}")
}

#[cfg(test)]
mod yen_tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::yen_text(0), "¥0");
        assert_eq!(super::yen_text(999), "¥999");
        assert_eq!(super::yen_text(3240), "¥3,240");
        assert_eq!(super::yen_text(10_000_000), "¥10,000,000");
    }
}
