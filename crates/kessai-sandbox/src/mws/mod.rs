//! The MWS face ("OffAmazonPayments", API version 2013-01-01): Amazon Pay's Auto Pay API as
//! form-encoded POSTs signed with Signature Version 2, answered in Amazon's XML. Served at
//! `/OffAmazonPayments_Sandbox/2013-01-01` and `/OffAmazonPayments/2013-01-01`; every answer on
//! those paths (errors, unknown paths, wrong methods, oversized bodies included) is a
//! well-formed XML document in Amazon's namespace with `Content-Type: text/xml`.

pub mod actions;
pub mod buyer;
pub mod error;
pub mod helpers;
pub mod ipn;
pub mod login;
pub mod params;
pub mod signature;
pub mod widgets;
pub mod xml;

use crate::engine::agreements::service::Scope;
use crate::engine::agreements::store::Store;
use crate::engine::agreements::{Agreements, Environment, Seller};
use crate::server::AppState;
use actions::Action;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use error::MwsError;
use kessai_core::IdSource;
use params::Params;
use std::sync::Arc;

pub const API_VERSION: &str = "2013-01-01";
const SANDBOX_SECTION: &str = "/OffAmazonPayments_Sandbox";
const LIVE_SECTION: &str = "/OffAmazonPayments";
/// Largest request body read (MWS requests are a few kilobytes).
pub const MAX_BODY: usize = 256 * 1024;
/// How far a request's `Timestamp` may be from the emulator's clock.
pub const TIMESTAMP_TOLERANCE: i64 = 15 * 60;

/// The MWS face's state, held by the server.
pub struct Mws {
    pub agreements: Agreements,
    pub signer: Arc<ipn::IpnSigner>,
    /// The buyer's side: Login with Amazon tokens and widget frames.
    pub buyer: buyer::BuyerSide,
}

impl Mws {
    /// This face's tables in the emulator's file (`db` ran the migrations; its store shares
    /// `db`'s threads) and its notification signing identity.
    pub async fn open(
        db: &crate::db::Db,
        ids: Arc<dyn IdSource>,
        base_url: &str,
    ) -> Result<Mws, String> {
        let store = Store::new(db.sqlite().clone());
        let signer = Arc::new(ipn::IpnSigner::load_or_create(db).await?);
        let announcer = Arc::new(ipn::Announcer {
            signer: signer.clone(),
            base_url: base_url.to_owned(),
            ids: ids.clone(),
        });
        Ok(Mws {
            agreements: Agreements::new(store, ids, announcer),
            signer,
            buyer: buyer::BuyerSide::default(),
        })
    }
}

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(SANDBOX_SECTION, any(entry))
        .route(&format!("{SANDBOX_SECTION}/{{*rest}}"), any(entry))
        .route(LIVE_SECTION, any(entry))
        .route(&format!("{LIVE_SECTION}/{{*rest}}"), any(entry))
        .route(ipn::CERT_PATH, get(signing_cert))
        .merge(helpers::router(state))
        .merge(login::router())
        .merge(widgets::router())
}

async fn signing_cert(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.mws.signer.cert_pem().to_owned(),
    )
        .into_response()
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

/// Every request on the MWS paths.
async fn entry(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = state.ids.uuid();
    let path = uri.path().to_owned();
    let outcome = handle(&state, &method, &path, &headers, body, &request_id).await;
    match outcome {
        Ok(xml) => xml_response(StatusCode::OK, xml),
        Err(e) => {
            let mut r = xml_response(e.status, xml::render_error(&e, &request_id));
            if e.status == StatusCode::METHOD_NOT_ALLOWED && e.code == "MethodNotAllowed" {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            r
        }
    }
}

async fn handle(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<String, MwsError> {
    let environment = if path == format!("{SANDBOX_SECTION}/{API_VERSION}") {
        Environment::Sandbox
    } else if path == format!("{LIVE_SECTION}/{API_VERSION}") {
        Environment::Live
    } else {
        return Err(MwsError::sender(
            StatusCode::NOT_FOUND,
            "InvalidAddress",
            format!("The address {path} is not valid for this web service; use {SANDBOX_SECTION}/{API_VERSION} or {LIVE_SECTION}/{API_VERSION}."),
        ));
    };
    if method != Method::POST {
        return Err(MwsError::sender(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The method {method} is not allowed; MWS requests are POSTs."),
        ));
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        MwsError::sender(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    })?;
    let params = Params::parse(&body)?;
    let now = state.now();
    // A client stamps its requests with its own (wall) clock; the emulator's clock may have been
    // moved ahead by tests, so freshness is judged on the wall clock, as the v2 face does.
    let seller = authenticate(state, headers, path, &params, state.wall()).await?;
    let action_name = params.required("Action")?;
    let action = Action::parse(action_name).ok_or_else(|| {
        MwsError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("The action {action_name} is not valid for this web service."),
        )
    })?;
    let scope = Scope {
        seller: &seller,
        environment,
        now,
    };
    let tokens = &state.mws.buyer.tokens;
    actions::run(
        &state.mws.agreements,
        tokens,
        scope,
        action,
        &params,
        request_id,
    )
    .await
}

/// Reads `Timestamp`: ISO 8601 in UTC, `Z` or `z`, with or without fractions of a second.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let upper = text.trim().to_ascii_uppercase();
    time::OffsetDateTime::parse(&upper, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The seller whose key signed the request, after checking the signature, its freshness and
/// `SellerId`.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    p: &Params,
    now: i64,
) -> Result<Seller, MwsError> {
    let key = p.required("AWSAccessKeyId")?;
    let signature = p.required("Signature")?;
    if p.required("SignatureVersion")? != "2" {
        return Err(MwsError::invalid(
            "SignatureVersion",
            "only version 2 is supported.",
        ));
    }
    let method = signature::Method::parse(p.required("SignatureMethod")?).ok_or_else(|| {
        MwsError::invalid("SignatureMethod", "it must be HmacSHA256 or HmacSHA1.")
    })?;
    let stamp = p.required("Timestamp")?;
    if let Some(v) = p.get("Version") {
        if v != API_VERSION {
            return Err(MwsError::invalid(
                "Version",
                format!("it must be {API_VERSION}."),
            ));
        }
    }
    let seller = state
        .mws
        .agreements
        .store()
        .seller_by_access_key(key)
        .await
        .map_err(MwsError::internal)?
        .ok_or_else(|| {
            MwsError::sender(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        })?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !signature::verify(
        seller.secret_key().expose(),
        host,
        path,
        p.pairs(),
        signature,
        method,
    ) {
        return Err(MwsError::sender(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    let at = parse_timestamp(stamp).ok_or_else(|| {
        MwsError::invalid(
            "Timestamp",
            "it must be an ISO 8601 time in UTC, e.g. 2024-05-01T12:34:56Z.",
        )
    })?;
    if (now - at).abs() > TIMESTAMP_TOLERANCE {
        return Err(MwsError::sender(
            StatusCode::BAD_REQUEST,
            "RequestExpired",
            format!("Request has expired. Timestamp {stamp} is more than 15 minutes away from the server's time."),
        ));
    }
    if let Some(id) = p.get("SellerId").or_else(|| p.get("Merchant")) {
        if id != seller.id().as_str() {
            return Err(MwsError::sender(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedAccess",
                format!("The access key does not belong to seller {id}."),
            ));
        }
    }
    Ok(seller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_read_as_amazon_reads_them() {
        let t = 1_714_566_896;
        assert_eq!(parse_timestamp("2024-05-01T12:34:56Z"), Some(t));
        assert_eq!(parse_timestamp("2024-05-01T12:34:56z"), Some(t));
        assert_eq!(parse_timestamp("2024-05-01t12:34:56.000Z"), Some(t));
        assert_eq!(parse_timestamp("2024-05-01T21:34:56+09:00"), Some(t));
        assert_eq!(parse_timestamp("2024-05-01 12:34:56"), None);
        assert_eq!(parse_timestamp(""), None);
    }
}
