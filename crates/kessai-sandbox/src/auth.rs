//! Request signature verification for every API call.

use crate::engine::{Environment, Merchant, MerchantId};
use crate::error::ApiError;
use crate::server::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
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
    pub environment: Environment,
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
    // The client signed the path it sent, even where routing reads another spelling of it.
    let received_path = parts
        .extensions
        .get::<crate::v2::ReceivedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.0.clone());
    if state.verify_signatures {
        verify_signature(
            state,
            &Signed {
                method: parts.method.as_str(),
                path: &received_path,
                query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &bytes,
                authority: parts.uri.authority().map(|a| a.as_str()),
            },
            &auth,
            &entry.key,
        )?;
    }
    // Reads simulate nothing: a simulation code on one is unfit.
    if parts.method == axum::http::Method::GET {
        if let Some(code) = parts
            .headers
            .get("x-amz-pay-simulation-code")
            .and_then(|v| v.to_str().ok())
        {
            if !code.trim().is_empty() {
                return Err(crate::v2::error::unfit_simulation(code, "a read"));
            }
        }
    }
    let merchant = state
        .merchant(&MerchantId::new(entry.merchant_id.as_str()))
        .ok_or_else(|| ApiError::internal("key without merchant"))?;
    let path = parts.uri.path();
    let live = path.starts_with("/live/")
        || (!path.starts_with("/sandbox/")
            && auth.public_key_id.to_ascii_uppercase().starts_with("LIVE"));
    parts.extensions.insert(Caller {
        merchant,
        environment: if live {
            Environment::Live
        } else {
            Environment::Sandbox
        },
    });
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A request as its signature covers it.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The URI's authority, where the request has one (HTTP/2, absolute-form).
    pub authority: Option<&'a str>,
}

/// `host` without a default port, lowercased, for comparing two spellings of one host.
fn normal_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    for default in [":443", ":80"] {
        if let Some(bare) = host.strip_suffix(default) {
            return bare.to_owned();
        }
    }
    host
}

/// Checks that `key` signed `request` as `auth` says: `x-amz-pay-date` and `x-amz-pay-host`
/// signed, the date within 15 minutes of the wall clock, the host the one the request came to
/// (the `Host` header, or this emulator's public URL behind a proxy), and the signature itself.
pub fn verify_signature(
    state: &AppState,
    request: &Signed<'_>,
    auth: &signing::Authorization,
    key: &kessai_amazonpay::PublicKey,
) -> Result<(), ApiError> {
    for required in ["x-amz-pay-date", "x-amz-pay-host"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(signature_error(format!(
                "SignedHeaders must include {required}."
            )));
        }
    }
    let date = request
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
    // A request signed for another server is not replayed here: the signed host must be the
    // one the request came to.
    let signed_host = request
        .headers
        .get("x-amz-pay-host")
        .and_then(|v| v.to_str().ok())
        .map(normal_host)
        .unwrap_or_default();
    let came_to = request
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(request.authority)
        .map(normal_host);
    let public = url::Url::parse(&state.base_url).ok().and_then(|u| {
        u.host_str().map(|h| {
            normal_host(
                &u.port()
                    .map_or_else(|| h.to_owned(), |p| format!("{h}:{p}")),
            )
        })
    });
    if signed_host.is_empty()
        || (came_to.as_deref() != Some(signed_host.as_str())
            && public.as_deref() != Some(signed_host.as_str()))
    {
        return Err(signature_error(format!(
            "x-amz-pay-host {signed_host} is not the host this request was sent to ({}); a request is signed for one server.",
            came_to.as_deref().unwrap_or("no Host header")
        )));
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let query = signing::canonical_query_from_raw(request.query);
    let canonical = signing::canonical_request(
        request.method,
        request.path,
        &query,
        &headers,
        &auth.signed_headers,
        request.body,
    )
    .map_err(signature_error)?;
    let to_sign = signing::string_to_sign(auth.algorithm, &canonical);
    if !signing::verify(key, auth.algorithm, &to_sign, &auth.signature) {
        return Err(signature_error(
            "The request signature does not match. Check the private key, the signed headers and the canonical request.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_compare_without_default_ports() {
        assert_eq!(normal_host("Pay-API.amazon.jp:443"), "pay-api.amazon.jp");
        assert_eq!(normal_host("127.0.0.1:8443"), "127.0.0.1:8443");
        assert_eq!(normal_host("localhost:80"), "localhost");
    }

    #[test]
    fn both_date_formats() {
        assert_eq!(parse_pay_date("20190923T231908Z"), Some(1_569_280_748));
        assert_eq!(parse_pay_date("2019-09-23T23:19:08Z"), Some(1_569_280_748));
        assert_eq!(parse_pay_date("yesterday"), None);
    }
}
