//! How the v2 face reports each of the engine's refusals: HTTP status, reason code and message,
//! in this one place.

use crate::engine::{Action, AmountOf, EngineError, Object};
use crate::error::ApiError;
use axum::http::StatusCode;
use kessai_amazonpay::wire::ErrorCode;

fn operation(action: Action) -> &'static str {
    match action {
        Action::CompleteSession => "Complete Checkout Session",
        Action::Charge => "Create Charge",
        Action::Refund => "Create Refund",
        Action::UpdateSession => "Update Checkout Session",
        Action::Capture => "Capture Charge",
        Action::Cancel => "Cancel Charge",
        Action::MarkExpired => "Update Charge",
        Action::ClosePermission => "Close Charge Permission",
    }
}

/// `400 InvalidSandboxSimulationSpecified` for a code an operation does not simulate.
pub fn unfit_simulation(code: &str, operation: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidSandboxSimulationSpecified,
        format!("The simulation code {code} cannot be used with {operation}."),
    )
}

fn invalid_state(object: Object, state: &str, action: Action) -> ApiError {
    let (code, message) = match (object, action) {
        (Object::CheckoutSession, Action::UpdateSession) => (
            ErrorCode::InvalidCheckoutSessionStatus,
            format!("The checkout session is {state}; it can be updated only while Open."),
        ),
        (Object::CheckoutSession, _) => (
            ErrorCode::InvalidCheckoutSessionStatus,
            format!("The checkout session is {state}; only an Open session can be completed."),
        ),
        (Object::ChargePermission, Action::ClosePermission) => (
            ErrorCode::InvalidChargePermissionStatus,
            "The charge permission is already Closed.".to_owned(),
        ),
        (Object::ChargePermission, _) => (
            ErrorCode::InvalidChargePermissionStatus,
            format!("The charge permission is {state}; only a Chargeable one can be charged."),
        ),
        (_, Action::Cancel) => (
            ErrorCode::InvalidChargeStatus,
            format!("The charge is {state}; only an Authorized or AuthorizationInitiated charge can be canceled."),
        ),
        (_, Action::Refund) => (
            ErrorCode::InvalidChargeStatus,
            format!("The charge is {state}; only a Captured charge can be refunded."),
        ),
        (_, Action::MarkExpired) => (
            ErrorCode::InvalidChargeStatus,
            format!("The charge is {state}; only an Authorized charge can be marked ExpiredUnused."),
        ),
        _ => (
            ErrorCode::InvalidChargeStatus,
            format!("The charge is {state}; only an Authorized charge can be captured."),
        ),
    };
    ApiError::unprocessable(code, message)
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::NotFound { object, id } => ApiError::not_found(object.name(), &id),
            EngineError::WrongStore => {
                ApiError::invalid("storeId", "it is not the store id of this merchant.")
            }
            EngineError::InvalidState {
                object,
                state,
                action,
            } => invalid_state(object, state, action),
            EngineError::SessionCanceled { reason } | EngineError::SimulatedCancel { reason } => {
                ApiError::unprocessable(
                    ErrorCode::CheckoutSessionCanceled,
                    format!(
                        "The checkout session was canceled ({}); start a new checkout.",
                        reason.name()
                    ),
                )
            }
            EngineError::NotConfirmed => ApiError::unprocessable(
                ErrorCode::InvalidCheckoutSessionStatus,
                "The buyer has not confirmed the checkout on Amazon Pay yet.",
            ),
            EngineError::NotSignedIn => ApiError::unprocessable(
                ErrorCode::InvalidCheckoutSessionStatus,
                "The buyer has not signed in to this checkout session yet.",
            ),
            EngineError::AmountMismatch { given, expected } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AmountMismatch,
                format!(
                    "chargeAmount {} does not match the checkout session's chargeAmount {}.",
                    given.to_decimal_string(),
                    expected.map(|m| m.to_decimal_string()).unwrap_or_default()
                ),
            ),
            EngineError::PendingNotAccepted { intent: true } => ApiError::bad_request(
                ErrorCode::InvalidSandboxSimulationSpecified,
                "A pending authorization is simulated; it needs paymentIntent Authorize or AuthorizeWithCapture and canHandlePendingAuthorization true.",
            ),
            EngineError::PendingNotAccepted { intent: false } => ApiError::bad_request(
                ErrorCode::InvalidSandboxSimulationSpecified,
                "A pending authorization is simulated; it needs canHandlePendingAuthorization true.",
            ),
            EngineError::CurrencyMismatch { of } => ApiError::bad_request(
                ErrorCode::CurrencyMismatch,
                match of {
                    AmountOf::Capture => {
                        "captureAmount.currencyCode differs from the charge's currency."
                    }
                    AmountOf::Refund => {
                        "refundAmount.currencyCode differs from the charge's currency."
                    }
                },
            ),
            EngineError::CaptureExceeded { amount, authorized } => ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!(
                    "captureAmount {} exceeds the authorized amount {}.",
                    amount.to_decimal_string(),
                    authorized.to_decimal_string()
                ),
            ),
            EngineError::RefundExceeded {
                amount,
                total,
                most,
                captured,
                allowance,
            } => ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!(
                    "refundAmount {} would bring refunds to {} but at most {} (captured {} + {}) can be refunded.",
                    amount.to_decimal_string(),
                    total.to_decimal_string(),
                    most.to_decimal_string(),
                    captured.to_decimal_string(),
                    allowance.to_decimal_string(),
                ),
            ),
            EngineError::PeriodExceeded {
                used,
                amount,
                limit,
            } => ApiError::bad_request(
                ErrorCode::PeriodicAmountExceeded,
                format!(
                    "Charges of {} in the last 30 days plus chargeAmount {} exceed the limit of {} {} per period.",
                    used.to_decimal_string(),
                    amount.to_decimal_string(),
                    limit.to_decimal_string(),
                    limit.currency().code()
                ),
            ),
            EngineError::CountExceeded => ApiError::unprocessable(
                ErrorCode::TransactionCountExceeded,
                "A one-time charge permission allows at most 25 charges.",
            ),
            EngineError::BalanceExceeded { amount, left } => ApiError::bad_request(
                ErrorCode::TransactionAmountExceeded,
                format!(
                    "chargeAmount {} exceeds what is left of the charge permission ({}).",
                    amount.to_decimal_string(),
                    left.to_decimal_string()
                ),
            ),
            EngineError::Declined { reason } => {
                let (code, status) = match reason {
                    crate::engine::Decline::Soft => (ErrorCode::SoftDeclined, 422),
                    crate::engine::Decline::Hard => (ErrorCode::HardDeclined, 422),
                    crate::engine::Decline::Rejected => (ErrorCode::AmazonRejected, 422),
                    crate::engine::Decline::TimedOut => (ErrorCode::TransactionTimedOut, 422),
                    crate::engine::Decline::ProcessingFailure => {
                        (ErrorCode::ProcessingFailure, 500)
                    }
                };
                ApiError::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                    code,
                    format!(
                        "The authorization was declined ({}, simulated).",
                        reason.name()
                    ),
                )
            }
            EngineError::UnfitSimulation { code, action } => {
                unfit_simulation(&code, operation(action))
            }
            EngineError::RecurringOnly => ApiError::bad_request(
                ErrorCode::InvalidParameterCombination,
                "recurringMetadata can be updated only on a Recurring charge permission.",
            ),
            EngineError::NotModifiable => ApiError::unprocessable(
                ErrorCode::ChargePermissionNotModifiable,
                "The charge permission is Closed and cannot be modified.",
            ),
            buyer @ (EngineError::NoSuchSession
            | EngineError::SessionUnusable { .. }
            | EngineError::UnknownBuyer
            | EngineError::UnknownAddress
            | EngineError::UnknownInstrument
            | EngineError::NotPayable) => ApiError::unprocessable(
                ErrorCode::InvalidCheckoutSessionStatus,
                buyer.to_string(),
            ),
        }
    }
}
