//! Authorizations, captures and refunds: their states, reason codes and pure rules, one
//! record per module.

mod authorization;
mod capture;
mod refund;

pub use authorization::{
    Authorization, AuthorizationOutcome, AuthorizationReason, AuthorizationState, Decided,
    NewAuthorization, AUTHORIZATION_LIFETIME,
};
pub use capture::{Capture, CaptureOutcome, CaptureReason, CaptureState, NewCapture, MAX_REFUNDS};
pub use refund::{NewRefund, Refund, RefundReason, RefundState};

/// How long Amazon takes to decide a pending authorization, capture or refund.
pub const PROCESSING_DELAY: i64 = 30;

/// Records the tests of these modules share.
#[cfg(test)]
mod fixtures {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::agreements::ids::{
        AuthorizationId, BillingAgreementId, CaptureId, Environment, OrderReferenceId, SellerId,
    };
    use kessai_core::{Currency, Money};

    pub fn jpy(n: i64) -> Money {
        Money::new(n, Currency::Jpy)
    }

    pub fn auth(
        synchronous: bool,
        outcome: AuthorizationOutcome,
    ) -> (Authorization, Option<Decided>) {
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

    pub fn capture_of(a: &Authorization, amount: i64, outcome: CaptureOutcome) -> Capture {
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
}
