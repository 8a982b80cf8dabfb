//! Why the billing-agreement engine refuses a command: one typed reason per rule, rendered to a
//! protocol's error by its face (the MWS face maps each to Amazon's code in one place).

use super::agreement::{BillingAgreementState, Constraint};
use super::order_reference::{OrderReferenceConstraint, OrderReferenceState};
use super::payment::{AuthorizationState, CaptureState};
use kessai_core::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the billing agreement {0} does not exist")]
    UnknownBillingAgreement(String),
    #[error("the order reference {0} does not exist")]
    UnknownOrderReference(String),
    #[error("the authorization {0} does not exist")]
    UnknownAuthorization(String),
    #[error("the capture {0} does not exist")]
    UnknownCapture(String),
    #[error("the refund {0} does not exist")]
    UnknownRefund(String),
    #[error("the billing agreement is {0:?} and can no longer be modified")]
    BillingAgreementNotModifiable(BillingAgreementState),
    #[error("the billing agreement has constraints: {0:?}")]
    BillingAgreementConstraints(Vec<Constraint>),
    #[error("the billing agreement is {0:?}")]
    BillingAgreementStatus(BillingAgreementState),
    #[error("the order reference is {0:?} and can no longer be modified")]
    OrderReferenceNotModifiable(OrderReferenceState),
    #[error("the order reference is {0:?}")]
    OrderReferenceStatus(OrderReferenceState),
    #[error("the order reference has constraints: {0:?}")]
    OrderReferenceConstraints(Vec<OrderReferenceConstraint>),
    #[error("the order reference has no order total")]
    OrderTotalNotSet,
    #[error("something was captured on the order reference already")]
    CancelAfterCapture,
    #[error("the authorization is {0:?}")]
    AuthorizationStatus(AuthorizationState),
    #[error("the capture is {0:?}")]
    CaptureNotRefundable(CaptureState),
    #[error("the amount is in {got:?}, expected {expected:?}")]
    CurrencyMismatch { expected: Currency, got: Currency },
    #[error("the amount {asked:?} is above what is left ({left:?})")]
    AmountExceeded { left: Money, asked: Money },
    #[error("the amount {asked:?} is above the agreement's remaining balance ({remaining:?})")]
    PeriodicAmountExceeded { remaining: Money, asked: Money },
    #[error("at most {max} {what} are allowed")]
    CountExceeded { what: &'static str, max: usize },
    #[error("the reference id {0} was used with other parameters")]
    DuplicateRequest(String),
    #[error("the reference id {0} was used by another operation")]
    DuplicateReferenceId(String),
}
