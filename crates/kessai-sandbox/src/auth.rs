//! Request signature verification for every API call.

use crate::error::ApiError;
use crate::server::AppState;
use crate::world::Merchant;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kessai_amazonpay::signing;
use kessai_amazonpay::wire::ErrorCode;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;
/// How far `x-amz-pay-date` may be from the wall clock.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Who is calling, established by the signature.
#[derive(Debug, Clone)]
pub struct Caller {
    pub merchant: Merchant,
    pub release_environment: &'static str,
}

fn signature_error(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::InvalidRequestSignature,
        message,
    )
}

/// Parses `20190923T231908Z` (Java/PHP/docs) and `2019-09-23T23:19:08Z` (Node).
pub fn parse_pay_date(text: &str) -> Option<i64> {
    let compact = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let extended =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::PrimitiveDateTime::parse(text, compact)
        .or_else(|_| time::PrimitiveDateTime::parse(text, extended))
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

pub async fn verify(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(state: &AppState, request: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    })?;
    let header = parts
        .headers
        .get("authorization")
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::MissingHeader,
                "The authorization header is missing.",
            )
        })?
        .to_str()
        .map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidHeaderValue,
                "The authorization header is not ASCII.",
            )
        })?;
    let auth = signing::parse_authorization(header).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidHeaderValue, format!("authorization: {e}"))
    })?;
    let entry = state.key(&auth.public_key_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::UnauthorizedAccess,
            format!(
                "The public key id {} is not registered.",
                auth.public_key_id
            ),
        )
    })?;
    for required in ["x-amz-pay-date", "x-amz-pay-host"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(signature_error(format!(
                "SignedHeaders must include {required}."
            )));
        }
    }
    let date = parts
        .headers
        .get("x-amz-pay-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::MissingHeader,
                "The x-amz-pay-date header is missing.",
            )
        })?;
    let signed_at = parse_pay_date(date).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidHeaderValue,
            format!("x-amz-pay-date {date} is neither YYYYMMDDTHHMMSSZ nor YYYY-MM-DDTHH:MM:SSZ."),
        )
    })?;
    let wall = state.wall();
    if (wall - signed_at).abs() > MAX_SKEW_SECONDS {
        return Err(signature_error(format!(
            "x-amz-pay-date {date} is more than 15 minutes away from the current time; the request is stale."
        )));
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let query = signing::canonical_query_from_raw(parts.uri.query().unwrap_or(""));
    // The client signed the path it sent, even where routing reads another spelling of it.
    let received_path = parts
        .extensions
        .get::<crate::api::ReceivedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.0.clone());
    let canonical = signing::canonical_request(
        parts.method.as_str(),
        &received_path,
        &query,
        &headers,
        &auth.signed_headers,
        &bytes,
    )
    .map_err(signature_error)?;
    let to_sign = signing::string_to_sign(auth.algorithm, &canonical);
    if !signing::verify(&entry.key, auth.algorithm, &to_sign, &auth.signature) {
        return Err(signature_error(
            "The request signature does not match. Check the private key, the signed headers and the canonical request.",
        ));
    }
    // Reads simulate nothing: a simulation code on one is unfit.
    if parts.method == axum::http::Method::GET {
        if let Some(code) = parts
            .headers
            .get("x-amz-pay-simulation-code")
            .and_then(|v| v.to_str().ok())
        {
            if !code.trim().is_empty() {
                return Err(crate::world::unfit_simulation(code, "a read"));
            }
        }
    }
    let merchant = {
        let world = state.world.lock().await;
        world.merchants.get(&entry.merchant_id).cloned()
    }
    .ok_or_else(|| ApiError::internal("key without merchant"))?;
    let path = parts.uri.path();
    let live = path.starts_with("/live/")
        || (!path.starts_with("/sandbox/")
            && auth.public_key_id.to_ascii_uppercase().starts_with("LIVE"));
    parts.extensions.insert(Caller {
        merchant,
        release_environment: if live { "Live" } else { "Sandbox" },
    });
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_date_formats() {
        assert_eq!(parse_pay_date("20190923T231908Z"), Some(1_569_280_748));
        assert_eq!(parse_pay_date("2019-09-23T23:19:08Z"), Some(1_569_280_748));
        assert_eq!(parse_pay_date("yesterday"), None);
    }
}
