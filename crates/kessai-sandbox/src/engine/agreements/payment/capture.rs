//! The capture: its states, reason codes, how Amazon decides it, and its pure rules (refunds
//! are counted against it).

use super::{Refund, RefundState, PROCESSING_DELAY};
use crate::engine::agreements::ids::{AuthorizationId, CaptureId, Environment, RefundId, SellerId};
use crate::engine::agreements::refusal::Refusal;
use crate::engine::agreements::Timestamp;
use kessai_core::Money;
use serde::{Deserialize, Serialize};

/// Refunds a capture takes.
pub const MAX_REFUNDS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaptureState {
    Pending,
    Declined,
    Completed,
    Closed,
}

impl CaptureState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Declined => "Declined",
            Self::Completed => "Completed",
            Self::Closed => "Closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaptureReason {
    AmazonRejected,
    AmazonClosed,
    MaxAmountRefunded,
    MaxRefundsProcessed,
}

impl CaptureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmazonRejected => "AmazonRejected",
            Self::AmazonClosed => "AmazonClosed",
            Self::MaxAmountRefunded => "MaxAmountRefunded",
            Self::MaxRefundsProcessed => "MaxRefundsProcessed",
        }
    }
}

/// How Amazon decides a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureOutcome {
    Completed,
    /// Pending, then Completed after [`PROCESSING_DELAY`].
    Pending,
    Declined,
    AmazonClosed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    id: CaptureId,
    authorization: AuthorizationId,
    seller: SellerId,
    environment: Environment,
    reference_id: String,
    #[serde(with = "crate::engine::agreements::stored::money")]
    amount: Money,
    /// Completed refunds.
    #[serde(with = "crate::engine::agreements::stored::money")]
    refunded: Money,
    /// Refunds not declined (pending or completed).
    #[serde(with = "crate::engine::agreements::stored::money")]
    committed: Money,
    note: Option<String>,
    soft_descriptor: Option<String>,
    state: CaptureState,
    reason: Option<CaptureReason>,
    created_at: Timestamp,
    updated_at: Timestamp,
    refunds: Vec<RefundId>,
    completes_at: Option<Timestamp>,
}

/// The fields of a new capture.
#[derive(Debug, Clone)]
pub struct NewCapture {
    pub id: CaptureId,
    pub authorization: AuthorizationId,
    pub seller: SellerId,
    pub environment: Environment,
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub outcome: CaptureOutcome,
}

impl Capture {
    pub fn new(new: NewCapture, now: Timestamp) -> Capture {
        let (state, reason, completes_at) = match new.outcome {
            CaptureOutcome::Completed => (CaptureState::Completed, None, None),
            CaptureOutcome::Pending => (CaptureState::Pending, None, Some(now + PROCESSING_DELAY)),
            CaptureOutcome::Declined => (
                CaptureState::Declined,
                Some(CaptureReason::AmazonRejected),
                None,
            ),
            CaptureOutcome::AmazonClosed => (
                CaptureState::Closed,
                Some(CaptureReason::AmazonClosed),
                None,
            ),
        };
        let zero = Money::new(0, new.amount.currency());
        Capture {
            id: new.id,
            authorization: new.authorization,
            seller: new.seller,
            environment: new.environment,
            reference_id: new.reference_id,
            amount: new.amount,
            refunded: zero,
            committed: zero,
            note: new.note,
            soft_descriptor: new.soft_descriptor,
            state,
            reason,
            created_at: now,
            updated_at: now,
            refunds: Vec::new(),
            completes_at,
        }
    }

    pub fn id(&self) -> &CaptureId {
        &self.id
    }
    pub fn authorization(&self) -> &AuthorizationId {
        &self.authorization
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
    pub fn refunded(&self) -> Money {
        self.refunded
    }
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    pub fn soft_descriptor(&self) -> Option<&str> {
        self.soft_descriptor.as_deref()
    }
    pub fn state(&self) -> CaptureState {
        self.state
    }
    pub fn reason(&self) -> Option<CaptureReason> {
        self.reason
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
    pub fn refunds(&self) -> &[RefundId] {
        &self.refunds
    }

    /// Refund: Completed, its currency, within what is not yet refunded, fewer than ten.
    pub fn plan_refund(&self, amount: Money) -> Result<(), Refusal> {
        if self.state != CaptureState::Completed {
            return Err(Refusal::CaptureNotRefundable(self.state));
        }
        if amount.currency() != self.amount.currency() {
            return Err(Refusal::CurrencyMismatch {
                expected: self.amount.currency(),
                got: amount.currency(),
            });
        }
        let left = Money::new(
            self.amount.minor() - self.committed.minor(),
            self.amount.currency(),
        );
        if amount.minor() > left.minor() {
            return Err(Refusal::AmountExceeded {
                left,
                asked: amount,
            });
        }
        if self.refunds.len() >= MAX_REFUNDS {
            return Err(Refusal::CountExceeded {
                what: "refunds per capture",
                max: MAX_REFUNDS,
            });
        }
        Ok(())
    }

    fn plus(a: Money, n: i64) -> Money {
        Money::new(a.minor() + n, a.currency())
    }

    /// A refund was asked for (pending).
    pub fn with_refund(&self, refund: &Refund, now: Timestamp) -> Capture {
        let mut next = self.clone();
        next.refunds.push(refund.id().clone());
        next.committed = Capture::plus(self.committed, refund.amount().minor());
        next.updated_at = now;
        next
    }

    /// A refund of it was decided: completed ones count as refunded (the capture closes when
    /// all is refunded or it took its last refund), declined ones free their amount again.
    pub fn refund_decided(&self, refund: &Refund, now: Timestamp) -> Capture {
        let mut next = self.clone();
        next.updated_at = now;
        match refund.state() {
            RefundState::Completed => {
                next.refunded = Capture::plus(self.refunded, refund.amount().minor());
                if next.refunded.minor() >= self.amount.minor() {
                    next.state = CaptureState::Closed;
                    next.reason = Some(CaptureReason::MaxAmountRefunded);
                } else if self.refunds.len() >= MAX_REFUNDS {
                    next.state = CaptureState::Closed;
                    next.reason = Some(CaptureReason::MaxRefundsProcessed);
                }
            }
            RefundState::Declined => {
                next.committed = Capture::plus(self.committed, -refund.amount().minor());
            }
            RefundState::Pending => {}
        }
        next
    }

    pub fn due_at(&self) -> Option<Timestamp> {
        (self.state == CaptureState::Pending)
            .then_some(self.completes_at)
            .flatten()
    }

    pub fn fall_due(&self, now: Timestamp) -> Option<Capture> {
        let due = self.due_at().filter(|at| *at <= now)?;
        Some(Capture {
            state: CaptureState::Completed,
            completes_at: None,
            updated_at: due,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::{auth, capture_of, jpy};
    use super::*;
    use crate::engine::agreements::payment::{AuthorizationOutcome, NewRefund};

    #[test]
    fn refunds_stay_within_the_capture_and_complete_later() {
        let (open, _) = auth(true, AuthorizationOutcome::Open);
        let cap = capture_of(&open, 1000, CaptureOutcome::Completed);
        let refund = |amount, declines| {
            Refund::new(
                NewRefund {
                    id: RefundId::lookup("S03-1111111-2222222-R012345").unwrap(),
                    capture: cap.id().clone(),
                    seller: cap.seller().clone(),
                    environment: Environment::Sandbox,
                    reference_id: "f".into(),
                    amount: jpy(amount),
                    note: None,
                    soft_descriptor: None,
                    declines,
                },
                3000,
            )
        };
        assert_eq!(cap.plan_refund(jpy(1000)), Ok(()));
        assert!(matches!(
            cap.plan_refund(jpy(1001)),
            Err(Refusal::AmountExceeded { .. })
        ));
        let r1 = refund(700, false);
        let cap2 = cap.with_refund(&r1, 3000);
        assert!(matches!(
            cap2.plan_refund(jpy(301)),
            Err(Refusal::AmountExceeded { .. })
        ));
        assert_eq!(r1.state(), RefundState::Pending);
        let done = r1.fall_due(3000 + PROCESSING_DELAY).unwrap();
        assert_eq!(done.state(), RefundState::Completed);
        let cap3 = cap2.refund_decided(&done, 3030);
        assert_eq!(cap3.refunded(), jpy(700));
        let r2 = refund(300, true);
        let cap4 = cap3.with_refund(&r2, 3100);
        let declined = r2.fall_due(4000).unwrap();
        assert_eq!(declined.state(), RefundState::Declined);
        let cap5 = cap4.refund_decided(&declined, 4000);
        assert_eq!(cap5.plan_refund(jpy(300)), Ok(()));
        let pending = capture_of(&open, 10, CaptureOutcome::Pending);
        assert_eq!(
            pending.plan_refund(jpy(1)),
            Err(Refusal::CaptureNotRefundable(CaptureState::Pending))
        );
        assert_eq!(
            pending.fall_due(2000 + PROCESSING_DELAY).unwrap().state(),
            CaptureState::Completed
        );
    }
}
