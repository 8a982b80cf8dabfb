//! Sandbox-only test helpers under `/test_helpers` (never part of Amazon's API, never signed).
//! Who may call them is the server's [`TestHelpers`] setting: nobody, holders of a token, or
//! anyone who reaches the port (the default only on a loopback address).

use crate::db::KeyRow;
use crate::engine::clock::timestamp;
use crate::engine::{BuyerChoice, Fetch, Merchant, MerchantId, PermissionId, Simulated};
use crate::error::ApiError;
use crate::input::{parse_object, Obj};
use crate::pages;
use crate::server::{AppState, KeyEntry, TestHelpers};
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kessai_amazonpay::wire::ErrorCode;
use kessai_amazonpay::PublicKey;
use kessai_core::Currency;
use serde_json::json;
use std::sync::atomic::Ordering;

/// The header that carries the helpers' token (`--test-helpers=token`).
pub const TOKEN_HEADER: &str = "x-test-helpers-token";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/test_helpers/publicKeys", post(register_key))
        .route("/test_helpers/checkoutSessions/{id}/sign_in", post(sign_in))
        .route("/test_helpers/checkoutSessions/{id}/confirm", post(confirm))
        .route("/test_helpers/checkoutSessions/{id}/cancel", post(cancel))
        .route("/test_helpers/buyerTokens", post(buyer_token))
        .route("/test_helpers/notificationUrl", post(set_notification_url))
        .route("/test_helpers/notifications", get(list_notifications))
        .route(
            "/test_helpers/notifications/{id}/resend",
            post(resend_notification),
        )
        .route(
            "/test_helpers/chargePermissions/{id}/simulation",
            post(arm_simulation),
        )
        .route("/test_helpers/clock", get(clock))
        .route("/test_helpers/clock/advance", post(advance))
        .route_layer(axum::middleware::from_fn_with_state(state, gate))
}

/// Lets a request through to the helpers as the server's [`TestHelpers`] setting says.
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.helpers {
        TestHelpers::Open => next.run(request).await,
        TestHelpers::Off => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ResourceNotFound,
            "The test helpers are off on this emulator (--test-helpers).",
        )
        .into_response(),
        TestHelpers::Token(token) => {
            let given = request
                .headers()
                .get(TOKEN_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !token.is_empty()
                && bool::from(subtle::ConstantTimeEq::ct_eq(given, token.as_bytes()))
            {
                next.run(request).await
            } else {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::UnauthorizedAccess,
                    format!("The test helpers need the {TOKEN_HEADER} header with this emulator's token (--test-helpers=token)."),
                )
                .into_response()
            }
        }
    }
}

fn random_upper(state: &AppState, n: usize) -> String {
    state.ids.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
}

/// Registers a public key. Without `merchantId` the key gets a merchant of its own (with its own
/// `storeId`); the answer's `merchantToken` lets its holder add keys to that merchant
/// (`merchantId` + `merchantToken`). Registering a key again answers its id only to a caller who
/// signs the request with that key (as for the API), since a public key is no secret.
async fn register_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&[
            "publicKey",
            "merchantId",
            "storeId",
            "ledgerCurrency",
            "region",
            "merchantToken",
        ])?;
        let pem = root.req_str("publicKey", 16_384)?.to_owned();
        let key = PublicKey::from_pem(&pem).map_err(|e| ApiError::invalid("publicKey", e))?;
        Ok::<_, ApiError>((
            pem,
            key,
            root.opt_str("merchantId", 64)?.map(str::to_owned),
            root.opt_str("storeId", 256)?.map(str::to_owned),
            root.opt_enum("ledgerCurrency", &["JPY", "USD", "EUR", "GBP"])?
                .map(str::to_owned),
            root.opt_enum("region", &["jp", "na", "eu"])?
                .map(str::to_owned),
            root.opt_str("merchantToken", 128)?.map(str::to_owned),
        ))
    })();
    let (pem, key, merchant_id, store_id, currency, region, merchant_token) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Ok(spki) = key.to_pem() else {
        return ApiError::internal("cannot encode key").into_response();
    };
    let fingerprint = kessai_amazonpay::signing::sha256_hex(spki.as_bytes());
    // Under the lock that serialises changes: two registrations of one key at once (several
    // gateway instances starting together) get the same id, not a second row.
    let _engine = state.lock().await;
    let existing = state.keys.read().ok().and_then(|keys| {
        keys.iter()
            .find(|(_, e)| e.fingerprint == fingerprint)
            .map(|(id, e)| (id.clone(), e.merchant_id.clone()))
    });
    if let Some((id, merchant_id)) = existing {
        if let Err(e) = signed_by(&state, &headers, &uri, &body, &key) {
            return ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidRequest,
                format!(
                    "This public key is already registered. To learn its publicKeyId, sign this request with its private key as for the API (AMZN-PAY-RSASSA-PSS-V2, any PublicKeyId): {}",
                    e.message
                ),
            )
            .into_response();
        }
        let store_id = state
            .merchant(&MerchantId::new(merchant_id.as_str()))
            .map(|m| m.store_id().to_owned());
        let token = state.merchant_token(&merchant_id);
        return Json(json!({"publicKeyId": id, "merchantId": merchant_id, "storeId": store_id, "merchantToken": token}))
            .into_response();
    }
    if let Some(id) = merchant_id
        .as_deref()
        .filter(|id| state.merchant(&MerchantId::new(*id)).is_some())
    {
        let expected = state.merchant_token(id);
        let given = merchant_token.as_deref().unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            expected.as_bytes(),
        )) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::UnauthorizedAccess,
                format!("Adding a key to merchant {id} needs its merchantToken (answered when its first key was registered)."),
            )
            .into_response();
        }
    }
    let merchant_id = merchant_id.unwrap_or_else(|| format!("A{}", random_upper(&state, 12)));
    let merchant = state
        .merchant(&MerchantId::new(merchant_id.as_str()))
        .unwrap_or_else(|| {
            Merchant::new(
                MerchantId::new(merchant_id.as_str()),
                store_id.unwrap_or_else(|| {
                    format!(
                        "amzn1.application-oa2-client.{}",
                        random_upper(&state, 32).to_ascii_lowercase()
                    )
                }),
                region.unwrap_or_else(|| "jp".to_owned()),
                currency
                    .as_deref()
                    .and_then(Currency::parse)
                    .unwrap_or(Currency::Jpy),
            )
        });
    let public_key_id = format!("SANDBOX-{}", random_upper(&state, 24));
    let row = KeyRow {
        public_key_id: public_key_id.clone(),
        merchant_id: merchant_id.clone(),
        pem,
        fingerprint: fingerprint.clone(),
    };
    if let Err(e) = state
        .db
        .insert_merchant_and_key(&merchant, &row, &timestamp(state.now()))
        .await
    {
        return ApiError::internal(e).into_response();
    }
    if let Ok(mut merchants) = state.merchants.write() {
        merchants.insert(merchant.id().clone(), merchant.clone());
    }
    if let Ok(mut keys) = state.keys.write() {
        keys.insert(
            public_key_id.clone(),
            KeyEntry {
                merchant_id: merchant_id.clone(),
                key,
                fingerprint,
            },
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "publicKeyId": public_key_id,
            "merchantId": merchant_id,
            "storeId": merchant.store_id(),
            "merchantToken": state.merchant_token(&merchant_id),
        })),
    )
        .into_response()
}

/// Whether the request carries a valid signature by `key` (proof that the caller holds it).
fn signed_by(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: &Bytes,
    key: &PublicKey,
) -> Result<(), ApiError> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request(ErrorCode::MissingHeader, "no authorization header.")
        })?;
    let auth = kessai_amazonpay::signing::parse_authorization(header).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidHeaderValue, format!("authorization: {e}"))
    })?;
    crate::auth::verify_signature(
        state,
        &crate::auth::Signed {
            method: "POST",
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers,
            body,
            authority: uri.authority().map(|a| a.as_str()),
        },
        &auth,
        key,
    )
}

fn helper_result(result: Result<String, String>) -> Response {
    match result {
        Ok(url) => Json(json!({ "redirectUrl": url })).into_response(),
        Err(message) => ApiError::unprocessable(ErrorCode::InvalidCheckoutSessionStatus, message)
            .into_response(),
    }
}

async fn exists(state: &AppState, id: &str) -> Result<(), ApiError> {
    match state.db.session_exists(id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found("CheckoutSession", id)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Optional body: `{"buyerId", "addressId", "paymentMethod"}` (see the sign-in page's choices).
async fn sign_in(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(e) = exists(&state, &id).await {
        return e.into_response();
    }
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["buyerId", "addressId", "paymentMethod"])?;
        if map.is_empty() {
            return Ok(None);
        }
        let (b, a, i) = crate::buyers::default_choice();
        let buyer_id = root.opt_str("buyerId", 128)?.unwrap_or(b.id).to_owned();
        let buyer = crate::buyers::buyer(&buyer_id)
            .ok_or_else(|| ApiError::invalid("buyerId", "no such test buyer."))?;
        let address_id = match root.opt_str("addressId", 64)? {
            Some(a) => a.to_owned(),
            None => buyer
                .addresses
                .first()
                .map(|x| x.id)
                .unwrap_or(a.id)
                .to_owned(),
        };
        let instrument_id = root
            .opt_str("paymentMethod", 64)?
            .unwrap_or(i.id)
            .to_owned();
        if crate::buyers::instrument(&instrument_id).is_none() {
            return Err(ApiError::invalid(
                "paymentMethod",
                "no such test payment method.",
            ));
        }
        Ok::<_, ApiError>(Some(BuyerChoice::new(buyer_id, address_id, instrument_id)))
    })();
    match parsed {
        Ok(choice) => helper_result(pages::do_sign_in(&state, &id, choice).await),
        Err(e) => e.into_response(),
    }
}

async fn confirm(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if let Err(e) = exists(&state, &id).await {
        return e.into_response();
    }
    helper_result(pages::do_confirm(&state, &id).await)
}

async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if let Err(e) = exists(&state, &id).await {
        return e.into_response();
    }
    helper_result(pages::do_cancel(&state, &id).await)
}

/// `{"code": "HardDeclined"}`: the next Create Charge on the charge permission behaves as if it
/// carried that `x-amz-pay-simulation-code` (for a caller, like a gateway, that never sends it).
async fn arm_simulation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let code = match parse_object(&body)
        .and_then(|map| Obj::root(&map).req_str("code", 64).map(str::to_owned))
    {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let permission = PermissionId::new(id.as_str());
    let armed = state
        .change(&[Fetch::Permission(permission.clone())], |engine, _| {
            engine.arm_simulation(&permission, Simulated::parse(&code))
        })
        .await;
    match armed {
        Ok(Ok(())) => Json(json!({"chargePermissionId": id, "code": code})).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}

fn clock_json(state: &AppState) -> serde_json::Value {
    let now = state.now();
    json!({
        "now": timestamp(now),
        "unix": now,
        "offsetSeconds": state.clock_offset.load(Ordering::SeqCst),
    })
}

async fn clock(State(state): State<AppState>) -> Response {
    Json(clock_json(&state)).into_response()
}

/// Moves the emulator's clock forward by `seconds` (≥ 0) and fires what falls due.
async fn advance(State(state): State<AppState>, body: Bytes) -> Response {
    let seconds = match parse_object(&body).and_then(|map| match map.get("seconds") {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .filter(|s| *s >= 0 && *s <= 10 * 365 * 24 * 3600)
            .ok_or_else(|| {
                ApiError::invalid("seconds", "it must be a whole number from 0 to 315360000.")
            }),
        Some(_) => Err(ApiError::invalid("seconds", "it must be a number.")),
        None => Err(ApiError::missing("seconds")),
    }) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // Moved under the lock, so no change runs half before and half after the move.
    {
        let _engine = state.lock().await;
        let offset = state.clock_offset.fetch_add(seconds, Ordering::SeqCst) + seconds;
        if let Err(e) = state
            .db
            .set_setting("clock_offset", &offset.to_string())
            .await
        {
            return ApiError::internal(e).into_response();
        }
    }
    if let Err(e) = state.tick().await {
        return e.into_response();
    }
    Json(clock_json(&state)).into_response()
}

/// A buyer token as Amazon's SignIn redirect would give it: `{"buyerId"?}` → `{"buyerToken"}`.
async fn buyer_token(body: Bytes) -> Response {
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["buyerId"])?;
        let id = root
            .opt_str("buyerId", 128)?
            .unwrap_or(crate::buyers::BUYERS[0].id)
            .to_owned();
        crate::buyers::buyer(&id).ok_or_else(|| ApiError::invalid("buyerId", "no such test buyer."))
    })();
    match parsed {
        Ok(b) => Json(json!({"buyerToken": crate::buyers::token_for(b), "buyerId": b.id}))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Where a merchant's IPNs go: `{"merchantId", "url"}` (`url` null to stop).
async fn set_notification_url(State(state): State<AppState>, body: Bytes) -> Response {
    let parsed = (|| {
        let map = parse_object(&body)?;
        let root = Obj::root(&map);
        root.only(&["merchantId", "url"])?;
        Ok::<_, ApiError>((
            root.req_str("merchantId", 64)?.to_owned(),
            root.opt_url("url")?.map(str::to_owned),
        ))
    })();
    let (merchant_id, url) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match state
        .db
        .set_notification_url(&merchant_id, url.as_deref())
        .await
    {
        Ok(true) => Json(json!({"merchantId": merchant_id, "url": url})).into_response(),
        Ok(false) => ApiError::not_found("Merchant", &merchant_id).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct NotificationQuery {
    #[serde(rename = "merchantId")]
    merchant_id: Option<String>,
}

/// Every notification with its delivery status, oldest first (optionally of one merchant).
async fn list_notifications(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<NotificationQuery>,
) -> Response {
    match state.db.notifications(q.merchant_id.as_deref()).await {
        Ok(list) => Json(json!({ "notifications": list })).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn resend_notification(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.db.resend(&id, state.wall()).await {
        Ok(true) => Json(json!({"id": id, "status": "pending"})).into_response(),
        Ok(false) => ApiError::not_found("Notification", &id).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
