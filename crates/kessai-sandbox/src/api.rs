//! The Checkout v2 REST operations, under `/v2`, `/sandbox/v2` and `/live/v2`.

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::input::{parse_object, Obj};
use crate::server::{idempotency, AppState};
use crate::world::{
    unfit_simulation, MetadataUpdate, NewCharge, NewSession, PaymentUpdate, SessionUpdate,
};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use kessai_amazonpay::wire::{
    ChargePermissionType, ChargeState, ErrorCode, Frequency, PaymentIntent, Price, ReasonCode,
    RecurringMetadata,
};
use kessai_core::Currency;
use serde::Serialize;

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
) -> Result<Option<String>, ApiError> {
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
    Ok(Some(code.to_owned()))
}

fn read_recurring(obj: &Obj<'_>, currency: Currency) -> Result<RecurringMetadata, ApiError> {
    obj.only(&["frequency", "amount"])?;
    let frequency = match obj.opt_obj("frequency")? {
        Some(f) => {
            f.only(&["unit", "value"])?;
            let unit = f
                .opt_enum("unit", &["Year", "Month", "Week", "Day", "Variable"])?
                .ok_or_else(|| ApiError::missing("recurringMetadata.frequency.unit"))?;
            let value = f.opt_digits("value")?.unwrap_or_else(|| "1".to_owned());
            Some(Frequency {
                unit: unit.to_owned(),
                value,
            })
        }
        None => None,
    };
    Ok(RecurringMetadata {
        frequency,
        amount: obj.opt_price("amount", currency)?.map(Price::from_money),
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

fn ledger(caller: &Caller) -> Currency {
    caller.merchant.currency()
}

fn read_payment(obj: &Obj<'_>, currency: Currency) -> Result<PaymentUpdate, ApiError> {
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
    Ok(PaymentUpdate {
        payment_intent: obj.opt_vocab("paymentIntent", PaymentIntent::KNOWN)?,
        can_handle_pending_authorization: obj.opt_bool("canHandlePendingAuthorization")?,
        charge_amount: obj.opt_price("chargeAmount", currency)?,
        total_order_amount: obj.opt_price("totalOrderAmount", currency)?,
        soft_descriptor: obj.opt_str("softDescriptor", 16)?.map(str::to_owned),
        presentment_currency: obj
            .opt_enum("presentmentCurrency", &[currency.code()])?
            .map(str::to_owned),
        extend_expiration: obj.opt_bool("extendExpiration")?,
    })
}

fn read_metadata(obj: &Obj<'_>) -> Result<MetadataUpdate, ApiError> {
    obj.only(&[
        "merchantReferenceId",
        "merchantStoreName",
        "noteToBuyer",
        "customInformation",
    ])?;
    Ok(MetadataUpdate {
        merchant_reference_id: obj.opt_str("merchantReferenceId", 256)?.map(str::to_owned),
        merchant_store_name: obj.opt_str("merchantStoreName", 50)?.map(str::to_owned),
        note_to_buyer: obj.opt_str("noteToBuyer", 255)?.map(str::to_owned),
        custom_information: obj.opt_str("customInformation", 4096)?.map(str::to_owned),
    })
}

async fn create_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let idem = match idempotency(&headers, &caller.merchant, "POST", uri.path(), &body, true) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&[
            "webCheckoutDetails",
            "storeId",
            "chargePermissionType",
            "recurringMetadata",
            "paymentDetails",
            "merchantMetadata",
            "platformId",
            "providerMetadata",
            "deliverySpecifications",
            "addressDetails",
            "scopes",
        ])?;
        let web = root.req_obj("webCheckoutDetails")?;
        web.only(&[
            "checkoutReviewReturnUrl",
            "checkoutResultReturnUrl",
            "checkoutCancelUrl",
            "checkoutMode",
        ])?;
        let review = web
            .opt_url("checkoutReviewReturnUrl")?
            .ok_or_else(|| ApiError::missing("webCheckoutDetails.checkoutReviewReturnUrl"))?;
        let currency = ledger(&caller);
        Ok::<_, ApiError>(NewSession {
            review_return_url: review.to_owned(),
            result_return_url: web.opt_url("checkoutResultReturnUrl")?.map(str::to_owned),
            cancel_url: web.opt_url("checkoutCancelUrl")?.map(str::to_owned),
            store_id: root.req_str("storeId", 256)?.to_owned(),
            charge_permission_type: root
                .opt_vocab("chargePermissionType", ChargePermissionType::KNOWN)?,
            payment: match root.opt_obj("paymentDetails")? {
                Some(p) => read_payment(&p, currency)?,
                None => PaymentUpdate::default(),
            },
            metadata: match root.opt_obj("merchantMetadata")? {
                Some(m) => read_metadata(&m)?,
                None => MetadataUpdate::default(),
            },
            platform_id: root.opt_str("platformId", 21)?.map(str::to_owned),
            recurring: match root.opt_obj("recurringMetadata")? {
                Some(r) => Some(read_recurring(&r, currency)?),
                None => None,
            },
            delivery: root.opt_obj("deliverySpecifications")?.map(|d| d.value()),
        })
    })();
    if let Err(e) = simulation(&headers, "Create Checkout Session", false) {
        return e.into_response();
    }
    let new = match parsed {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let env = caller.release_environment;
    state
        .mutate(idem, |world, now| {
            let cs = world.create_session(&caller.merchant, new, env, now)?;
            Ok((StatusCode::CREATED, to_json(&cs)?))
        })
        .await
}

async fn get_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    state
        .read(|world| to_json(&world.session(&caller.merchant, &id)?.cs))
        .await
}

async fn update_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let currency = ledger(&caller);
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&[
            "webCheckoutDetails",
            "paymentDetails",
            "merchantMetadata",
            "platformId",
            "recurringMetadata",
            "providerMetadata",
        ])?;
        let mut update = SessionUpdate::default();
        if let Some(web) = root.opt_obj("webCheckoutDetails")? {
            web.only(&[
                "checkoutReviewReturnUrl",
                "checkoutResultReturnUrl",
                "checkoutCancelUrl",
            ])?;
            update.result_return_url = web.opt_url("checkoutResultReturnUrl")?.map(str::to_owned);
            update.review_return_url = web.opt_url("checkoutReviewReturnUrl")?.map(str::to_owned);
            update.cancel_url = web.opt_url("checkoutCancelUrl")?.map(str::to_owned);
        }
        if let Some(p) = root.opt_obj("paymentDetails")? {
            update.payment = read_payment(&p, currency)?;
        }
        if let Some(m) = root.opt_obj("merchantMetadata")? {
            update.metadata = read_metadata(&m)?;
        }
        update.platform_id = root.opt_str("platformId", 21)?.map(str::to_owned);
        if let Some(r) = root.opt_obj("recurringMetadata")? {
            update.recurring = Some(read_recurring(&r, currency)?);
        }
        Ok::<_, ApiError>(update)
    })();
    let update = match parsed {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(None, |world, now| {
            let cs = world.update_session(&caller.merchant, &id, update, now)?;
            Ok((StatusCode::OK, to_json(&cs)?))
        })
        .await
}

async fn complete_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let idem = match idempotency(&headers, &caller.merchant, "POST", uri.path(), &body, false) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let currency = ledger(&caller);
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["chargeAmount", "totalOrderAmount"])?;
        let amount = root.req_price("chargeAmount", currency)?;
        root.opt_price("totalOrderAmount", currency)?;
        Ok::<_, ApiError>(amount)
    })();
    let amount = match parsed {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let sim = match simulation(&headers, "Complete Checkout Session", true) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(idem, |world, now| {
            let cs = world.complete_session(&caller.merchant, &id, amount, sim.as_deref(), now)?;
            Ok((StatusCode::OK, to_json(&cs)?))
        })
        .await
}

async fn get_permission(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    state
        .read(|world| to_json(&world.permission(&caller.merchant, &id)?.cp))
        .await
}

async fn get_charge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    state
        .read(|world| to_json(&world.charge(&caller.merchant, &id)?.charge))
        .await
}

async fn capture(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let idem = match idempotency(&headers, &caller.merchant, "POST", uri.path(), &body, false) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let currency = ledger(&caller);
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["captureAmount", "softDescriptor"])?;
        Ok::<_, ApiError>((
            root.req_price("captureAmount", currency)?,
            root.opt_str("softDescriptor", 16)?.map(str::to_owned),
        ))
    })();
    let (amount, soft) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = simulation(&headers, "Capture Charge", false) {
        return e.into_response();
    }
    state
        .mutate(idem, |world, now| {
            let charge = world.capture(&caller.merchant, &id, amount, soft, now)?;
            Ok((StatusCode::OK, to_json(&charge)?))
        })
        .await
}

async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["cancellationReason"])?;
        Ok::<_, ApiError>(root.opt_str("cancellationReason", 255)?.map(str::to_owned))
    })();
    let reason = match parsed {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(None, |world, now| {
            let charge = world.cancel_charge(&caller.merchant, &id, reason, now)?;
            Ok((StatusCode::OK, to_json(&charge)?))
        })
        .await
}

async fn create_refund(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let idem = match idempotency(&headers, &caller.merchant, "POST", uri.path(), &body, true) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let currency = ledger(&caller);
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["chargeId", "refundAmount", "softDescriptor"])?;
        Ok::<_, ApiError>((
            root.req_str("chargeId", 64)?.to_owned(),
            root.req_price("refundAmount", currency)?,
            root.opt_str("softDescriptor", 16)?.map(str::to_owned),
        ))
    })();
    let (charge_id, amount, soft) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let sim = match simulation(&headers, "Create Refund", true) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(idem, |world, now| {
            let refund = world.create_refund(
                &caller.merchant,
                &charge_id,
                amount,
                soft,
                sim.as_deref(),
                now,
            )?;
            Ok((StatusCode::CREATED, to_json(&refund)?))
        })
        .await
}

async fn get_refund(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    state
        .read(|world| to_json(&world.refund(&caller.merchant, &id)?.refund))
        .await
}

async fn create_charge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let idem = match idempotency(&headers, &caller.merchant, "POST", uri.path(), &body, true) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let currency = ledger(&caller);
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&[
            "chargePermissionId",
            "chargeAmount",
            "captureNow",
            "softDescriptor",
            "canHandlePendingAuthorization",
            "merchantMetadata",
            "providerMetadata",
            "platformId",
            "chargeInitiator",
        ])?;
        let capture_now = root.opt_bool("captureNow")?.unwrap_or(false);
        let soft = root.opt_str("softDescriptor", 16)?.map(str::to_owned);
        if soft.is_some() && !capture_now {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidParameterCombination,
                "softDescriptor may be given only with captureNow true.",
            ));
        }
        root.opt_enum("chargeInitiator", &["CITU", "MITU", "MITR"])?;
        Ok::<_, ApiError>(NewCharge {
            charge_permission_id: root.req_str("chargePermissionId", 64)?.to_owned(),
            amount: root.req_price("chargeAmount", currency)?,
            capture_now,
            can_handle_pending_authorization: root
                .opt_bool("canHandlePendingAuthorization")?
                .unwrap_or(false),
            soft_descriptor: soft,
            metadata: match root.opt_obj("merchantMetadata")? {
                Some(m) => read_metadata(&m)?,
                None => MetadataUpdate::default(),
            },
        })
    })();
    let new = match parsed {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let sim = match simulation(&headers, "Create Charge", true) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(idem, |world, now| {
            let charge = world.create_charge(&caller.merchant, new, sim.as_deref(), now)?;
            Ok((StatusCode::CREATED, to_json(&charge)?))
        })
        .await
}

async fn update_permission(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let currency = ledger(&caller);
    let parsed = (|| {
        simulation(&headers, "Update Charge Permission", false)?;
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["merchantMetadata", "recurringMetadata"])?;
        let metadata = match root.opt_obj("merchantMetadata")? {
            Some(m) => read_metadata(&m)?,
            None => MetadataUpdate::default(),
        };
        let recurring = match root.opt_obj("recurringMetadata")? {
            Some(r) => Some(read_recurring(&r, currency)?),
            None => None,
        };
        Ok::<_, ApiError>((metadata, recurring))
    })();
    let (metadata, recurring) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(None, |world, now| {
            let cp = world.update_permission(&caller.merchant, &id, metadata, recurring, now)?;
            Ok((StatusCode::OK, to_json(&cp)?))
        })
        .await
}

async fn close_permission(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = (|| {
        simulation(&headers, "Close Charge Permission", false)?;
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["closureReason", "cancelPendingCharges"])?;
        Ok::<_, ApiError>((
            root.opt_str("closureReason", 255)?
                .unwrap_or("Closed by the merchant.")
                .to_owned(),
            root.opt_bool("cancelPendingCharges")?.unwrap_or(false),
        ))
    })();
    let (reason, cancel_pending) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(None, |world, now| {
            let cp = world.close_permission(&caller.merchant, &id, reason, cancel_pending, now)?;
            Ok((StatusCode::OK, to_json(&cp)?))
        })
        .await
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
                "shippingAddress": home.map(crate::world::address_of),
                "billingAddress": home.map(crate::world::address_of),
                "primeMembershipTypes": serde_json::Value::Null,
            });
            crate::server::json_response(StatusCode::OK, body.to_string())
        }
        None => ApiError::not_found("Buyer token", &token).into_response(),
    }
}

async fn finalize_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let idem = match idempotency(&headers, &caller.merchant, "POST", uri.path(), &body, false) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let currency = ledger(&caller);
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&[
            "shippingAddress",
            "billingAddress",
            "chargeAmount",
            "totalOrderAmount",
            "paymentIntent",
            "canHandlePendingAuthorization",
            "supplementaryData",
        ])?;
        root.opt_obj("shippingAddress")?;
        root.opt_obj("billingAddress")?;
        root.opt_price("totalOrderAmount", currency)?;
        root.opt_str("supplementaryData", 4096)?;
        let intent = root
            .opt_vocab("paymentIntent", PaymentIntent::KNOWN)?
            .ok_or_else(|| ApiError::missing("paymentIntent"))?;
        Ok::<_, ApiError>((
            intent,
            root.req_price("chargeAmount", currency)?,
            root.opt_bool("canHandlePendingAuthorization")?,
        ))
    })();
    let (intent, amount, can_pend) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let sim = match simulation(&headers, "Finalize Checkout Session", true) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    state
        .mutate(idem, |world, now| {
            let cs = world.finalize_session(
                &caller.merchant,
                &id,
                intent,
                amount,
                can_pend,
                sim.as_deref(),
                now,
            )?;
            Ok((StatusCode::OK, to_json(&cs)?))
        })
        .await
}

/// Update Charge is for payment service providers: it can only mark an authorization expired.
async fn update_charge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["statusDetails"])?;
        let details = root.req_obj("statusDetails")?;
        details.only(&["state", "reasonCode"])?;
        details
            .opt_vocab("state", &[ChargeState::Canceled])?
            .ok_or_else(|| ApiError::missing("statusDetails.state"))?;
        details
            .opt_vocab("reasonCode", &[ReasonCode::ExpiredUnused])?
            .ok_or_else(|| ApiError::missing("statusDetails.reasonCode"))?;
        Ok::<_, ApiError>(())
    })();
    if let Err(e) = parsed {
        return e.into_response();
    }
    state
        .mutate(None, |world, now| {
            let charge = world.expire_charge(&caller.merchant, &id, now)?;
            Ok((StatusCode::OK, to_json(&charge)?))
        })
        .await
}
