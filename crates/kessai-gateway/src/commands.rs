//! The MDK commands for one-time orders: Authorize, Capture, Cancel, Refund, GetAddress.
//!
//! Each command: parse fields → load and lock the order → ask the state machine → call Amazon Pay
//! (with an idempotency key derived from the operation) → store the new state and the history
//! entry in one transaction → answer. A refusal changes nothing but the history.

use crate::app::{Answer, AppState, MdkRequest};
use crate::params::Params;
use crate::util::{amazon_failure, center_datetime, history, idempotency_key};
use kessai_amazonpay::wire::{self, Price};
use kessai_core::order::CancelPlan;
use kessai_core::{Event, Field, Kind, Money, Order, OrderId, ResultCode, Yen};
use kessai_store::{OrderRecord, RefundRecord, StoreError};
use serde_json::{Map, Value};

pub const MAX_AMOUNT: u64 = 10_000_000;

pub async fn run(state: &AppState, command: &str, request: MdkRequest) -> Answer {
    match command {
        "Authorize" => authorize(state, &request).await,
        "Capture" => capture(state, &request).await,
        "Cancel" => cancel(state, &request).await,
        "Refund" => refund(state, &request).await,
        "GetAddress" => get_address(state, &request).await,
        other => Answer::failure(
            ResultCode::new(Kind::UnknownCommand, format!("No command {other}.")),
            None,
        ),
    }
}

fn internal(e: impl std::fmt::Display) -> ResultCode {
    tracing::error!(%e, "internal error");
    ResultCode::new(Kind::Internal, format!("Internal error: {e}"))
}

fn order_id_text(request: &MdkRequest) -> Option<String> {
    request
        .params
        .get("orderId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn money(y: Yen) -> Price {
    Price::from_money(Money::jpy(y))
}

/// Sets the fields every state-changing Amazon answer adds.
fn center_fields(record: &OrderRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("centerResponseDatetime".into(), center_datetime().into());
    m.insert(
        "centerOrderId".into(),
        record
            .charge_permission_id
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    m.insert(
        "centerTransactionId".into(),
        record
            .charge_id
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    m
}

// ---------------------------------------------------------------- Authorize

struct AuthorizeFields {
    order_id: OrderId,
    amount: Yen,
    with_capture: bool,
    success_url: Option<String>,
    cancel_url: Option<String>,
    error_url: Option<String>,
    note_to_buyer: Option<String>,
    authorize_push_url: Option<String>,
    capture_push_url: Option<String>,
    cancel_push_url: Option<String>,
    platform_id: Option<String>,
}

fn authorize_fields(p: &Params<'_>) -> Result<AuthorizeFields, ResultCode> {
    let order_id = p.order_id(Field::OrderId)?;
    let amount = p
        .amount(Field::Amount, MAX_AMOUNT)?
        .ok_or_else(|| ResultCode::field(Kind::FieldMissing, Field::Amount, "is required."))?;
    if p.choice(Field::AccountingType, &["0", "1"])? == Some("1") {
        return Err(ResultCode::field(
            Kind::NotSupportedYet,
            Field::AccountingType,
            "\"1\" (recurring, 随時) is not supported by this gateway yet.",
        ));
    }
    match p.choice(Field::PayConfirmScreenType, &["0", "1"])? {
        Some("1") => {
            return Err(ResultCode::field(
                Kind::NotSupportedYet,
                Field::PayConfirmScreenType,
                "\"1\" (merchant-hosted confirmation screen) is not supported by this gateway yet.",
            ))
        }
        _ => p.forbid(
            Field::PayConfirmScreenUrl,
            "may be given only with payConfirmScreenType \"1\".",
        )?,
    }
    p.forbid(
        Field::ConsentAuthType,
        "may be given only with accountingType \"1\" (recurring).",
    )?;
    p.forbid(
        Field::FrequencyUnit,
        "may be given only with accountingType \"1\" (recurring).",
    )?;
    p.forbid(
        Field::FrequencyValue,
        "may be given only with accountingType \"1\" (recurring).",
    )?;
    p.flag(Field::SuppressShippingAddressView)?;
    p.flag(Field::ExtendExpiration)?;
    if let Some(r) = p.text(Field::AddressRestrictions, 4000)? {
        if serde_json::from_str::<Map<String, Value>>(&r).is_err() {
            return Err(ResultCode::field(
                Kind::FieldInvalidValue,
                Field::AddressRestrictions,
                "must be a JSON object.",
            ));
        }
    }
    let platform_id = p.opt(Field::PlatformId)?.map(str::to_owned);
    if platform_id.as_ref().is_some_and(|v| v.len() > 21) {
        return Err(ResultCode::field(
            Kind::FieldTooLong,
            Field::PlatformId,
            "is longer than 21 bytes.",
        ));
    }
    Ok(AuthorizeFields {
        order_id,
        amount,
        with_capture: p.flag(Field::WithCapture)?.unwrap_or(false),
        success_url: p.url(Field::SuccessUrl)?,
        cancel_url: p.url(Field::CancelUrl)?,
        error_url: p.url(Field::ErrorUrl)?,
        note_to_buyer: p.text(Field::NoteToBuyer, 255)?,
        authorize_push_url: p.url(Field::AuthorizePushUrl)?,
        capture_push_url: p.url(Field::CapturePushUrl)?,
        cancel_push_url: p.url(Field::CancelPushUrl)?,
        platform_id,
    })
}

async fn authorize(state: &AppState, request: &MdkRequest) -> Answer {
    let fields = match authorize_fields(&Params(&request.params)) {
        Ok(f) => f,
        Err(e) => return Answer::failure(e, order_id_text(request)),
    };
    let ccid = request.merchant.ccid.clone();
    let order_id_str = Some(fields.order_id.to_string());
    let _guard = state.locks.lock(&ccid, &fields.order_id).await;
    match state.store.order(&ccid, &fields.order_id).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Answer::failure(
                ResultCode::field(
                    Kind::DuplicateOrderId,
                    Field::OrderId,
                    format!("{} was already used.", fields.order_id),
                ),
                order_id_str,
            )
        }
        Err(e) => return Answer::failure(internal(e), order_id_str),
    }
    let public_ref = crate::util::buyer_ref(&state.ref_key, &ccid, &fields.order_id);
    let base = &state.base_url;
    let intent = if fields.with_capture {
        "AuthorizeWithCapture"
    } else {
        "Authorize"
    };
    let create = wire::CreateCheckoutSessionRequest {
        web_checkout_details: wire::WebCheckoutDetailsRequest {
            checkout_review_return_url: Some(format!("{base}/amazonpay/review/{public_ref}")),
            checkout_result_return_url: None,
            checkout_cancel_url: Some(format!("{base}/amazonpay/cancel/{public_ref}")),
        },
        store_id: state.amazon.store_id().to_owned(),
        charge_permission_type: Some("OneTime".into()),
        recurring_metadata: None,
        payment_details: Some(wire::PaymentDetailsRequest {
            payment_intent: Some(intent.into()),
            can_handle_pending_authorization: Some(false),
            charge_amount: Some(money(fields.amount)),
            total_order_amount: None,
            presentment_currency: Some("JPY".into()),
        }),
        merchant_metadata: Some(wire::MerchantMetadataRequest {
            merchant_reference_id: Some(fields.order_id.to_string()),
            merchant_store_name: Some(state.store_name.clone()),
            note_to_buyer: fields.note_to_buyer.clone(),
            custom_information: None,
        }),
        platform_id: fields.platform_id.clone(),
    };
    let key = idempotency_key(&ccid, &fields.order_id, "checkout-session");
    let session = match state.amazon.create_checkout_session(&create, &key).await {
        Ok(s) => s,
        Err(e) => return Answer::failure(amazon_failure(&e), order_id_str),
    };
    let now = kessai_store::now_text();
    let record = OrderRecord {
        merchant: ccid.clone(),
        order_id: fields.order_id.clone(),
        public_ref: public_ref.clone(),
        dummy: request.dummy,
        order: Order::new(fields.amount),
        with_capture: fields.with_capture,
        note_to_buyer: fields.note_to_buyer,
        success_url: fields.success_url,
        cancel_url: fields.cancel_url,
        error_url: fields.error_url,
        authorize_push_url: fields.authorize_push_url,
        capture_push_url: fields.capture_push_url,
        cancel_push_url: fields.cancel_push_url,
        checkout_session_id: Some(session.checkout_session_id.clone()),
        charge_permission_id: None,
        charge_id: None,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    let result = ResultCode::success();
    let entry = history("Authorize", &request.params_text, &result);
    match state.store.insert_order(&record, &entry).await {
        Ok(()) => {}
        Err(StoreError::Duplicate) => {
            return Answer::failure(
                ResultCode::field(
                    Kind::DuplicateOrderId,
                    Field::OrderId,
                    format!("{} was already used.", fields.order_id),
                ),
                order_id_str,
            )
        }
        Err(e) => return Answer::failure(internal(e), order_id_str),
    }
    let sign_in = state.amazon.sign_in_url(&session.checkout_session_id);
    let mut out = Map::new();
    out.insert("responseContents".into(), redirect_page(&sign_in).into());
    Answer {
        result,
        order_id: order_id_str,
        fields: out,
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page the merchant sends to the buyer's browser: a form that goes to Amazon Pay's sign-in,
/// submitted by script, with a visible button for browsers without script.
pub fn redirect_page(url: &str) -> String {
    let (action, hidden) = match url::Url::parse(url) {
        Ok(u) => {
            let mut base = u.clone();
            base.set_query(None);
            let inputs: String = u
                .query_pairs()
                .map(|(k, v)| {
                    format!(
                        r#"<input type="hidden" name="{}" value="{}">"#,
                        html_escape(&k),
                        html_escape(&v)
                    )
                })
                .collect();
            (base.to_string(), inputs)
        }
        Err(_) => (url.to_owned(), String::new()),
    };
    format!(
        r#"<!doctype html><html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Amazon Pay</title></head><body><form id="kessai-amazonpay" method="get" action="{}">{}<p>Amazon Payへ移動します。/ Continuing to Amazon Pay.</p><button type="submit">Amazon Payへ進む / Continue to Amazon Pay</button></form><script>document.getElementById("kessai-amazonpay").submit();</script></body></html>"#,
        html_escape(&action),
        hidden
    )
}

// ---------------------------------------------------------------- order commands

/// Loads the order named by `orderId` under its lock, or answers why not.
async fn load(
    state: &AppState,
    request: &MdkRequest,
) -> Result<(OrderRecord, tokio::sync::OwnedMutexGuard<()>), Answer> {
    let p = Params(&request.params);
    let order_id = p
        .order_id(Field::OrderId)
        .map_err(|e| Answer::failure(e, order_id_text(request)))?;
    let guard = state.locks.lock(&request.merchant.ccid, &order_id).await;
    match state.store.order(&request.merchant.ccid, &order_id).await {
        Ok(Some(o)) => Ok((o, guard)),
        Ok(None) => Err(Answer::failure(
            ResultCode::field(
                Kind::UnknownOrderId,
                Field::OrderId,
                format!("{order_id} is not an order of this merchant."),
            ),
            Some(order_id.to_string()),
        )),
        Err(e) => Err(Answer::failure(internal(e), Some(order_id.to_string()))),
    }
}

/// Records a refused attempt (the order is unchanged) and answers it.
async fn refuse(
    state: &AppState,
    record: &OrderRecord,
    command: &str,
    request: &MdkRequest,
    result: ResultCode,
) -> Answer {
    let entry = history(command, &request.params_text, &result);
    if let Err(e) = state
        .store
        .append_history(&record.merchant, &record.order_id, &entry)
        .await
    {
        tracing::error!(%e, "could not record a refused attempt");
    }
    Answer::failure(result, Some(record.order_id.to_string()))
}

/// Stores the order after `event`, with the history entry; answers success with `fields`.
async fn commit(
    state: &AppState,
    mut record: OrderRecord,
    event: Event,
    command: &str,
    request: &MdkRequest,
    refund: Option<&RefundRecord>,
    extra: Map<String, Value>,
) -> Answer {
    let order_id = Some(record.order_id.to_string());
    let next = match record.order.apply(event) {
        Ok(n) => n,
        Err(refusal) => return Answer::failure(internal(refusal), order_id),
    };
    record.order = next;
    record.version += 1;
    record.updated_at = kessai_store::now_text();
    let result = ResultCode::success();
    let entry = history(command, &request.params_text, &result);
    match state
        .store
        .update_order(&record, Some(&entry), refund)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Answer::failure(
                ResultCode::field(
                    Kind::ConcurrentCommand,
                    Field::OrderId,
                    "was changed by another command at the same time; read it and retry.",
                ),
                order_id,
            )
        }
        Err(e) => return Answer::failure(internal(e), order_id),
    }
    let mut fields = center_fields(&record);
    fields.extend(extra);
    Answer {
        result,
        order_id,
        fields,
    }
}

async fn capture(state: &AppState, request: &MdkRequest) -> Answer {
    let (record, _guard) = match load(state, request).await {
        Ok(x) => x,
        Err(a) => return a,
    };
    let requested = match Params(&request.params).amount(Field::Amount, MAX_AMOUNT) {
        Ok(a) => a,
        Err(e) => return refuse(state, &record, "Capture", request, e).await,
    };
    let amount = match record.order.plan_capture(requested) {
        Ok(a) => a,
        Err(r) => return refuse(state, &record, "Capture", request, r.into()).await,
    };
    let Some(charge_id) = record.charge_id.clone() else {
        return refuse(
            state,
            &record,
            "Capture",
            request,
            internal("authorized order without charge id"),
        )
        .await;
    };
    let key = idempotency_key(&record.merchant, &record.order_id, "capture");
    let body = wire::CaptureChargeRequest {
        capture_amount: money(amount),
        soft_descriptor: None,
    };
    if let Err(e) = state.amazon.capture_charge(&charge_id, &body, &key).await {
        return refuse(state, &record, "Capture", request, amazon_failure(&e)).await;
    }
    commit(
        state,
        record,
        Event::Captured { amount },
        "Capture",
        request,
        None,
        Map::new(),
    )
    .await
}

async fn cancel(state: &AppState, request: &MdkRequest) -> Answer {
    let (record, _guard) = match load(state, request).await {
        Ok(x) => x,
        Err(a) => return a,
    };
    let reason = match Params(&request.params).text(Field::CancellationReason, 255) {
        Ok(r) => r,
        Err(e) => return refuse(state, &record, "Cancel", request, e).await,
    };
    match record.order.plan_cancel() {
        Ok(CancelPlan::AbandonCheckout) => {}
        Ok(CancelPlan::VoidAuthorization) => {
            let Some(charge_id) = record.charge_id.clone() else {
                return refuse(
                    state,
                    &record,
                    "Cancel",
                    request,
                    internal("authorized order without charge id"),
                )
                .await;
            };
            let body = wire::CancelChargeRequest {
                cancellation_reason: reason.unwrap_or_else(|| "Canceled by the merchant".into()),
            };
            if let Err(e) = state.amazon.cancel_charge(&charge_id, &body).await {
                return refuse(state, &record, "Cancel", request, amazon_failure(&e)).await;
            }
        }
        Err(r) => return refuse(state, &record, "Cancel", request, r.into()).await,
    }
    commit(
        state,
        record,
        Event::Canceled,
        "Cancel",
        request,
        None,
        Map::new(),
    )
    .await
}

async fn refund(state: &AppState, request: &MdkRequest) -> Answer {
    let (record, _guard) = match load(state, request).await {
        Ok(x) => x,
        Err(a) => return a,
    };
    let requested = match Params(&request.params).amount(Field::Amount, MAX_AMOUNT) {
        Ok(a) => a,
        Err(e) => return refuse(state, &record, "Refund", request, e).await,
    };
    let amount = match record.order.plan_refund(requested) {
        Ok(a) => a,
        Err(r) => {
            let mut answer = refuse(state, &record, "Refund", request, r.into()).await;
            answer.fields.insert(
                "refundableAmount".into(),
                record.order.refundable().to_string().into(),
            );
            return answer;
        }
    };
    let Some(charge_id) = record.charge_id.clone() else {
        return refuse(
            state,
            &record,
            "Refund",
            request,
            internal("captured order without charge id"),
        )
        .await;
    };
    let seq = match state
        .store
        .refunds(&record.merchant, &record.order_id)
        .await
    {
        Ok(r) => i64::try_from(r.len()).unwrap_or(i64::MAX) + 1,
        Err(e) => return refuse(state, &record, "Refund", request, internal(e)).await,
    };
    let key = idempotency_key(&record.merchant, &record.order_id, &format!("refund-{seq}"));
    let body = wire::CreateRefundRequest {
        charge_id,
        refund_amount: money(amount),
        soft_descriptor: None,
    };
    let created = match state.amazon.create_refund(&body, &key).await {
        Ok(r) => r,
        Err(e) => return refuse(state, &record, "Refund", request, amazon_failure(&e)).await,
    };
    let refund = RefundRecord {
        seq,
        amazon_refund_id: created.refund_id.clone(),
        amount,
        state: created.status_details.state.to_string(),
        created_at: kessai_store::now_text(),
    };
    let refundable = record.order.refundable().saturating_sub(amount);
    let mut extra = Map::new();
    extra.insert("refundableAmount".into(), refundable.to_string().into());
    let mut answer = commit(
        state,
        record,
        Event::RefundAccepted { amount },
        "Refund",
        request,
        Some(&refund),
        extra,
    )
    .await;
    if answer.result.is_success() {
        answer
            .fields
            .insert("centerTransactionId".into(), created.refund_id.into());
    }
    answer
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<String>) {
    m.insert(k.into(), v.map(Value::String).unwrap_or(Value::Null));
}

fn address_lines(a: &wire::Address) -> (Option<String>, Option<String>, Option<String>) {
    let city_line = [a.city.clone(), a.address_line1.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("");
    (
        (!city_line.is_empty()).then_some(city_line),
        a.address_line2.clone(),
        a.address_line3.clone(),
    )
}

async fn get_address(state: &AppState, request: &MdkRequest) -> Answer {
    let (record, _guard) = match load(state, request).await {
        Ok(x) => x,
        Err(a) => return a,
    };
    let extended = match Params(&request.params).choice(Field::AddInfoRespFlag, &["0", "1"]) {
        Ok(v) => v == Some("1"),
        Err(e) => return refuse(state, &record, "GetAddress", request, e).await,
    };
    if let Err(r) = record.order.plan_get_address() {
        return refuse(state, &record, "GetAddress", request, r.into()).await;
    }
    // Before authorization the data is on the checkout session, afterwards on the permission.
    let (buyer, shipping, billing, preferences) = match &record.charge_permission_id {
        Some(cp_id) => match state.amazon.get_charge_permission(cp_id).await {
            Ok(cp) => (
                cp.buyer,
                cp.shipping_address,
                cp.billing_address,
                cp.payment_preferences,
            ),
            Err(e) => {
                return refuse(state, &record, "GetAddress", request, amazon_failure(&e)).await
            }
        },
        None => {
            let Some(cs_id) = &record.checkout_session_id else {
                return refuse(
                    state,
                    &record,
                    "GetAddress",
                    request,
                    internal("order without checkout session"),
                )
                .await;
            };
            match state.amazon.get_checkout_session(cs_id).await {
                Ok(cs) => (
                    cs.buyer,
                    cs.shipping_address,
                    cs.billing_address,
                    cs.payment_preferences,
                ),
                Err(e) => {
                    return refuse(state, &record, "GetAddress", request, amazon_failure(&e)).await
                }
            }
        }
    };
    let result = ResultCode::success();
    let entry = history("GetAddress", &request.params_text, &result);
    if let Err(e) = state
        .store
        .append_history(&record.merchant, &record.order_id, &entry)
        .await
    {
        return Answer::failure(internal(e), Some(record.order_id.to_string()));
    }
    let mut f = Map::new();
    f.insert("centerResponseDatetime".into(), center_datetime().into());
    let ship = shipping.unwrap_or_default();
    let (l1, l2, l3) = address_lines(&ship);
    put(&mut f, "shippingName", ship.name.clone());
    put(&mut f, "shippingPhone", ship.phone_number.clone());
    put(&mut f, "shippingAddress1", l1);
    put(&mut f, "shippingAddress2", l2);
    put(&mut f, "shippingAddress3", l3);
    put(&mut f, "shippingPrefecture", ship.state_or_region.clone());
    put(&mut f, "shippingPostalCode", ship.postal_code.clone());
    let buyer = buyer.unwrap_or_default();
    put(&mut f, "buyerId", buyer.buyer_id.clone());
    put(&mut f, "buyerEmail", buyer.email.clone());
    if extended {
        put(&mut f, "buyerName", buyer.name.clone());
        put(&mut f, "buyerPhoneNumber", buyer.phone_number.clone());
        put(
            &mut f,
            "paymentPreferences",
            preferences
                .and_then(|p| p.into_iter().next())
                .and_then(|p| p.payment_descriptor),
        );
        let bill = billing.unwrap_or_default();
        let (b1, b2, b3) = address_lines(&bill);
        put(&mut f, "billingAddress1", b1);
        put(&mut f, "billingAddress2", b2);
        put(&mut f, "billingAddress3", b3);
        put(&mut f, "billingPrefecture", bill.state_or_region.clone());
        put(&mut f, "billingPostalCode", bill.postal_code.clone());
    }
    if record.order.state == kessai_core::OrderState::PreAuth {
        put(
            &mut f,
            "payRedirectUrl",
            Some(format!(
                "{}/amazonpay/review/{}",
                state.base_url, record.public_ref
            )),
        );
        put(
            &mut f,
            "checkoutSessionId",
            record.checkout_session_id.clone(),
        );
    }
    Answer {
        result,
        order_id: Some(record.order_id.to_string()),
        fields: f,
    }
}
