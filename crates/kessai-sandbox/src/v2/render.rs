//! The engine's records as Checkout v2 JSON objects (the wire structs of `kessai-amazonpay`).

use crate::buyers;
use crate::engine::charge::ChargeCancel;
use crate::engine::clock::timestamp;
use crate::engine::permission::{CloseReason, Recurring};
use crate::engine::session::Missing;
use crate::engine::{
    BuyerChoice, CancelReason, Charge, ChargeState, Decline, Intent, Metadata, Permission,
    PermissionKind, PermissionState, Refund, RefundState, Session, SessionState,
};
use kessai_amazonpay::wire::{self, *};

fn status<S>(
    state: S,
    reason: Option<ReasonCode>,
    description: Option<&str>,
    at: i64,
) -> StatusDetails<S> {
    StatusDetails {
        state,
        reason_code: reason,
        reason_description: description.map(str::to_owned),
        last_updated_timestamp: Some(timestamp(at)),
    }
}

/// A test address as Amazon writes addresses.
pub fn address(a: &buyers::TestAddress) -> Address {
    Address {
        name: Some(a.name.to_owned()),
        address_line1: Some(a.line1.to_owned()),
        address_line2: (!a.line2.is_empty()).then(|| a.line2.to_owned()),
        address_line3: None,
        city: Some(a.city.to_owned()),
        county: None,
        district: None,
        state_or_region: Some(a.state_or_region.to_owned()),
        postal_code: Some(a.postal_code.to_owned()),
        country_code: Some("JP".to_owned()),
        phone_number: Some(a.phone.to_owned()),
    }
}

/// The buyer, shipping address, billing address and payment method a signed-in buyer chose.
struct BuyerParts {
    buyer: Option<Buyer>,
    shipping: Option<Address>,
    billing: Option<Address>,
    preferences: Option<Vec<PaymentPreference>>,
}

fn buyer_parts(choice: Option<&BuyerChoice>) -> BuyerParts {
    match choice.map(BuyerChoice::resolve) {
        Some(Ok((b, a, i))) => BuyerParts {
            buyer: Some(Buyer {
                buyer_id: Some(b.id.to_owned()),
                name: Some(b.name.to_owned()),
                email: Some(b.email.to_owned()),
                phone_number: Some(b.phone.to_owned()),
                prime_membership_types: None,
            }),
            shipping: Some(address(a)),
            billing: b.addresses.first().map(address),
            preferences: Some(vec![PaymentPreference {
                payment_descriptor: Some(i.descriptor.to_owned()),
            }]),
        },
        _ => BuyerParts {
            buyer: None,
            shipping: None,
            billing: None,
            preferences: None,
        },
    }
}

fn price(m: kessai_core::Money) -> Price {
    Price::from_money(m)
}

pub fn intent(i: Intent) -> PaymentIntent {
    match i {
        Intent::Confirm => PaymentIntent::Confirm,
        Intent::Authorize => PaymentIntent::Authorize,
        Intent::AuthorizeWithCapture => PaymentIntent::AuthorizeWithCapture,
    }
}

fn kind(k: PermissionKind) -> ChargePermissionType {
    match k {
        PermissionKind::OneTime => ChargePermissionType::OneTime,
        PermissionKind::Recurring => ChargePermissionType::Recurring,
        PermissionKind::PaymentMethodOnFile => ChargePermissionType::PaymentMethodOnFile,
    }
}

fn metadata(m: &Metadata) -> MerchantMetadata {
    MerchantMetadata {
        merchant_reference_id: m.reference_id.clone(),
        merchant_store_name: m.store_name.clone(),
        note_to_buyer: m.note_to_buyer.clone(),
        custom_information: m.custom_information.clone(),
    }
}

fn recurring(r: &Recurring) -> RecurringMetadata {
    RecurringMetadata {
        frequency: r.frequency.as_ref().map(|(unit, value)| wire::Frequency {
            unit: unit.name().to_owned(),
            value: value.clone(),
        }),
        amount: r.amount.map(price),
    }
}

pub fn cancel_reason(r: CancelReason) -> ReasonCode {
    match r {
        CancelReason::BuyerCanceled => ReasonCode::BuyerCanceled,
        CancelReason::Expired => ReasonCode::Expired,
        CancelReason::Declined => ReasonCode::Declined,
        CancelReason::AmazonCanceled => ReasonCode::AmazonCanceled,
    }
}

pub fn decline_reason(d: Decline) -> ReasonCode {
    match d {
        Decline::Soft => ReasonCode::SoftDeclined,
        Decline::Hard => ReasonCode::HardDeclined,
        Decline::Rejected => ReasonCode::AmazonRejected,
        Decline::ProcessingFailure => ReasonCode::ProcessingFailure,
        Decline::TimedOut => ReasonCode::TransactionTimedOut,
    }
}

fn session_status(s: &Session) -> StatusDetails<CheckoutSessionState> {
    match s.state() {
        SessionState::Open => status(CheckoutSessionState::Open, None, None, s.updated()),
        SessionState::Completed => status(CheckoutSessionState::Completed, None, None, s.updated()),
        SessionState::Canceled { reason, simulated } => {
            let description = if simulated {
                "Simulated by x-amz-pay-simulation-code."
            } else {
                match reason {
                    CancelReason::BuyerCanceled => "The buyer canceled the checkout.",
                    CancelReason::Expired => {
                        "The checkout session expired 24 hours after it was created."
                    }
                    CancelReason::Declined => "The payment was declined.",
                    CancelReason::AmazonCanceled => "Amazon canceled the checkout.",
                }
            };
            status(
                CheckoutSessionState::Canceled,
                Some(cancel_reason(reason)),
                Some(description),
                s.updated(),
            )
        }
    }
}

fn constraint(m: Missing) -> Constraint {
    let (id, description) = match m {
        Missing::Buyer => ("BuyerNotAssociated", "The buyer has not signed in yet."),
        Missing::ResultUrl => (
            "CheckoutResultReturnUrlNotSet",
            "checkoutResultReturnUrl is not set.",
        ),
        Missing::ChargeAmount => (
            "ChargeAmountNotSet",
            "paymentDetails.chargeAmount is not set.",
        ),
        Missing::Intent => (
            "PaymentIntentNotSet",
            "paymentDetails.paymentIntent is not set.",
        ),
    };
    Constraint {
        constraint_id: id.into(),
        description: description.into(),
    }
}

/// Where the buyer confirms the payment, on the emulator's own pages.
pub fn redirect_url(base_url: &str, s: &Session) -> Option<String> {
    s.payable().then(|| {
        format!(
            "{base_url}/checkout/confirm?amazonCheckoutSessionId={}",
            s.id()
        )
    })
}

pub fn session(base_url: &str, s: &Session) -> CheckoutSession {
    let p = s.payment();
    let parts = buyer_parts(s.choice());
    CheckoutSession {
        checkout_session_id: s.id().as_str().to_owned(),
        web_checkout_details: WebCheckoutDetails {
            checkout_review_return_url: s.urls().review.clone(),
            checkout_result_return_url: s.urls().result.clone(),
            amazon_pay_redirect_url: redirect_url(base_url, s),
            checkout_cancel_url: s.urls().cancel.clone(),
            checkout_mode: None,
        },
        product_type: Some(s.product().name().to_owned()),
        payment_details: PaymentDetails {
            payment_intent: p.intent.map(intent),
            can_handle_pending_authorization: p.can_handle_pending,
            charge_amount: p.charge_amount.map(price),
            total_order_amount: p.total_order_amount.map(price),
            soft_descriptor: p.soft_descriptor.clone(),
            presentment_currency: p.presentment_currency.clone(),
            allow_overcharge: None,
            extend_expiration: p.extend_expiration,
        },
        charge_permission_type: Some(kind(s.kind())),
        order_type: None,
        recurring_metadata: s.recurring().map(recurring),
        payment_method_on_file_metadata: None,
        merchant_details: None,
        merchant_metadata: metadata(s.metadata()),
        supplementary_data: None,
        buyer: parts.buyer,
        billing_address: parts.billing,
        payment_preferences: parts.preferences,
        status_details: session_status(s),
        shipping_address: parts.shipping.filter(|_| s.product().ships()),
        platform_id: s.platform_id().map(str::to_owned),
        charge_permission_id: s.permission_id().map(|id| id.as_str().to_owned()),
        charge_id: s.charge_id().map(|id| id.as_str().to_owned()),
        constraints: Some(s.missing().iter().copied().map(constraint).collect()),
        creation_timestamp: Some(timestamp(s.created())),
        expiration_timestamp: Some(timestamp(s.expires())),
        store_id: Some(s.store_id().to_owned()),
        provider_metadata: None,
        release_environment: Some(s.environment().name().to_owned()),
        checkout_button_text: None,
        delivery_specifications: s.delivery().cloned(),
        tokens: None,
    }
}

pub fn permission(p: &Permission) -> ChargePermission {
    let parts = buyer_parts(p.choice());
    let status_details = match p.state() {
        PermissionState::Chargeable => ChargePermissionStatus {
            state: ChargePermissionState::Chargeable,
            reasons: None,
            last_updated_timestamp: Some(timestamp(p.updated())),
        },
        PermissionState::Closed(why) => {
            let (code, description) = match why {
                CloseReason::Expired => (
                    ReasonCode::Expired,
                    "The charge permission expired after 180 days.".to_owned(),
                ),
                CloseReason::OrderCaptured => (
                    ReasonCode::AmazonClosed,
                    "The order total was captured.".to_owned(),
                ),
                CloseReason::Merchant(reason) => (ReasonCode::MerchantClosed, reason.clone()),
            };
            ChargePermissionStatus {
                state: ChargePermissionState::Closed,
                reasons: Some(vec![Reason {
                    reason_code: code,
                    reason_description: Some(description),
                }]),
                last_updated_timestamp: Some(timestamp(p.updated())),
            }
        }
    };
    ChargePermission {
        charge_permission_id: p.id().as_str().to_owned(),
        charge_permission_reference_id: p.reference_id().map(str::to_owned),
        platform_id: p.platform_id().map(str::to_owned),
        buyer: parts.buyer,
        shipping_address: parts.shipping.filter(|_| p.product().ships()),
        billing_address: parts.billing,
        payment_preferences: parts.preferences,
        status_details,
        creation_timestamp: Some(timestamp(p.created())),
        expiration_timestamp: p.expires().map(timestamp),
        merchant_metadata: Some(metadata(p.metadata())),
        release_environment: Some(p.environment().name().to_owned()),
        limits: p.limit().map(|limit| Limits {
            amount_limit: Some(price(limit)),
            amount_balance: p.balance().map(price),
        }),
        charge_permission_type: Some(kind(p.kind())),
        recurring_metadata: p.recurring().map(recurring),
        presentment_currency: Some(p.currency().code().to_owned()),
    }
}

fn charge_status(c: &Charge) -> StatusDetails<wire::ChargeState> {
    let at = c.updated();
    match c.state() {
        ChargeState::AuthorizationInitiated { .. } => {
            status(wire::ChargeState::AuthorizationInitiated, None, None, at)
        }
        ChargeState::Authorized => status(wire::ChargeState::Authorized, None, None, at),
        ChargeState::CaptureInitiated { .. } => {
            status(wire::ChargeState::CaptureInitiated, None, None, at)
        }
        ChargeState::Captured => status(wire::ChargeState::Captured, None, None, at),
        ChargeState::Declined(d) => status(
            wire::ChargeState::Declined,
            Some(decline_reason(*d)),
            Some("The authorization was declined."),
            at,
        ),
        ChargeState::Canceled(why) => {
            let (code, description) = match why {
                ChargeCancel::ExpiredUnused => (
                    ReasonCode::ExpiredUnused,
                    "The authorization expired unused after 30 days.",
                ),
                ChargeCancel::MarkedExpired => (
                    ReasonCode::ExpiredUnused,
                    "Marked expired by the payment service provider.",
                ),
                ChargeCancel::Merchant(reason) => (
                    ReasonCode::MerchantCanceled,
                    reason
                        .as_deref()
                        .unwrap_or("The merchant canceled the charge."),
                ),
                ChargeCancel::PermissionClosed => (
                    ReasonCode::ChargePermissionCanceled,
                    "The charge permission was closed.",
                ),
            };
            status(
                wire::ChargeState::Canceled,
                Some(code),
                Some(description),
                at,
            )
        }
    }
}

pub fn charge(c: &Charge) -> wire::Charge {
    wire::Charge {
        charge_id: c.id().as_str().to_owned(),
        charge_amount: price(c.amount()),
        charge_permission_id: c.permission_id().as_str().to_owned(),
        capture_amount: c.captured().map(price),
        refunded_amount: c.refunded().map(price),
        soft_descriptor: c.soft_descriptor().map(str::to_owned),
        provider_metadata: None,
        converted_amount: None,
        conversion_rate: None,
        channel: Some("Web".to_owned()),
        charge_initiator: None,
        status_details: charge_status(c),
        creation_timestamp: Some(timestamp(c.created())),
        expiration_timestamp: Some(timestamp(c.expires())),
        release_environment: c.environment().map(|e| e.name().to_owned()),
        merchant_metadata: Some(metadata(c.metadata())),
        platform_id: None,
        web_checkout_details: None,
    }
}

pub fn refund(r: &Refund) -> wire::Refund {
    let status_details = match r.state() {
        RefundState::RefundInitiated => {
            status(wire::RefundState::RefundInitiated, None, None, r.updated())
        }
        RefundState::Refunded => status(wire::RefundState::Refunded, None, None, r.updated()),
        RefundState::Declined => status(
            wire::RefundState::Declined,
            Some(ReasonCode::AmazonRejected),
            Some("The refund was declined (simulated)."),
            r.updated(),
        ),
    };
    wire::Refund {
        refund_id: r.id().as_str().to_owned(),
        charge_id: r.charge_id().as_str().to_owned(),
        creation_timestamp: Some(timestamp(r.created())),
        refund_amount: price(r.amount()),
        status_details,
        soft_descriptor: r.soft_descriptor().map(str::to_owned),
        release_environment: r.environment().map(|e| e.name().to_owned()),
    }
}
