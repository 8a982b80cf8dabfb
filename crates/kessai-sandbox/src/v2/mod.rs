//! The Checkout v2 REST face, under `/v2`, `/sandbox/v2` and `/live/v2`: reads each request
//! into an engine call and renders the engine's records as v2 JSON ([`render`]) and its
//! refusals as v2 errors ([`error`]).

mod charges;
pub mod error;
mod idempotency;
pub mod render;
mod sessions;

pub(crate) use sessions::new_session;

use crate::auth::{self, Caller};
use crate::engine::permission::{FrequencyUnit, Recurring};
use crate::engine::session::Payment;
use crate::engine::{Intent, Metadata, PermissionKind, Simulated};
use crate::error::ApiError;
use crate::input::Obj;
use crate::server::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use charges::*;
use error::unfit_simulation;
use kessai_amazonpay::wire::{ChargePermissionType, ErrorCode, PaymentIntent};
use kessai_core::Currency;
use serde::Serialize;
use sessions::*;

pub fn router(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/checkoutSessions", post(create_session))
        .route(
            "/checkoutSessions/{id}",
            get(get_session).patch(update_session),
        )
        .route("/checkoutSessions/{id}/complete", post(complete_session))
        .route("/checkoutSessions/{id}/finalize", post(finalize_session))
        .route(
            "/chargePermissions/{id}",
            get(get_permission).patch(update_permission),
        )
        .route("/chargePermissions/{id}/close", delete(close_permission))
        .route("/charges", post(create_charge))
        .route("/charges/{id}", get(get_charge).patch(update_charge))
        .route("/charges/{id}/capture", post(capture))
        .route("/charges/{id}/cancel", delete(cancel))
        .route("/refunds", post(create_refund))
        .route("/refunds/{id}", get(get_refund))
        .route("/buyers/{token}", get(get_buyer))
        .method_not_allowed_fallback(unsupported)
        .fallback(not_found);
    Router::new()
        .nest("/v2", api.clone())
        .nest("/sandbox/v2", api.clone())
        .nest("/live/v2", api)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::verify,
        ))
        .layer(axum::middleware::map_response_with_state(
            state,
            add_request_id,
        ))
}

/// The path as the client sent (and signed) it, when routing uses another spelling of it.
#[derive(Debug, Clone)]
pub struct ReceivedPath(pub String);

/// A published v2 client sends API paths with a trailing slash (`POST /v2/checkoutSessions/`);
/// they name the same operation as without it. Routing sees the path without the slash; the
/// signature is checked over the path as received ([`ReceivedPath`]).
pub async fn trim_trailing_slash(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_api = ["/v2/", "/sandbox/v2/", "/live/v2/"]
        .iter()
        .any(|prefix| path.starts_with(prefix) && path.len() > prefix.len());
    if is_api && path.ends_with('/') {
        let received = path.to_owned();
        let trimmed = received.trim_end_matches('/');
        let rebuilt = match request.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
            request.extensions_mut().insert(ReceivedPath(received));
        }
    }
    next.run(request).await
}

/// Every API answer carries `x-amz-pay-request-id`, as Amazon's do.
async fn add_request_id(State(state): State<AppState>, mut response: Response) -> Response {
    let id = state.ids.uuid();
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amz-pay-request-id", value);
    }
    response
}

async fn unsupported(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::UnsupportedOperation,
        format!("{method} is not supported on {}.", uri.path()),
    )
    .into_response()
}

async fn not_found(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ResourceNotFound,
        format!("No operation exists at {}.", uri.path()),
    )
    .into_response()
}

/// Reads `x-amz-pay-simulation-code`; `allowed` says whether this operation simulates anything.
fn simulation(
    headers: &HeaderMap,
    operation: &str,
    allowed: bool,
) -> Result<Option<Simulated>, ApiError> {
    let Some(value) = headers.get("x-amz-pay-simulation-code") else {
        return Ok(None);
    };
    let code = value.to_str().unwrap_or("").trim();
    if code.is_empty() {
        return Ok(None);
    }
    if !allowed {
        return Err(unfit_simulation(code, operation));
    }
    Ok(Some(Simulated::parse(code)))
}

fn read_recurring(obj: &Obj<'_>, currency: Currency) -> Result<Recurring, ApiError> {
    obj.only(&["frequency", "amount"])?;
    let frequency = match obj.opt_obj("frequency")? {
        Some(f) => {
            f.only(&["unit", "value"])?;
            let names = FrequencyUnit::ALL.map(FrequencyUnit::name);
            let unit = f
                .opt_enum("unit", &names)?
                .and_then(|u| FrequencyUnit::ALL.into_iter().find(|x| x.name() == u))
                .ok_or_else(|| ApiError::missing("recurringMetadata.frequency.unit"))?;
            let value = f.opt_digits("value")?.unwrap_or_else(|| "1".to_owned());
            Some((unit, value))
        }
        None => None,
    };
    Ok(Recurring {
        frequency,
        amount: obj.opt_price("amount", currency)?,
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

fn ledger(caller: &Caller) -> Currency {
    caller.merchant.currency()
}

fn read_payment(obj: &Obj<'_>, currency: Currency) -> Result<Payment, ApiError> {
    obj.only(&[
        "paymentIntent",
        "canHandlePendingAuthorization",
        "chargeAmount",
        "totalOrderAmount",
        "softDescriptor",
        "presentmentCurrency",
        "allowOvercharge",
        "extendExpiration",
    ])?;
    Ok(Payment {
        intent: obj
            .opt_vocab("paymentIntent", PaymentIntent::KNOWN)?
            .as_ref()
            .and_then(read_intent),
        can_handle_pending: obj.opt_bool("canHandlePendingAuthorization")?,
        charge_amount: obj.opt_price("chargeAmount", currency)?,
        total_order_amount: obj.opt_price("totalOrderAmount", currency)?,
        soft_descriptor: obj.opt_str("softDescriptor", 16)?.map(str::to_owned),
        presentment_currency: obj
            .opt_enum("presentmentCurrency", &[currency.code()])?
            .map(str::to_owned),
        extend_expiration: obj.opt_bool("extendExpiration")?,
    })
}

fn read_intent(i: &PaymentIntent) -> Option<Intent> {
    match i {
        PaymentIntent::Confirm => Some(Intent::Confirm),
        PaymentIntent::Authorize => Some(Intent::Authorize),
        PaymentIntent::AuthorizeWithCapture => Some(Intent::AuthorizeWithCapture),
        PaymentIntent::Unknown(_) => None,
    }
}

fn read_kind(t: &ChargePermissionType) -> Option<PermissionKind> {
    match t {
        ChargePermissionType::OneTime => Some(PermissionKind::OneTime),
        ChargePermissionType::Recurring => Some(PermissionKind::Recurring),
        ChargePermissionType::PaymentMethodOnFile => Some(PermissionKind::PaymentMethodOnFile),
        ChargePermissionType::Unknown(_) => None,
    }
}

fn read_metadata(obj: &Obj<'_>) -> Result<Metadata, ApiError> {
    obj.only(&[
        "merchantReferenceId",
        "merchantStoreName",
        "noteToBuyer",
        "customInformation",
    ])?;
    Ok(Metadata {
        reference_id: obj.opt_str("merchantReferenceId", 256)?.map(str::to_owned),
        store_name: obj.opt_str("merchantStoreName", 50)?.map(str::to_owned),
        note_to_buyer: obj.opt_str("noteToBuyer", 255)?.map(str::to_owned),
        custom_information: obj.opt_str("customInformation", 4096)?.map(str::to_owned),
    })
}

async fn get_buyer(Path(token): Path<String>) -> Response {
    match crate::buyers::buyer_for_token(&token) {
        Some(buyer) => {
            let home = buyer.addresses.first();
            let body = serde_json::json!({
                "buyerId": buyer.id,
                "name": buyer.name,
                "email": buyer.email,
                "postalCode": home.map(|a| a.postal_code),
                "countryCode": "JP",
                "phoneNumber": buyer.phone,
                "shippingAddress": home.map(render::address),
                "billingAddress": home.map(render::address),
                "primeMembershipTypes": serde_json::Value::Null,
            });
            crate::server::json_response(StatusCode::OK, body.to_string())
        }
        None => ApiError::not_found("Buyer token", &token).into_response(),
    }
}

/// A record of the emulator's file as this face shows it, under its kind's name
/// (`{"charge": {…}}`): for tests that look at the file of an emulator that may not be running.
/// `None` if the record does not read.
pub fn stored_as_v2(kind: &str, json: &str) -> Option<serde_json::Value> {
    use crate::engine::{Charge, Kind, Permission, Refund, Session};
    let kind = Kind::parse(kind)?;
    let object = match kind {
        Kind::CheckoutSession => serde_json::to_value(render::session(
            "",
            &serde_json::from_str::<Session>(json).ok()?,
        )),
        Kind::ChargePermission => serde_json::to_value(render::permission(
            &serde_json::from_str::<Permission>(json).ok()?,
        )),
        Kind::Charge => {
            serde_json::to_value(render::charge(&serde_json::from_str::<Charge>(json).ok()?))
        }
        Kind::Refund => {
            serde_json::to_value(render::refund(&serde_json::from_str::<Refund>(json).ok()?))
        }
    }
    .ok()?;
    let name = match kind {
        Kind::CheckoutSession => "cs",
        Kind::ChargePermission => "cp",
        Kind::Charge => "charge",
        Kind::Refund => "refund",
    };
    Some(serde_json::json!({ name: object }))
}
