//! The billing agreement (Auto Pay): its states, constraints, monthly limit and the pure rules of
//! each command on it.

use super::ids::{BillingAgreementId, Environment, SellerId};
use super::refusal::Refusal;
use super::{month_bounds, Timestamp, HOUR};
use kessai_core::{Currency, Money};
use serde::{Deserialize, Serialize};

/// How much a JP agreement may authorize per calendar month (UTC).
pub const JP_MONTHLY_LIMIT: i64 = 50_000;
/// An agreement not confirmed within this long is canceled (`Stale`).
pub const DRAFT_LIFETIME: i64 = 3 * HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BillingAgreementState {
    Draft,
    Open,
    Suspended,
    Canceled,
    Closed,
}

impl BillingAgreementState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::Open => "Open",
            Self::Suspended => "Suspended",
            Self::Canceled => "Canceled",
            Self::Closed => "Closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BillingAgreementReason {
    InvalidPaymentMethod,
    Stale,
    SellerClosed,
}

impl BillingAgreementReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPaymentMethod => "InvalidPaymentMethod",
            Self::Stale => "Stale",
            Self::SellerClosed => "SellerClosed",
        }
    }
}

/// What stops a Draft agreement from being confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Constraint {
    BuyerConsentNotSet,
    PaymentPlanNotSet,
    ShippingAddressNotSet,
}

impl Constraint {
    pub fn id(self) -> &'static str {
        match self {
            Self::BuyerConsentNotSet => "BuyerConsentNotSet",
            Self::PaymentPlanNotSet => "PaymentPlanNotSet",
            Self::ShippingAddressNotSet => "ShippingAddressNotSet",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::BuyerConsentNotSet => "The buyer has not given consent for this billing agreement.",
            Self::PaymentPlanNotSet => "The buyer has not been able to select a Payment method for the given Billing Agreement.",
            Self::ShippingAddressNotSet => "The buyer has not selected a Shipping address from the Amazon AddressBook widget.",
        }
    }
}

/// The buyer's chosen payment method: a test instrument, and whether charging it is declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    instrument_id: String,
    declines: bool,
}

impl PaymentMethod {
    pub fn new(instrument_id: impl Into<String>, declines: bool) -> PaymentMethod {
        PaymentMethod {
            instrument_id: instrument_id.into(),
            declines,
        }
    }

    pub fn instrument_id(&self) -> &str {
        &self.instrument_id
    }

    pub fn declines(&self) -> bool {
        self.declines
    }
}

/// What the seller sets with SetBillingAgreementDetails (each `None` leaves the value as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementAttributes {
    pub platform_id: Option<String>,
    pub seller_note: Option<String>,
    pub seller_billing_agreement_id: Option<String>,
    pub store_name: Option<String>,
    pub custom_information: Option<String>,
}

impl AgreementAttributes {
    fn merged(&self, new: &AgreementAttributes) -> AgreementAttributes {
        let pick = |n: &Option<String>, o: &Option<String>| n.clone().or_else(|| o.clone());
        AgreementAttributes {
            platform_id: pick(&new.platform_id, &self.platform_id),
            seller_note: pick(&new.seller_note, &self.seller_note),
            seller_billing_agreement_id: pick(
                &new.seller_billing_agreement_id,
                &self.seller_billing_agreement_id,
            ),
            store_name: pick(&new.store_name, &self.store_name),
            custom_information: pick(&new.custom_information, &self.custom_information),
        }
    }
}

/// The monthly allowance: what was authorized in the month starting at `period_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Usage {
    period_start: Timestamp,
    consumed: i64,
}

/// The outcome of ValidateBillingAgreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    Success,
    /// The payment method is declined (`InvalidPaymentMethod`).
    Failure,
}

/// What the buyer chooses in the widgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerChange {
    Address(String),
    PaymentMethod(PaymentMethod),
    Consent(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingAgreement {
    id: BillingAgreementId,
    seller: SellerId,
    environment: Environment,
    created_at: Timestamp,
    updated_at: Timestamp,
    state: BillingAgreementState,
    reason: Option<BillingAgreementReason>,
    reason_description: Option<String>,
    buyer_id: String,
    address_id: Option<String>,
    payment_method: Option<PaymentMethod>,
    consent: bool,
    attributes: AgreementAttributes,
    #[serde(with = "super::stored::currency")]
    currency: Currency,
    usage: Usage,
    /// When a simulated suspension ends (`PaymentMethodUpdateTimeInMins`).
    reopen_at: Option<Timestamp>,
}

impl BillingAgreement {
    /// A Draft agreement as the widgets leave it: address and payment method chosen (or not),
    /// consent not yet given.
    #[allow(clippy::too_many_arguments)]
    pub fn draft(
        id: BillingAgreementId,
        seller: SellerId,
        environment: Environment,
        currency: Currency,
        buyer_id: impl Into<String>,
        address_id: Option<String>,
        payment_method: Option<PaymentMethod>,
        now: Timestamp,
    ) -> BillingAgreement {
        BillingAgreement {
            id,
            seller,
            environment,
            created_at: now,
            updated_at: now,
            state: BillingAgreementState::Draft,
            reason: None,
            reason_description: None,
            buyer_id: buyer_id.into(),
            address_id,
            payment_method,
            consent: false,
            attributes: AgreementAttributes::default(),
            currency,
            usage: Usage {
                period_start: month_bounds(now).0,
                consumed: 0,
            },
            reopen_at: None,
        }
    }

    pub fn id(&self) -> &BillingAgreementId {
        &self.id
    }
    pub fn seller(&self) -> &SellerId {
        &self.seller
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    pub fn state(&self) -> BillingAgreementState {
        self.state
    }
    pub fn reason(&self) -> Option<BillingAgreementReason> {
        self.reason
    }
    pub fn reason_description(&self) -> Option<&str> {
        self.reason_description.as_deref()
    }
    pub fn buyer_id(&self) -> &str {
        &self.buyer_id
    }
    pub fn address_id(&self) -> Option<&str> {
        self.address_id.as_deref()
    }
    pub fn payment_method(&self) -> Option<&PaymentMethod> {
        self.payment_method.as_ref()
    }
    pub fn consent(&self) -> bool {
        self.consent
    }
    pub fn attributes(&self) -> &AgreementAttributes {
        &self.attributes
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// Whether the buyer confirmed it at least once (then its details show the buyer).
    pub fn confirmed(&self) -> bool {
        let stale = self.state == BillingAgreementState::Canceled
            && self.reason == Some(BillingAgreementReason::Stale);
        self.state != BillingAgreementState::Draft && !stale
    }

    /// What stops confirming it now.
    pub fn constraints(&self) -> Vec<Constraint> {
        if self.state != BillingAgreementState::Draft {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.address_id.is_none() {
            out.push(Constraint::ShippingAddressNotSet);
        }
        if self.payment_method.is_none() {
            out.push(Constraint::PaymentPlanNotSet);
        }
        if !self.consent {
            out.push(Constraint::BuyerConsentNotSet);
        }
        out
    }

    /// The allowance per month.
    pub fn limit(&self) -> Money {
        Money::new(JP_MONTHLY_LIMIT, self.currency)
    }

    /// The month `now` falls in (start, end).
    pub fn period(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        month_bounds(now)
    }

    /// What may still be authorized this month.
    pub fn remaining(&self, now: Timestamp) -> Money {
        let consumed = if self.usage.period_start == month_bounds(now).0 {
            self.usage.consumed
        } else {
            0
        };
        Money::new((JP_MONTHLY_LIMIT - consumed).max(0), self.currency)
    }

    fn moved(&self, state: BillingAgreementState, now: Timestamp) -> BillingAgreement {
        BillingAgreement {
            state,
            reason: None,
            reason_description: None,
            updated_at: now,
            reopen_at: None,
            ..self.clone()
        }
    }

    /// SetBillingAgreementDetails: only while Draft.
    pub fn plan_set(
        &self,
        attributes: &AgreementAttributes,
        now: Timestamp,
    ) -> Result<BillingAgreement, Refusal> {
        if self.state != BillingAgreementState::Draft {
            return Err(Refusal::BillingAgreementNotModifiable(self.state));
        }
        Ok(BillingAgreement {
            attributes: self.attributes.merged(attributes),
            updated_at: now,
            ..self.clone()
        })
    }

    /// ConfirmBillingAgreement: Draft without constraints → Open; Open or Suspended → Open (the
    /// buyer changed something and the seller confirms again).
    pub fn plan_confirm(&self, now: Timestamp) -> Result<BillingAgreement, Refusal> {
        use BillingAgreementState as S;
        match self.state {
            S::Draft => {
                let constraints = self.constraints();
                if constraints.is_empty() {
                    Ok(self.moved(S::Open, now))
                } else {
                    Err(Refusal::BillingAgreementConstraints(constraints))
                }
            }
            S::Open => Ok(self.clone()),
            S::Suspended => Ok(self.moved(S::Open, now)),
            S::Canceled | S::Closed => Err(Refusal::BillingAgreementStatus(self.state)),
        }
    }

    /// ValidateBillingAgreement: Open or Suspended; a declined payment method suspends it, a
    /// good one opens a suspended agreement again.
    pub fn plan_validate(&self, now: Timestamp) -> Result<(BillingAgreement, Validation), Refusal> {
        use BillingAgreementState as S;
        let declines = self.payment_method.as_ref().is_none_or(|p| p.declines);
        match (self.state, declines) {
            (S::Open, false) => Ok((self.clone(), Validation::Success)),
            (S::Suspended, false) => Ok((self.moved(S::Open, now), Validation::Success)),
            (S::Open, true) => Ok((self.suspended(None, now), Validation::Failure)),
            (S::Suspended, true) => Ok((self.clone(), Validation::Failure)),
            (S::Draft | S::Canceled | S::Closed, _) => {
                Err(Refusal::BillingAgreementStatus(self.state))
            }
        }
    }

    /// CloseBillingAgreement: Closed/SellerClosed with the seller's reason.
    pub fn plan_close(
        &self,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<BillingAgreement, Refusal> {
        use BillingAgreementState as S;
        match self.state {
            S::Draft | S::Open | S::Suspended => {
                let mut next = self.moved(S::Closed, now);
                next.reason = Some(BillingAgreementReason::SellerClosed);
                next.reason_description = reason.map(str::to_owned);
                Ok(next)
            }
            S::Canceled | S::Closed => Err(Refusal::BillingAgreementStatus(self.state)),
        }
    }

    /// Whether `amount` may be authorized on it now (Open, the agreement's currency, within the
    /// month's remaining balance).
    pub fn plan_charge(&self, amount: Money, now: Timestamp) -> Result<(), Refusal> {
        if self.state != BillingAgreementState::Open {
            return Err(Refusal::BillingAgreementStatus(self.state));
        }
        if amount.currency() != self.currency {
            return Err(Refusal::CurrencyMismatch {
                expected: self.currency,
                got: amount.currency(),
            });
        }
        let remaining = self.remaining(now);
        if amount.minor() > remaining.minor() {
            return Err(Refusal::PeriodicAmountExceeded {
                remaining,
                asked: amount,
            });
        }
        Ok(())
    }

    /// `amount` authorized at `at` counts against that month's allowance.
    pub fn consumed(&self, amount: Money, at: Timestamp) -> BillingAgreement {
        let period_start = month_bounds(at).0;
        let before = if self.usage.period_start == period_start {
            self.usage.consumed
        } else {
            0
        };
        BillingAgreement {
            usage: Usage {
                period_start,
                consumed: before.saturating_add(amount.minor()),
            },
            ..self.clone()
        }
    }

    /// A declined authorization made at `at` gives its `amount` back (if still in that month).
    pub fn released(&self, amount: Money, at: Timestamp) -> BillingAgreement {
        if self.usage.period_start != month_bounds(at).0 {
            return self.clone();
        }
        BillingAgreement {
            usage: Usage {
                period_start: self.usage.period_start,
                consumed: (self.usage.consumed - amount.minor()).max(0),
            },
            ..self.clone()
        }
    }

    /// Suspended/InvalidPaymentMethod (an Open agreement whose payment method was declined);
    /// open again at `reopen_at` if given.
    pub fn suspended(&self, reopen_at: Option<Timestamp>, now: Timestamp) -> BillingAgreement {
        if !matches!(
            self.state,
            BillingAgreementState::Open | BillingAgreementState::Suspended
        ) {
            return self.clone();
        }
        let mut next = self.moved(BillingAgreementState::Suspended, now);
        next.reason = Some(BillingAgreementReason::InvalidPaymentMethod);
        next.reopen_at = reopen_at;
        next
    }

    /// The buyer gave (or took back) consent in the consent widget.
    pub fn with_consent(&self, consent: bool, now: Timestamp) -> BillingAgreement {
        BillingAgreement {
            consent,
            updated_at: now,
            ..self.clone()
        }
    }

    /// A buyer's choice in a widget, if the agreement still takes it: address and payment
    /// method until it is closed or canceled, consent only before it is confirmed.
    pub fn plan_buyer_change(
        &self,
        change: BuyerChange,
        now: Timestamp,
    ) -> Result<BillingAgreement, Refusal> {
        use BillingAgreementState as S;
        let open = matches!(self.state, S::Draft | S::Open | S::Suspended);
        match change {
            BuyerChange::Consent(_) if self.state != S::Draft => {
                Err(Refusal::BillingAgreementNotModifiable(self.state))
            }
            _ if !open => Err(Refusal::BillingAgreementNotModifiable(self.state)),
            BuyerChange::Address(a) => Ok(self.with_address(a, now)),
            BuyerChange::PaymentMethod(m) => Ok(self.with_payment_method(m, now)),
            BuyerChange::Consent(c) => Ok(self.with_consent(c, now)),
        }
    }

    /// The buyer picked a shipping address in the address book widget.
    pub fn with_address(&self, address_id: impl Into<String>, now: Timestamp) -> BillingAgreement {
        BillingAgreement {
            address_id: Some(address_id.into()),
            updated_at: now,
            ..self.clone()
        }
    }

    /// The buyer picked another payment method in the wallet widget. A suspended agreement
    /// stays suspended until the seller confirms it again.
    pub fn with_payment_method(&self, method: PaymentMethod, now: Timestamp) -> BillingAgreement {
        BillingAgreement {
            payment_method: Some(method),
            updated_at: now,
            ..self.clone()
        }
    }

    /// When something happens to it on its own: a Draft goes stale, a simulated suspension ends.
    pub fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            BillingAgreementState::Draft => Some(self.created_at + DRAFT_LIFETIME),
            BillingAgreementState::Suspended => self.reopen_at,
            _ => None,
        }
    }

    /// What it is at `now` after what fell due (`None`: nothing did).
    pub fn fall_due(&self, now: Timestamp) -> Option<BillingAgreement> {
        let due = self.due_at().filter(|at| *at <= now)?;
        Some(match self.state {
            BillingAgreementState::Draft => {
                let mut next = self.moved(BillingAgreementState::Canceled, due);
                next.reason = Some(BillingAgreementReason::Stale);
                next
            }
            _ => self.moved(BillingAgreementState::Open, due),
        })
    }
}

#[cfg(test)]
mod tests;
