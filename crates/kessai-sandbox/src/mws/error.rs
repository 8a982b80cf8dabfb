//! Amazon's MWS error answer (`ErrorResponse`: HTTP status, `Type`, `Code`, `Message`), and the
//! one place where the engine's refusals become Amazon's codes.

use crate::engine::agreements::{EngineError, Refusal};
use axum::http::StatusCode;

/// `Sender` (the caller's mistake) or `Receiver` (Amazon's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Sender,
    Receiver,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Sender => "Sender",
            Side::Receiver => "Receiver",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MwsError {
    pub status: StatusCode,
    pub side: Side,
    pub code: &'static str,
    pub message: String,
}

impl MwsError {
    pub fn sender(status: StatusCode, code: &'static str, message: impl Into<String>) -> MwsError {
        MwsError {
            status,
            side: Side::Sender,
            code,
            message: message.into(),
        }
    }

    pub fn missing(parameter: &str) -> MwsError {
        MwsError::sender(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!("The request must contain the parameter {parameter}."),
        )
    }

    pub fn invalid(parameter: &str, why: impl std::fmt::Display) -> MwsError {
        MwsError::sender(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValue",
            format!("The value provided for {parameter} is invalid: {why}"),
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> MwsError {
        tracing::error!(%detail, "MWS: internal error");
        MwsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            side: Side::Receiver,
            code: "InternalServerError",
            message: "There was an unknown error in the service; nothing was changed.".into(),
        }
    }
}

impl From<Refusal> for MwsError {
    fn from(r: Refusal) -> MwsError {
        use StatusCode as H;
        let (status, code, text) = match &r {
            Refusal::UnknownBillingAgreement(id) => (
                H::NOT_FOUND,
                "InvalidBillingAgreementId",
                format!("The billing agreement ID {id} is invalid."),
            ),
            Refusal::UnknownOrderReference(id) => (
                H::NOT_FOUND,
                "InvalidOrderReferenceId",
                format!("The OrderReferenceId {id} is invalid."),
            ),
            Refusal::UnknownAuthorization(id)
            | Refusal::UnknownCapture(id)
            | Refusal::UnknownRefund(id) => (
                H::NOT_FOUND,
                "InvalidTransactionId",
                format!("The specified Id {id} is invalid."),
            ),
            Refusal::BillingAgreementNotModifiable(s) => (
                H::METHOD_NOT_ALLOWED,
                "BillingAgreementNotModifiable",
                format!("BillingAgreement cannot be modified as it is in the {} state.", s.as_str()),
            ),
            Refusal::BillingAgreementConstraints(cs) => (
                H::BAD_REQUEST,
                "BillingAgreementConstraintsExist",
                format!(
                    "The billing agreement cannot be confirmed as it has the following constraints: {}.",
                    cs.iter().map(|c| c.id()).collect::<Vec<_>>().join(", ")
                ),
            ),
            Refusal::BillingAgreementStatus(s) => (
                H::METHOD_NOT_ALLOWED,
                "InvalidBillingAgreementStatus",
                format!("The operation is not allowed for a billing agreement in the {} state.", s.as_str()),
            ),
            Refusal::OrderReferenceNotModifiable(s) => (
                H::METHOD_NOT_ALLOWED,
                "OrderReferenceNotModifiable",
                format!("OrderReference cannot be modified as it is in the {} state.", s.as_str()),
            ),
            Refusal::OrderReferenceStatus(s) => (
                H::METHOD_NOT_ALLOWED,
                "InvalidOrderReferenceStatus",
                format!("The operation is not allowed for an order reference in the {} state.", s.as_str()),
            ),
            Refusal::OrderReferenceConstraints(cs) => (
                H::BAD_REQUEST,
                "ConstraintsExist",
                format!(
                    "The order reference has the following constraints: {}.",
                    cs.iter().map(|c| c.id()).collect::<Vec<_>>().join(", ")
                ),
            ),
            Refusal::OrderTotalNotSet => (
                H::BAD_REQUEST,
                "ConstraintsExist",
                "The order reference has no OrderTotal (constraint AmountNotSet).".into(),
            ),
            Refusal::CancelAfterCapture => (
                H::BAD_REQUEST,
                "InvalidCancelAttempt",
                "The order reference cannot be canceled: funds were captured on it.".into(),
            ),
            Refusal::AuthorizationStatus(s) => (
                H::METHOD_NOT_ALLOWED,
                "InvalidAuthorizationStatus",
                format!("The operation is not allowed for an authorization in the {} state.", s.as_str()),
            ),
            Refusal::CaptureNotRefundable(s) => (
                H::METHOD_NOT_ALLOWED,
                "CaptureNotRefundable",
                format!("The capture is in the {} state and cannot be refunded.", s.as_str()),
            ),
            Refusal::CurrencyMismatch { expected, got } => (
                H::BAD_REQUEST,
                "CurrencyMismatch",
                format!(
                    "The currency {} does not match the currency {} of this seller's payments.",
                    got.code(),
                    expected.code()
                ),
            ),
            Refusal::AmountExceeded { left, asked } => (
                H::BAD_REQUEST,
                "TransactionAmountExceeded",
                format!(
                    "The amount {} {} is above the {} {} that can still be charged.",
                    asked.to_decimal_string(),
                    asked.currency().code(),
                    left.to_decimal_string(),
                    left.currency().code()
                ),
            ),
            Refusal::PeriodicAmountExceeded { remaining, asked } => (
                H::BAD_REQUEST,
                "PeriodicAmountExceeded",
                format!(
                    "The amount {} {} is above the billing agreement's remaining balance of {} {} for this period.",
                    asked.to_decimal_string(),
                    asked.currency().code(),
                    remaining.to_decimal_string(),
                    remaining.currency().code()
                ),
            ),
            Refusal::CountExceeded { what, max } => (
                H::BAD_REQUEST,
                "TransactionCountExceeded",
                format!("At most {max} {what} are allowed."),
            ),
            Refusal::DuplicateRequest(id) => (
                H::BAD_REQUEST,
                "DuplicateRequest",
                format!("The reference id {id} was already used with different parameters."),
            ),
            Refusal::DuplicateReferenceId(id) => (
                H::BAD_REQUEST,
                "DuplicateReferenceId",
                format!("The reference id {id} was already used by another operation."),
            ),
        };
        MwsError::sender(status, code, text)
    }
}

impl From<EngineError> for MwsError {
    fn from(e: EngineError) -> MwsError {
        match e {
            EngineError::Refused(r) => r.into(),
            other => MwsError::internal(other),
        }
    }
}
