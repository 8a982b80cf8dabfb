//! The authorization: its states, reason codes, how Amazon decides it, and its pure rules.

use super::{Capture, CaptureState, PROCESSING_DELAY};
use crate::engine::agreements::ids::{
    AuthorizationId, BillingAgreementId, CaptureId, Environment, OrderReferenceId, SellerId,
};
use crate::engine::agreements::refusal::Refusal;
use crate::engine::agreements::{Timestamp, DAY};
use kessai_core::Money;
use serde::{Deserialize, Serialize};

/// An authorization may be captured this long.
pub const AUTHORIZATION_LIFETIME: i64 = 30 * DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthorizationState {
    Pending,
    Open,
    Declined,
    Closed,
}

impl AuthorizationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Open => "Open",
            Self::Declined => "Declined",
            Self::Closed => "Closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthorizationReason {
    InvalidPaymentMethod,
    AmazonRejected,
    TransactionTimedOut,
    ExpiredUnused,
    MaxCapturesProcessed,
    AmazonClosed,
    SellerClosed,
}

impl AuthorizationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPaymentMethod => "InvalidPaymentMethod",
            Self::AmazonRejected => "AmazonRejected",
            Self::TransactionTimedOut => "TransactionTimedOut",
            Self::ExpiredUnused => "ExpiredUnused",
            Self::MaxCapturesProcessed => "MaxCapturesProcessed",
            Self::AmazonClosed => "AmazonClosed",
            Self::SellerClosed => "SellerClosed",
        }
    }
}

/// How Amazon decides an authorization (from the payment method or a simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizationOutcome {
    Open,
    /// Open, then Closed/ExpiredUnused after this many seconds.
    OpenUntil(i64),
    Declined {
        reason: AuthorizationReason,
        soft_decline: Option<bool>,
        /// For `InvalidPaymentMethod`: the agreement is open again after this many seconds.
        reopen_after: Option<i64>,
    },
    AmazonClosed,
    /// Never decided (a simulated pending authorization).
    StaysPending,
}

/// What an authorization's decision means for the objects around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Opened,
    Declined {
        suspends: bool,
        reopen_after: Option<i64>,
    },
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    id: AuthorizationId,
    order_reference: OrderReferenceId,
    agreement: BillingAgreementId,
    seller: SellerId,
    environment: Environment,
    reference_id: String,
    #[serde(with = "crate::engine::agreements::stored::money")]
    amount: Money,
    #[serde(with = "crate::engine::agreements::stored::money")]
    captured: Money,
    note: Option<String>,
    soft_descriptor: Option<String>,
    capture_now: bool,
    state: AuthorizationState,
    reason: Option<AuthorizationReason>,
    soft_decline: Option<bool>,
    created_at: Timestamp,
    updated_at: Timestamp,
    captures: Vec<CaptureId>,
    /// A pending decision and when it falls due.
    pending: Option<(Timestamp, AuthorizationOutcome)>,
    /// A simulated early expiry.
    closes_at: Option<Timestamp>,
}

/// The fields of a new authorization.
#[derive(Debug, Clone)]
pub struct NewAuthorization {
    pub id: AuthorizationId,
    pub order_reference: OrderReferenceId,
    pub agreement: BillingAgreementId,
    pub seller: SellerId,
    pub environment: Environment,
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub capture_now: bool,
    /// `TransactionTimeout` 0: decided in the answer.
    pub synchronous: bool,
    pub outcome: AuthorizationOutcome,
}

impl Authorization {
    /// A new authorization: decided at once when synchronous (unless it stays pending), else
    /// Pending until [`PROCESSING_DELAY`] has passed. The second value is the decision made now.
    pub fn new(new: NewAuthorization, now: Timestamp) -> (Authorization, Option<Decided>) {
        let pending = Authorization {
            id: new.id,
            order_reference: new.order_reference,
            agreement: new.agreement,
            seller: new.seller,
            environment: new.environment,
            reference_id: new.reference_id,
            captured: Money::new(0, new.amount.currency()),
            amount: new.amount,
            note: new.note,
            soft_descriptor: new.soft_descriptor,
            capture_now: new.capture_now,
            state: AuthorizationState::Pending,
            reason: None,
            soft_decline: None,
            created_at: now,
            updated_at: now,
            captures: Vec::new(),
            pending: None,
            closes_at: None,
        };
        if new.outcome == AuthorizationOutcome::StaysPending {
            return (pending, None);
        }
        if new.synchronous {
            let (a, d) = pending.decide(new.outcome, now);
            (a, Some(d))
        } else {
            (
                Authorization {
                    pending: Some((now + PROCESSING_DELAY, new.outcome)),
                    ..pending
                },
                None,
            )
        }
    }

    fn decide(&self, outcome: AuthorizationOutcome, now: Timestamp) -> (Authorization, Decided) {
        let mut next = Authorization {
            pending: None,
            updated_at: now,
            ..self.clone()
        };
        let decided = match outcome {
            AuthorizationOutcome::Open | AuthorizationOutcome::StaysPending => {
                next.state = AuthorizationState::Open;
                Decided::Opened
            }
            AuthorizationOutcome::OpenUntil(after) => {
                next.state = AuthorizationState::Open;
                next.closes_at = Some(now + after);
                Decided::Opened
            }
            AuthorizationOutcome::Declined {
                reason,
                soft_decline,
                reopen_after,
            } => {
                next.state = AuthorizationState::Declined;
                next.reason = Some(reason);
                next.soft_decline = soft_decline;
                Decided::Declined {
                    suspends: reason == AuthorizationReason::InvalidPaymentMethod,
                    reopen_after,
                }
            }
            AuthorizationOutcome::AmazonClosed => {
                next.state = AuthorizationState::Closed;
                next.reason = Some(AuthorizationReason::AmazonClosed);
                Decided::Closed
            }
        };
        (next, decided)
    }

    pub fn id(&self) -> &AuthorizationId {
        &self.id
    }
    pub fn order_reference(&self) -> &OrderReferenceId {
        &self.order_reference
    }
    pub fn agreement(&self) -> &BillingAgreementId {
        &self.agreement
    }
    pub fn seller(&self) -> &SellerId {
        &self.seller
    }
    pub fn environment(&self) -> Environment {
        self.environment
    }
    pub fn reference_id(&self) -> &str {
        &self.reference_id
    }
    pub fn amount(&self) -> Money {
        self.amount
    }
    pub fn captured(&self) -> Money {
        self.captured
    }
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    pub fn soft_descriptor(&self) -> Option<&str> {
        self.soft_descriptor.as_deref()
    }
    pub fn capture_now(&self) -> bool {
        self.capture_now
    }
    pub fn state(&self) -> AuthorizationState {
        self.state
    }
    pub fn reason(&self) -> Option<AuthorizationReason> {
        self.reason
    }
    pub fn soft_decline(&self) -> Option<bool> {
        self.soft_decline
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn expires_at(&self) -> Timestamp {
        self.created_at + AUTHORIZATION_LIFETIME
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    pub fn captures(&self) -> &[CaptureId] {
        &self.captures
    }

    /// Whether it holds money against its order reference (not declined).
    pub fn holds(&self) -> bool {
        self.state != AuthorizationState::Declined
    }

    /// Capture: Open, its currency, at most the authorized amount.
    pub fn plan_capture(&self, amount: Money) -> Result<(), Refusal> {
        if self.state != AuthorizationState::Open {
            return Err(Refusal::AuthorizationStatus(self.state));
        }
        if amount.currency() != self.amount.currency() {
            return Err(Refusal::CurrencyMismatch {
                expected: self.amount.currency(),
                got: amount.currency(),
            });
        }
        let left = Money::new(
            self.amount.minor() - self.captured.minor(),
            self.amount.currency(),
        );
        if amount.minor() > left.minor() {
            return Err(Refusal::AmountExceeded {
                left,
                asked: amount,
            });
        }
        Ok(())
    }

    /// A capture was made (not declined): one capture per authorization, which then closes.
    pub fn captured_by(&self, capture: &Capture, now: Timestamp) -> Authorization {
        let mut next = self.clone();
        next.captures.push(capture.id().clone());
        if capture.state() == CaptureState::Declined {
            return next;
        }
        next.captured = Money::new(
            self.captured.minor() + capture.amount().minor(),
            self.amount.currency(),
        );
        next.state = AuthorizationState::Closed;
        next.reason = Some(AuthorizationReason::MaxCapturesProcessed);
        next.closes_at = None;
        next.updated_at = now;
        next
    }

    /// CloseAuthorization: Pending or Open → Closed/SellerClosed; Closed stays as it is.
    pub fn plan_close(&self, now: Timestamp) -> Result<Authorization, Refusal> {
        match self.state {
            AuthorizationState::Pending | AuthorizationState::Open => Ok(Authorization {
                state: AuthorizationState::Closed,
                reason: Some(AuthorizationReason::SellerClosed),
                pending: None,
                closes_at: None,
                updated_at: now,
                ..self.clone()
            }),
            AuthorizationState::Closed => Ok(self.clone()),
            AuthorizationState::Declined => Err(Refusal::AuthorizationStatus(self.state)),
        }
    }

    pub fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            AuthorizationState::Pending => self.pending.map(|(at, _)| at),
            AuthorizationState::Open => Some(
                self.closes_at
                    .map_or(self.expires_at(), |c| c.min(self.expires_at())),
            ),
            _ => None,
        }
    }

    /// What falls due at `now`: a pending decision, or expiry (Closed/ExpiredUnused).
    pub fn fall_due(&self, now: Timestamp) -> Option<(Authorization, Option<Decided>)> {
        let due = self.due_at().filter(|at| *at <= now)?;
        match (self.state, self.pending) {
            (AuthorizationState::Pending, Some((_, outcome))) => {
                let (a, d) = self.decide(outcome, due);
                Some((a, Some(d)))
            }
            _ => Some((
                Authorization {
                    state: AuthorizationState::Closed,
                    reason: Some(AuthorizationReason::ExpiredUnused),
                    closes_at: None,
                    updated_at: due,
                    ..self.clone()
                },
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::{auth, capture_of, jpy};
    use super::*;
    use crate::engine::agreements::payment::CaptureOutcome;

    #[test]
    fn synchronous_authorizations_are_decided_in_the_answer_asynchronous_ones_later() {
        let (sync, d) = auth(true, AuthorizationOutcome::Open);
        assert_eq!(
            (sync.state(), d),
            (AuthorizationState::Open, Some(Decided::Opened))
        );
        let declined = AuthorizationOutcome::Declined {
            reason: AuthorizationReason::InvalidPaymentMethod,
            soft_decline: Some(true),
            reopen_after: None,
        };
        let (sync, d) = auth(true, declined);
        assert_eq!(sync.state(), AuthorizationState::Declined);
        assert_eq!(sync.soft_decline(), Some(true));
        assert_eq!(
            d,
            Some(Decided::Declined {
                suspends: true,
                reopen_after: None
            })
        );
        let (pending, d) = auth(false, declined);
        assert_eq!((pending.state(), d), (AuthorizationState::Pending, None));
        assert_eq!(pending.fall_due(1000 + PROCESSING_DELAY - 1), None);
        let (after, d) = pending.fall_due(1000 + PROCESSING_DELAY).unwrap();
        assert_eq!(after.state(), AuthorizationState::Declined);
        assert_eq!(
            after.reason(),
            Some(AuthorizationReason::InvalidPaymentMethod)
        );
        assert!(matches!(d, Some(Decided::Declined { .. })));
    }

    #[test]
    fn capture_and_close_in_every_authorization_state() {
        let (pending, _) = auth(false, AuthorizationOutcome::Open);
        let (open, _) = auth(true, AuthorizationOutcome::Open);
        let (declined, _) = auth(
            true,
            AuthorizationOutcome::Declined {
                reason: AuthorizationReason::AmazonRejected,
                soft_decline: None,
                reopen_after: None,
            },
        );
        let closed = open.plan_close(1500).unwrap();
        for a in [&pending, &open, &declined, &closed] {
            let s = a.state();
            assert_eq!(
                a.plan_capture(jpy(1000)),
                if s == AuthorizationState::Open {
                    Ok(())
                } else {
                    Err(Refusal::AuthorizationStatus(s))
                }
            );
            let c = a.plan_close(1600).map(|x| (x.state(), x.reason()));
            match s {
                AuthorizationState::Declined => assert_eq!(c, Err(Refusal::AuthorizationStatus(s))),
                _ => assert_eq!(c.unwrap().0, AuthorizationState::Closed),
            }
        }
        assert!(matches!(
            open.plan_capture(jpy(1001)),
            Err(Refusal::AmountExceeded { .. })
        ));
        let cap = capture_of(&open, 600, CaptureOutcome::Completed);
        let after = open.captured_by(&cap, 2000);
        assert_eq!(after.state(), AuthorizationState::Closed);
        assert_eq!(
            after.reason(),
            Some(AuthorizationReason::MaxCapturesProcessed)
        );
        assert_eq!(after.captured(), jpy(600));
        let rejected = capture_of(&open, 600, CaptureOutcome::Declined);
        assert_eq!(
            open.captured_by(&rejected, 2000).state(),
            AuthorizationState::Open
        );
    }

    #[test]
    fn authorizations_expire_after_thirty_days() {
        let (open, _) = auth(true, AuthorizationOutcome::Open);
        assert_eq!(open.fall_due(1000 + AUTHORIZATION_LIFETIME - 1), None);
        let (gone, _) = open.fall_due(1000 + AUTHORIZATION_LIFETIME).unwrap();
        assert_eq!(gone.reason(), Some(AuthorizationReason::ExpiredUnused));
        let (soon, _) = auth(true, AuthorizationOutcome::OpenUntil(60));
        assert!(soon.fall_due(1060).is_some());
    }
}
