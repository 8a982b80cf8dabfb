//! Authorize (one-time or recurring): records the order; `responseContents` is the page that
//! hands the buyer to Amazon Pay ([`crate::handoff`]).

use super::MAX_AMOUNT;
use crate::app::AppState;
use crate::handoff::ProductType;
use crate::params::Params;
use crate::pipeline::Caller;
use crate::reply::{Answer, Reply};
use crate::util::history;
use crate::util::store_failure;
use kessai_amazonpay::wire::{self, ChargePermissionType, PaymentIntent, Price};
use kessai_core::consent::MAX_RECURRING_AMOUNT;
use kessai_core::{
    Consent, Field, Frequency, FrequencyUnit, Kind, Money, Order, OrderId, ResultCode, Yen,
};
use kessai_store::{AmazonOptions, ConfirmScreen, OrderRecord, StoreError, Unit, Write};
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
    /// `accountingType` "1": the consent asked for.
    pub consent: Option<ConsentRequest>,
    pub confirm_screen: ConfirmScreen,
    pub options: AmazonOptions,
}

/// A recurring Authorize's consent, as asked for.
#[derive(Debug, Clone, Copy)]
pub struct ConsentRequest {
    pub amount: Yen,
    pub frequency: Frequency,
    /// `consentAuthType`: `None` when left out (the merchant's default decides).
    pub with_authorization: Option<bool>,
}

impl ConsentRequest {
    /// The consent, with the merchant's default for a `consentAuthType` left out; a consent
    /// without authorization cannot be captured at once.
    pub fn resolve(
        &self,
        merchant_default: bool,
        with_capture: bool,
    ) -> Result<Consent, ResultCode> {
        let with_authorization = self.with_authorization.unwrap_or(merchant_default);
        if !with_authorization && with_capture {
            return Err(ResultCode::field(
                Kind::FieldNotAllowed,
                Field::WithCapture,
                "may be \"true\" only when consentAuthType is \"1\" (a consent only moves no money; left out, consentAuthType is the merchant's setting).",
            ));
        }
        Ok(Consent::new(
            self.amount,
            self.frequency,
            with_authorization,
        ))
    }
}

const RECURRING_ONLY: &str = "may be given only with accountingType \"1\" (recurring, 随時).";

/// `frequencyUnit` and `frequencyValue` of a recurring Authorize or an UpdateConsent.
pub fn frequency(p: &Params<'_>) -> Result<Frequency, ResultCode> {
    let unit_text = p.req(Field::FrequencyUnit)?;
    let unit = FrequencyUnit::parse(unit_text).ok_or_else(|| {
        ResultCode::field(
            Kind::FieldInvalidValue,
            Field::FrequencyUnit,
            format!("must be one of Year, Month, Week, Day (got {unit_text:?})."),
        )
    })?;
    let value = p
        .amount(Field::FrequencyValue, u64::from(unit.max_value()))
        .map_err(|r| ResultCode {
            message: format!("{} (with frequencyUnit {})", r.message, unit.as_str()),
            ..r
        })?
        .ok_or_else(|| {
            ResultCode::field(Kind::FieldMissing, Field::FrequencyValue, "is required.")
        })?;
    Frequency::new(unit, value.get())
        .map_err(|e| ResultCode::field(Kind::FieldAboveMaximum, Field::FrequencyValue, e))
}

/// `platformId`: at most 21 bytes.
pub fn platform_id(p: &Params<'_>) -> Result<Option<String>, ResultCode> {
    let platform_id = p.opt(Field::PlatformId)?.map(str::to_owned);
    if platform_id.as_ref().is_some_and(|v| v.len() > 21) {
        return Err(ResultCode::field(
            Kind::FieldTooLong,
            Field::PlatformId,
            "is longer than 21 bytes.",
        ));
    }
    Ok(platform_id)
}

/// `addressRestrictions`: `{"type":"Allowed"|"NotAllowed","restrictions":{…}}`, at most 4000.
fn address_restrictions(p: &Params<'_>) -> Result<Option<String>, ResultCode> {
    let Some(text) = p.text(Field::AddressRestrictions, 4000)? else {
        return Ok(None);
    };
    let bad =
        |why: &str| ResultCode::field(Kind::FieldInvalidValue, Field::AddressRestrictions, why);
    let map = serde_json::from_str::<Map<String, Value>>(&text)
        .map_err(|_| bad("must be a JSON object."))?;
    match map.get("type").and_then(Value::as_str) {
        Some("Allowed" | "NotAllowed") => {}
        _ => return Err(bad("needs \"type\": \"Allowed\" or \"NotAllowed\".")),
    }
    match map.get("restrictions") {
        Some(Value::Object(_)) => {}
        _ => return Err(bad("needs \"restrictions\": an object of country codes.")),
    }
    if let Some(other) = map.keys().find(|k| *k != "type" && *k != "restrictions") {
        return Err(bad(&format!("has an unknown key {other:?}.")));
    }
    Ok(Some(text))
}

impl Authorize {
    pub fn parse(p: &Params<'_>) -> Result<Authorize, ResultCode> {
        let order_id = p.order_id(Field::OrderId)?;
        let recurring = p.choice(Field::AccountingType, &["0", "1"])? == Some("1");
        let max = if recurring {
            MAX_RECURRING_AMOUNT
        } else {
            MAX_AMOUNT
        };
        let amount = p
            .amount(Field::Amount, max)?
            .ok_or_else(|| ResultCode::field(Kind::FieldMissing, Field::Amount, "is required."))?;
        let with_capture = p.flag(Field::WithCapture)?.unwrap_or(false);
        let consent = if recurring {
            let frequency = frequency(p)?;
            let with_authorization = p
                .choice(Field::ConsentAuthType, &["0", "1"])?
                .map(|v| v == "1");
            if p.flag(Field::ExtendExpiration)? == Some(true) {
                return Err(ResultCode::field(
                    Kind::FieldNotAllowed,
                    Field::ExtendExpiration,
                    "is for one-time (都度) orders only.",
                ));
            }
            Some(ConsentRequest {
                amount,
                frequency,
                with_authorization,
            })
        } else {
            p.forbid(Field::ConsentAuthType, RECURRING_ONLY)?;
            p.forbid(Field::FrequencyUnit, RECURRING_ONLY)?;
            p.forbid(Field::FrequencyValue, RECURRING_ONLY)?;
            None
        };
        let confirm_screen = match p.choice(Field::PayConfirmScreenType, &["0", "1"])? {
            Some("1") => ConfirmScreen::Merchant {
                url: p.url(Field::PayConfirmScreenUrl)?.ok_or_else(|| {
                    ResultCode::field(
                        Kind::FieldMissing,
                        Field::PayConfirmScreenUrl,
                        "is required with payConfirmScreenType \"1\" (merchant-hosted confirmation).",
                    )
                })?,
            },
            _ => {
                p.forbid(
                    Field::PayConfirmScreenUrl,
                    "may be given only with payConfirmScreenType \"1\".",
                )?;
                ConfirmScreen::Gateway
            }
        };
        let options = AmazonOptions {
            address_restrictions: address_restrictions(p)?,
            suppress_shipping_address_view: p.flag(Field::SuppressShippingAddressView)?,
            extend_expiration: p.flag(Field::ExtendExpiration)?.unwrap_or(false),
            platform_id: platform_id(p)?,
        };
        Ok(Authorize {
            order_id,
            amount,
            with_capture,
            success_url: p.url(Field::SuccessUrl)?,
            cancel_url: p.url(Field::CancelUrl)?,
            error_url: p.url(Field::ErrorUrl)?,
            note_to_buyer: p.text(Field::NoteToBuyer, 255)?,
            authorize_push_url: p.url(Field::AuthorizePushUrl)?,
            capture_push_url: p.url(Field::CapturePushUrl)?,
            cancel_push_url: p.url(Field::CancelPushUrl)?,
            consent,
            confirm_screen,
            options,
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

/// The Create Checkout Session request of an Authorize: one-time or recurring, with the options
/// passed through (`addressRestrictions` as `deliverySpecifications`, `extendExpiration`,
/// `platformId`, `noteToBuyer`).
fn checkout_request(
    state: &AppState,
    dummy: bool,
    fields: &Authorize,
    consent: Option<&Consent>,
    order_id: &OrderId,
    public_ref: &str,
) -> wire::CreateCheckoutSessionRequest {
    let base = &state.base_url;
    let intent = intent_of(consent, fields.with_capture);
    let (permission_type, recurring) = match consent {
        Some(c) => (ChargePermissionType::Recurring, Some(recurring_metadata(c))),
        None => (ChargePermissionType::OneTime, None),
    };
    let delivery = fields
        .options
        .address_restrictions
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .map(|r| serde_json::json!({ "addressRestrictions": r }));
    wire::CreateCheckoutSessionRequest {
        web_checkout_details: wire::WebCheckoutDetailsRequest {
            checkout_review_return_url: Some(crate::handoff::review_url(base, public_ref)),
            checkout_result_return_url: None,
            checkout_cancel_url: Some(format!("{base}/amazonpay/cancel/{public_ref}")),
        },
        store_id: state.amazon_for(dummy).store_id().to_owned(),
        charge_permission_type: Some(permission_type),
        recurring_metadata: recurring,
        payment_details: Some(wire::PaymentDetailsRequest {
            payment_intent: Some(intent),
            can_handle_pending_authorization: Some(true),
            charge_amount: Some(Price::from_money(Money::jpy(fields.amount))),
            total_order_amount: None,
            presentment_currency: Some("JPY".into()),
            extend_expiration: fields.options.extend_expiration.then_some(true),
        }),
        merchant_metadata: Some(wire::MerchantMetadataRequest {
            merchant_reference_id: Some(order_id.to_string()),
            merchant_store_name: Some(state.store_name.clone()),
            note_to_buyer: fields.note_to_buyer.clone(),
            custom_information: None,
        }),
        platform_id: fields.options.platform_id.clone(),
        delivery_specifications: delivery,
    }
}

/// What Amazon is asked to do when the buyer confirms: nothing but the consent (consent only),
/// authorize, or authorize and capture.
pub fn payment_intent(record: &OrderRecord) -> PaymentIntent {
    intent_of(record.consent.as_ref(), record.with_capture)
}

fn intent_of(consent: Option<&Consent>, with_capture: bool) -> PaymentIntent {
    match (consent, with_capture) {
        (Some(c), _) if !c.with_authorization => PaymentIntent::Confirm,
        (_, true) => PaymentIntent::AuthorizeWithCapture,
        (_, false) => PaymentIntent::Authorize,
    }
}

/// Amazon's recurring metadata of a consent.
pub fn recurring_metadata(c: &Consent) -> wire::RecurringMetadata {
    wire::RecurringMetadata {
        frequency: Some(wire::Frequency {
            unit: c.frequency.unit().as_str().to_owned(),
            value: c.frequency.value().to_string(),
        }),
        amount: Some(Price::from_money(Money::jpy(c.amount))),
    }
}

/// Records the order and answers with the hand-off page ([`crate::handoff`]): Amazon Pay is not
/// called; the page carries the order's Create Checkout Session request, signed, and Amazon
/// creates the session when the buyer presses the button.
pub async fn run(state: &AppState, caller: &Caller, fields: Authorize) -> Answer {
    let ccid = &caller.merchant.ccid;
    let order_id = fields.order_id.clone();
    let consent = match fields
        .consent
        .map(|c| c.resolve(caller.merchant.consent_auth_default, fields.with_capture))
        .transpose()
    {
        Ok(c) => c,
        Err(r) => return Answer::about(&order_id, r, Reply::Nothing),
    };
    let _guard = state.locks.lock(ccid, &order_id).await;
    match state.store.order(ccid, &order_id).await {
        Ok(None) => {}
        Ok(Some(_)) => return Answer::about(&order_id, duplicate(&order_id), Reply::Nothing),
        Err(e) => return Answer::about(&order_id, store_failure(e), Reply::Nothing),
    }
    let public_ref = crate::util::buyer_ref(&state.ref_key, ccid, &order_id);
    let create = checkout_request(
        state,
        caller.dummy,
        &fields,
        consent.as_ref(),
        &order_id,
        &public_ref,
    );
    let product = if fields.options.suppress_shipping_address_view == Some(true) {
        ProductType::PayOnly
    } else {
        ProductType::PayAndShip
    };
    let page = match hand_off_page(state, caller.dummy, &create, fields.amount, product) {
        Ok(page) => page,
        Err(r) => return Answer::about(&order_id, r, Reply::Nothing),
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
        // Bound when the buyer comes back from Amazon with the session the payload created.
        checkout_session_id: None,
        charge_permission_id: None,
        charge_id: None,
        in_flight: None,
        consent,
        original_order_id: None,
        confirm_screen: fields.confirm_screen,
        options: fields.options,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    let result = ResultCode::success();
    let mut entry = history(
        caller.command.as_str(),
        &caller.params_text,
        &result,
        state.now_text(),
    );
    entry.amount = Some(record.order.amount);
    let unit = Unit::new(ccid, &order_id)
        .with(Write::InsertOrder(record))
        .with(Write::History(entry));
    match state.store.apply(&unit).await {
        Ok(()) => {}
        Err(StoreError::Duplicate) => {
            return Answer::about(&order_id, duplicate(&order_id), Reply::Nothing)
        }
        Err(e) => return Answer::about(&order_id, store_failure(e), Reply::Nothing),
    }
    Answer::about(&order_id, result, Reply::BuyerPage { html: page })
}

/// The hand-off page of an order: `create` serialised once, signed with the merchant's Amazon
/// Pay key, in the page that renders the Amazon Pay button.
fn hand_off_page(
    state: &AppState,
    dummy: bool,
    create: &wire::CreateCheckoutSessionRequest,
    amount: Yen,
    product: ProductType,
) -> Result<String, ResultCode> {
    let internal = |what: String| {
        tracing::error!(%what, "hand-off page");
        ResultCode::new(
            Kind::Internal,
            "The Amazon Pay button could not be prepared.",
        )
    };
    let payload_json = serde_json::to_string(create).map_err(|e| internal(e.to_string()))?;
    let signed = state
        .amazon_for(dummy)
        .sign_button_payload(payload_json)
        .map_err(|e| internal(e.to_string()))?;
    state
        .hand_off_for(dummy)
        .page(&state.templates, &signed, amount, product)
        .map_err(|e| internal(e.to_string()))
}
