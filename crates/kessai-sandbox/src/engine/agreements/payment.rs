//! Authorizations, captures and refunds: their states, reason codes and pure rules.

use super::ids::{
    AuthorizationId, BillingAgreementId, CaptureId, Environment, OrderReferenceId, RefundId,
    SellerId,
};
use super::refusal::Refusal;
use super::{Timestamp, DAY};
use kessai_core::Money;
use serde::{Deserialize, Serialize};

/// An authorization may be captured this long.
pub const AUTHORIZATION_LIFETIME: i64 = 30 * DAY;
/// How long Amazon takes to decide a pending authorization, capture or refund.
pub const PROCESSING_DELAY: i64 = 30;
/// Refunds a capture takes.
pub const MAX_REFUNDS: usize = 10;

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
    #[serde(with = "super::stored::money")]
    amount: Money,
    #[serde(with = "super::stored::money")]
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
        next.captures.push(capture.id.clone());
        if capture.state() == CaptureState::Declined {
            return next;
        }
        next.captured = Money::new(
            self.captured.minor() + capture.amount.minor(),
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
    #[serde(with = "super::stored::money")]
    amount: Money,
    /// Completed refunds.
    #[serde(with = "super::stored::money")]
    refunded: Money,
    /// Refunds not declined (pending or completed).
    #[serde(with = "super::stored::money")]
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
        next.refunds.push(refund.id.clone());
        next.committed = Capture::plus(self.committed, refund.amount.minor());
        next.updated_at = now;
        next
    }

    /// A refund of it was decided: completed ones count as refunded (the capture closes when
    /// all is refunded or it took its last refund), declined ones free their amount again.
    pub fn refund_decided(&self, refund: &Refund, now: Timestamp) -> Capture {
        let mut next = self.clone();
        next.updated_at = now;
        match refund.state {
            RefundState::Completed => {
                next.refunded = Capture::plus(self.refunded, refund.amount.minor());
                if next.refunded.minor() >= self.amount.minor() {
                    next.state = CaptureState::Closed;
                    next.reason = Some(CaptureReason::MaxAmountRefunded);
                } else if self.refunds.len() >= MAX_REFUNDS {
                    next.state = CaptureState::Closed;
                    next.reason = Some(CaptureReason::MaxRefundsProcessed);
                }
            }
            RefundState::Declined => {
                next.committed = Capture::plus(self.committed, -refund.amount.minor());
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundState {
    Pending,
    Completed,
    Declined,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Completed => "Completed",
            Self::Declined => "Declined",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefundReason {
    AmazonRejected,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        "AmazonRejected"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    id: RefundId,
    capture: CaptureId,
    seller: SellerId,
    environment: Environment,
    reference_id: String,
    #[serde(with = "super::stored::money")]
    amount: Money,
    note: Option<String>,
    soft_descriptor: Option<String>,
    state: RefundState,
    reason: Option<RefundReason>,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// When it is decided, and whether it is declined then.
    decides: Option<(Timestamp, bool)>,
}

/// The fields of a new refund.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub id: RefundId,
    pub capture: CaptureId,
    pub seller: SellerId,
    pub environment: Environment,
    pub reference_id: String,
    pub amount: Money,
    pub note: Option<String>,
    pub soft_descriptor: Option<String>,
    pub declines: bool,
}

impl Refund {
    /// Always Pending at first; decided after [`PROCESSING_DELAY`].
    pub fn new(new: NewRefund, now: Timestamp) -> Refund {
        Refund {
            id: new.id,
            capture: new.capture,
            seller: new.seller,
            environment: new.environment,
            reference_id: new.reference_id,
            amount: new.amount,
            note: new.note,
            soft_descriptor: new.soft_descriptor,
            state: RefundState::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
            decides: Some((now + PROCESSING_DELAY, new.declines)),
        }
    }

    pub fn id(&self) -> &RefundId {
        &self.id
    }
    pub fn capture(&self) -> &CaptureId {
        &self.capture
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
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    pub fn soft_descriptor(&self) -> Option<&str> {
        self.soft_descriptor.as_deref()
    }
    pub fn state(&self) -> RefundState {
        self.state
    }
    pub fn reason(&self) -> Option<RefundReason> {
        self.reason
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    pub fn due_at(&self) -> Option<Timestamp> {
        (self.state == RefundState::Pending)
            .then_some(self.decides.map(|(at, _)| at))
            .flatten()
    }

    pub fn fall_due(&self, now: Timestamp) -> Option<Refund> {
        let due = self.due_at().filter(|at| *at <= now)?;
        let declines = self.decides.is_some_and(|(_, d)| d);
        Some(Refund {
            state: if declines {
                RefundState::Declined
            } else {
                RefundState::Completed
            },
            reason: declines.then_some(RefundReason::AmazonRejected),
            decides: None,
            updated_at: due,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kessai_core::Currency;

    fn jpy(n: i64) -> Money {
        Money::new(n, Currency::Jpy)
    }

    fn auth(synchronous: bool, outcome: AuthorizationOutcome) -> (Authorization, Option<Decided>) {
        let oro = OrderReferenceId::lookup("S03-1111111-2222222").unwrap();
        Authorization::new(
            NewAuthorization {
                id: AuthorizationId::lookup("S03-1111111-2222222-A012345").unwrap(),
                order_reference: oro,
                agreement: BillingAgreementId::lookup("C03-1111111-2222222").unwrap(),
                seller: SellerId::lookup("A1").unwrap(),
                environment: Environment::Sandbox,
                reference_id: "r1".into(),
                amount: jpy(1000),
                note: None,
                soft_descriptor: None,
                capture_now: false,
                synchronous,
                outcome,
            },
            1000,
        )
    }

    fn capture_of(a: &Authorization, amount: i64, outcome: CaptureOutcome) -> Capture {
        Capture::new(
            NewCapture {
                id: CaptureId::lookup("S03-1111111-2222222-C012345").unwrap(),
                authorization: a.id().clone(),
                seller: a.seller().clone(),
                environment: Environment::Sandbox,
                reference_id: "c1".into(),
                amount: jpy(amount),
                note: None,
                soft_descriptor: None,
                outcome,
            },
            2000,
        )
    }

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
