//! The `Idempotency-Key` header (Kessai extension to the MDK protocol): the first request with a
//! key runs and its answer is kept (at least 24 hours, per merchant); a retry with the same key and
//! the same command and params gets exactly that answer, byte for byte; the same key with another
//! request is refused (`E111`); a retry while the first is still running waits for it in this
//! process, and is refused (`E112`) when the first runs elsewhere.
//!
//! Answers that are not final (`E500` outcome unknown, `E5xx`, `E314`) are not kept: a retry with
//! the key runs again, and so learns the final answer.

use crate::app::AppState;
use kessai_core::{Kind, MerchantCcid, ResultCode};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
/// Longest key accepted.
pub const MAX_LEN: usize = 255;
/// A claim still in flight after this long was abandoned (its process died): it is taken over.
const ABANDONED_AFTER_SECS: i64 = 300;

/// A key claimed for this request; the answer is kept by [`finish`].
pub struct Claim {
    merchant: MerchantCcid,
    key: String,
    _serial: tokio::sync::OwnedMutexGuard<()>,
}

pub enum Start {
    /// Run the request (with a claim to finish, if it carried a key).
    Run(Option<Claim>),
    /// The kept answer of the first request with this key.
    Replay(String),
    /// The key cannot be used.
    Refuse(ResultCode),
}

fn valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_LEN && key.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

pub async fn start(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    merchant: &MerchantCcid,
    command: &str,
    params_text: &str,
) -> Start {
    let Some(value) = headers.get(HEADER) else {
        return Start::Run(None);
    };
    let key = match value.to_str() {
        Ok(k) if valid(k) => k.to_owned(),
        _ => {
            return Start::Refuse(ResultCode::new(
                Kind::IdempotencyKeyInvalid,
                format!(
                "Idempotency-Key must be 1 to {MAX_LEN} printable ASCII characters (got {} bytes).",
                value.len()
            ),
            ))
        }
    };
    // Requests with one key run one after the other in this process.
    let serial = state
        .locks
        .lock_named(&format!("idempotency/{merchant}/{key}"))
        .await;
    let mut h = Sha256::new();
    h.update(command.as_bytes());
    h.update([0]);
    h.update(params_text.as_bytes());
    let fingerprint = hex::encode(h.finalize());
    let claim = state
        .store
        .claim_key(
            merchant,
            &key,
            &fingerprint,
            state.clock.unix(),
            ABANDONED_AFTER_SECS,
        )
        .await;
    match claim {
        Ok(kessai_store::KeyClaim::New) => Start::Run(Some(Claim {
            merchant: merchant.clone(),
            key,
            _serial: serial,
        })),
        Ok(kessai_store::KeyClaim::Replay(answer)) => Start::Replay(answer),
        Ok(kessai_store::KeyClaim::Mismatch) => Start::Refuse(ResultCode::new(
            Kind::IdempotencyKeyReused,
            "Idempotency-Key was used before with another command or other params; use a new key for a new request.",
        )),
        Ok(kessai_store::KeyClaim::InFlight) => Start::Refuse(ResultCode::new(
            Kind::IdempotencyKeyInFlight,
            "Idempotency-Key: the first request with this key is still running; retry in a moment.",
        )),
        Err(kessai_store::StoreError::Unavailable(cause)) => {
            Start::Refuse(crate::util::store_failure(
                kessai_store::StoreError::Unavailable(cause),
            ))
        }
        Err(e) => {
            tracing::error!(%e, "cannot read idempotency keys");
            Start::Refuse(ResultCode::new(
                Kind::Internal,
                "Internal error: the Idempotency-Key could not be checked; nothing was done.",
            ))
        }
    }
}

/// Whether an answer is final, so a retry with the key must get it again.
fn is_final(result: &ResultCode) -> bool {
    !matches!(
        result.kind,
        Kind::OutcomeUnknown
            | Kind::AmazonUnreachable
            | Kind::AmazonServerError
            | Kind::AmazonAnswerNotUnderstood
            | Kind::DatabaseUnavailable
            | Kind::Internal
            | Kind::ConcurrentCommand
    )
}

/// Keeps the answer of the request that claimed the key (or forgets the claim if the answer is
/// not final).
pub async fn finish(state: &AppState, claim: Claim, result: &ResultCode, body: &str) {
    let kept = if is_final(result) {
        state
            .store
            .finish_key(&claim.merchant, &claim.key, body)
            .await
    } else {
        state.store.release_key(&claim.merchant, &claim.key).await
    };
    if let Err(e) = kept {
        tracing::error!(%e, merchant = %claim.merchant, "cannot keep the answer of an idempotency key");
    }
}
