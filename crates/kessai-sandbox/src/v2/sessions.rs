//! Checkout sessions: create, read, update, complete, finalize.

use super::idempotency::idempotency;
use super::{
    ledger, read_intent, read_kind, read_metadata, read_payment, read_recurring, render,
    simulation, to_json,
};
use crate::auth::Caller;
use crate::engine::session::{NewSession, Payment, ProductType, ReturnUrls, SessionUpdate};
use crate::engine::{Fetch, Metadata, SessionId};
use crate::error::ApiError;
use crate::input::{parse_object, Obj};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kessai_amazonpay::wire::{ChargePermissionType, PaymentIntent};

pub(super) async fn create_session(
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
    let parsed = new_session(&body, &caller);
    if let Err(e) = simulation(&headers, "Create Checkout Session", false) {
        return e.into_response();
    }
    let new = match parsed {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let base = state.base_url.clone();
    state
        .mutate(idem, &[], |engine, now| {
            let cs = engine.create_session(&caller.merchant, new, now)?;
            Ok((StatusCode::CREATED, to_json(&render::session(&base, cs))?))
        })
        .await
}

/// A Create Checkout Session request body, read strictly: from the API, or from the signed
/// `payloadJSON` of the `checkout.js` button ([`crate::checkout_js`]).
pub(crate) fn new_session(body: &[u8], caller: &Caller) -> Result<NewSession, ApiError> {
    let map = parse_object(body)?;
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
    let currency = ledger(caller);
    Ok(NewSession {
        urls: ReturnUrls {
            review: Some(review.to_owned()),
            result: web.opt_url("checkoutResultReturnUrl")?.map(str::to_owned),
            cancel: web.opt_url("checkoutCancelUrl")?.map(str::to_owned),
        },
        store_id: root.req_str("storeId", 256)?.to_owned(),
        kind: root
            .opt_vocab("chargePermissionType", ChargePermissionType::KNOWN)?
            .as_ref()
            .and_then(read_kind),
        payment: match root.opt_obj("paymentDetails")? {
            Some(p) => read_payment(&p, currency)?,
            None => Payment::default(),
        },
        metadata: match root.opt_obj("merchantMetadata")? {
            Some(m) => read_metadata(&m)?,
            None => Metadata::default(),
        },
        platform_id: root.opt_str("platformId", 21)?.map(str::to_owned),
        recurring: match root.opt_obj("recurringMetadata")? {
            Some(r) => Some(read_recurring(&r, currency)?),
            None => None,
        },
        delivery: root.opt_obj("deliverySpecifications")?.map(|d| d.value()),
        environment: caller.environment,
        // The API takes no productType; the button's is set by `checkout_js`.
        product: ProductType::default(),
    })
}

pub(super) async fn get_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let base = state.base_url.clone();
    let id = SessionId::new(id);
    state
        .read(Fetch::Session(id.clone()), |engine| {
            to_json(&render::session(
                &base,
                engine.session(&caller.merchant, &id)?,
            ))
        })
        .await
}

pub(super) async fn update_session(
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
            update.urls = ReturnUrls {
                result: web.opt_url("checkoutResultReturnUrl")?.map(str::to_owned),
                review: web.opt_url("checkoutReviewReturnUrl")?.map(str::to_owned),
                cancel: web.opt_url("checkoutCancelUrl")?.map(str::to_owned),
            };
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
    let base = state.base_url.clone();
    let id = SessionId::new(id);
    state
        .mutate(None, &[Fetch::Session(id.clone())], |engine, now| {
            let cs = engine.update_session(&caller.merchant, &id, update, now)?;
            Ok((StatusCode::OK, to_json(&render::session(&base, cs))?))
        })
        .await
}

pub(super) async fn complete_session(
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
    let base = state.base_url.clone();
    let id = SessionId::new(id);
    state
        .mutate(idem, &[Fetch::Session(id.clone())], |engine, now| {
            let cs = engine.complete_session(&caller.merchant, &id, amount, sim, now)?;
            Ok((StatusCode::OK, to_json(&render::session(&base, cs))?))
        })
        .await
}

pub(super) async fn finalize_session(
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
            .as_ref()
            .and_then(read_intent)
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
    let base = state.base_url.clone();
    let id = SessionId::new(id);
    state
        .mutate(idem, &[Fetch::Session(id.clone())], |engine, now| {
            let cs = engine.finalize_session(
                &caller.merchant,
                &id,
                intent,
                amount,
                can_pend,
                sim,
                now,
            )?;
            Ok((StatusCode::OK, to_json(&render::session(&base, cs))?))
        })
        .await
}
