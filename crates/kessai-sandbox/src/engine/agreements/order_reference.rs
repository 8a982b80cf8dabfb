//! The order reference: one purchase, made by the seller on a billing agreement
//! (CreateOrderReferenceForId) or implied by AuthorizeOnBillingAgreement.

use super::ids::{AuthorizationId, BillingAgreementId, Environment, OrderReferenceId, SellerId};
use super::refusal::Refusal;
use super::{Timestamp, DAY};
use kessai_core::Money;
use serde::{Deserialize, Serialize};

/// An order reference lives this long.
pub const LIFETIME: i64 = 180 * DAY;
/// Authorizations an order reference takes (JP: 10 in all).
pub const MAX_AUTHORIZATIONS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderReferenceState {
    Draft,
    Open,
    Suspended,
    Canceled,
    Closed,
}

impl OrderReferenceState {
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
pub enum OrderReferenceReason {
    InvalidPaymentMethod,
    SellerCanceled,
    Expired,
    AmazonClosed,
    SellerClosed,
}

impl OrderReferenceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPaymentMethod => "InvalidPaymentMethod",
            Self::SellerCanceled => "SellerCanceled",
            Self::Expired => "Expired",
            Self::AmazonClosed => "AmazonClosed",
            Self::SellerClosed => "SellerClosed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderReferenceConstraint {
    AmountNotSet,
    PaymentMethodNotAllowed,
}

impl OrderReferenceConstraint {
    pub fn id(self) -> &'static str {
        match self {
            Self::AmountNotSet => "AmountNotSet",
            Self::PaymentMethodNotAllowed => "PaymentMethodNotAllowed",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::AmountNotSet => "The seller has not set the amount for the Order Reference.",
            Self::PaymentMethodNotAllowed => {
                "The payment method selected by the buyer is not allowed for this Order Reference."
            }
        }
    }
}

/// What the seller sets on an order reference (each `None` leaves the value as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAttributes {
    #[serde(with = "super::stored::opt_money")]
    pub order_total: Option<Money>,
    pub platform_id: Option<String>,
    pub seller_note: Option<String>,
    pub seller_order_id: Option<String>,
    pub store_name: Option<String>,
    pub custom_information: Option<String>,
    pub supplementary_data: Option<String>,
}

impl OrderAttributes {
    fn merged(&self, new: &OrderAttributes) -> OrderAttributes {
        let pick = |n: &Option<String>, o: &Option<String>| n.clone().or_else(|| o.clone());
        OrderAttributes {
            order_total: new.order_total.or(self.order_total),
            platform_id: pick(&new.platform_id, &self.platform_id),
            seller_note: pick(&new.seller_note, &self.seller_note),
            seller_order_id: pick(&new.seller_order_id, &self.seller_order_id),
            store_name: pick(&new.store_name, &self.store_name),
            custom_information: pick(&new.custom_information, &self.custom_information),
            supplementary_data: pick(&new.supplementary_data, &self.supplementary_data),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReference {
    id: OrderReferenceId,
    seller: SellerId,
    environment: Environment,
    parent: BillingAgreementId,
    created_at: Timestamp,
    updated_at: Timestamp,
    state: OrderReferenceState,
    reason: Option<OrderReferenceReason>,
    reason_description: Option<String>,
    attributes: OrderAttributes,
    buyer_id: String,
    /// The shipping address (inherited from the agreement, or none).
    address_id: Option<String>,
    authorizations: Vec<AuthorizationId>,
    payment_method_not_allowed: bool,
}

impl OrderReference {
    #[allow(clippy::too_many_arguments)]
    pub fn draft(
        id: OrderReferenceId,
        seller: SellerId,
        environment: Environment,
        parent: BillingAgreementId,
        buyer_id: impl Into<String>,
        address_id: Option<String>,
        attributes: OrderAttributes,
        now: Timestamp,
    ) -> OrderReference {
        OrderReference {
            id,
            seller,
            environment,
            parent,
            created_at: now,
            updated_at: now,
            state: OrderReferenceState::Draft,
            reason: None,
            reason_description: None,
            attributes,
            buyer_id: buyer_id.into(),
            address_id,
            authorizations: Vec::new(),
            payment_method_not_allowed: false,
        }
    }

    pub fn id(&self) -> &OrderReferenceId {
        &self.id
    }
    pub fn seller(&self) -> &SellerId {
        &self.seller
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    pub fn parent(&self) -> &BillingAgreementId {
        &self.parent
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn expires_at(&self) -> Timestamp {
        self.created_at + LIFETIME
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    pub fn state(&self) -> OrderReferenceState {
        self.state
    }
    pub fn reason(&self) -> Option<OrderReferenceReason> {
        self.reason
    }
    pub fn reason_description(&self) -> Option<&str> {
        self.reason_description.as_deref()
    }
    pub fn attributes(&self) -> &OrderAttributes {
        &self.attributes
    }
    pub fn buyer_id(&self) -> &str {
        &self.buyer_id
    }
    pub fn address_id(&self) -> Option<&str> {
        self.address_id.as_deref()
    }
    pub fn authorizations(&self) -> &[AuthorizationId] {
        &self.authorizations
    }

    pub fn constraints(&self) -> Vec<OrderReferenceConstraint> {
        if self.state != OrderReferenceState::Draft {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.attributes.order_total.is_none() {
            out.push(OrderReferenceConstraint::AmountNotSet);
        }
        if self.payment_method_not_allowed {
            out.push(OrderReferenceConstraint::PaymentMethodNotAllowed);
        }
        out
    }

    fn moved(
        &self,
        state: OrderReferenceState,
        reason: Option<OrderReferenceReason>,
        description: Option<&str>,
        now: Timestamp,
    ) -> OrderReference {
        OrderReference {
            state,
            reason,
            reason_description: description.map(str::to_owned),
            updated_at: now,
            ..self.clone()
        }
    }

    /// SetOrderReferenceDetails: while Draft (`PaymentMethodNotAllowed` simulated by the caller).
    pub fn plan_set(
        &self,
        attributes: &OrderAttributes,
        payment_method_not_allowed: bool,
        now: Timestamp,
    ) -> Result<OrderReference, Refusal> {
        if self.state != OrderReferenceState::Draft {
            return Err(Refusal::OrderReferenceNotModifiable(self.state));
        }
        Ok(OrderReference {
            attributes: self.attributes.merged(attributes),
            payment_method_not_allowed: self.payment_method_not_allowed
                || payment_method_not_allowed,
            updated_at: now,
            ..self.clone()
        })
    }

    /// ConfirmOrderReference: Draft without constraints → Open.
    pub fn plan_confirm(&self, now: Timestamp) -> Result<OrderReference, Refusal> {
        match self.state {
            OrderReferenceState::Draft => {
                let c = self.constraints();
                if c.is_empty() {
                    Ok(self.moved(OrderReferenceState::Open, None, None, now))
                } else {
                    Err(Refusal::OrderReferenceConstraints(c))
                }
            }
            s => Err(Refusal::OrderReferenceStatus(s)),
        }
    }

    /// Whether `amount` may be authorized on it now: Open, its currency, within its total, and
    /// fewer than [`MAX_AUTHORIZATIONS`] so far. `authorized` is what its other
    /// authorizations (not declined) hold.
    pub fn plan_authorize(&self, amount: Money, authorized: i64) -> Result<(), Refusal> {
        if self.state != OrderReferenceState::Open {
            return Err(Refusal::OrderReferenceStatus(self.state));
        }
        let total = self
            .attributes
            .order_total
            .ok_or(Refusal::OrderTotalNotSet)?;
        if amount.currency() != total.currency() {
            return Err(Refusal::CurrencyMismatch {
                expected: total.currency(),
                got: amount.currency(),
            });
        }
        let left = Money::new((total.minor() - authorized).max(0), total.currency());
        if amount.minor() > left.minor() {
            return Err(Refusal::AmountExceeded {
                left,
                asked: amount,
            });
        }
        if self.authorizations.len() >= MAX_AUTHORIZATIONS {
            return Err(Refusal::CountExceeded {
                what: "authorizations per order reference",
                max: MAX_AUTHORIZATIONS,
            });
        }
        Ok(())
    }

    /// An authorization was made on it.
    pub fn with_authorization(&self, id: AuthorizationId, now: Timestamp) -> OrderReference {
        let mut next = self.clone();
        next.authorizations.push(id);
        next.updated_at = now;
        next
    }

    /// Confirmed at once (AuthorizeOnBillingAgreement, `ConfirmNow`).
    pub fn opened(&self, now: Timestamp) -> OrderReference {
        self.moved(OrderReferenceState::Open, None, None, now)
    }

    /// CancelOrderReference: Draft, Open or Suspended, and nothing captured.
    pub fn plan_cancel(
        &self,
        reason: Option<&str>,
        anything_captured: bool,
        now: Timestamp,
    ) -> Result<OrderReference, Refusal> {
        use OrderReferenceState as S;
        match self.state {
            S::Draft | S::Open | S::Suspended if anything_captured => {
                Err(Refusal::CancelAfterCapture)
            }
            S::Draft | S::Open | S::Suspended => Ok(self.moved(
                S::Canceled,
                Some(OrderReferenceReason::SellerCanceled),
                reason,
                now,
            )),
            s => Err(Refusal::OrderReferenceStatus(s)),
        }
    }

    /// CloseOrderReference: Open or Suspended → Closed (`SellerClosed`, or `AmazonClosed` when
    /// simulated); closing a Closed one again changes nothing.
    pub fn plan_close(
        &self,
        reason: Option<&str>,
        by_amazon: bool,
        now: Timestamp,
    ) -> Result<OrderReference, Refusal> {
        use OrderReferenceState as S;
        let code = if by_amazon {
            OrderReferenceReason::AmazonClosed
        } else {
            OrderReferenceReason::SellerClosed
        };
        match self.state {
            S::Draft | S::Open | S::Suspended => Ok(self.moved(S::Closed, Some(code), reason, now)),
            S::Closed => Ok(self.clone()),
            S::Canceled => Err(Refusal::OrderReferenceStatus(S::Canceled)),
        }
    }

    /// Amazon closes the order reference an AuthorizeOnBillingAgreement implied, once its one
    /// authorization is made.
    pub fn closed_by_amazon(&self, now: Timestamp) -> OrderReference {
        self.moved(
            OrderReferenceState::Closed,
            Some(OrderReferenceReason::AmazonClosed),
            None,
            now,
        )
    }

    /// Suspended after an `InvalidPaymentMethod` decline.
    pub fn suspended(&self, now: Timestamp) -> OrderReference {
        if self.state != OrderReferenceState::Open {
            return self.clone();
        }
        self.moved(
            OrderReferenceState::Suspended,
            Some(OrderReferenceReason::InvalidPaymentMethod),
            None,
            now,
        )
    }

    pub fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            OrderReferenceState::Draft
            | OrderReferenceState::Open
            | OrderReferenceState::Suspended => Some(self.expires_at()),
            _ => None,
        }
    }

    /// Closed/Expired after 180 days.
    pub fn fall_due(&self, now: Timestamp) -> Option<OrderReference> {
        let due = self.due_at().filter(|at| *at <= now)?;
        Some(self.moved(
            OrderReferenceState::Closed,
            Some(OrderReferenceReason::Expired),
            None,
            due,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kessai_core::Currency;
    use OrderReferenceState as S;

    fn draft(total: Option<i64>) -> OrderReference {
        OrderReference::draft(
            OrderReferenceId::lookup("S03-1234567-1234567").unwrap(),
            SellerId::lookup("A1").unwrap(),
            Environment::Sandbox,
            BillingAgreementId::lookup("C03-1234567-1234567").unwrap(),
            "b",
            None,
            OrderAttributes {
                order_total: total.map(|n| Money::new(n, Currency::Jpy)),
                ..Default::default()
            },
            100,
        )
    }

    #[test]
    fn confirm_authorize_cancel_close_in_every_state() {
        assert_eq!(
            draft(None).plan_confirm(1),
            Err(Refusal::OrderReferenceConstraints(vec![
                OrderReferenceConstraint::AmountNotSet
            ]))
        );
        let d = draft(Some(1000));
        let open = d.plan_confirm(200).unwrap();
        let states = [
            d.clone(),
            open.clone(),
            open.suspended(300),
            open.plan_cancel(None, false, 300).unwrap(),
            open.plan_close(Some("x"), false, 300).unwrap(),
        ];
        let jpy = |n| Money::new(n, Currency::Jpy);
        for o in &states {
            let s = o.state();
            assert_eq!(
                o.plan_authorize(jpy(500), 0),
                if s == S::Open {
                    Ok(())
                } else {
                    Err(Refusal::OrderReferenceStatus(s))
                }
            );
            assert_eq!(
                o.plan_confirm(400).map(|x| x.state()),
                if s == S::Draft {
                    Ok(S::Open)
                } else {
                    Err(Refusal::OrderReferenceStatus(s))
                }
            );
            let cancel = o.plan_cancel(None, false, 400).map(|x| x.state());
            match s {
                S::Draft | S::Open | S::Suspended => assert_eq!(cancel, Ok(S::Canceled)),
                _ => assert_eq!(cancel, Err(Refusal::OrderReferenceStatus(s))),
            }
            let close = o.plan_close(None, false, 400).map(|x| x.state());
            match s {
                S::Canceled => assert_eq!(close, Err(Refusal::OrderReferenceStatus(s))),
                _ => assert_eq!(close, Ok(S::Closed)),
            }
        }
        assert_eq!(
            open.plan_cancel(None, true, 1),
            Err(Refusal::CancelAfterCapture)
        );
        assert!(matches!(
            open.plan_authorize(jpy(1001), 0),
            Err(Refusal::AmountExceeded { .. })
        ));
        assert!(matches!(
            open.plan_authorize(jpy(600), 500),
            Err(Refusal::AmountExceeded { .. })
        ));
        assert!(matches!(
            open.plan_authorize(Money::new(5, Currency::Usd), 0),
            Err(Refusal::CurrencyMismatch { .. })
        ));
        assert_eq!(
            open.plan_set(&OrderAttributes::default(), false, 1),
            Err(Refusal::OrderReferenceNotModifiable(S::Open))
        );
        let expired = open.fall_due(100 + LIFETIME).unwrap();
        assert_eq!(
            (expired.state(), expired.reason()),
            (S::Closed, Some(OrderReferenceReason::Expired))
        );
    }
}
