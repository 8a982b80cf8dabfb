//! The MWS test helpers (unsigned JSON, sandbox only; who may call them follows the server's
//! test-helpers setting): register a seller with MWS keys, make a Draft billing agreement as the
//! widgets would, and act as its buyer (consent, payment method).

use crate::engine::agreements::{Environment, PaymentMethod, SellerId};
use crate::server::{AppState, TestHelpers};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kessai_core::Currency;
use serde_json::{json, Map, Value};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/test_helpers/sellers", post(create_seller))
        .route("/test_helpers/sellers/{id}/ipnUrl", post(set_ipn_url))
        .route(
            "/test_helpers/sellers/{id}/notifications",
            get(notifications),
        )
        .route("/test_helpers/billingAgreements", post(create_agreement))
        .route(
            "/test_helpers/billingAgreements/{id}/consent",
            post(consent),
        )
        .route(
            "/test_helpers/billingAgreements/{id}/paymentMethod",
            post(payment_method),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, gate))
}

fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"reasonCode": code, "message": message.into()})),
    )
        .into_response()
}

/// A mistake in a helper's body.
struct Invalid(String);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        refuse(StatusCode::BAD_REQUEST, "InvalidParameterValue", self.0)
    }
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(%e, "MWS test helper failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "The emulator could not store the change.",
    )
}

async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.helpers {
        TestHelpers::Open => next.run(request).await,
        TestHelpers::Off => refuse(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The test helpers are off on this emulator (--test-helpers).",
        ),
        TestHelpers::Token(token) => {
            let given = request
                .headers()
                .get(crate::TEST_HELPERS_TOKEN_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !token.is_empty()
                && bool::from(subtle::ConstantTimeEq::ct_eq(given, token.as_bytes()))
            {
                next.run(request).await
            } else {
                refuse(
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedAccess",
                    "The test helpers need this emulator's token header (--test-helpers=token).",
                )
            }
        }
    }
}

/// The JSON object body (an empty body is `{}`), with only the `allowed` keys.
fn object(body: &Bytes, allowed: &[&str]) -> Result<Map<String, Value>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let map: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The body must be a JSON object: {e}")))?;
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!(
            "Unknown field {k}; this helper takes {}.",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

fn url(map: &Map<String, Value>) -> Result<Option<String>, Invalid> {
    match map.get("ipnUrl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(invalid("ipnUrl must be an http(s) URL.")),
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<bool, Invalid> {
    match map.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(invalid(format!("{key} must be true or false."))),
    }
}

/// `{}` or `{"ipnUrl"}` → a JP seller (JPY) with fresh MWS keys.
async fn create_seller(State(state): State<AppState>, body: Bytes) -> Response {
    let map = match object(&body, &["ipnUrl"]) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let ipn_url = match url(&map) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    match state
        .mws
        .agreements
        .create_seller(Currency::Jpy, ipn_url, state.now())
        .await
    {
        Ok(s) => Json(json!({
            "sellerId": s.id().as_str(),
            "accessKey": s.access_key(),
            "secretKey": s.secret_key().expose(),
            "lwaClientId": s.lwa_client_id(),
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

fn no_seller(id: &str) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "InvalidSellerId",
        format!("There is no MWS seller {id}."),
    )
}

async fn set_ipn_url(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let map = match object(&body, &["ipnUrl"]) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let ipn_url = match url(&map) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let Some(seller) = SellerId::lookup(&id) else {
        return no_seller(&id);
    };
    match state
        .mws
        .agreements
        .store()
        .set_ipn_url(&seller, ipn_url.as_deref())
        .await
    {
        Ok(true) => Json(json!({})).into_response(),
        Ok(false) => no_seller(&id),
        Err(e) => internal(e),
    }
}

/// The notifications made for a seller, oldest first (with their delivery status).
async fn notifications(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(seller) = SellerId::lookup(&id) else {
        return no_seller(&id);
    };
    match state.mws.agreements.store().notifications(&seller).await {
        Ok(list) => Json(json!({ "notifications": list })).into_response(),
        Err(e) => internal(e),
    }
}

/// `{"sellerId"}` → a Draft agreement of the default test buyer, address and a good payment
/// method chosen, consent not given.
async fn create_agreement(State(state): State<AppState>, body: Bytes) -> Response {
    let map = match object(&body, &["sellerId"]) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let Some(id) = map.get("sellerId").and_then(Value::as_str) else {
        return invalid("sellerId is required.").into_response();
    };
    let engine = &state.mws.agreements;
    let seller = match SellerId::lookup(id) {
        Some(sid) => match engine.store().seller(&sid).await {
            Ok(Some(s)) => s,
            Ok(None) => return no_seller(id),
            Err(e) => return internal(e),
        },
        None => return no_seller(id),
    };
    let (buyer, address, instrument) = crate::buyers::default_choice();
    match engine
        .create_agreement(
            &seller,
            Environment::Sandbox,
            buyer.id,
            Some(address.id.to_owned()),
            Some(PaymentMethod::new(instrument.id, false)),
            state.now(),
        )
        .await
    {
        Ok(ba) => Json(json!({"AmazonBillingAgreementId": ba.id().as_str()})).into_response(),
        Err(e) => internal(e),
    }
}

async fn act(
    state: &AppState,
    id: &str,
    change: impl FnOnce(
        &crate::engine::agreements::BillingAgreement,
        i64,
    ) -> crate::engine::agreements::BillingAgreement,
) -> Response {
    let now = state.now();
    match state
        .mws
        .agreements
        .as_buyer(id, now, |b| change(b, now))
        .await
    {
        Ok(_) => Json(json!({})).into_response(),
        Err(crate::engine::agreements::EngineError::Refused(_)) => refuse(
            StatusCode::NOT_FOUND,
            "InvalidBillingAgreementId",
            format!("There is no billing agreement {id}."),
        ),
        Err(e) => internal(e),
    }
}

/// `{"consent": true|false}`: the buyer's answer in the consent widget.
async fn consent(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let consent = match object(&body, &["consent"]).and_then(|m| boolean(&m, "consent")) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    act(&state, &id, |b, now| b.with_consent(consent, now)).await
}

/// `{"declines": true|false}`: the buyer picks a payment method that is declined
/// (`InvalidPaymentMethod`), or a good one again.
async fn payment_method(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let declines = match object(&body, &["declines"]).and_then(|m| boolean(&m, "declines")) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    let instrument = if declines { "visa-3434" } else { "visa-1111" };
    act(&state, &id, |b, now| {
        b.with_payment_method(PaymentMethod::new(instrument, declines), now)
    })
    .await
}
