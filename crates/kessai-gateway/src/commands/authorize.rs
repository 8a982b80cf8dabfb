//! Authorize (one-time, gateway-hosted confirmation): creates the order and an Amazon Pay
//! checkout session; `responseContents` is the page that sends the buyer to Amazon Pay.

use super::MAX_AMOUNT;
use crate::app::AppState;
use crate::params::Params;
use crate::pipeline::Caller;
use crate::reply::{Answer, Reply};
use crate::util::{amazon_failure, history, idempotency_key};
use kessai_amazonpay::wire::{self, ChargePermissionType, PaymentIntent, Price};
use kessai_core::{Field, Kind, Money, Order, OrderId, ResultCode, Yen};
use kessai_store::{OrderRecord, StoreError, Unit, Write};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Authorize {
    pub order_id: OrderId,
    pub amount: Yen,
    pub with_capture: bool,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub error_url: Option<String>,
    pub note_to_buyer: Option<String>,
    pub authorize_push_url: Option<String>,
    pub capture_push_url: Option<String>,
    pub cancel_push_url: Option<String>,
    pub platform_id: Option<String>,
}

impl Authorize {
    pub fn parse(p: &Params<'_>) -> Result<Authorize, ResultCode> {
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
            Some("1") => return Err(ResultCode::field(
                Kind::NotSupportedYet,
                Field::PayConfirmScreenType,
                "\"1\" (merchant-hosted confirmation screen) is not supported by this gateway yet.",
            )),
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
        Ok(Authorize {
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
}

fn duplicate(order_id: &kessai_core::OrderId) -> ResultCode {
    ResultCode::field(
        Kind::DuplicateOrderId,
        Field::OrderId,
        format!("{order_id} was already used."),
    )
}

fn internal(e: impl std::fmt::Display) -> ResultCode {
    tracing::error!(%e, "internal error");
    ResultCode::new(Kind::Internal, format!("Internal error: {e}"))
}

/// Creating a checkout session moves no money, so it is not in the operation log: its key is
/// derived from the order, so a retried Authorize replays the same session at Amazon Pay, and a
/// session whose order was never stored expires there unused after 24 hours.
pub async fn run(state: &AppState, caller: &Caller, fields: Authorize) -> Answer {
    let ccid = &caller.merchant.ccid;
    let order_id = fields.order_id.clone();
    let _guard = state.locks.lock(ccid, &order_id).await;
    match state.store.order(ccid, &order_id).await {
        Ok(None) => {}
        Ok(Some(_)) => return Answer::about(&order_id, duplicate(&order_id), Reply::Nothing),
        Err(e) => return Answer::about(&order_id, internal(e), Reply::Nothing),
    }
    let public_ref = crate::util::buyer_ref(&state.ref_key, ccid, &order_id);
    let base = &state.base_url;
    let intent = if fields.with_capture {
        PaymentIntent::AuthorizeWithCapture
    } else {
        PaymentIntent::Authorize
    };
    let create = wire::CreateCheckoutSessionRequest {
        web_checkout_details: wire::WebCheckoutDetailsRequest {
            checkout_review_return_url: Some(format!("{base}/amazonpay/review/{public_ref}")),
            checkout_result_return_url: None,
            checkout_cancel_url: Some(format!("{base}/amazonpay/cancel/{public_ref}")),
        },
        store_id: state.amazon.store_id().to_owned(),
        charge_permission_type: Some(ChargePermissionType::OneTime),
        recurring_metadata: None,
        payment_details: Some(wire::PaymentDetailsRequest {
            payment_intent: Some(intent),
            can_handle_pending_authorization: Some(true),
            charge_amount: Some(Price::from_money(Money::jpy(fields.amount))),
            total_order_amount: None,
            presentment_currency: Some("JPY".into()),
        }),
        merchant_metadata: Some(wire::MerchantMetadataRequest {
            merchant_reference_id: Some(order_id.to_string()),
            merchant_store_name: Some(state.store_name.clone()),
            note_to_buyer: fields.note_to_buyer.clone(),
            custom_information: None,
        }),
        platform_id: fields.platform_id.clone(),
    };
    let key = idempotency_key(ccid, &order_id, "checkout-session");
    let session = match state.amazon.create_checkout_session(&create, &key).await {
        Ok(s) => s,
        Err(e) => return Answer::about(&order_id, amazon_failure(&e), Reply::Nothing),
    };
    let now = state.now_text();
    let record = OrderRecord {
        merchant: ccid.clone(),
        order_id: order_id.clone(),
        public_ref,
        dummy: caller.dummy,
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
        in_flight: None,
        consent: None,
        original_order_id: None,
        confirm_screen: Default::default(),
        options: Default::default(),
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    let result = ResultCode::success();
    let entry = history(
        caller.command.as_str(),
        &caller.params_text,
        &result,
        state.now_text(),
    );
    let unit = Unit::new(ccid, &order_id)
        .with(Write::InsertOrder(record))
        .with(Write::History(entry));
    match state.store.apply(&unit).await {
        Ok(()) => {}
        Err(StoreError::Duplicate) => {
            return Answer::about(&order_id, duplicate(&order_id), Reply::Nothing)
        }
        Err(e) => return Answer::about(&order_id, internal(e), Reply::Nothing),
    }
    let sign_in = state.amazon.sign_in_url(&session.checkout_session_id);
    Answer::about(
        &order_id,
        result,
        Reply::BuyerPage {
            html: redirect_page(&sign_in),
        },
    )
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
