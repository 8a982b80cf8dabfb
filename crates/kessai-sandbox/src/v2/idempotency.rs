//! The `x-amz-pay-idempotency-key` header of the v2 POSTs.

use crate::engine::Merchant;
use crate::error::ApiError;
use crate::server::Idempotency;
use axum::body::Bytes;
use axum::http::HeaderMap;
use kessai_amazonpay::wire::ErrorCode;

/// Reads `x-amz-pay-idempotency-key`: `required` on the creates, optional on other POSTs.
pub fn idempotency<'a>(
    headers: &'a HeaderMap,
    merchant: &'a Merchant,
    method: &str,
    path: &str,
    body: &Bytes,
    required: bool,
) -> Result<Option<Idempotency<'a>>, ApiError> {
    let Some(value) = headers.get("x-amz-pay-idempotency-key") else {
        if required {
            return Err(ApiError::bad_request(
                ErrorCode::MissingHeader,
                "The header x-amz-pay-idempotency-key is required for this operation.",
            ));
        }
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    if key.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::MissingHeaderValue,
            "The header x-amz-pay-idempotency-key is empty.",
        ));
    }
    if key.len() > 32
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidHeaderValue,
            "x-amz-pay-idempotency-key must be at most 32 characters of [a-zA-Z0-9_-].",
        ));
    }
    let fingerprint = format!(
        "{method} {path} {}",
        kessai_amazonpay::signing::sha256_hex(body)
    );
    Ok(Some(Idempotency {
        merchant_id: merchant.id().as_str(),
        key,
        fingerprint,
    }))
}
