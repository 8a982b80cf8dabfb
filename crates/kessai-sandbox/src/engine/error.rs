//! Why the engine refuses an operation, in its own words: no HTTP status, no protocol's
//! codes. Each face says how it reports each refusal (`v2::error`).

use super::charge::Decline;
use super::session::CancelReason;
use kessai_core::Money;

/// The kind of object a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    CheckoutSession,
    ChargePermission,
    Charge,
    Refund,
}

impl Object {
    pub fn name(self) -> &'static str {
        match self {
            Object::CheckoutSession => "CheckoutSession",
            Object::ChargePermission => "ChargePermission",
            Object::Charge => "Charge",
            Object::Refund => "Refund",
        }
    }
}

/// The operation that found its object in the wrong state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UpdateSession,
    CompleteSession,
    Capture,
    Cancel,
    Refund,
    MarkExpired,
    Charge,
    ClosePermission,
}

/// Which amount a currency mismatch is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountOf {
    Capture,
    Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{} {id} was not found", object.name())]
    NotFound { object: Object, id: String },
    #[error("the store id is not this merchant's")]
    WrongStore,
    #[error("the {} is {state}; {action:?} cannot be done in that state", object.name())]
    InvalidState {
        object: Object,
        state: &'static str,
        action: Action,
    },
    #[error("the checkout session was canceled ({})", reason.name())]
    SessionCanceled { reason: CancelReason },
    #[error("the checkout session was canceled ({}, simulated)", reason.name())]
    SimulatedCancel { reason: CancelReason },
    #[error("the buyer has not confirmed the checkout yet")]
    NotConfirmed,
    #[error("the buyer has not signed in to this checkout session yet")]
    NotSignedIn,
    #[error("the amount differs from the checkout session's")]
    AmountMismatch {
        given: Money,
        expected: Option<Money>,
    },
    /// A pending authorization was simulated for a caller that cannot take one (`intent`: the
    /// payment intent also matters, as for a checkout).
    #[error("a pending authorization was simulated but the caller cannot handle one")]
    PendingNotAccepted { intent: bool },
    #[error("the currency differs from the charge's")]
    CurrencyMismatch { of: AmountOf },
    #[error("the capture exceeds the authorized amount")]
    CaptureExceeded { amount: Money, authorized: Money },
    #[error("the refunds would exceed what can be refunded")]
    RefundExceeded {
        amount: Money,
        total: Money,
        most: Money,
        captured: Money,
        allowance: Money,
    },
    #[error("the charges of the period would exceed its limit")]
    PeriodExceeded {
        used: Money,
        amount: Money,
        limit: Money,
    },
    #[error("a one-time charge permission allows at most 25 charges")]
    CountExceeded,
    #[error("the amount exceeds what is left of the charge permission")]
    BalanceExceeded { amount: Money, left: Money },
    #[error("the authorization was declined ({}, simulated)", reason.name())]
    Declined { reason: Decline },
    #[error("the simulation code {code} cannot be used with {action:?}")]
    UnfitSimulation { code: String, action: Action },
    #[error("recurring metadata belongs only to a recurring charge permission")]
    RecurringOnly,
    #[error("the charge permission is closed and cannot be modified")]
    NotModifiable,
    // What the buyer's pages can run into (their messages are shown to the buyer as they are).
    #[error("This checkout session does not exist.")]
    NoSuchSession,
    #[error("This checkout session is {state} and cannot be used any more.")]
    SessionUnusable { state: &'static str },
    #[error("Unknown test buyer.")]
    UnknownBuyer,
    #[error("That address is not one of this buyer's.")]
    UnknownAddress,
    #[error("Unknown payment method.")]
    UnknownInstrument,
    #[error("The merchant has not finished the checkout session yet (no payment details or return URL).")]
    NotPayable,
}
