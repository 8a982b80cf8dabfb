//! PostgreSQL rows to the model's records and back: instants as `timestamptz` (RFC 3339 text in
//! the model), flags as `boolean`, money as `bigint`.

use crate::{
    time_text, AmazonOptions, ConfirmScreen, MerchantRecord, OperationRecord, OrderRecord,
    PushRecord, StoreError,
};
use kessai_core::{
    Consent, Intent, MerchantCcid, OperationKind, OperationStatus, Order, OrderId, OrderState,
    PushKind, PushStatus, Secret, Yen,
};
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

pub(super) fn to_i64(y: Yen) -> i64 {
    i64::try_from(y.get()).unwrap_or(i64::MAX)
}

pub(super) fn yen(row: &PgRow, col: &str) -> Result<Yen, StoreError> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v)
        .map(Yen::new)
        .map_err(|_| StoreError::Corrupt(format!("{col} is negative")))
}

/// An instant the model holds as RFC 3339 text, as PostgreSQL keeps it.
pub(super) fn instant(text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::InvalidQuery(format!("{text:?} is not an RFC 3339 instant: {e}")))
}

pub(super) fn opt_instant(text: &Option<String>) -> Result<Option<OffsetDateTime>, StoreError> {
    text.as_deref().map(instant).transpose()
}

/// A stored instant as the model holds it (see [`time_text`]).
pub(super) fn instant_text(row: &PgRow, col: &str) -> Result<String, StoreError> {
    Ok(time_text(row.try_get::<OffsetDateTime, _>(col)?))
}

pub(super) fn opt_instant_text(row: &PgRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row
        .try_get::<Option<OffsetDateTime>, _>(col)?
        .map(time_text))
}

pub(super) fn parse_ccid(text: &str) -> Result<MerchantCcid, StoreError> {
    MerchantCcid::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn parse_order_id(text: &str) -> Result<OrderId, StoreError> {
    OrderId::parse(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn order_from_row(row: &PgRow) -> Result<OrderRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let state = OrderState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown state {state}")))?;
    Ok(OrderRecord {
        merchant: parse_ccid(row.try_get("merchant_ccid")?)?,
        order_id: parse_order_id(row.try_get("order_id")?)?,
        public_ref: row.try_get("public_ref")?,
        dummy: row.try_get("dummy")?,
        order: Order {
            state,
            amount: yen(row, "amount")?,
            authorized: yen(row, "authorized")?,
            captured: yen(row, "captured")?,
            refunded: yen(row, "refunded")?,
        },
        with_capture: row.try_get("with_capture")?,
        note_to_buyer: row.try_get("note_to_buyer")?,
        success_url: row.try_get("success_url")?,
        cancel_url: row.try_get("cancel_url")?,
        error_url: row.try_get("error_url")?,
        authorize_push_url: row.try_get("authorize_push_url")?,
        capture_push_url: row.try_get("capture_push_url")?,
        cancel_push_url: row.try_get("cancel_push_url")?,
        checkout_session_id: row.try_get("checkout_session_id")?,
        charge_permission_id: row.try_get("charge_permission_id")?,
        charge_id: row.try_get("charge_id")?,
        in_flight: row.try_get("in_flight")?,
        consent: consent_from_row(row)?,
        original_order_id: row
            .try_get::<Option<&str>, _>("original_order_id")?
            .map(parse_order_id)
            .transpose()?,
        confirm_screen: match (
            row.try_get::<i16, _>("pay_confirm_screen_type")?,
            row.try_get::<Option<String>, _>("pay_confirm_screen_url")?,
        ) {
            (0, _) => ConfirmScreen::Gateway,
            (1, Some(url)) => ConfirmScreen::Merchant { url },
            (t, _) => {
                return Err(StoreError::Corrupt(format!(
                    "pay_confirm_screen_type {t} without its URL"
                )))
            }
        },
        options: AmazonOptions {
            address_restrictions: row.try_get("address_restrictions")?,
            suppress_shipping_address_view: row.try_get("suppress_shipping_address_view")?,
            extend_expiration: row.try_get("extend_expiration")?,
            platform_id: row.try_get("platform_id")?,
        },
        version: row.try_get("version")?,
        created_at: instant_text(row, "created_at")?,
        updated_at: instant_text(row, "updated_at")?,
    })
}

pub(super) fn consent_from_row(row: &PgRow) -> Result<Option<Consent>, StoreError> {
    crate::model::consent_from_columns(
        row.try_get("consent_state")?,
        row.try_get("frequency_unit")?,
        row.try_get("frequency_value")?,
        row.try_get("consent_amount")?,
        row.try_get("consent_with_authorization")?,
    )
}

pub(super) fn merchant_from_row(r: &PgRow) -> Result<MerchantRecord, StoreError> {
    Ok(MerchantRecord {
        ccid: parse_ccid(r.try_get("ccid")?)?,
        secret_hex: Secret::new(r.try_get("secret_hex")?),
        name: r.try_get("name")?,
        consent_auth_default: r.try_get("consent_auth_default")?,
        created_at: instant_text(r, "created_at")?,
    })
}

pub(super) fn push_from_row(r: &PgRow) -> Result<PushRecord, StoreError> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let fields: String = r.try_get("fields")?;
    Ok(PushRecord {
        id: r.try_get("id")?,
        merchant: parse_ccid(r.try_get("merchant_ccid")?)?,
        order_id: parse_order_id(r.try_get("order_id")?)?,
        kind: PushKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown push kind {kind}")))?,
        url: r.try_get("url")?,
        dummy: r.try_get("dummy")?,
        fields: form_urlencoded::parse(fields.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        status: PushStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown push status {status}")))?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: r.try_get("next_attempt_at")?,
        lease_until: r.try_get("lease_until")?,
        push_id: r.try_get("push_id")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

pub(super) fn operation_from_row(r: &PgRow) -> Result<OperationRecord, StoreError> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    Ok(OperationRecord {
        key: r.try_get("idempotency_key")?,
        merchant: parse_ccid(r.try_get("merchant_ccid")?)?,
        order_id: parse_order_id(r.try_get("order_id")?)?,
        seq: r.try_get("seq")?,
        intent: Intent {
            kind: OperationKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown operation kind {kind}")))?,
            amount: yen(r, "amount")?,
            note: r.try_get("note")?,
        },
        status: OperationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operation status {status}")))?,
        reported: r.try_get("reported")?,
        result_code: r.try_get("result_code")?,
        result_message: r.try_get("result_message")?,
        amazon_id: r.try_get("amazon_id")?,
        created_at: instant_text(r, "created_at")?,
        finished_at: opt_instant_text(r, "finished_at")?,
    })
}

pub(super) fn encode_fields(fields: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}
