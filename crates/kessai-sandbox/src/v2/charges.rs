//! Charge permissions, charges and refunds.

use super::idempotency::idempotency;
use super::{ledger, read_metadata, read_recurring, render, simulation, to_json};
use crate::auth::Caller;
use crate::engine::charge::NewCharge;
use crate::engine::{ChargeId, Fetch, Metadata, PermissionId, RefundId};
use crate::error::ApiError;
use crate::input::{parse_object, Obj};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kessai_amazonpay::wire::{ChargeState, ErrorCode, ReasonCode};

pub(super) async fn get_permission(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let id = PermissionId::new(id);
    state
        .read(Fetch::Permission(id.clone()), |engine| {
            to_json(&render::permission(
                engine.permission(&caller.merchant, &id)?,
            ))
        })
        .await
}

pub(super) async fn get_charge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let id = ChargeId::new(id);
    state
        .read(Fetch::Charge(id.clone()), |engine| {
            to_json(&render::charge(engine.charge(&caller.merchant, &id)?))
        })
        .await
}

pub(super) async fn capture(
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
    let id = ChargeId::new(id);
    state
        .mutate(idem, &[Fetch::Charge(id.clone())], |engine, now| {
            let charge = engine.capture(&caller.merchant, &id, amount, soft, now)?;
            Ok((StatusCode::OK, to_json(&render::charge(charge))?))
        })
        .await
}

pub(super) async fn cancel(
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
    let id = ChargeId::new(id);
    state
        .mutate(None, &[Fetch::Charge(id.clone())], |engine, now| {
            let charge = engine.cancel_charge(&caller.merchant, &id, reason, now)?;
            Ok((StatusCode::OK, to_json(&render::charge(charge))?))
        })
        .await
}

pub(super) async fn create_refund(
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
    let charge_id = ChargeId::new(charge_id);
    state
        .mutate(idem, &[Fetch::Charge(charge_id.clone())], |engine, now| {
            let refund =
                engine.create_refund(&caller.merchant, &charge_id, amount, soft, sim, now)?;
            Ok((StatusCode::CREATED, to_json(&render::refund(refund))?))
        })
        .await
}

pub(super) async fn get_refund(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let id = RefundId::new(id);
    state
        .read(Fetch::Refund(id.clone()), |engine| {
            to_json(&render::refund(engine.refund(&caller.merchant, &id)?))
        })
        .await
}

pub(super) async fn create_charge(
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
            permission_id: PermissionId::new(root.req_str("chargePermissionId", 64)?),
            amount: root.req_price("chargeAmount", currency)?,
            capture_now,
            can_handle_pending: root
                .opt_bool("canHandlePendingAuthorization")?
                .unwrap_or(false),
            soft_descriptor: soft,
            metadata: match root.opt_obj("merchantMetadata")? {
                Some(m) => read_metadata(&m)?,
                None => Metadata::default(),
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
    let fetch = [Fetch::Permission(new.permission_id.clone())];
    state
        .mutate(idem, &fetch, |engine, now| {
            let charge = engine.create_charge(&caller.merchant, new, sim, now)?;
            Ok((StatusCode::CREATED, to_json(&render::charge(charge))?))
        })
        .await
}

pub(super) async fn update_permission(
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
            None => Metadata::default(),
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
    let id = PermissionId::new(id);
    state
        .mutate(None, &[Fetch::Permission(id.clone())], |engine, now| {
            let cp = engine.update_permission(&caller.merchant, &id, metadata, recurring, now)?;
            Ok((StatusCode::OK, to_json(&render::permission(cp))?))
        })
        .await
}

pub(super) async fn close_permission(
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
    let id = PermissionId::new(id);
    state
        .mutate(None, &[Fetch::Permission(id.clone())], |engine, now| {
            let cp = engine.close_permission(&caller.merchant, &id, reason, cancel_pending, now)?;
            Ok((StatusCode::OK, to_json(&render::permission(cp))?))
        })
        .await
}

/// Update Charge is for payment service providers: it can only mark an authorization expired.
pub(super) async fn update_charge(
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
    let id = ChargeId::new(id);
    state
        .mutate(None, &[Fetch::Charge(id.clone())], |engine, now| {
            let charge = engine.mark_expired(&caller.merchant, &id, now)?;
            Ok((StatusCode::OK, to_json(&render::charge(charge))?))
        })
        .await
}
